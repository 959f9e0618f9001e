//! OpenUnison's clock as its answers show it. Every answer carries a `Date`
//! header (whole seconds, over TLS); with when we sent the request and when
//! the answer came, it bounds how far the server's clock is from ours. Token
//! times (`exp`, `nbf`, `iat`) are the server's, so a laptop whose clock
//! drifted (WSL after sleep, a VM, dual boot) judges them against this estimate
//! instead of its own clock.

use std::time::{Duration, SystemTime};

/// A larger skew is not believed: a `Date` that far off is more likely a
/// broken proxy than a clock, and the local clock is the better guess then.
pub const MAX_BELIEVED_SKEW: Duration = Duration::from_secs(24 * 3600);

/// When an answer arrived by our clock, and how far the server's clock was
/// ahead of ours then (negative: behind). Stored with a session's id_token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Receipt {
    /// Our clock when the answer arrived, Unix milliseconds.
    pub at_ms: i64,
    /// Server clock minus ours, milliseconds; 0 when the `Date` header shows no skew.
    pub server_offset_ms: i64,
}

impl Receipt {
    /// An answer sent at `sent` and received at `received` (our clock) with
    /// this `Date` header. The server wrote the header at some moment between
    /// the two, and `Date` truncates that moment to the second, so its clock
    /// was ahead of ours by at least `Date - received` and at most
    /// `Date + 1 s - sent`. The estimate is the smallest skew in that range:
    /// none when the range holds zero, else its bound nearest zero (off by at
    /// most one second plus the round trip).
    pub fn estimate(sent: SystemTime, received: SystemTime, date: Option<&str>) -> Receipt {
        let at_ms = unix_millis(received);
        let server_offset_ms = date
            .and_then(|date| httpdate::parse_http_date(date.trim()).ok())
            .map(|date| {
                let date_ms = unix_millis(date);
                let least = date_ms - at_ms;
                let most = date_ms + 1000 - unix_millis(sent);
                if least > 0 {
                    least
                } else if most < 0 {
                    most
                } else {
                    0
                }
            })
            .filter(|offset| offset.unsigned_abs() <= MAX_BELIEVED_SKEW.as_millis() as u64)
            .unwrap_or(0);
        Receipt { at_ms, server_offset_ms }
    }

    /// Received just now, with no evidence of skew (for tests).
    #[cfg(test)]
    pub fn now() -> Receipt {
        Receipt { at_ms: unix_millis(SystemTime::now()), server_offset_ms: 0 }
    }

    /// The server's clock at our `local` time, Unix seconds.
    pub fn server_secs_at(&self, local: SystemTime) -> i64 {
        unix_millis(local).saturating_add(self.server_offset_ms).div_euclid(1000)
    }
}

/// Milliseconds since the epoch (negative before it, which only a broken clock gives).
pub fn unix_millis(time: SystemTime) -> i64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// 2026-12-06T10:00:00Z and its `Date` header.
    fn base() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_551_200)
    }

    fn date_at(time: SystemTime) -> String {
        httpdate::fmt_http_date(time)
    }

    fn estimate(sent: SystemTime, received: SystemTime, server_wrote: SystemTime) -> i64 {
        Receipt::estimate(sent, received, Some(&date_at(server_wrote))).server_offset_ms
    }

    #[test]
    fn the_same_clock_shows_no_skew_whatever_the_fraction_of_the_second() {
        for fraction_ms in [0, 1, 499, 999] {
            let sent = base() + Duration::from_millis(fraction_ms);
            let received = sent + Duration::from_millis(40);
            assert_eq!(estimate(sent, received, sent + Duration::from_millis(20)), 0, "{fraction_ms}");
        }
    }

    #[test]
    fn a_server_ahead_or_behind_is_seen_within_a_second_and_the_round_trip() {
        for skew_secs in [-600i64, -120, -3, 3, 120, 600] {
            for fraction_ms in [0u64, 300, 999] {
                let sent = base() + Duration::from_millis(fraction_ms);
                let received = sent + Duration::from_millis(80);
                let server = if skew_secs > 0 {
                    sent + Duration::from_millis(40) + SECOND * skew_secs as u32
                } else {
                    sent + Duration::from_millis(40) - SECOND * (-skew_secs) as u32
                };
                let found = estimate(sent, received, server);
                let error = (found - skew_secs * 1000).abs();
                assert!(error <= 1000 + 80, "skew {skew_secs} s at +{fraction_ms} ms: estimated {found} ms");
                // Never more skew than there is: the bound nearest zero.
                assert!(found.abs() <= skew_secs.abs() * 1000, "{skew_secs} {fraction_ms}: {found}");
                assert_eq!(found.signum(), skew_secs.signum());
            }
        }
    }

    #[test]
    fn unreadable_missing_or_absurd_dates_mean_no_skew() {
        let sent = base();
        let received = sent + Duration::from_millis(10);
        for date in [None, Some("yesterday"), Some(""), Some("Thu, 01 Jan 1970 00:00:00 GMT")] {
            let receipt = Receipt::estimate(sent, received, date);
            assert_eq!(receipt, Receipt { at_ms: unix_millis(received), server_offset_ms: 0 }, "{date:?}");
        }
        let two_days = date_at(sent + SECOND * 2 * 24 * 3600);
        assert_eq!(Receipt::estimate(sent, received, Some(&two_days)).server_offset_ms, 0);
        let twenty_hours = date_at(sent + SECOND * 20 * 3600);
        assert!(Receipt::estimate(sent, received, Some(&twenty_hours)).server_offset_ms > 0);
    }

    #[test]
    fn the_server_clock_follows_ours_with_the_offset() {
        let receipt = Receipt { at_ms: 0, server_offset_ms: -600_000 };
        assert_eq!(receipt.server_secs_at(base()), 1_796_551_200 - 600);
        assert_eq!(Receipt { server_offset_ms: 1_500, ..receipt }.server_secs_at(base()), 1_796_551_201);
    }
}
