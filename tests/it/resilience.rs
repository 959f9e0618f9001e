//! Limits and resilience of `token` and the login: duration flags bounded at
//! the parser, hints whose commands run as printed, a refresh that cannot be
//! saved still answering its caller, Ctrl-C (and SIGTERM, SIGHUP) held while
//! a refresh is on the server, and clock skew between us and OpenUnison.

use crate::common::TestEnv;

#[test]
fn a_huge_timeout_is_a_usage_error_not_a_panic() {
    let env = TestEnv::new();
    for timeout in ["18446744073709551615s", "25h", "0s"] {
        let output = env.oulogin(["--host", "ou.example.com", "--timeout", timeout]).run();
        output.assert_code(2);
        output.assert_stderr_contains("--timeout");
        assert!(output.stderr.contains("out of range") || output.stderr.contains("not a duration"), "{output}");
    }
}
