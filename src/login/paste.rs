//! `--no-browser`: reading the redirect URL the user pastes on stdin, while the
//! loopback listener keeps waiting. A thread polls stdin and stops within a
//! moment of the login ending, so it never lingers to steal input from
//! whatever runs next (an `exec` child shares our terminal). End of input
//! stops the reading, not the login.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::platform::process::{Readable, read_input, wait_readable};

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
    Pipe(std::io::PipeReader),
}

/// Sends each line read from `input` to `lines` until dropped or end of input.
pub fn read_lines(input: Input, lines: UnboundedSender<String>) -> StdinReader {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::spawn(move || match &input {
        // Read past std's buffered `Stdin`: what was polled is what is read.
        Input::Stdin => read_loop(&std::io::stdin(), &stopped, &lines),
        #[cfg(test)]
        Input::Pipe(pipe) => read_loop(pipe, &stopped, &lines),
    });
    StdinReader { stop }
}

fn read_loop(input: &impl Readable, stop: &AtomicBool, lines: &UnboundedSender<String>) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        match wait_readable(input, POLL_INTERVAL) {
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
            Ok(false) => continue,
            Ok(true) if stop.load(Ordering::SeqCst) => continue,
            Ok(true) => {}
        }
        let read = match read_input(input, &mut buf) {
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
            Ok(read) => read,
        };
        if read == 0 {
            // End of input: hand over a last unterminated line, then stop reading.
            if !pending.is_empty() {
                let _ = lines.send(String::from_utf8_lossy(&pending).into_owned());
            }
            return;
        }
        pending.extend_from_slice(&buf[..read]);
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

    use super::*;

    #[test]
    fn lines_arrive_and_end_of_input_ends_reading() {
        let (read, mut write) = std::io::pipe().unwrap();
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let reader = std::thread::spawn(move || read_loop(&read, &stopped, &sender));
        write.write_all(b"first\r\nsecond\nlast").unwrap();
        drop(write);
        reader.join().unwrap();
        let mut got = Vec::new();
        while let Ok(line) = receiver.try_recv() {
            got.push(line);
        }
        assert_eq!(got, ["first", "second", "last"]);
    }

    #[test]
    fn the_reader_stops_when_asked_without_input() {
        let (read, write) = std::io::pipe().unwrap();
        let (sender, _receiver) = tokio::sync::mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let reader = std::thread::spawn(move || read_loop(&read, &stopped, &sender));
        std::thread::sleep(Duration::from_millis(150));
        let asked = std::time::Instant::now();
        stop.store(true, Ordering::SeqCst);
        reader.join().unwrap();
        assert!(asked.elapsed() < Duration::from_secs(2));
        drop(write);
    }
}
