//! The engine behind `__complete`: answers to kubectl's plugin completion
//! protocol, called by the `kubectl_complete-oulogin` shim when a user presses
//! TAB after `kubectl oulogin` (the command itself is `commands/completion.rs`).
//!
//! kubectl (1.26+) runs `kubectl_complete-oulogin WORD... PARTIAL` with the words
//! typed after `kubectl oulogin`, the last being the word under the cursor (empty
//! after a space). It reads one candidate per line (`candidate<TAB>description` is
//! allowed; cobra strips descriptions where the shell wants none) and, as the
//! last line, an optional cobra directive `:N`. kubectl does not filter by the
//! partial word, so we do.

use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, CommandFactory, ValueHint};

use crate::cli::Cli;
use crate::settings::{KubeconfigSelection, Paths};

/// Cobra's `ShellCompDirective` bits (github.com/spf13/cobra, completions.go).
mod directive {
    /// Let the shell complete file names when there is no candidate.
    pub const DEFAULT: u32 = 0;
    /// Never complete file names.
    pub const NO_FILE_COMP: u32 = 4;
}

/// Largest kubeconfig read for context names; completion must stay instant.
const MAX_KUBECONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// Answers kubectl's plugin completion protocol for `words` (the words after
/// `kubectl oulogin`, the last one being the partial word): candidates one per
/// line, then `:<cobra directive>`. Never fails: anything unreadable means no
/// candidates.
pub fn complete_for_kubectl(words: &[String]) -> String {
    let mut command = Cli::command();
    command.build();
    let (partial, typed) = match words.split_last() {
        Some((partial, typed)) => (partial.as_str(), typed),
        None => ("", &[][..]),
    };
    let answer = Completer::new(&command, typed).complete(partial);
    let mut out = String::new();
    for candidate in &answer.candidates {
        out.push_str(&candidate.value);
        if let Some(description) = &candidate.description {
            out.push('\t');
            out.push_str(description);
        }
        out.push('\n');
    }
    out.push_str(&format!(":{}\n", answer.directive));
    out
}

#[derive(Debug, PartialEq, Eq)]
struct Candidate {
    value: String,
    description: Option<String>,
}

#[derive(Debug)]
struct Answer {
    candidates: Vec<Candidate>,
    directive: u32,
}

impl Answer {
    fn none(directive: u32) -> Answer {
        Answer { candidates: Vec::new(), directive }
    }

    fn of(candidates: Vec<Candidate>) -> Answer {
        Answer { candidates, directive: directive::NO_FILE_COMP }
    }
}

/// Where the typed words (all but the partial one) left the parser.
struct Completer<'a> {
    /// The (sub)command being completed.
    command: &'a clap::Command,
    /// Long and short flags already given to `command`.
    used: Vec<&'a Arg>,
    /// Positional values already given to `command`.
    positionals: usize,
    /// A flag that still waits for its value: the partial word is that value.
    pending_value: Option<&'a Arg>,
    /// A `--` was typed: the rest is a command line of its own (`exec`).
    after_double_dash: bool,
    /// `--kubeconfig PATH` as typed, for context names.
    kubeconfig: Option<PathBuf>,
}

impl<'a> Completer<'a> {
    fn new(root: &'a clap::Command, typed: &[String]) -> Completer<'a> {
        let mut state = Completer {
            command: root,
            used: Vec::new(),
            positionals: 0,
            pending_value: None,
            after_double_dash: false,
            kubeconfig: None,
        };
        for word in typed {
            if state.after_double_dash {
                continue;
            }
            if let Some(arg) = state.pending_value.take() {
                state.note_value(arg, word);
                continue;
            }
            if word == "--" {
                state.after_double_dash = true;
            } else if let Some(long) = word.strip_prefix("--") {
                let (name, value) = match long.split_once('=') {
                    Some((name, value)) => (name, Some(value)),
                    None => (long, None),
                };
                if let Some(arg) = state.command.get_arguments().find(|arg| arg.get_long() == Some(name)) {
                    state.used.push(arg);
                    match value {
                        Some(value) => state.note_value(arg, value),
                        None if takes_value(arg) => state.pending_value = Some(arg),
                        None => {}
                    }
                }
            } else if let Some(shorts) = word.strip_prefix('-').filter(|shorts| !shorts.is_empty()) {
                // `-o json`, `-ojson`, `-o=json`: only the first short flag can take a value here.
                let mut chars = shorts.chars();
                let first = chars.next();
                if let Some(arg) = state.command.get_arguments().find(|arg| arg.get_short() == first) {
                    state.used.push(arg);
                    let rest = chars.as_str();
                    if takes_value(arg) && rest.is_empty() {
                        state.pending_value = Some(arg);
                    }
                }
            } else if let Some(sub) = state.subcommand_named(word) {
                state.command = sub;
                state.used.clear();
                state.positionals = 0;
            } else {
                state.positionals += 1;
            }
        }
        state
    }

    fn note_value(&mut self, arg: &Arg, value: &str) {
        if arg.get_long() == Some("kubeconfig") && !value.is_empty() {
            self.kubeconfig = Some(PathBuf::from(value));
        }
    }

    /// A subcommand can follow only before any flag or positional of its parent,
    /// global flags (`--kubeconfig`, `--context`, `-v`) aside.
    fn subcommands_allowed(&self) -> bool {
        self.used.iter().all(|arg| arg.is_global_set()) && self.positionals == 0
    }

    fn subcommand_named(&self, word: &str) -> Option<&'a clap::Command> {
        if !self.subcommands_allowed() {
            return None;
        }
        self.command
            .get_subcommands()
            .find(|sub| sub.get_name() == word || sub.get_all_aliases().any(|alias| alias == word))
    }

    fn complete(&self, partial: &str) -> Answer {
        if self.after_double_dash {
            // The command line `exec` runs: let the shell complete files.
            return Answer::none(directive::DEFAULT);
        }
        if let Some(arg) = self.pending_value {
            return self.complete_value(arg, partial, "");
        }
        if let Some((name, value)) = partial.strip_prefix("--").and_then(|long| long.split_once('=')) {
            return match self.command.get_arguments().find(|arg| arg.get_long() == Some(name)) {
                Some(arg) if takes_value(arg) => self.complete_value(arg, value, &format!("--{name}=")),
                _ => Answer::none(directive::NO_FILE_COMP),
            };
        }
        if partial.starts_with('-') {
            return Answer::of(self.flags(partial));
        }
        let mut candidates = Vec::new();
        if self.subcommands_allowed() {
            candidates.extend(
                self.command
                    .get_subcommands()
                    .filter(|sub| !sub.is_hide_set() && sub.get_name().starts_with(partial))
                    .map(|sub| Candidate {
                        value: sub.get_name().to_string(),
                        description: sub.get_about().map(|about| one_line(&about.to_string())),
                    }),
            );
        }
        if let Some(arg) = self.next_positional() {
            if arg.is_last_set() {
                // `exec ... -- CMD`: the command must come after `--`.
                if partial.is_empty() {
                    candidates.push(Candidate { value: "--".to_string(), description: arg_description(arg) });
                }
            } else {
                let values = self.complete_value(arg, partial, "");
                if values.candidates.is_empty() && candidates.is_empty() {
                    return values;
                }
                candidates.extend(values.candidates);
            }
        }
        if candidates.is_empty() && partial.is_empty() {
            // Nothing positional is possible here: the flags are what can come next.
            return Answer::of(self.flags(partial));
        }
        Answer::of(candidates)
    }

    /// The positional argument the next plain word would fill.
    fn next_positional(&self) -> Option<&'a Arg> {
        let mut positionals: Vec<&Arg> = self.command.get_positionals().filter(|arg| !arg.is_hide_set()).collect();
        positionals.sort_by_key(|arg| arg.get_index());
        let mut remaining = self.positionals;
        for arg in positionals {
            let takes_many = arg.get_num_args().is_some_and(|range| range.max_values() > 1)
                || matches!(arg.get_action(), ArgAction::Append);
            if remaining == 0 || takes_many {
                return Some(arg);
            }
            remaining -= 1;
        }
        None
    }

    /// Long (and short, unless `--` was typed) flags of the current command
    /// starting with `partial`, except those already given.
    fn flags(&self, partial: &str) -> Vec<Candidate> {
        let mut candidates = Vec::new();
        for arg in self.command.get_arguments().filter(|arg| !arg.is_positional() && !arg.is_hide_set()) {
            let repeatable = matches!(arg.get_action(), ArgAction::Append | ArgAction::Count);
            if !repeatable && self.used.iter().any(|used| used.get_id() == arg.get_id()) {
                continue;
            }
            let mut forms = Vec::new();
            if let Some(long) = arg.get_long() {
                forms.push(format!("--{long}"));
            }
            if let Some(short) = arg.get_short() {
                forms.push(format!("-{short}"));
            }
            for form in forms.into_iter().filter(|form| form.starts_with(partial)) {
                candidates.push(Candidate { value: form, description: arg_description(arg) });
            }
        }
        candidates
    }

    /// Values for `arg` starting with `partial`, each prefixed with `prefix`
    /// (`--output=` when completing `--output=j`).
    fn complete_value(&self, arg: &Arg, partial: &str, prefix: &str) -> Answer {
        let possible: Vec<_> = arg.get_possible_values().into_iter().filter(|value| !value.is_hide_set()).collect();
        if !possible.is_empty() {
            return Answer::of(
                possible
                    .iter()
                    .filter(|value| value.get_name().starts_with(partial))
                    .map(|value| Candidate {
                        value: format!("{prefix}{}", value.get_name()),
                        description: value.get_help().map(|help| one_line(&help.to_string())),
                    })
                    .collect(),
            );
        }
        if arg.get_long() == Some("context") {
            let names = context_names(self.kubeconfig.as_deref());
            return Answer::of(
                names
                    .into_iter()
                    .filter(|name| name.starts_with(partial))
                    .map(|name| Candidate { value: format!("{prefix}{name}"), description: None })
                    .collect(),
            );
        }
        match arg.get_value_hint() {
            ValueHint::AnyPath | ValueHint::FilePath | ValueHint::DirPath | ValueHint::ExecutablePath
                if prefix.is_empty() =>
            {
                Answer::none(directive::DEFAULT)
            }
            _ => Answer::none(directive::NO_FILE_COMP),
        }
    }
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

fn arg_description(arg: &Arg) -> Option<String> {
    arg.get_help().map(|help| one_line(&help.to_string()))
}

/// The first line of a help text, without trailing period or tabs (a tab
/// separates candidate and description in the protocol).
fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default().replace('\t', " ");
    line.trim().trim_end_matches('.').to_string()
}

/// Context names of the kubeconfig kubectl would use: `--kubeconfig` as typed,
/// else the `KUBECONFIG` list, else `~/.kube/config`, in file order without
/// duplicates. Unreadable or malformed files contribute nothing.
fn context_names(explicit: Option<&Path>) -> Vec<String> {
    let selection = match (explicit, Paths::from_env()) {
        (Some(path), _) => KubeconfigSelection::Explicit(path.to_path_buf()),
        (None, Ok(paths)) => KubeconfigSelection::resolve(None, &paths),
        (None, Err(_)) => return Vec::new(),
    };
    let mut names: Vec<String> = Vec::new();
    for file in crate::kubeconfig::selected_files(&selection) {
        for name in context_names_in(file) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

fn context_names_in(file: &Path) -> Vec<String> {
    let Ok(metadata) = std::fs::metadata(file) else {
        return Vec::new();
    };
    if !metadata.is_file() || metadata.len() > MAX_KUBECONFIG_BYTES {
        return Vec::new();
    }
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    let Ok(document) = serde_saphyr::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    document
        .get("contexts")
        .and_then(|contexts| contexts.as_array())
        .into_iter()
        .flatten()
        .filter_map(|context| context.get("name")?.as_str())
        .filter(|name| !name.is_empty() && !name.contains(['\n', '\t']))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(words: &[&str]) -> (Vec<String>, String) {
        let words: Vec<String> = words.iter().map(|word| word.to_string()).collect();
        let out = complete_for_kubectl(&words);
        let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
        let directive = lines.pop().expect("a directive line");
        assert!(directive.starts_with(':'), "last line `{directive}` is not a directive in:\n{out}");
        let values = lines.iter().map(|line| line.split('\t').next().unwrap().to_string()).collect();
        (values, directive)
    }

    #[test]
    fn empty_word_offers_visible_subcommands_only() {
        let (values, directive) = complete(&[""]);
        for expected in ["exec", "status", "logout", "completion", "version"] {
            assert!(values.contains(&expected.to_string()), "{expected} missing from {values:?}");
        }
        assert!(!values.contains(&"token".to_string()), "the command for kubectl offered: {values:?}");
        assert!(!values.iter().any(|value| value.starts_with("__")), "hidden subcommands offered: {values:?}");
        assert!(!values.iter().any(|value| value.starts_with('-')), "flags offered for an empty word: {values:?}");
        assert_eq!(directive, ":4");
    }

    #[test]
    fn no_words_at_all_is_the_empty_word() {
        let (values, _) = complete(&[]);
        assert!(values.contains(&"status".to_string()));
    }

    #[test]
    fn subcommands_are_filtered_by_the_partial_word() {
        assert_eq!(complete(&["st"]).0, ["status"]);
        assert_eq!(complete(&["lo"]).0, ["logout"]);
    }

    #[test]
    fn dash_offers_the_long_flags_of_the_command() {
        let (values, directive) = complete(&["--"]);
        for expected in ["--host", "--kubeconfig", "--context", "--isolated", "--no-browser", "--port", "--help"] {
            assert!(values.contains(&expected.to_string()), "{expected} missing from {values:?}");
        }
        assert_eq!(directive, ":4");
        let (values, _) = complete(&["status", "--"]);
        assert!(values.contains(&"--output".to_string()) && values.contains(&"--check".to_string()));
        assert!(!values.contains(&"--host".to_string()), "login flag offered to status: {values:?}");
    }

    #[test]
    fn flags_already_given_are_not_offered_again() {
        let (values, _) = complete(&["status", "--check", "--c"]);
        assert!(!values.contains(&"--check".to_string()), "{values:?}");
    }

    #[test]
    fn subcommands_are_not_offered_after_a_login_flag() {
        let (values, _) = complete(&["--force", ""]);
        assert!(!values.contains(&"status".to_string()), "{values:?}");
        assert!(values.contains(&"--host".to_string()), "{values:?}");
        // A global flag is no login flag.
        let (values, _) = complete(&["-v", ""]);
        assert!(values.contains(&"status".to_string()), "{values:?}");
        assert!(complete(&["status", "--verb"]).0.contains(&"--verbose".to_string()));
    }

    #[test]
    fn value_enums_complete_their_values() {
        assert_eq!(complete(&["status", "-o", ""]).0, ["table", "wide", "name", "json", "yaml"]);
        assert_eq!(complete(&["status", "--output", "j"]).0, ["json"]);
        assert_eq!(complete(&["status", "--output=y"]).0, ["--output=yaml"]);
        assert_eq!(complete(&["completion", "b"]).0, ["bash"]);
        let (shells, _) = complete(&["completion", ""]);
        assert_eq!(shells, ["bash", "elvish", "fish", "powershell", "zsh"]);
        // Aliases (`bash`, `pwsh`) are accepted, not offered.
        assert_eq!(complete(&["--isolated", "--shell", ""]).0, ["sh", "fish", "powershell", "cmd"]);
    }

    #[test]
    fn path_flags_leave_completion_to_the_shell() {
        let (values, directive) = complete(&["--kubeconfig", ""]);
        assert!(values.is_empty());
        assert_eq!(directive, ":0");
        let (_, directive) = complete(&["--host", ""]);
        assert_eq!(directive, ":4");
    }

    #[test]
    fn exec_wants_double_dash_then_leaves_the_command_to_the_shell() {
        let (values, _) = complete(&["exec", "--host", "h", ""]);
        assert!(values.contains(&"--".to_string()), "{values:?}");
        let (values, directive) = complete(&["exec", "--", "k9"]);
        assert!(values.is_empty());
        assert_eq!(directive, ":0");
    }

    #[test]
    fn context_names_come_from_the_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        std::fs::write(
            &file,
            "apiVersion: v1\nkind: Config\ncontexts:\n- name: prod\n  context: {cluster: a, user: b}\n\
             - name: dev\n  context: {cluster: a, user: c}\n- name: prod-eu\n  context: {cluster: e, user: b}\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        assert_eq!(complete(&["--kubeconfig", path, "--context", ""]).0, ["prod", "dev", "prod-eu"]);
        assert_eq!(complete(&["logout", "--kubeconfig", path, "--context", "pr"]).0, ["prod", "prod-eu"]);
        assert_eq!(complete(&["--kubeconfig", path, "--context=d"]).0, ["--context=dev"]);
        // Global flags go before the command too, as kubectl's do.
        assert_eq!(complete(&["--kubeconfig", path, "sta"]).0, ["status"]);
        assert_eq!(complete(&["--kubeconfig", path, "logout", "--context", "d"]).0, ["dev"]);
    }

    #[test]
    fn broken_kubeconfigs_give_no_context_names() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        std::fs::write(&file, "contexts: [ {name: unterminated\n").unwrap();
        let (values, directive) = complete(&["--kubeconfig", file.to_str().unwrap(), "--context", ""]);
        assert!(values.is_empty());
        assert_eq!(directive, ":4");
        let missing = dir.path().join("missing");
        assert!(complete(&["--kubeconfig", missing.to_str().unwrap(), "--context", ""]).0.is_empty());
    }

    #[test]
    fn descriptions_are_single_lines_after_a_tab() {
        let out = complete_for_kubectl(&["".to_string()]);
        let status = out.lines().find(|line| line.starts_with("status\t")).expect("status with a description");
        assert_eq!(status, "status\tShow the contexts this tool manages and the state of their sessions");
    }
}
