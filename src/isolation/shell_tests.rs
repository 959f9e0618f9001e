//! Tests of `isolation::shell`: each shell's line and hint, with hostile
//! paths, hosts and flags, and the paths cmd cannot express.

use super::*;

const HOSTILE: &str = "/tmp/it's a $HOME `x` \\b 50%\"q\"/kubeconfig";

fn words(host: &str, flags: &[&str]) -> Vec<String> {
    ["--host", host].iter().chain(flags).map(|word| word.to_string()).collect()
}

fn render_for(syntax: ShellSyntax, path: &str) -> Result<IsolatedText, InexpressibleError> {
    render(IsolatedShell::chosen(syntax), Path::new(path), &words("ou.example.com", &[]))
}

#[test]
fn posix_lines_are_single_quoted_with_quotes_closed_and_escaped() {
    let line = |path: &str| render_for(ShellSyntax::Posix, path).unwrap().line;
    assert_eq!(line("/tmp/a b/kubeconfig"), "export KUBECONFIG='/tmp/a b/kubeconfig'");
    assert_eq!(line("/tmp/it's"), r"export KUBECONFIG='/tmp/it'\''s'");
    assert_eq!(line(HOSTILE), r#"export KUBECONFIG='/tmp/it'\''s a $HOME `x` \b 50%"q"/kubeconfig'"#);
    assert_eq!(line("/tmp/a\nb"), "export KUBECONFIG='/tmp/a\nb'");
}

#[test]
fn fish_lines_escape_backslashes_quotes_and_control_characters() {
    let line = |path: &str| render_for(ShellSyntax::Fish, path).unwrap().line;
    assert_eq!(line(r"/tmp/it's a\b"), r"set -gx KUBECONFIG '/tmp/it\'s a\\b'");
    assert_eq!(line(HOSTILE), r#"set -gx KUBECONFIG '/tmp/it\'s a $HOME `x` \\b 50%"q"/kubeconfig'"#);
    assert_eq!(line("/tmp/a\nb"), r"set -gx KUBECONFIG '/tmp/a'\x0a'b'");
}

#[test]
fn powershell_lines_are_ascii_single_quoted_with_quotes_doubled() {
    let line = |path: &str| render_for(ShellSyntax::PowerShell, path).unwrap().line;
    assert_eq!(
        line(r"C:\Users\o'brien\.kube\cache\oulogin\isolated\x\kubeconfig"),
        r"$env:KUBECONFIG = 'C:\Users\o''brien\.kube\cache\oulogin\isolated\x\kubeconfig'"
    );
    // `$`, backticks, `"` and `%` are nothing inside single quotes.
    assert_eq!(line(HOSTILE), r#"$env:KUBECONFIG = '/tmp/it''s a $HOME `x` \b 50%"q"/kubeconfig'"#);
    // Outside ASCII (and PowerShell's typographic quotes) as `[char]`s, never raw.
    assert_eq!(line(r"C:\Users\José"), r"$env:KUBECONFIG = 'C:\Users\Jos' + [char]0x00E9");
    assert_eq!(
        line("\u{2019}x\u{1F600}\ny"),
        "$env:KUBECONFIG = '' + [char]0x2019 + 'x' + [char]0xD83D + [char]0xDE00 + [char]0x000A + 'y'"
    );
    assert_eq!(line(""), "$env:KUBECONFIG = ''");
}

#[test]
fn cmd_lines_quote_what_cmd_can_and_refuse_the_rest() {
    let line = |path: &str| render_for(ShellSyntax::Cmd, path).map(|text| text.line);
    assert_eq!(line(r"C:\Users\A & B ^(x)\kubeconfig").unwrap(), r#"set "KUBECONFIG=C:\Users\A & B ^(x)\kubeconfig""#);
    assert_eq!(line(r"C:\it's $x `y`").unwrap(), r#"set "KUBECONFIG=C:\it's $x `y`""#);
    for (path, why) in [
        (r"C:\50%off\kubeconfig", "`%`"),
        (r"C:\%USERNAME%\kubeconfig", "`%`"),
        ("C:\\a\"b", "`\"`"),
        (r"C:\wow!\kubeconfig", "`!`"),
        ("C:\\a\r\nb", "control character"),
        (r"C:\Users\José\kubeconfig", "outside ASCII"),
    ] {
        let err = line(path).unwrap_err();
        let message = Error::from(err).render();
        assert!(message.starts_with("error: cmd cannot express the private kubeconfig's path"), "{message}");
        assert!(message.contains(why), "{path}: {message}");
        assert!(message.contains("hint: choose another shell with `--shell`"), "{message}");
    }
}

#[cfg(unix)]
#[test]
fn a_path_that_is_not_unicode_is_refused_rather_than_mangled() {
    use std::os::unix::ffi::OsStrExt as _;
    let path = Path::new(std::ffi::OsStr::from_bytes(b"/tmp/\xff/kubeconfig"));
    let err = render(IsolatedShell::chosen(ShellSyntax::Posix), path, &[]).unwrap_err();
    assert!(err.to_string().contains("not valid Unicode"), "{err}");
}

#[test]
fn each_hint_shows_its_shells_line_and_the_command_for_next_time() {
    let kubeconfig = Path::new("/tmp/x/kubeconfig");
    let login = words("ou.example.com", &["--port", "8401"]);
    let hint = |shell: IsolatedShell| render(shell, kubeconfig, &login).unwrap().hint;
    let default = |line, hint| IsolatedShell { line, hint, given: false };
    assert_eq!(
        hint(default(ShellSyntax::Posix, ShellSyntax::Posix)),
        "in this shell: export KUBECONFIG='/tmp/x/kubeconfig'; next time \
         `eval \"$(kubectl oulogin --host ou.example.com --port 8401 --isolated)\"` does it"
    );
    // Fish by `SHELL`: the POSIX line on stdout, which fish evaluates too.
    assert_eq!(
        hint(default(ShellSyntax::Posix, ShellSyntax::Fish)),
        "in fish: set -gx KUBECONFIG '/tmp/x/kubeconfig'; next time \
         `eval (kubectl oulogin --host ou.example.com --port 8401 --isolated)` does it"
    );
    assert_eq!(
        hint(default(ShellSyntax::PowerShell, ShellSyntax::PowerShell)),
        "in PowerShell: $env:KUBECONFIG = '/tmp/x/kubeconfig'; next time \
         `kubectl oulogin --host ou.example.com --port 8401 --isolated | Invoke-Expression` does it"
    );
    // A chosen shell is repeated, so that next time prints the same syntax.
    assert_eq!(
        hint(IsolatedShell::chosen(ShellSyntax::Fish)),
        "in fish: set -gx KUBECONFIG '/tmp/x/kubeconfig'; next time \
         `eval (kubectl oulogin --host ou.example.com --port 8401 --isolated --shell fish)` does it"
    );
    assert_eq!(
        hint(IsolatedShell::chosen(ShellSyntax::Cmd)),
        "in cmd: set \"KUBECONFIG=/tmp/x/kubeconfig\"; next time `for /f \"delims=\" %i in \
         ('kubectl oulogin --host ou.example.com --port 8401 --isolated --shell cmd') do %i` does it"
    );
}

#[test]
fn hosts_and_flags_in_hints_are_quoted_for_the_hints_shell() {
    let kubeconfig = Path::new("/tmp/x/kubeconfig");
    let hostile = "ou.example.com;touch${IFS}pwned";
    let ca = r"/my ca/it's `x` $y\.pem";
    let login = words(hostile, &["--certificate-authority", ca]);
    let hint = |syntax| render(IsolatedShell::chosen(syntax), kubeconfig, &login).map(|text| text.hint);
    let posix = hint(ShellSyntax::Posix).unwrap();
    assert!(
        posix.contains(
            r#"kubectl oulogin --host 'ou.example.com;touch${IFS}pwned' --certificate-authority '/my ca/it'\''s `x` $y\.pem' --isolated"#
        ),
        "{posix}"
    );
    let fish = hint(ShellSyntax::Fish).unwrap();
    assert!(
        fish.contains(
            r#"--host 'ou.example.com;touch${IFS}pwned' --certificate-authority '/my ca/it\'s `x` $y\\.pem' --isolated"#
        ),
        "{fish}"
    );
    let powershell = hint(ShellSyntax::PowerShell).unwrap();
    assert!(
        powershell.contains(
            r#"--host 'ou.example.com;touch${IFS}pwned' --certificate-authority '/my ca/it''s `x` $y\.pem' --isolated --shell powershell | Invoke-Expression"#
        ),
        "{powershell}"
    );
    assert_eq!(powershell_argument("it\u{2019}s"), "'it\u{2019}\u{2019}s'");
    let cmd = hint(ShellSyntax::Cmd).unwrap();
    assert!(
        cmd.contains(
            r#"('kubectl oulogin --host "ou.example.com;touch${IFS}pwned" --certificate-authority "/my ca/it's `x` $y\.pem" --isolated --shell cmd')"#
        ),
        "{cmd}"
    );
    assert_eq!(cmd_argument(r"C:\my dir\").unwrap(), r#""C:\my dir\\""#);
    let refused = render(IsolatedShell::chosen(ShellSyntax::Cmd), kubeconfig, &words("ou%PATH%", &[])).unwrap_err();
    assert!(refused.to_string().contains("the login flag `ou%PATH%`"), "{refused}");
}
