//! Finding a program the way Windows' command prompt does, through `PATH`
//! and `PATHEXT` (`k9s` runs `k9s.exe`), as a pure function so that its rules
//! are tested on every platform; the Windows process code feeds it the
//! environment and the file system.

use std::path::PathBuf;

/// What `PATHEXT` holds on a stock Windows when it is unset or empty: the
/// extensions `CreateProcess` (or `cmd`, for scripts) can start.
pub const DEFAULT_PATHEXT: &str = ".COM;.EXE;.BAT;.CMD";

/// The file to start for `name`, or `None` when there is none.
///
/// - A name with a directory in it (`\`, `/` or a drive `C:`) is not looked
///   up on `path`: it is used as it is when it names a file, else with each
///   extension of `pathext` appended.
/// - A bare name is looked for in each directory of `path` (`;`-separated,
///   empty entries skipped, surrounding quotes removed) in order: as it is
///   when its extension is one of `pathext`'s, else with each of those
///   extensions appended, in `pathext`'s order. The current directory is not
///   searched (as Go's `exec.LookPath` and Rust's `Command` do not, so that a
///   program planted in a working directory is never picked up).
///
/// `exists` says whether a candidate is an existing file.
pub fn find_program(name: &str, path: &str, pathext: &str, exists: impl Fn(&str) -> bool) -> Option<PathBuf> {
    if name.is_empty() {
        return None;
    }
    let pathext = if pathext.trim().is_empty() { DEFAULT_PATHEXT } else { pathext };
    let extensions: Vec<&str> = pathext.split(';').map(str::trim).filter(|ext| ext.starts_with('.')).collect();
    let has_known_extension =
        extension(name).is_some_and(|own| extensions.iter().any(|ext| ext.eq_ignore_ascii_case(own)));
    let candidates_in = |base: String| -> Vec<String> {
        if has_known_extension { vec![base] } else { extensions.iter().map(|ext| format!("{base}{ext}")).collect() }
    };
    if has_directory(name) {
        let mut candidates = vec![name.to_string()];
        if !has_known_extension {
            candidates.extend(candidates_in(name.to_string()));
        }
        return candidates.into_iter().find(|candidate| exists(candidate)).map(PathBuf::from);
    }
    path.split(';')
        .map(|dir| dir.trim().trim_matches('"'))
        .filter(|dir| !dir.is_empty())
        .flat_map(|dir| {
            let separator = if dir.ends_with(['\\', '/']) { "" } else { "\\" };
            candidates_in(format!("{dir}{separator}{name}"))
        })
        .find(|candidate| exists(candidate))
        .map(PathBuf::from)
}

/// Whether `name` says where it is: a separator or a drive (then it is not
/// looked up on `PATH`).
pub fn has_directory(name: &str) -> bool {
    name.contains(['\\', '/']) || name.as_bytes().get(1) == Some(&b':')
}

/// The extension of the last component, dot included (`.exe`).
fn extension(name: &str) -> Option<&str> {
    let file = name.rsplit(['\\', '/']).next().unwrap_or(name);
    file.rfind('.').filter(|&at| at > 0).map(|at| &file[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = r#"C:\Windows\system32;;"C:\Program Files\k9s";C:\tools\"#;

    fn found(name: &str, files: &[&str]) -> Option<String> {
        // Lower case here, so that a found name reads as the file was listed.
        find_program(name, PATH, ".com;.exe;.bat;.cmd", |candidate| {
            files.iter().any(|file| file.eq_ignore_ascii_case(candidate))
        })
        .map(|path| path.to_string_lossy().into_owned())
    }

    #[test]
    fn a_bare_name_gets_the_extensions_of_pathext_in_path_order() {
        let files = [r"C:\Program Files\k9s\k9s.exe", r"C:\tools\k9s.cmd"];
        assert_eq!(found("k9s", &files).as_deref(), Some(r"C:\Program Files\k9s\k9s.exe"));
        // Within one directory, PATHEXT's order decides: .BAT before .CMD before nothing.
        let files = [r"C:\tools\deploy", r"C:\tools\deploy.cmd", r"C:\tools\deploy.bat"];
        assert_eq!(found("deploy", &files).as_deref(), Some(r"C:\tools\deploy.bat"));
        // The earlier directory wins over a better extension later.
        let files = [r"C:\Windows\system32\kubectl.bat", r"C:\tools\kubectl.exe"];
        assert_eq!(found("kubectl", &files).as_deref(), Some(r"C:\Windows\system32\kubectl.bat"));
        assert_eq!(found("k9s", &[]), None);
        assert_eq!(found("", &[r"C:\tools\.exe"]), None);
    }

    #[test]
    fn a_name_with_a_known_extension_is_used_as_it_is() {
        let files = [r"C:\tools\k9s.exe", r"C:\tools\k9s.exe.exe"];
        assert_eq!(found("k9s.exe", &files).as_deref(), Some(r"C:\tools\k9s.exe"));
        assert_eq!(found("K9S.EXE", &files).as_deref(), Some(r"C:\tools\K9S.EXE"));
        assert_eq!(found("k9s.cmd", &files), None, "no other extension is tried");
        // An extension PATHEXT does not know is part of the name.
        let files = [r"C:\tools\python3.12.exe"];
        assert_eq!(found("python3.12", &files).as_deref(), Some(r"C:\tools\python3.12.exe"));
    }

    #[test]
    fn a_path_is_not_looked_up_on_path() {
        let files = [r"C:\tools\k9s.exe", r".\k9s.exe", r"D:k9s.exe", r"..\bin\run"];
        assert_eq!(found(r".\k9s", &files).as_deref(), Some(r".\k9s.exe"));
        assert_eq!(found(r"C:\tools\k9s.exe", &files).as_deref(), Some(r"C:\tools\k9s.exe"));
        assert_eq!(found("D:k9s", &files).as_deref(), Some("D:k9s.exe"));
        assert_eq!(found(r"..\bin\run", &files).as_deref(), Some(r"..\bin\run"), "as it is when it exists");
        assert_eq!(found(r"elsewhere\k9s", &files), None);
        // The current directory is never searched for a bare name.
        assert_eq!(found("k9s", &[r"k9s.exe", r".\k9s.exe"]), None);
    }

    #[test]
    fn an_empty_pathext_means_the_default() {
        let exists = |candidate: &str| candidate == r"C:\tools\k9s.EXE";
        assert_eq!(find_program("k9s", r"C:\tools", "", exists), Some(PathBuf::from(r"C:\tools\k9s.EXE")));
        let exists = |candidate: &str| candidate == r"C:\tools\k9s.PS1";
        assert_eq!(find_program("k9s", r"C:\tools", ".PS1", exists), Some(PathBuf::from(r"C:\tools\k9s.PS1")));
    }
}
