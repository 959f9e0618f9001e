//! The Windows file seam's decisions, kept free of Windows calls so that
//! they are unit-tested on every platform: which access-control entries
//! leave a file or directory private (as the Unix modes 0600 and 0700 do),
//! whose ownership we trust, and which failed replaces are worth another try.

use std::io;
use std::time::Duration;

/// Who an access-control entry (or an owner) is, as far as privacy goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trustee {
    /// The user we run as.
    You,
    /// `CREATOR OWNER`: stands for whoever creates an entry below (us, in a
    /// directory of ours).
    CreatorOwner,
    /// `SYSTEM`, which can read everything anyway (as root on Unix).
    System,
    /// `BUILTIN\Administrators`, likewise; a user profile grants it full control.
    Administrators,
    /// `NT SERVICE\TrustedInstaller`, which owns the system's directories.
    TrustedInstaller,
    /// Anyone else, by SID string ("S-1-5-32-545" is `Users`).
    Other(String),
}

/// One entry of a discretionary access-control list that grants access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub trustee: Trustee,
    /// The access mask (`FILE_READ_DATA`, `GENERIC_ALL`, ...).
    pub mask: u32,
    /// The entry only passes down to what is created below; it grants
    /// nothing on the object itself.
    pub inherit_only: bool,
}

/// What must stay in our hands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarded {
    /// A file that holds secrets: nobody else may read or write it (Unix 0600).
    Secret,
    /// A directory of our secrets: nobody else may add, remove or change what
    /// is in it, now or in what it passes down to new files (Unix: no group or
    /// other write bit).
    PrivateDir,
    /// A directory above one of ours: nobody else may rename or remove its
    /// entries or take it over (Unix: owned by root or us, not writable by
    /// others unless sticky).
    Parent,
}

// Access rights (winnt.h), the ones that matter for privacy.
const FILE_READ_DATA: u32 = 0x1;
const FILE_WRITE_DATA: u32 = 0x2;
const FILE_APPEND_DATA: u32 = 0x4;
const FILE_READ_EA: u32 = 0x8;
const FILE_WRITE_EA: u32 = 0x10;
const FILE_DELETE_CHILD: u32 = 0x40;
const FILE_WRITE_ATTRIBUTES: u32 = 0x100;
const DELETE: u32 = 0x1_0000;
const WRITE_DAC: u32 = 0x4_0000;
const WRITE_OWNER: u32 = 0x8_0000;
const MAXIMUM_ALLOWED: u32 = 0x200_0000;
const GENERIC_ALL: u32 = 0x1000_0000;
const GENERIC_WRITE: u32 = 0x4000_0000;
const GENERIC_READ: u32 = 0x8000_0000;

/// Rights that hand the object over: change its list or its owner.
const TAKE_OVER: u32 = WRITE_DAC | WRITE_OWNER | GENERIC_ALL | MAXIMUM_ALLOWED;
/// Rights that change content or entries.
const WRITE: u32 = FILE_WRITE_DATA
    | FILE_APPEND_DATA
    | FILE_WRITE_EA
    | FILE_WRITE_ATTRIBUTES
    | FILE_DELETE_CHILD
    | DELETE
    | GENERIC_WRITE
    | TAKE_OVER;
/// Rights that read content.
const READ: u32 = FILE_READ_DATA | FILE_READ_EA | GENERIC_READ;
/// Rights that rename or remove entries, or the directory itself.
const REPLACE_ENTRIES: u32 = FILE_DELETE_CHILD | DELETE | TAKE_OVER;

impl Guarded {
    /// The rights nobody else may hold.
    fn forbidden(self) -> u32 {
        match self {
            Guarded::Secret => READ | WRITE,
            Guarded::PrivateDir => WRITE,
            Guarded::Parent => REPLACE_ENTRIES,
        }
    }
}

/// Whether a trustee may hold any right: we, and those who can read
/// everything anyway.
fn trusted(trustee: &Trustee) -> bool {
    matches!(trustee, Trustee::You | Trustee::CreatorOwner | Trustee::System | Trustee::Administrators)
}

/// The first entry that gives someone else a right `guarded` forbids, or
/// `None` when the list keeps the object private. A missing list (a null
/// DACL) grants everyone everything: pass it as one `Other("S-1-1-0")` grant
/// of `GENERIC_ALL`.
pub fn loose_grant(grants: &[Grant], guarded: Guarded) -> Option<&Grant> {
    grants.iter().find(|grant| {
        // An inherit-only entry shapes what is created below a directory,
        // which matters for ours but not for a parent's own entries.
        let applies = !grant.inherit_only || guarded != Guarded::Parent;
        applies && !trusted(&grant.trustee) && grant.mask & guarded.forbidden() != 0
    })
}

/// Whether we trust the owner of an object (an owner may always rewrite its
/// access list). Ours must be ours; an elevated administrator's new files
/// belong to `Administrators`. A parent may also belong to the system.
pub fn trusted_owner(owner: &Trustee, guarded: Guarded) -> bool {
    match owner {
        Trustee::You | Trustee::Administrators => true,
        Trustee::System | Trustee::TrustedInstaller => guarded == Guarded::Parent,
        Trustee::CreatorOwner | Trustee::Other(_) => false,
    }
}

/// How a trustee reads in a message.
pub fn describe(trustee: &Trustee) -> String {
    match trustee {
        Trustee::You => "you".to_string(),
        Trustee::CreatorOwner => "CREATOR OWNER".to_string(),
        Trustee::System => "SYSTEM".to_string(),
        Trustee::Administrators => "Administrators".to_string(),
        Trustee::TrustedInstaller => "TrustedInstaller".to_string(),
        Trustee::Other(sid) => format!("SID {sid}"),
    }
}

/// The security descriptor (in SDDL) of something private to the user with
/// SID `user_sid`: full control for the user, SYSTEM and Administrators, as
/// a user profile grants, and nothing inherited from above (`P`). A
/// directory passes the same to what is created in it (`OICI`).
pub fn private_sddl(user_sid: &str, directory: bool) -> String {
    let flags = if directory { "OICI" } else { "" };
    format!("D:P(A;{flags};FA;;;{user_sid})(A;{flags};FA;;;SY)(A;{flags};FA;;;BA)")
}

/// How long a replace keeps trying while another process holds the target
/// open, and the pause between tries: kubectl, an editor or a virus scanner
/// holds a kubeconfig for milliseconds, so two seconds is generous.
pub const REPLACE_RETRY_FOR: Duration = Duration::from_secs(2);
pub const REPLACE_RETRY_PAUSE: Duration = Duration::from_millis(20);

/// `ERROR_ACCESS_DENIED`, `ERROR_SHARING_VIOLATION`, `ERROR_LOCK_VIOLATION`:
/// what `MoveFileExW` reports while another process has the target open
/// without `FILE_SHARE_DELETE` (as Go programs do) or is deleting it.
const BUSY_TARGET_ERRORS: [i32; 3] = [5, 32, 33];

/// The pause before the next try of a replace that failed with `error`
/// after `waited` in pauses so far, or `None` to give up with the error.
pub fn replace_retry_pause(error: &io::Error, waited: Duration) -> Option<Duration> {
    let busy = error.raw_os_error().is_some_and(|code| BUSY_TARGET_ERRORS.contains(&code));
    (busy && waited + REPLACE_RETRY_PAUSE <= REPLACE_RETRY_FOR).then_some(REPLACE_RETRY_PAUSE)
}

/// Runs `attempt` until it succeeds, fails with an error not worth
/// retrying, or the retry time is spent; `attempt` gets back what the
/// failed try returned (the temporary file), and `pause` sleeps.
pub fn retry_replace<T>(
    mut state: T,
    mut attempt: impl FnMut(T) -> Result<(), (io::Error, T)>,
    mut pause: impl FnMut(Duration),
) -> io::Result<()> {
    let mut waited = Duration::ZERO;
    loop {
        match attempt(state) {
            Ok(()) => return Ok(()),
            Err((error, returned)) => match replace_retry_pause(&error, waited) {
                Some(wait) => {
                    pause(wait);
                    waited += wait;
                    state = returned;
                }
                None => return Err(error),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(trustee: Trustee, mask: u32) -> Grant {
        Grant { trustee, mask, inherit_only: false }
    }

    /// What a user profile passes down: SYSTEM, Administrators and the user, full control.
    fn profile() -> Vec<Grant> {
        vec![
            grant(Trustee::System, GENERIC_ALL),
            grant(Trustee::Administrators, 0x1f_01ff),
            grant(Trustee::You, 0x1f_01ff),
        ]
    }

    #[test]
    fn a_profile_like_list_is_private_for_every_use() {
        for guarded in [Guarded::Secret, Guarded::PrivateDir, Guarded::Parent] {
            assert_eq!(loose_grant(&profile(), guarded), None, "{guarded:?}");
        }
        let mut with_creator = profile();
        with_creator.push(Grant { trustee: Trustee::CreatorOwner, mask: GENERIC_ALL, inherit_only: true });
        assert_eq!(loose_grant(&with_creator, Guarded::PrivateDir), None);
    }

    #[test]
    fn others_reading_a_secret_is_refused_but_reading_a_directory_is_not() {
        let users = Trustee::Other("S-1-5-32-545".into());
        // Read & execute (0x1200a9), as `Users` get on C:\Users.
        let mut grants = profile();
        grants.push(grant(users.clone(), 0x12_00a9));
        assert_eq!(loose_grant(&grants, Guarded::Secret).map(|grant| &grant.trustee), Some(&users));
        assert_eq!(loose_grant(&grants, Guarded::PrivateDir), None);
        assert_eq!(loose_grant(&grants, Guarded::Parent), None);
        // Reading attributes and the list alone reveals no content.
        let mut attributes_only = profile();
        attributes_only.push(grant(users, 0x2_0080));
        assert_eq!(loose_grant(&attributes_only, Guarded::Secret), None);
    }

    #[test]
    fn others_writing_our_directory_is_refused_and_a_parent_only_when_they_may_remove_entries() {
        let everyone = Trustee::Other("S-1-1-0".into());
        let mut add_only = profile();
        add_only.push(grant(everyone.clone(), FILE_WRITE_DATA | FILE_APPEND_DATA));
        assert!(loose_grant(&add_only, Guarded::PrivateDir).is_some());
        // Adding entries to a parent (C:\ grants Authenticated Users that) replaces none of ours.
        assert_eq!(loose_grant(&add_only, Guarded::Parent), None);
        for right in [FILE_DELETE_CHILD, DELETE, WRITE_DAC, WRITE_OWNER, GENERIC_ALL] {
            let mut grants = profile();
            grants.push(grant(everyone.clone(), right));
            assert!(loose_grant(&grants, Guarded::Parent).is_some(), "{right:#x}");
            assert!(loose_grant(&grants, Guarded::Secret).is_some(), "{right:#x}");
        }
    }

    #[test]
    fn inherit_only_entries_count_for_what_our_directory_passes_down_only() {
        // C:\ passes Modify down to Authenticated Users' new folders.
        let mut grants = profile();
        grants.push(Grant { trustee: Trustee::Other("S-1-5-11".into()), mask: 0x1_01bf, inherit_only: true });
        assert_eq!(loose_grant(&grants, Guarded::Parent), None);
        assert!(loose_grant(&grants, Guarded::PrivateDir).is_some());
        assert!(loose_grant(&grants, Guarded::Secret).is_some());
    }

    #[test]
    fn owners_are_trusted_as_root_and_the_user_are_on_unix() {
        let other = Trustee::Other("S-1-5-21-1-2-3-1001".into());
        assert!(trusted_owner(&Trustee::You, Guarded::PrivateDir));
        assert!(trusted_owner(&Trustee::Administrators, Guarded::Secret));
        assert!(!trusted_owner(&Trustee::System, Guarded::PrivateDir));
        assert!(trusted_owner(&Trustee::System, Guarded::Parent));
        assert!(trusted_owner(&Trustee::TrustedInstaller, Guarded::Parent));
        for guarded in [Guarded::Secret, Guarded::PrivateDir, Guarded::Parent] {
            assert!(!trusted_owner(&other, guarded));
        }
        assert_eq!(describe(&other), "SID S-1-5-21-1-2-3-1001");
        assert_eq!(describe(&Trustee::Administrators), "Administrators");
    }

    #[test]
    fn the_private_descriptor_names_the_user_system_and_administrators_only() {
        let sid = "S-1-5-21-1-2-3-1001";
        assert_eq!(private_sddl(sid, true), format!("D:P(A;OICI;FA;;;{sid})(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"));
        assert_eq!(private_sddl(sid, false), format!("D:P(A;;FA;;;{sid})(A;;FA;;;SY)(A;;FA;;;BA)"));
    }

    /// Replays a replace whose tries fail with `errors` (then succeed), and
    /// returns the outcome, the tries made and the time spent in pauses.
    fn replay(errors: &[Option<i32>]) -> (io::Result<()>, usize, Duration) {
        let mut tries = 0;
        let mut slept = Duration::ZERO;
        let outcome = retry_replace(
            (),
            |()| {
                tries += 1;
                match errors.get(tries - 1).copied().flatten() {
                    Some(code) => Err((io::Error::from_raw_os_error(code), ())),
                    None => Ok(()),
                }
            },
            |wait| slept += wait,
        );
        (outcome, tries, slept)
    }

    #[test]
    fn a_replace_is_retried_while_the_target_is_busy_and_only_then() {
        // Sharing violation, lock violation, access denied, then it works.
        let (outcome, tries, slept) = replay(&[Some(32), Some(33), Some(5), None]);
        assert!(outcome.is_ok());
        assert_eq!((tries, slept), (4, REPLACE_RETRY_PAUSE * 3));
        // Path not found (3) or disk full (112) is final at once.
        for code in [3, 112] {
            let (outcome, tries, slept) = replay(&[Some(code), None]);
            assert_eq!(outcome.unwrap_err().raw_os_error(), Some(code));
            assert_eq!((tries, slept), (1, Duration::ZERO));
        }
        // An error without an OS code is not a busy target either.
        assert_eq!(replace_retry_pause(&io::Error::other("x"), Duration::ZERO), None);
    }

    #[test]
    fn a_target_that_stays_busy_is_given_up_after_the_retry_time() {
        let always_busy = vec![Some(32); 1000];
        let (outcome, tries, slept) = replay(&always_busy);
        assert_eq!(outcome.unwrap_err().raw_os_error(), Some(32));
        let pauses = (REPLACE_RETRY_FOR.as_millis() / REPLACE_RETRY_PAUSE.as_millis()) as usize;
        assert_eq!((tries, slept), (pauses + 1, REPLACE_RETRY_PAUSE * pauses as u32));
    }
}
