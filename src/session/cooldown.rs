//! The cool-down marker: after a browser login for a session fails or is
//! abandoned, `token` fails fast for [`COOL_DOWN`] instead of opening tab after
//! tab for every background caller (IDEs and Lens poll all day). An explicit
//! `kubectl oulogin` ends it.

use std::time::{Duration, SystemTime};

use crate::error::FileError;
use crate::files;

use super::expiry::unix_millis;
use super::store::{SessionLocation, remove_if_present};

/// How long after a failed or abandoned browser login `token` refuses to open
/// another one. Long enough that a burst of background callers sees one
/// browser tab, short enough that a user who comes back soon is not locked out.
pub const COOL_DOWN: Duration = Duration::from_secs(60);

/// Marks the session as cooling down from now on.
pub fn start(location: &SessionLocation) -> Result<(), FileError> {
    start_at(location, SystemTime::now())
}

pub(crate) fn start_at(location: &SessionLocation, now: SystemTime) -> Result<(), FileError> {
    files::ensure_private_dir(location.dir())?;
    let text = format!("{}\n", unix_millis(now));
    files::write_atomic(&location.cooldown_path(), text.as_bytes(), 0o600)
}

/// Ends a cool-down (a login succeeded).
pub fn clear(location: &SessionLocation) -> Result<(), FileError> {
    remove_if_present(&location.cooldown_path()).map(|_| ())
}

/// How much of the cool-down is left at `now`, if any. A marker that cannot be
/// read or parsed counts as written when it was last modified.
pub fn remaining(location: &SessionLocation, now: SystemTime) -> Option<Duration> {
    let path = location.cooldown_path();
    let started_ms = match std::fs::read_to_string(&path) {
        Ok(text) => match text.trim().parse::<i64>() {
            Ok(millis) => millis,
            Err(_) => unix_millis(std::fs::metadata(&path).and_then(|meta| meta.modified()).ok()?),
        },
        Err(_) => return None,
    };
    let ends_ms = started_ms.saturating_add(COOL_DOWN.as_millis() as i64);
    let left_ms = ends_ms - unix_millis(now);
    // A marker from the future (clock stepped back) still ends within one cool-down.
    (left_ms > 0).then(|| Duration::from_millis(left_ms.min(COOL_DOWN.as_millis() as i64) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::store::tests::private_dir;

    #[test]
    fn a_cool_down_lasts_sixty_seconds_and_clears() {
        let (_temp, dir) = private_dir();
        let location = SessionLocation::named(&dir, "h").unwrap();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(remaining(&location, start), None);
        start_at(&location, start).unwrap();
        assert_eq!(remaining(&location, start + Duration::from_secs(1)), Some(Duration::from_secs(59)));
        assert!(remaining(&location, start + Duration::from_millis(59_999)).is_some());
        assert_eq!(remaining(&location, start + COOL_DOWN), None);
        assert_eq!(remaining(&location, start - Duration::from_secs(3600)), Some(COOL_DOWN));
        clear(&location).unwrap();
        assert_eq!(remaining(&location, start), None);
        clear(&location).unwrap();
    }

    #[test]
    fn an_unreadable_marker_counts_from_its_modification_time() {
        let (_temp, dir) = private_dir();
        let location = SessionLocation::named(&dir, "h").unwrap();
        std::fs::write(location.cooldown_path(), b"garbage").unwrap();
        assert!(remaining(&location, SystemTime::now()).is_some());
        assert_eq!(remaining(&location, SystemTime::now() + COOL_DOWN + Duration::from_secs(1)), None);
    }
}
