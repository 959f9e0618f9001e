//! The 401 heuristic's memory: which parent process was handed which token,
//! and when. client-go runs the plugin again after a 401 without saying why
//! (docs/kubectl.md, section 2), and otherwise runs it once per
//! credential lifetime per process; so the same parent asking again for a
//! token it already got, while that token is still fresh, suggests that the
//! API server rejected it. Different parents sharing a token is normal. Other
//! clients ask again without a 401 (the Python client runs the plugin before
//! every request), so `token` checks a suggested rejection with the API server
//! first; this file also remembers for a moment that the API server took a
//! token, and which parent had a refresh forced, for sessions that cannot ask.
//!
//! The record is a hint, not state: one line per record,
//! `PARENT FINGERPRINT AT_US UNTIL [forced|verified]` (decimal, hex, decimal,
//! decimal, then a plain handout has no fifth word), written under the session
//! lock, and a line or file that cannot be read counts as absent. Being on
//! the hot path of every `token` call, a new record is appended as one line
//! (not synced); the file is rewritten only when records expired or it
//! reached its bound, about once per token lifetime, by the crate's one
//! atomic write (`files::write_atomic`). (An append costs one `write`; a
//! rewrite costs a sync and a rename, about a millisecond.) The lines are plain numbers, not JSON, because every call
//! reads them all: with a few hundred records, serde_json made up half the
//! instructions of a cached `token` call (BENCHMARKS.md).

use std::io::Write;
use std::path::Path;

use crate::error::FileError;
use crate::files;
use crate::platform::files as platform;

/// Records kept at most; bounds the file whatever the callers do.
const MAX_RECORDS: usize = 256;
/// Past the bound, the oldest are dropped down to this many, so that a flood of
/// callers costs a rewrite every 64 handouts, not every one.
const KEPT_AFTER_COMPACTION: usize = MAX_RECORDS * 3 / 4;

/// How long the API server's acceptance of a token is taken as still true: a
/// client that runs the plugin before every request costs one check per this
/// long, and a real 401 within it (rare for a token the API server just took)
/// is answered with the same token once more.
pub const VERIFIED_FOR_US: i64 = 5_000_000;

/// What a record says about its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// It was handed to the parent.
    Handed,
    /// It was handed to the parent by a refresh that the parent's suspected
    /// 401 forced.
    Forced,
    /// The API server took it (checked by a `token` run of the parent).
    Verified,
}

/// One record: a token handed to one parent process, or taken by the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The parent (client) process id.
    pub parent: u32,
    /// [`fingerprint`] of the token, never the token.
    pub token: Fingerprint,
    /// When it was handed out (or verified), microseconds since the epoch.
    pub at_us: i64,
    /// The token's expiry point, seconds since the epoch; the record is useless after it.
    pub until: i64,
    pub kind: Kind,
}

impl Record {
    /// One `PARENT FINGERPRINT AT_US UNTIL [KIND]` line per record.
    fn lines_of(records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        for Record { parent, token, at_us, until, kind } in records {
            let kind = match kind {
                Kind::Handed => "",
                Kind::Forced => " forced",
                Kind::Verified => " verified",
            };
            writeln!(out, "{parent} {:016x} {at_us} {until}{kind}", token.0).expect("writing to a Vec cannot fail");
        }
        out
    }

    /// The record on `line`, if it is one (four fields, or five with a known kind).
    fn parse_line(line: &str) -> Option<Record> {
        // (Splitting bytes, not a `char` pattern: a third of the cost.)
        let mut fields = line.split_ascii_whitespace();
        let parent = fields.next()?.parse().ok()?;
        let token = Fingerprint(u64::from_str_radix(fields.next()?, 16).ok()?);
        let at_us = fields.next()?.parse().ok()?;
        let until = fields.next()?.parse().ok()?;
        let kind = match fields.next() {
            None => Kind::Handed,
            Some("forced") => Kind::Forced,
            Some("verified") => Kind::Verified,
            Some(_) => return None,
        };
        fields.next().is_none().then_some(Record { parent, token, at_us, until, kind })
    }

    fn is_handout(&self) -> bool {
        matches!(self.kind, Kind::Handed | Kind::Forced)
    }
}

/// The first 64 bits of a token's SHA-256: enough to tell tokens apart,
/// useless for recovering one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(u64);

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Handouts {
    records: Vec<Record>,
    /// Records added since loading, not yet on disk.
    unsaved: usize,
    /// The file holds lines that are no longer wanted (expired, dropped or unreadable).
    stale_on_disk: bool,
}

impl Handouts {
    pub fn load(path: &Path) -> Handouts {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut handouts = Handouts::default();
        for line in text.split('\n').filter(|line| !line.is_empty()) {
            match Record::parse_line(line) {
                Some(record) => handouts.records.push(record),
                None => handouts.stale_on_disk = true,
            }
        }
        if handouts.records.len() > MAX_RECORDS {
            let excess = handouts.records.len() - MAX_RECORDS;
            handouts.records.drain(..excess);
            handouts.stale_on_disk = true;
        }
        handouts
    }

    /// Drops records whose token is past its expiry point.
    pub fn prune(&mut self, now_us: i64) {
        let before = self.records.len();
        self.records.retain(|record| record.until.saturating_mul(1_000_000) > now_us);
        if self.records.len() != before {
            self.stale_on_disk = true;
        }
    }

    /// Whether `parent` was handed the token `fingerprint` before this process
    /// started: only then can this call be client-go's re-run after a 401.
    /// (A sibling that started earlier and merely waited on the lock cannot be.)
    pub fn suggests_rejection(&self, parent: u32, fingerprint: Fingerprint, started_us: i64) -> bool {
        self.records.iter().any(|record| {
            record.is_handout() && record.parent == parent && record.token == fingerprint && record.at_us < started_us
        })
    }

    /// Whether the API server took the token `fingerprint` less than
    /// [`VERIFIED_FOR_US`] before `now_us`.
    pub fn verified_recently(&self, fingerprint: Fingerprint, now_us: i64) -> bool {
        self.records.iter().any(|record| {
            record.kind == Kind::Verified
                && record.token == fingerprint
                && (0..VERIFIED_FOR_US).contains(&now_us.saturating_sub(record.at_us))
        })
    }

    /// Whether `parent` holds a token that a refresh forced by its suspected
    /// 401 brought, and that has not expired: then it had its forced refresh
    /// for this token lifetime.
    pub fn had_forced_refresh(&self, parent: u32) -> bool {
        self.records.iter().any(|record| record.kind == Kind::Forced && record.parent == parent)
    }

    /// Remembers a record; a parent that already has this token keeps its
    /// first handout record.
    pub fn record(&mut self, new: Record) {
        if new.is_handout()
            && self
                .records
                .iter()
                .any(|record| record.is_handout() && record.parent == new.parent && record.token == new.token)
        {
            return;
        }
        self.records.push(new);
        self.unsaved += 1;
        if self.records.len() > MAX_RECORDS {
            let excess = self.records.len() - KEPT_AFTER_COMPACTION;
            self.records.drain(..excess);
            self.unsaved = self.unsaved.min(self.records.len());
            self.stale_on_disk = true;
        }
    }

    /// Writes what changed: nothing, new lines appended, or (when the file
    /// holds lines no longer wanted) the whole file replaced atomically, 0600.
    pub fn save(&mut self, path: &Path) -> Result<(), FileError> {
        if self.stale_on_disk {
            files::write_atomic(path, &Record::lines_of(&self.records), 0o600)?;
        } else if self.unsaved > 0 {
            let lines = Record::lines_of(&self.records[self.records.len() - self.unsaved..]);
            let mut options = std::fs::OpenOptions::new();
            platform::create_mode(options.append(true).create(true), 0o600)
                .open(path)
                // One write: a crash leaves at most a torn last line, which reads as absent.
                .and_then(|mut file| file.write_all(&lines))
                .map_err(|err| FileError::new("append to", path, err))?;
        }
        self.unsaved = 0;
        self.stale_on_disk = false;
        Ok(())
    }
}

/// The [`Fingerprint`] of `token`.
pub fn fingerprint(token: &str) -> Fingerprint {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut first = [0; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    Fingerprint(u64::from_be_bytes(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handout(parent: u32, token: &str, at_us: i64) -> Record {
        Record { parent, token: fingerprint(token), at_us, until: 100, kind: Kind::Handed }
    }

    #[test]
    fn the_same_parent_asking_again_suggests_a_rejection() {
        let mut handouts = Handouts::default();
        handouts.record(handout(10, "tok", 1_000));
        assert!(handouts.suggests_rejection(10, fingerprint("tok"), 2_000));
    }

    #[test]
    fn other_parents_other_tokens_and_earlier_siblings_do_not() {
        let mut handouts = Handouts::default();
        handouts.record(handout(10, "tok", 1_000));
        assert!(!handouts.suggests_rejection(11, fingerprint("tok"), 2_000), "another parent");
        assert!(!handouts.suggests_rejection(10, fingerprint("new"), 2_000), "another token");
        assert!(!handouts.suggests_rejection(10, fingerprint("tok"), 500), "started before the handout");
    }

    #[test]
    fn a_verification_is_remembered_for_a_moment_and_suggests_nothing() {
        let mut handouts = Handouts::default();
        handouts.record(Record { kind: Kind::Verified, ..handout(10, "tok", 1_000_000) });
        assert!(!handouts.suggests_rejection(10, fingerprint("tok"), 2_000_000), "a verification is no handout");
        assert!(handouts.verified_recently(fingerprint("tok"), 1_000_000));
        assert!(handouts.verified_recently(fingerprint("tok"), 1_000_000 + VERIFIED_FOR_US - 1));
        assert!(!handouts.verified_recently(fingerprint("tok"), 1_000_000 + VERIFIED_FOR_US), "too old");
        assert!(!handouts.verified_recently(fingerprint("tok"), 999_999), "from the future (a clock set back)");
        assert!(!handouts.verified_recently(fingerprint("other"), 1_000_000));
        // Every check is kept (the newest counts), handouts only once per parent and token.
        handouts.record(Record { kind: Kind::Verified, ..handout(10, "tok", 7_000_000) });
        assert!(handouts.verified_recently(fingerprint("tok"), 7_000_000 + VERIFIED_FOR_US - 1));
        handouts.record(handout(10, "tok", 8_000_000));
        handouts.record(handout(10, "tok", 9_000_000));
        assert_eq!(handouts.records.len(), 3);
    }

    #[test]
    fn a_forced_refresh_is_remembered_per_parent_until_its_token_expires() {
        let mut handouts = Handouts::default();
        handouts.record(handout(10, "old", 1_000));
        assert!(!handouts.had_forced_refresh(10));
        handouts.record(Record { kind: Kind::Forced, until: 200, ..handout(10, "new", 2_000) });
        assert!(handouts.had_forced_refresh(10));
        assert!(!handouts.had_forced_refresh(11));
        assert!(handouts.suggests_rejection(10, fingerprint("new"), 3_000), "a forced handout is a handout");
        handouts.prune(200_000_000);
        assert!(!handouts.had_forced_refresh(10));
    }

    #[test]
    fn records_expire_with_their_token_and_are_bounded() {
        let mut handouts = Handouts::default();
        handouts.record(handout(10, "tok", 1_000));
        handouts.record(handout(10, "tok", 5_000));
        assert_eq!(handouts.records.len(), 1, "one record per parent and token");
        handouts.prune(99_999_999);
        assert!(handouts.suggests_rejection(10, fingerprint("tok"), 2_000));
        handouts.prune(100_000_000);
        assert!(!handouts.suggests_rejection(10, fingerprint("tok"), 2_000));
        for parent in 0..(MAX_RECORDS as u32 + 10) {
            handouts.record(handout(parent, "tok", 1));
        }
        assert_eq!(handouts.records.len(), KEPT_AFTER_COMPACTION + 9);
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
        assert_eq!(lines(&path), [format!("10 {:016x} 1000 100", fingerprint("tok").0)]);
        #[cfg(unix)]
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions()) & 0o777,
            0o600
        );
        let mut kinds = Handouts::default();
        kinds.record(Record { kind: Kind::Forced, ..handout(11, "tok", 2_000) });
        kinds.record(Record { kind: Kind::Verified, ..handout(12, "tok", 3_000) });
        kinds.save(&path).unwrap();
        let tok = fingerprint("tok").0;
        assert_eq!(
            lines(&path),
            [
                format!("10 {tok:016x} 1000 100"),
                format!("11 {tok:016x} 2000 100 forced"),
                format!("12 {tok:016x} 3000 100 verified")
            ]
        );
        assert_eq!(
            Handouts::load(&path).records,
            [handout(10, "tok", 1_000), kinds.records[0].clone(), kinds.records[1].clone()]
        );
        for garbage in [
            "{garbage",
            "10 zz 1000 100",
            "10 ab 1000",
            "10 ab 1000 100 7",
            "-1 ab 1000 100",
            "10 ab 1000 100 forced x",
        ] {
            std::fs::write(&path, garbage).unwrap();
            assert!(Handouts::load(&path).records.is_empty(), "{garbage:?}");
        }
        // What earlier builds wrote (a JSON array, then JSON lines) is garbage
        // too: a hint lost once, and the file rewritten.
        std::fs::write(&path, br#"[{"parent":10,"token":"ab","at_us":1,"until":100}]"#).unwrap();
        assert!(Handouts::load(&path).records.is_empty());
        std::fs::write(&path, b"{\"parent\":10,\"token\":\"ab\",\"at_us\":1,\"until\":100}\n").unwrap();
        let mut handouts = Handouts::load(&path);
        assert!(handouts.records.is_empty());
        handouts.save(&path).unwrap();
        assert!(lines(&path).is_empty(), "rewritten without the unreadable line");
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path).unwrap().lines().map(str::to_string).collect()
    }

    // Whether the file was replaced shows in its inode.
    #[cfg(unix)]
    #[test]
    fn new_handouts_are_appended_and_expired_ones_rewritten_away() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.handouts");
        for parent in [10, 11] {
            let mut handouts = Handouts::load(&path);
            handouts.record(handout(parent, "tok", 1_000));
            handouts.save(&path).unwrap();
        }
        let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
        assert_eq!(lines(&path).len(), 2);
        // Nothing new: nothing written.
        let mut handouts = Handouts::load(&path);
        handouts.record(handout(10, "tok", 2_000));
        handouts.save(&path).unwrap();
        assert_eq!(lines(&path).len(), 2);
        assert_eq!(std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap()), inode, "appended in place");
        // The token expired: its records go, and the file is replaced.
        let mut handouts = Handouts::load(&path);
        handouts.prune(100_000_000);
        handouts.record(Record { until: 200, ..handout(12, "new", 3_000) });
        handouts.save(&path).unwrap();
        let after = Handouts::load(&path);
        assert_eq!(after.records.len(), 1);
        assert!(after.suggests_rejection(12, fingerprint("new"), 4_000));
        assert_eq!(lines(&path).len(), 1);
    }

    #[test]
    fn a_torn_last_line_reads_as_absent_and_is_cleaned_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.handouts");
        let mut handouts = Handouts::default();
        handouts.record(handout(10, "tok", 1_000));
        handouts.save(&path).unwrap();
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"11 00ab").unwrap();
        // The writer died mid-line: its handle is gone (Windows replaces no file held open).
        drop(file);
        let mut handouts = Handouts::load(&path);
        assert_eq!(handouts.records.len(), 1);
        handouts.record(handout(12, "tok", 2_000));
        handouts.save(&path).unwrap();
        assert_eq!(lines(&path).len(), 2, "{:?}", lines(&path));
        assert_eq!(Handouts::load(&path).records.len(), 2);
    }

    #[test]
    fn the_file_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.handouts");
        for parent in 0..(MAX_RECORDS as u32 + 10) {
            let mut handouts = Handouts::load(&path);
            handouts.record(handout(parent, "tok", 1));
            handouts.save(&path).unwrap();
        }
        assert_eq!(lines(&path).len(), KEPT_AFTER_COMPACTION + 9);
        assert_eq!(Handouts::load(&path).records.last().unwrap().parent, MAX_RECORDS as u32 + 9);
    }

    #[test]
    fn fingerprints_are_stable_distinct_and_the_head_of_the_sha256() {
        assert_eq!(fingerprint("a"), fingerprint("a"));
        assert_ne!(fingerprint("a"), fingerprint("b"));
        // sha256("a") = ca978112ca1bbdca…
        assert_eq!(fingerprint("a"), Fingerprint(0xca97_8112_ca1b_bdca));
    }
}
