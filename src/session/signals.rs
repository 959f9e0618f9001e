//! Holding SIGINT, SIGTERM and SIGHUP while a refresh is on the server. Ctrl-C
//! reaches the whole process group (kubectl and us); dying between OpenUnison
//! spending the old refresh token and our saving the rotated one would cost
//! the session. While held, the signals stay pending (blocked, not handled:
//! no handler lingers afterwards, so outside the hold their default action is
//! untouched); on release the caller learns which arrived and acts on it.
//! SIGKILL cannot be blocked by anyone.

use std::mem::MaybeUninit;

use libc::c_int;

/// The signals held, in the order one is reported when several arrived.
const HELD: [c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// SIGINT, SIGTERM and SIGHUP blocked for this thread (and any thread it
/// starts meanwhile, such as the HTTP client's resolver) until released or dropped.
pub struct HeldSignals {
    /// The mask to restore; `None` once released (or if blocking failed).
    previous: Option<libc::sigset_t>,
}

impl HeldSignals {
    pub fn hold() -> HeldSignals {
        let held = signal_set(&HELD);
        let mut previous = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: `held` is an initialised set and `previous` is written by the call before it is read.
        let blocked = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &held, previous.as_mut_ptr()) } == 0;
        // SAFETY: initialised by the successful call above.
        HeldSignals { previous: blocked.then(|| unsafe { previous.assume_init() }) }
    }

    /// Ends the hold: the held signal that arrived meanwhile, if any, taken
    /// off the pending list (so it does not strike when unblocked), then the
    /// old mask back. Later calls return `None`.
    pub fn release(&mut self) -> Option<c_int> {
        let previous = self.previous.take()?;
        let arrived = take_pending(&previous);
        restore(&previous);
        arrived
    }
}

impl Drop for HeldSignals {
    /// Left without a release (an early error): the old mask comes back and a
    /// signal that arrived takes its default action.
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            restore(&previous);
        }
    }
}

/// The signal's conventional name, for messages.
pub fn name(signal: c_int) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

fn signal_set(signals: &[c_int]) -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset only adds valid signal numbers to it.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for &signal in signals {
            libc::sigaddset(set.as_mut_ptr(), signal);
        }
        set.assume_init()
    }
}

/// Consumes the held signals that are pending (and were not already blocked
/// before the hold: those belong to whoever blocked them); returns the first.
fn take_pending(previous: &libc::sigset_t) -> Option<c_int> {
    let mut pending = signal_set(&[]);
    // SAFETY: `pending` is an initialised set for sigpending to fill.
    if unsafe { libc::sigpending(&mut pending) } != 0 {
        return None;
    }
    let mut first = None;
    for signal in HELD {
        // SAFETY: both sets are initialised.
        let arrived = unsafe { libc::sigismember(&pending, signal) } == 1;
        let ours = unsafe { libc::sigismember(previous, signal) } == 0;
        if arrived && ours {
            let only = signal_set(&[signal]);
            let mut taken: c_int = 0;
            // SAFETY: the signal is pending and blocked, so sigwait returns at once.
            unsafe { libc::sigwait(&only, &mut taken) };
            first.get_or_insert(signal);
        }
    }
    first
}

fn restore(previous: &libc::sigset_t) {
    // SAFETY: `previous` is the initialised mask pthread_sigmask gave us.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, previous, std::ptr::null_mut()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(signal: c_int) -> bool {
        let mut current = signal_set(&[]);
        // SAFETY: reads this thread's mask into an initialised set.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut current) };
        // SAFETY: `current` is initialised.
        unsafe { libc::sigismember(&current, signal) == 1 }
    }

    #[test]
    fn a_signal_during_the_hold_is_reported_once_and_the_mask_restored() {
        let mut held = HeldSignals::hold();
        assert!(HELD.iter().all(|&signal| blocked(signal)));
        // SAFETY: SIGTERM is blocked in this thread, so raising it only makes it pending here.
        unsafe { libc::raise(libc::SIGTERM) };
        assert_eq!(held.release(), Some(libc::SIGTERM));
        assert!(!blocked(libc::SIGTERM) && !blocked(libc::SIGINT));
        assert_eq!(held.release(), None);
        let mut quiet = HeldSignals::hold();
        assert_eq!(quiet.release(), None);
        drop(HeldSignals::hold());
        assert!(!blocked(libc::SIGHUP), "dropping restores the mask");
        assert_eq!(name(libc::SIGHUP), "SIGHUP");
    }
}
