//! Unix files: permissions, owners, devices, inodes and atomic replace.
//! Privacy is a mode (0700 directories, 0600 files) and an owner uid; a
//! directory's entries are safe when only we or root may rename them.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{FileAction, Refusal};

/// Creates `dir` and its missing parents, each new one 0700.
pub fn make_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Why a directory that should hold our secrets cannot: another user owns
/// it, or group or others may write it.
pub fn private_dir_refusal(_dir: &Path, meta: &Metadata) -> Option<Refusal> {
    let uid = effective_uid();
    if meta.uid() != uid {
        return Some(Refusal {
            action: FileAction::UseForeignDir,
            why: format!("it is owned by uid {}, not by you (uid {uid})", meta.uid()),
        });
    }
    (meta.mode() & 0o022 != 0).then(|| Refusal {
        action: FileAction::TrustDir,
        why: format!("it is writable by group or others (mode {:o})", meta.mode() & 0o777),
    })
}

/// Why a user other than us (and root) could rename or replace entries of
/// this directory: they own it, or they may write it and it is not sticky.
/// Group write counts as ours only when the group is our own primary group
/// (the user-private-group setup, where `umask 002` makes `~/.kube` 0775).
pub fn parent_refusal(_dir: &Path, meta: &Metadata) -> Option<String> {
    let uid = effective_uid();
    // SAFETY: getegid(2) cannot fail.
    let gid = unsafe { libc::getegid() };
    let mode = meta.mode();
    let sticky = mode & 0o1000 != 0;
    if meta.uid() != 0 && meta.uid() != uid {
        return Some(format!("it is owned by uid {}, who may rename anything in it", meta.uid()));
    }
    let others_write = mode & 0o002 != 0 || (mode & 0o020 != 0 && meta.gid() != gid);
    (others_write && !sticky)
        .then(|| format!("other users may write it and it is not sticky (mode {:o})", mode & 0o7777))
}

/// Why an open file that holds secrets cannot be trusted with them: group or
/// others may read or write it, or another user owns it.
pub fn secret_file_refusal(_file: &File, _path: &Path, meta: &Metadata) -> Option<Refusal> {
    let uid = effective_uid();
    if meta.uid() == uid && meta.mode() & 0o077 == 0 {
        return None;
    }
    let action = if meta.uid() != uid { FileAction::UseForeignFile } else { FileAction::TrustFile };
    Some(Refusal {
        action,
        why: format!(
            "it holds secrets but has mode {:o} and owner uid {}; it must be 0600 and yours",
            meta.mode() & 0o777,
            meta.uid()
        ),
    })
}

/// The command that makes `quoted` (a quoted path) private, for hints.
pub fn make_private_command(quoted: &str, directory: bool) -> String {
    format!("chmod {} {quoted}", if directory { "700" } else { "600" })
}

/// How to keep other users from replacing entries of the directory
/// `quoted` (a quoted path), for hints.
pub fn protect_entries_advice(quoted: &str) -> String {
    format!("make it sticky with `chmod +t {quoted}` or private with `chmod go-w {quoted}`")
}

/// The effective uid, whose files we may trust.
fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() }
}

/// Makes the temporary files `builder` creates start with `mode` (less the umask).
pub fn temp_file_mode<'b, 'p, 's>(
    builder: &'b mut tempfile::Builder<'p, 's>,
    mode: u32,
) -> &'b mut tempfile::Builder<'p, 's> {
    builder.permissions(fs::Permissions::from_mode(mode))
}

/// Makes the files `options` creates start with `mode` (less the umask).
pub fn create_mode(options: &mut OpenOptions, mode: u32) -> &mut OpenOptions {
    options.mode(mode)
}

/// Sets the mode of `path` exactly (the umask, or a change of owner that
/// cleared set-id bits, may have left it otherwise).
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// The permission bits of an existing file, to give its replacement.
pub fn mode_of(_path: &Path, meta: &Metadata) -> u32 {
    meta.mode() & 0o7777
}

/// The owner and group a replaced file had, to give them to its replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// The owner and group of an existing file.
pub fn owner_of(meta: &Metadata) -> Owner {
    Owner { uid: meta.uid(), gid: meta.gid() }
}

/// Gives `file` to `owner`; where we may not change the owner (not root),
/// keeps at least the group if we belong to it, else leaves the file ours.
pub fn give_to(file: &File, owner: Owner) -> io::Result<()> {
    let meta = file.metadata()?;
    if (meta.uid(), meta.gid()) == (owner.uid, owner.gid) {
        return Ok(());
    }
    match std::os::unix::fs::fchown(file, Some(owner.uid), Some(owner.gid)) {
        Err(err) if err.kind() == io::ErrorKind::PermissionDenied => {
            match std::os::unix::fs::fchown(file, None, Some(owner.gid)) {
                Err(err) if err.kind() == io::ErrorKind::PermissionDenied => Ok(()),
                other => other,
            }
        }
        other => other,
    }
}

/// Renames the finished temporary file over `target` (rename(2) is atomic
/// and replaces whatever is there, open or not).
pub fn replace_with(temp: tempfile::NamedTempFile, target: &Path) -> io::Result<()> {
    temp.persist(target).map(drop).map_err(|err| err.error)
}

/// Gives the finished, locked temporary file the name `path` only if nothing
/// has that name yet: link(2) fails on an existing name, and the temporary
/// name goes with the returned file. A file system without hard links gets
/// create-exclusive, then write.
pub fn publish_new(temp: tempfile::NamedTempFile, path: &Path, content: &[u8], mode: u32) -> io::Result<File> {
    match fs::hard_link(temp.path(), path) {
        Ok(()) => Ok(temp.into_file()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Err(err),
        Err(_) => {
            let mut file = create_mode(OpenOptions::new().write(true).create_new(true), mode).open(path)?;
            let _ = file.try_lock();
            file.write_all(content)?;
            Ok(file)
        }
    }
}

/// Whether `path` (not following a final symlink) names the file we hold open.
pub fn still_names(held: &File, path: &Path) -> bool {
    match (held.metadata(), fs::symlink_metadata(path)) {
        (Ok(held), Ok(named)) => (held.dev(), held.ino()) == (named.dev(), named.ino()),
        _ => false,
    }
}

/// What changes when anyone writes a file: an in-place write changes the
/// modification time or the length; a replacing write, or a lock taken
/// anew, changes the inode or the change time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeStamp((u64, u64, u64, i64, i64, i64, i64));

/// The [`ChangeStamp`] of a file's metadata.
pub fn change_stamp(meta: &Metadata) -> ChangeStamp {
    ChangeStamp((meta.dev(), meta.ino(), meta.len(), meta.mtime(), meta.mtime_nsec(), meta.ctime(), meta.ctime_nsec()))
}

/// What `path` is when it is not a regular file ("a directory", "a named
/// pipe", ...), so that we never replace a device, pipe or directory.
pub fn special_file_kind(_path: &Path, meta: &Metadata) -> Option<&'static str> {
    let file_type = meta.file_type();
    if file_type.is_file() {
        return None;
    }
    Some(match () {
        _ if file_type.is_dir() => "a directory",
        _ if file_type.is_char_device() => "a character device",
        _ if file_type.is_block_device() => "a block device",
        _ if file_type.is_fifo() => "a named pipe",
        _ if file_type.is_socket() => "a socket",
        _ => "not a file",
    })
}

/// Why we may not write the existing file `path` (as open(2) would judge,
/// with the effective ids: root may write a read-only file), or `None`.
pub fn write_refusal(path: &Path, meta: &Metadata) -> Option<String> {
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return Some("its name holds a NUL".into());
    };
    // SAFETY: a NUL-terminated path that lives through the call; AT_EACCESS
    // asks with the effective ids, as open(2) would.
    let allowed = unsafe { libc::faccessat(libc::AT_FDCWD, c_path.as_ptr(), libc::W_OK, libc::AT_EACCESS) } == 0;
    if allowed {
        return None;
    }
    let err = io::Error::last_os_error();
    Some(match err.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => {
            format!("permission denied (mode {:o}, owner uid {})", meta.mode() & 0o7777, meta.uid())
        }
        Some(libc::EROFS) => "it is on a read-only file system".to_string(),
        _ => err.to_string(),
    })
}
