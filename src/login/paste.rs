//! `--no-browser`: reading the redirect URL the user pastes on stdin, while the
//! loopback listener keeps waiting. A thread polls stdin and stops within a
//! moment of the login ending, so it never lingers to steal input from
//! whatever runs next (an `exec` child shares our terminal). End of input
//! stops the reading, not the login.

use std::os::fd::AsRawFd;
#[cfg(test)]
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

/// How often the reader checks whether it should stop.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Longer lines are cut (a redirect URL is far shorter).
const MAX_LINE: usize = 16 * 1024;

/// Stops the reader when dropped.
pub struct StdinReader {
    stop: Arc<AtomicBool>,
}

impl Drop for StdinReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Where pasted lines come from.
pub enum Input {
    /// Our stdin (never closed by us).
    Stdin,
    /// A pipe of a test's, closed when the reader ends.
    #[cfg(test)]
    Fd(OwnedFd),
}

/// Sends each line read from `input` to `lines` until dropped or end of input.
pub fn read_lines(input: Input, lines: UnboundedSender<String>) -> StdinReader {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::spawn(move || {
        let fd = match &input {
            Input::Stdin => std::io::stdin().as_raw_fd(),
            #[cfg(test)]
            Input::Fd(owned) => owned.as_raw_fd(),
        };
        // `input` (and a test's pipe with it) is closed only after the loop.
        read_loop(fd, &stopped, &lines);
    });
    StdinReader { stop }
}

fn read_loop(fd: i32, stop: &AtomicBool, lines: &UnboundedSender<String>) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let mut poll_fd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut poll_fd, 1, POLL_INTERVAL.as_millis() as libc::c_int) };
        if ready < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if ready == 0 || stop.load(Ordering::SeqCst) {
            continue;
        }
        // SAFETY: reading into a buffer we own, at most its length.
        let read = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if read < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if read == 0 {
            // End of input: hand over a last unterminated line, then stop reading.
            if !pending.is_empty() {
                let _ = lines.send(String::from_utf8_lossy(&pending).into_owned());
            }
            return;
        }
        pending.extend_from_slice(&buf[..read as usize]);
        while let Some(at) = pending.iter().position(|&byte| byte == b'\n') {
            let line: Vec<u8> = pending.drain(..=at).collect();
            if lines.send(String::from_utf8_lossy(&line).trim_end().to_string()).is_err() {
                return;
            }
        }
        if pending.len() > MAX_LINE {
            pending.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::FromRawFd;

    use super::*;

    fn pipe() -> (i32, std::fs::File) {
        let mut fds = [0; 2];
        // SAFETY: pipe(2) fills two descriptors we then own.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the write end is ours alone.
        (fds[0], unsafe { std::fs::File::from_raw_fd(fds[1]) })
    }

    #[test]
    fn lines_arrive_and_end_of_input_ends_reading() {
        let (read_fd, mut write) = pipe();
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let reader = std::thread::spawn(move || read_loop(read_fd, &stopped, &sender));
        write.write_all(b"first\r\nsecond\nlast").unwrap();
        drop(write);
        reader.join().unwrap();
        let mut got = Vec::new();
        while let Ok(line) = receiver.try_recv() {
            got.push(line);
        }
        assert_eq!(got, ["first", "second", "last"]);
        // SAFETY: closing the read end we own.
        unsafe { libc::close(read_fd) };
    }

    #[test]
    fn the_reader_stops_when_asked_without_input() {
        let (read_fd, write) = pipe();
        let (sender, _receiver) = tokio::sync::mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let reader = std::thread::spawn(move || read_loop(read_fd, &stopped, &sender));
        std::thread::sleep(Duration::from_millis(150));
        let asked = std::time::Instant::now();
        stop.store(true, Ordering::SeqCst);
        reader.join().unwrap();
        assert!(asked.elapsed() < Duration::from_secs(2));
        drop(write);
        // SAFETY: closing the read end we own.
        unsafe { libc::close(read_fd) };
    }
}
