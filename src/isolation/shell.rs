//! What `--isolated` tells the user's shell: the `export` line on stdout for
//! `eval`, and the hint on stderr for fish or a POSIX shell.

use std::ffi::OsStr;
use std::path::Path;

/// The `export` line that `eval "$(kubectl oulogin --isolated ...)"` runs, quoted
/// for POSIX shells (bash, zsh, sh; fish accepts `export` too).
pub fn export_line(kubeconfig: &Path) -> String {
    format!("export KUBECONFIG={}", shell_quote(kubeconfig.as_os_str()))
}

/// How to take the private kubeconfig into the user's shell (fish, or else
/// a POSIX shell), now and next time.
/// `login` is what follows `--host`: the host and the flags to repeat.
/// `host` is quoted for the shell, `flags` (the remembered login flags) come quoted.
pub fn shell_hint(kubeconfig: &Path, host: &str, flags: &str, fish: bool) -> String {
    let login = format!("{}{flags}", shell_words::quote(host));
    if fish {
        format!(
            "in fish: set -gx KUBECONFIG {}; next time `eval (kubectl oulogin --host {login} --isolated)` does it",
            fish_quote(kubeconfig.as_os_str())
        )
    } else {
        format!(
            "in this shell: {}; next time `eval \"$(kubectl oulogin --host {login} --isolated)\"` does it",
            export_line(kubeconfig)
        )
    }
}

/// Single quotes for fish, where `\\` and `\'` are escapes inside them.
fn fish_quote(text: &OsStr) -> String {
    let text = text.to_string_lossy();
    format!("'{}'", text.replace('\\', r"\\").replace('\'', r"\'"))
}

fn shell_quote(text: &OsStr) -> String {
    let text = text.to_string_lossy();
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_lines_are_quoted() {
        assert_eq!(export_line(Path::new("/tmp/a b/kubeconfig")), "export KUBECONFIG='/tmp/a b/kubeconfig'");
        assert_eq!(export_line(Path::new("/tmp/it's")), r"export KUBECONFIG='/tmp/it'\''s'");
        assert_eq!(fish_quote(OsStr::new(r"/tmp/it's a\b")), r"'/tmp/it\'s a\\b'");
    }

    #[test]
    fn the_isolated_hint_is_for_the_users_shell_only() {
        let kubeconfig = Path::new("/tmp/x/kubeconfig");
        let fish = shell_hint(kubeconfig, "ou.example.com", "", true);
        assert_eq!(
            fish,
            "in fish: set -gx KUBECONFIG '/tmp/x/kubeconfig'; next time \
             `eval (kubectl oulogin --host ou.example.com --isolated)` does it"
        );
        let posix = shell_hint(kubeconfig, "ou.example.com", "", false);
        assert_eq!(
            posix,
            "in this shell: export KUBECONFIG='/tmp/x/kubeconfig'; next time \
             `eval \"$(kubectl oulogin --host ou.example.com --isolated)\"` does it"
        );
        assert!(!posix.contains("fish") && !fish.contains("$("));
        // A host from someone else's kubeconfig cannot smuggle a command into an `eval`.
        let hostile = shell_hint(kubeconfig, "ou.example.com;touch${IFS}pwned", " --port 8401", false);
        assert!(
            hostile.contains("kubectl oulogin --host 'ou.example.com;touch${IFS}pwned' --port 8401 --isolated"),
            "{hostile}"
        );
    }
}
