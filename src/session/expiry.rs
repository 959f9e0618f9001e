//! Token freshness: the refresh margin, the point after which a token counts
//! as stale, and the `expirationTimestamp` handed to client-go. One rule for
//! both, so client-go never holds a credential we would already refresh.
//!
//! A token's times are the server's clock; ours may be minutes off. A token
//! received with a [`Receipt`] lives its own lifetime (`exp - iat`) from when
//! it arrived, and no longer than `exp` by the server's clock as its answer
//! showed it; both are then turned into our clock, which is what client-go
//! compares `expirationTimestamp` with.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::openunison::clock::Receipt;

/// The largest refresh margin (OpenUnison's one-minute tokens get exactly this).
pub const MAX_MARGIN_MS: i64 = 10_000;

/// `exp` and `iat` of a token, in seconds since the epoch by the server's
/// clock, and when we received it (absent in sessions older versions wrote:
/// then the local clock is all there is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    pub exp: i64,
    pub iat: Option<i64>,
    pub received: Option<Receipt>,
}

/// `min(10 s, (exp - iat) / 3)` in milliseconds. Without `iat` the lifetime is
/// unknown and the full 10 s apply; a token issued at or after its expiry has
/// no margin left to give.
pub fn margin_ms(lifetime: Lifetime) -> i64 {
    match lifetime.iat {
        None => MAX_MARGIN_MS,
        Some(iat) if lifetime.exp <= iat => 0,
        Some(iat) => MAX_MARGIN_MS.min(lifetime.exp.saturating_sub(iat).saturating_mul(1000) / 3),
    }
}

/// When the token expires by our clock, Unix milliseconds: the earlier of its
/// lifetime counted from its receipt and `exp` less the server's lead.
pub fn local_expiry_ms(lifetime: Lifetime) -> i64 {
    let exp_ms = lifetime.exp.saturating_mul(1000);
    let Some(received) = lifetime.received else {
        return exp_ms;
    };
    let by_server_clock = exp_ms.saturating_sub(received.server_offset_ms);
    match lifetime.iat {
        Some(iat) => {
            let own_lifetime_ms = lifetime.exp.saturating_sub(iat).max(0).saturating_mul(1000);
            by_server_clock.min(received.at_ms.saturating_add(own_lifetime_ms))
        }
        None => by_server_clock,
    }
}

/// Local expiry less the margin, rounded down to whole seconds (RFC 3339
/// timestamps carry whole seconds, and rounding up would hand out a token
/// past its margin).
pub fn expiry_point(lifetime: Lifetime) -> i64 {
    local_expiry_ms(lifetime).saturating_sub(margin_ms(lifetime)).div_euclid(1000)
}

/// A token is fresh strictly before its expiry point, and only while our
/// clock has not gone back past its receipt (a clock set back would stretch
/// its life beyond what the server allows).
pub fn is_fresh(lifetime: Lifetime, now: SystemTime) -> bool {
    let now_ms = unix_millis(now);
    if lifetime.received.is_some_and(|received| now_ms < received.at_ms) {
        return false;
    }
    now_ms < expiry_point(lifetime).saturating_mul(1000)
}

/// The `expirationTimestamp` to report: the expiry point, except that it is
/// never in the past (client-go would run the plugin for every request). A
/// token that is already stale when handed out (a server clock ahead of ours)
/// gets one second.
pub fn reported_expiry(lifetime: Lifetime, now: SystemTime) -> i64 {
    expiry_point(lifetime).max(unix_millis(now).div_euclid(1000) + 1)
}

/// RFC 3339 in UTC with a `Z`, whole seconds; times outside the epoch to the
/// end of year 9999 (which RFC 3339 cannot show) are clamped to that range.
pub fn rfc3339(unix_seconds: i64) -> String {
    let seconds = unix_seconds.clamp(0, crate::openunison::jwt::LATEST_SECONDS);
    let time = UNIX_EPOCH + Duration::from_secs(seconds as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

pub use crate::openunison::clock::unix_millis;

#[cfg(test)]
mod tests {
    use super::*;

    fn at_millis(millis: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(millis as u64)
    }

    #[test]
    fn one_minute_tokens_get_a_ten_second_margin() {
        let token = Lifetime { exp: 1_000_060, iat: Some(1_000_000), received: None };
        assert_eq!(margin_ms(token), 10_000);
        assert_eq!(expiry_point(token), 1_000_050);
        assert!(is_fresh(token, at_millis(1_000_049_999)));
        assert!(!is_fresh(token, at_millis(1_000_050_000)));
    }

    #[test]
    fn five_second_tokens_get_a_third_of_their_life_rounded_down() {
        let token = Lifetime { exp: 1_000_005, iat: Some(1_000_000), received: None };
        assert_eq!(margin_ms(token), 1_666);
        // exp - 1.666 s = 1_000_003.334, floored to whole seconds.
        assert_eq!(expiry_point(token), 1_000_003);
        assert!(is_fresh(token, at_millis(1_000_002_999)));
        assert!(!is_fresh(token, at_millis(1_000_003_000)));
    }

    #[test]
    fn long_lived_tokens_are_capped_at_ten_seconds_and_odd_ones_are_safe() {
        assert_eq!(margin_ms(Lifetime { exp: 4000, iat: Some(400), received: None }), 10_000);
        assert_eq!(margin_ms(Lifetime { exp: 100, iat: None, received: None }), 10_000);
        assert_eq!(margin_ms(Lifetime { exp: 100, iat: Some(100), received: None }), 0);
        assert_eq!(margin_ms(Lifetime { exp: 100, iat: Some(200), received: None }), 0);
        assert_eq!(expiry_point(Lifetime { exp: 100, iat: Some(100), received: None }), 100);
    }

    #[test]
    fn the_reported_expiry_is_never_in_the_past() {
        let token = Lifetime { exp: 1_000_060, iat: Some(1_000_000), received: None };
        assert_eq!(reported_expiry(token, at_millis(1_000_010_000)), 1_000_050);
        assert_eq!(reported_expiry(token, at_millis(1_000_055_500)), 1_000_056);
    }

    #[test]
    fn a_token_lives_its_own_lifetime_from_its_receipt_whatever_our_clock_says() {
        // Our clock is ten minutes ahead of the server's: the token, issued at
        // server time 1_000_000, arrives at our 1_000_600.
        let ahead = Receipt { at_ms: 1_000_600_000, server_offset_ms: -600_000 };
        let token = Lifetime { exp: 1_000_060, iat: Some(1_000_000), received: Some(ahead) };
        assert_eq!(local_expiry_ms(token), 1_000_660_000);
        assert_eq!(expiry_point(token), 1_000_650);
        assert!(is_fresh(token, at_millis(1_000_649_999)));
        assert!(!is_fresh(token, at_millis(1_000_650_000)));
        assert_eq!(reported_expiry(token, at_millis(1_000_600_000)), 1_000_650);

        // Ten minutes behind: the token would look fresh for ten minutes by `exp` alone.
        let behind = Receipt { at_ms: 999_400_000, server_offset_ms: 600_000 };
        let token = Lifetime { exp: 1_000_060, iat: Some(1_000_000), received: Some(behind) };
        assert_eq!(expiry_point(token), 999_450);
        assert!(!is_fresh(token, at_millis(999_450_000)));
    }

    #[test]
    fn the_server_clock_caps_a_token_received_late_and_a_clock_set_back_makes_it_stale() {
        // Issued 40 s before it reached us (a replayed answer): `exp` by the server's clock wins.
        let late = Receipt { at_ms: 1_000_040_000, server_offset_ms: 0 };
        let token = Lifetime { exp: 1_000_060, iat: Some(1_000_000), received: Some(late) };
        assert_eq!(expiry_point(token), 1_000_050);
        // Without `iat` the server's clock is all there is.
        let ahead = Receipt { at_ms: 1_000_000_000, server_offset_ms: 30_000 };
        assert_eq!(local_expiry_ms(Lifetime { exp: 1_000_060, iat: None, received: Some(ahead) }), 1_000_030_000);
        // Our clock went back before the receipt: not fresh, whatever `exp` says.
        let fresh = Lifetime { exp: 1_000_060, iat: Some(1_000_000), received: Some(late) };
        assert!(is_fresh(fresh, at_millis(1_000_041_000)));
        assert!(!is_fresh(fresh, at_millis(1_000_039_000)));
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MIN), "1970-01-01T00:00:00Z");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

        /// A server's `exp` and `iat` can be anything; no rule may overflow.
        #[test]
        fn no_lifetime_makes_the_rules_panic(
            exp in proptest::prelude::any::<i64>(),
            iat in proptest::prelude::any::<Option<i64>>(),
            received in proptest::prelude::any::<Option<(i64, i64)>>(),
            now_ms in 0i64..4_000_000_000_000,
        ) {
            let received = received.map(|(at_ms, server_offset_ms)| Receipt { at_ms, server_offset_ms });
            let lifetime = Lifetime { exp, iat, received };
            proptest::prop_assert!((0..=MAX_MARGIN_MS).contains(&margin_ms(lifetime)));
            let now = at_millis(now_ms);
            let _ = is_fresh(lifetime, now);
            let shown = rfc3339(reported_expiry(lifetime, now));
            proptest::prop_assert!(shown.ends_with('Z') && shown.len() == 20, "{}", shown);
        }
    }
}
