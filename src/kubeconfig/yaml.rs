//! One kubeconfig file as text: YAML in and out through serde-saphyr and an
//! ordered `serde_json::Value` (so key order and every field we do not know
//! survive), and the checks that decide whether the document is a kubeconfig
//! at all, with kubectl's strictness where it refuses a file too.

use std::collections::HashSet;
use std::path::Path;

use serde_json::{Map, Value};
use serde_saphyr::options::{DuplicateKeyPolicy, NonFiniteFloatPolicy};

use super::KubeconfigError;

/// The named lists of a kubeconfig and the key of the map inside each entry.
pub(super) const LISTS: [(&str, &str); 3] = [("clusters", "cluster"), ("users", "user"), ("contexts", "context")];

/// The string fields of a context entry's inner map.
const CONTEXT_STRING_FIELDS: [&str; 3] = ["cluster", "user", "namespace"];

/// A parsed file: the first YAML document (the one kubectl reads) as a mapping,
/// plus any further documents, kept only to be written back unchanged.
#[derive(Clone, PartialEq)]
pub(super) struct Parsed {
    pub doc: Map<String, Value>,
    pub extra_documents: Vec<Value>,
}

/// Debug output names the top-level keys only: the document holds credentials.
impl std::fmt::Debug for Parsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parsed")
            .field("keys", &self.doc.keys().collect::<Vec<_>>())
            .field("extra_documents", &self.extra_documents.len())
            .finish()
    }
}

fn options(text_len: usize) -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: Some(budget(text_len)),
        // Error messages must never quote the file: it holds tokens.
        with_snippet: false,
        // kubectl (go-yaml) lets the later key win; refusing would break files kubectl reads.
        duplicate_keys: DuplicateKeyPolicy::LastWins,
        // `0123` would otherwise turn into the number 123 and lose its spelling.
        leading_zero_numbers_as_strings: true,
        // `.inf` is valid YAML; keep it rather than refusing the file or nulling it.
        non_finite_float_policy: NonFiniteFloatPolicy::AsString,
    }
}

/// The parser's budget for a text of `text_len` bytes. What the text spells
/// out itself (nodes, events, scalar bytes) cannot outgrow the text: a node
/// takes at least a byte of it, and a scalar is at most twice as long as its
/// spelling (`\L` is two characters for three bytes). So those limits grow
/// with the text, and any plain document kubectl reads is read (a 20,000-context
/// kubeconfig is some 250,000 nodes, past the crate's fixed default). What
/// the text does not spell out, alias expansion, keeps the crate's fixed
/// limits (aliases, anchors, replayed and retained events), so a "billion
/// laughs" document is still refused, after a bounded amount of work.
fn budget(text_len: usize) -> serde_saphyr::Budget {
    let mut budget = serde_saphyr::Budget::default();
    let spelled_out = text_len.saturating_mul(2).saturating_add(1024);
    budget.max_nodes = budget.max_nodes.max(spelled_out);
    budget.max_events = budget.max_events.max(spelled_out);
    budget.max_total_scalar_bytes = budget.max_total_scalar_bytes.max(spelled_out);
    budget
}

/// What is wrong with a text that is not YAML we read, in words for people:
/// the budget's own message names its internal counters.
fn describe_yaml_error(err: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error;
    use serde_saphyr::budget::BudgetBreach;
    let mut err = err;
    while let Error::AliasError { error, .. } | Error::WithSnippet { error, .. } = err {
        err = error;
    }
    let at = err.location().map(|at| format!(" (line {}, column {})", at.line(), at.column())).unwrap_or_default();
    let aliases = format!(
        "its YAML anchors and aliases (`&name`, `*name`) expand to more than kubectl oulogin reads, as in a \
         \"billion laughs\" document{at}; write the repeated parts out"
    );
    match err {
        Error::AliasReplayCounterOverflow { .. }
        | Error::AliasReplayLimitExceeded { .. }
        | Error::AliasExpansionLimitExceeded { .. }
        | Error::AliasReplayStackDepthExceeded { .. } => aliases,
        Error::Budget { breach, .. } => match breach {
            // What the text spells out stays within the budget (see
            // [`budget`]): only alias expansion breaks it.
            BudgetBreach::Nodes { .. }
            | BudgetBreach::Events { .. }
            | BudgetBreach::ScalarBytes { .. }
            | BudgetBreach::Aliases { .. }
            | BudgetBreach::Anchors { .. }
            | BudgetBreach::AliasAnchorRatio { .. }
            | BudgetBreach::RecordedAnchorEvents { .. }
            | BudgetBreach::RecordedAnchorBytes { .. }
            | BudgetBreach::MergeKeys { .. } => aliases,
            BudgetBreach::Depth { depth } => format!("it nests lists and mappings {depth} levels deep{at}"),
            BudgetBreach::Documents { documents } => format!("it holds more than {} YAML documents", documents - 1),
            other => format!("it is larger than kubectl oulogin can read ({other:?}){at}"),
        },
        other => other.to_string(),
    }
}

/// Parses and checks one file's bytes. Empty, whitespace-only and
/// comment-only files are an empty config, as are a lone `null` or `---`.
pub(super) fn parse(path: &Path, bytes: &[u8]) -> Result<Parsed, KubeconfigError> {
    let not_yaml = |reason: String| KubeconfigError::NotYaml { path: path.to_path_buf(), reason };
    let text = std::str::from_utf8(bytes).map_err(|err| not_yaml(format!("it is not UTF-8 text ({err})")))?;
    let mut documents: Vec<Value> = serde_saphyr::from_str_multiple_with_options(text, options(text.len()))
        .map_err(|err| not_yaml(describe_yaml_error(&err)))?;
    let first = if documents.is_empty() { Value::Null } else { documents.remove(0) };
    let doc = match first {
        Value::Null => Map::new(),
        Value::Object(map) => map,
        other => {
            return Err(shape(path, format!("the top level is {}, not a mapping", describe(&other))));
        }
    };
    check(path, &doc)?;
    Ok(Parsed { doc, extra_documents: documents })
}

/// Serialises a file for writing.
pub(super) fn render(path: &Path, parsed: &Parsed) -> Result<String, KubeconfigError> {
    let doc = Value::Object(parsed.doc.clone());
    let result = if parsed.extra_documents.is_empty() {
        serde_saphyr::to_string(&doc)
    } else {
        let mut all = Vec::with_capacity(1 + parsed.extra_documents.len());
        all.push(doc);
        all.extend(parsed.extra_documents.iter().cloned());
        serde_saphyr::to_string_multiple(&all)
    };
    result.map_err(|err| KubeconfigError::Serialize { path: path.to_path_buf(), reason: err.to_string() })
}

fn shape(path: &Path, problem: String) -> KubeconfigError {
    KubeconfigError::Shape { path: path.to_path_buf(), problem }
}

/// "a list", "a string", ... for shape errors: the kind of value only, never
/// the value, since a misplaced token must not end up in a message.
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The checks kubectl also makes (it refuses these files), phrased for people.
fn check(path: &Path, doc: &Map<String, Value>) -> Result<(), KubeconfigError> {
    match doc.get("kind") {
        None | Some(Value::Null) => {}
        Some(Value::String(kind)) if kind.is_empty() || kind == "Config" => {}
        Some(Value::String(kind)) => {
            return Err(KubeconfigError::WrongKind { path: path.to_path_buf(), kind: kind.clone() });
        }
        Some(other) => {
            return Err(KubeconfigError::WrongKind { path: path.to_path_buf(), kind: describe(other).to_string() });
        }
    }
    match doc.get("apiVersion") {
        None | Some(Value::Null) => {}
        Some(Value::String(version)) if version.is_empty() || version == "v1" => {}
        Some(Value::String(version)) => {
            return Err(KubeconfigError::WrongApiVersion { path: path.to_path_buf(), api_version: version.clone() });
        }
        Some(other) => {
            return Err(KubeconfigError::WrongApiVersion {
                path: path.to_path_buf(),
                api_version: describe(other).to_string(),
            });
        }
    }
    match doc.get("current-context") {
        None | Some(Value::Null) | Some(Value::String(_)) => {}
        Some(other) => {
            return Err(shape(path, format!("`current-context` is {}, not a string", describe(other))));
        }
    }
    for (list, inner) in LISTS {
        let entries = match doc.get(list) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(entries)) => entries,
            Some(other) => {
                return Err(shape(path, format!("`{list}` is {}, not a list", describe(other))));
            }
        };
        let mut names = HashSet::new();
        for (index, entry) in entries.iter().enumerate() {
            let position = index + 1;
            let Value::Object(entry) = entry else {
                return Err(shape(path, format!("entry {position} of `{list}` is {}, not a mapping", describe(entry))));
            };
            let name = match entry.get("name") {
                Some(Value::String(name)) => name,
                None | Some(Value::Null) => {
                    return Err(shape(path, format!("entry {position} of `{list}` has no `name`")));
                }
                Some(other) => {
                    return Err(shape(
                        path,
                        format!(
                            "the `name` of entry {position} of `{list}` is {}, not a string; quote it",
                            describe(other)
                        ),
                    ));
                }
            };
            if !names.insert(name.as_str()) {
                return Err(shape(path, format!("`{list}` has two entries named `{name}`")));
            }
            match entry.get(inner) {
                None | Some(Value::Null) => {}
                Some(Value::Object(fields)) if inner == "context" => {
                    for field in CONTEXT_STRING_FIELDS {
                        match fields.get(field) {
                            None | Some(Value::Null) | Some(Value::String(_)) => {}
                            Some(other) => {
                                return Err(shape(
                                    path,
                                    format!("`{field}` of context `{name}` is {}, not a string", describe(other)),
                                ));
                            }
                        }
                    }
                }
                Some(Value::Object(_)) => {}
                Some(other) => {
                    return Err(shape(
                        path,
                        format!("`{inner}` of {inner} `{name}` is {}, not a mapping", describe(other)),
                    ));
                }
            }
        }
    }
    Ok(())
}
