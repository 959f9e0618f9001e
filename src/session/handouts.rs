//! The 401 heuristic's memory: which parent process was handed which token,
//! and when. client-go runs the plugin again after a 401 without saying why
//! (kubernetes-client-notes.md §2.6), and otherwise runs it once per
//! credential lifetime per process; so the same parent asking again for a
//! token it already got, while that token is still fresh, means the API
//! server rejected it. Different parents sharing a token is normal.
//!
//! The record is a hint, not state: written atomically under the session lock
//! but not synced, and a file that cannot be read counts as empty.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Records kept at most (oldest dropped first); bounds the file whatever the callers do.
const MAX_RECORDS: usize = 256;

/// One token handed to one parent process.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Handout {
    /// The parent (client) process id.
    pub parent: u32,
    /// [`fingerprint`] of the token, never the token.
    pub token: String,
    /// When it was handed out, microseconds since the epoch.
    pub at_us: i64,
    /// The token's expiry point, seconds since the epoch; the record is useless after it.
    pub until: i64,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Handouts {
    records: Vec<Handout>,
}

impl Handouts {
    pub fn load(path: &Path) -> Handouts {
        let records =
            std::fs::read(path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default();
        Handouts { records }
    }

    /// Drops records whose token is past its expiry point.
    pub fn prune(&mut self, now_us: i64) {
        self.records.retain(|record| record.until.saturating_mul(1_000_000) > now_us);
    }

    /// Whether `parent` was handed the token `fingerprint` before this process
    /// started: only then can this call be client-go's re-run after a 401.
    /// (A sibling that started earlier and merely waited on the lock cannot be.)
    pub fn suggests_rejection(&self, parent: u32, fingerprint: &str, started_us: i64) -> bool {
        self.records
            .iter()
            .any(|record| record.parent == parent && record.token == fingerprint && record.at_us < started_us)
    }

    /// Remembers a handout; a parent that already has this token keeps its first record.
    pub fn record(&mut self, handout: Handout) {
        if self.records.iter().any(|record| record.parent == handout.parent && record.token == handout.token) {
            return;
        }
        self.records.push(handout);
        if self.records.len() > MAX_RECORDS {
            let excess = self.records.len() - MAX_RECORDS;
            self.records.drain(..excess);
        }
    }

    /// Replaces the file atomically (0600), without syncing: losing it to a
    /// crash costs at most one missed hint.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut temp = tempfile::Builder::new()
            .prefix(".oulogin-")
            .suffix(".tmp")
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)?;
        temp.write_all(&serde_json::to_vec(&self.records).expect("records always serialise"))?;
        temp.persist(path).map_err(|err| err.error)?;
        Ok(())
    }
}

/// A short SHA-256 fingerprint of a token: enough to tell tokens apart, useless
/// for recovering one.
pub fn fingerprint(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref()[..8].iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handout(parent: u32, token: &str, at_us: i64) -> Handout {
        Handout { parent, token: fingerprint(token), at_us, until: 100 }
    }

    #[test]
    fn the_same_parent_asking_again_suggests_a_rejection() {
        let mut handouts = Handouts::default();
        handouts.record(handout(10, "tok", 1_000));
        assert!(handouts.suggests_rejection(10, &fingerprint("tok"), 2_000));
    }

    #[test]
    fn other_parents_other_tokens_and_earlier_siblings_do_not() {
        let mut handouts = Handouts::default();
        handouts.record(handout(10, "tok", 1_000));
        assert!(!handouts.suggests_rejection(11, &fingerprint("tok"), 2_000), "another parent");
        assert!(!handouts.suggests_rejection(10, &fingerprint("new"), 2_000), "another token");
        assert!(!handouts.suggests_rejection(10, &fingerprint("tok"), 500), "started before the handout");
    }

    #[test]
    fn records_expire_with_their_token_and_are_bounded() {
        let mut handouts = Handouts::default();
        handouts.record(handout(10, "tok", 1_000));
        handouts.record(handout(10, "tok", 5_000));
        assert_eq!(handouts.records.len(), 1, "one record per parent and token");
        handouts.prune(99_999_999);
        assert!(handouts.suggests_rejection(10, &fingerprint("tok"), 2_000));
        handouts.prune(100_000_000);
        assert!(!handouts.suggests_rejection(10, &fingerprint("tok"), 2_000));
        for parent in 0..(MAX_RECORDS as u32 + 10) {
            handouts.record(handout(parent, "tok", 1));
        }
        assert_eq!(handouts.records.len(), MAX_RECORDS);
        assert_eq!(handouts.records.last().unwrap().parent, MAX_RECORDS as u32 + 9);
    }

    #[test]
    fn the_file_round_trips_and_garbage_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.handouts");
        assert_eq!(Handouts::load(&path), Handouts::default());
        let mut handouts = Handouts::default();
        handouts.record(handout(10, "tok", 1_000));
        handouts.save(&path).unwrap();
        assert_eq!(Handouts::load(&path), handouts);
        assert!(!std::fs::read_to_string(&path).unwrap().contains("tok\""));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::write(&path, b"{garbage").unwrap();
        assert_eq!(Handouts::load(&path), Handouts::default());
    }

    #[test]
    fn fingerprints_are_short_stable_and_distinct() {
        assert_eq!(fingerprint("a"), fingerprint("a"));
        assert_ne!(fingerprint("a"), fingerprint("b"));
        assert_eq!(fingerprint("a").len(), 16);
    }
}
