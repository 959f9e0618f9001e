//! Windows files: access-control lists, owners, devices, file ids and
//! atomic replace. Privacy is an access list that grants only the user,
//! SYSTEM and Administrators (as a user profile does): set when we create a
//! private directory or file, and checked, with `platform::access`'s rules,
//! where Unix checks modes and uids. Owners are not handed on (a replaced
//! file is ours, as the kubeconfig of the user who runs us).

use std::ffi::c_void;
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::fs::{MetadataExt, OpenOptionsExt};
use std::os::windows::io::AsRawHandle;
use std::path::Path;
use std::ptr::null_mut;

use windows_sys::Win32::Foundation::{CloseHandle, ERROR_ALREADY_EXISTS, ERROR_SUCCESS, HANDLE, LocalFree};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, GetNamedSecurityInfoW,
    GetSecurityInfo, SDDL_REVISION_1, SE_FILE_OBJECT, SetNamedSecurityInfoW,
};
use windows_sys::Win32::Security::{
    ACCESS_ALLOWED_ACE, ACE_HEADER, ACL, ACL_SIZE_INFORMATION, AclSizeInformation, DACL_SECURITY_INFORMATION, EqualSid,
    GetAce, GetAclInformation, GetSecurityDescriptorDacl, GetTokenInformation, INHERIT_ONLY_ACE, IsWellKnownSid,
    OWNER_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION, PSID, SECURITY_ATTRIBUTES, TOKEN_QUERY,
    TOKEN_USER, TokenUser, WinBuiltinAdministratorsSid, WinCreatorOwnerSid, WinLocalSystemSid,
};
use windows_sys::Win32::Storage::FileSystem::{
    BY_HANDLE_FILE_INFORMATION, CreateDirectoryW, FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT,
    FILE_TYPE_CHAR, FILE_TYPE_DISK, FILE_TYPE_PIPE, GetFileInformationByHandle, GetFileType,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

use crate::error::{FileAction, Refusal};
use crate::platform::access::{self, Grant, Guarded, Trustee};

/// Creates `dir` and its missing parents, each new one private to the user
/// (and passing that on to what is created in it).
pub fn make_private_dir(dir: &Path) -> io::Result<()> {
    let mut missing: Vec<&Path> = dir.ancestors().take_while(|path| std::fs::metadata(path).is_err()).collect();
    missing.retain(|path| !path.as_os_str().is_empty());
    if missing.is_empty() {
        return Ok(());
    }
    let descriptor = private_descriptor(true)?;
    let attributes = SECURITY_ATTRIBUTES {
        nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: descriptor.0,
        bInheritHandle: 0,
    };
    for path in missing.into_iter().rev() {
        let name = wide(path);
        // SAFETY: a NUL-terminated name and a valid descriptor, both alive through the call.
        if unsafe { CreateDirectoryW(name.as_ptr(), &attributes) } == 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(ERROR_ALREADY_EXISTS as i32) {
                return Err(err);
            }
        }
    }
    Ok(())
}

/// Why a directory that should hold our secrets cannot: another user owns
/// it, or its access list lets others change what is in it.
pub fn private_dir_refusal(dir: &Path, _meta: &Metadata) -> Option<Refusal> {
    let (owner, grants) = match security_of_path(dir) {
        Ok(security) => security,
        Err(err) => {
            return Some(Refusal {
                action: FileAction::TrustDir,
                why: format!("its access list cannot be read ({err})"),
            });
        }
    };
    if !access::trusted_owner(&owner, Guarded::PrivateDir) {
        return Some(Refusal {
            action: FileAction::UseForeignDir,
            why: format!("it is owned by {}, not by you", access::describe(&owner)),
        });
    }
    access::loose_grant(&grants, Guarded::PrivateDir).map(|grant| Refusal {
        action: FileAction::TrustDir,
        why: format!(
            "its access list lets {} change what is in it (access mask {:#x})",
            access::describe(&grant.trustee),
            grant.mask
        ),
    })
}

/// Why a user other than us (and SYSTEM or Administrators) could rename or
/// replace entries of this directory: they own it, or its access list lets
/// them delete entries or take it over.
pub fn parent_refusal(dir: &Path, _meta: &Metadata) -> Option<String> {
    let (owner, grants) = match security_of_path(dir) {
        Ok(security) => security,
        Err(err) => return Some(format!("its access list cannot be read ({err})")),
    };
    if !access::trusted_owner(&owner, Guarded::Parent) {
        return Some(format!("it is owned by {}, who may rename anything in it", access::describe(&owner)));
    }
    access::loose_grant(&grants, Guarded::Parent).map(|grant| {
        format!(
            "its access list lets {} rename or remove what is in it (access mask {:#x})",
            access::describe(&grant.trustee),
            grant.mask
        )
    })
}

/// Why an open file that holds secrets cannot be trusted with them: its
/// access list lets others read or change it, or another user owns it.
pub fn secret_file_refusal(file: &File, _path: &Path, _meta: &Metadata) -> Option<Refusal> {
    let (owner, grants) = match security_of_handle(file) {
        Ok(security) => security,
        Err(err) => {
            return Some(Refusal {
                action: FileAction::TrustFile,
                why: format!("it holds secrets but its access list cannot be read ({err})"),
            });
        }
    };
    if !access::trusted_owner(&owner, Guarded::Secret) {
        return Some(Refusal {
            action: FileAction::UseForeignFile,
            why: format!("it holds secrets but is owned by {}; it must be yours", access::describe(&owner)),
        });
    }
    access::loose_grant(&grants, Guarded::Secret).map(|grant| Refusal {
        action: FileAction::TrustFile,
        why: format!(
            "it holds secrets but its access list lets {} read or change it (access mask {:#x})",
            access::describe(&grant.trustee),
            grant.mask
        ),
    })
}

/// The command that makes `quoted` (a quoted path) private, for hints:
/// the user, SYSTEM and Administrators only, nothing inherited.
pub fn make_private_command(quoted: &str, directory: bool) -> String {
    let inherit = if directory { "(OI)(CI)" } else { "" };
    format!(
        "icacls {quoted} /inheritance:r /grant:r \"%USERNAME%:{inherit}F\" \"SYSTEM:{inherit}F\" \"Administrators:{inherit}F\""
    )
}

/// How to keep other users from replacing entries of the directory
/// `quoted` (a quoted path), for hints.
pub fn protect_entries_advice(quoted: &str) -> String {
    format!(
        "remove the entries that let other users delete what is in it or change its permissions (`icacls {quoted}` \
         lists them)"
    )
}

/// Temporary files take the access list of their directory; [`set_mode`]
/// makes them private afterwards.
pub fn temp_file_mode<'b, 'p, 's>(
    builder: &'b mut tempfile::Builder<'p, 's>,
    _mode: u32,
) -> &'b mut tempfile::Builder<'p, 's> {
    builder
}

/// New files take the access list of their directory (ours is private).
pub fn create_mode(options: &mut OpenOptions, _mode: u32) -> &mut OpenOptions {
    options
}

/// Makes `path` private when `mode` gives group and others nothing (0600,
/// 0700): its access list becomes the user's, SYSTEM's and Administrators'
/// only. Any other mode leaves the inherited list as it is.
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    if mode & 0o077 != 0 {
        return Ok(());
    }
    let directory = std::fs::metadata(path)?.is_dir();
    let descriptor = private_descriptor(directory)?;
    let mut present = 0;
    let mut defaulted = 0;
    let mut dacl: *mut ACL = null_mut();
    // SAFETY: a valid descriptor; the list it points into lives as long as it does.
    if unsafe { GetSecurityDescriptorDacl(descriptor.0, &mut present, &mut dacl, &mut defaulted) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let name = wide(path);
    let what = DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION;
    // SAFETY: a NUL-terminated name and a valid list, both alive through the call.
    let status =
        unsafe { SetNamedSecurityInfoW(name.as_ptr(), SE_FILE_OBJECT, what, null_mut(), null_mut(), dacl, null_mut()) };
    win32_result(status)
}

/// The mode that stands for an existing file's access list: 0600 when it
/// is private, 0644 otherwise (so that a kubeconfig others may read is made
/// private once it holds a secret, as on Unix).
pub fn mode_of(path: &Path, _meta: &Metadata) -> u32 {
    match security_of_path(path) {
        Ok((owner, grants))
            if access::trusted_owner(&owner, Guarded::Secret)
                && access::loose_grant(&grants, Guarded::Secret).is_none() =>
        {
            0o600
        }
        _ => 0o644,
    }
}

/// Owners are not handed on: a replaced file belongs to the user who runs us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner;

/// See [`Owner`].
pub fn owner_of(_meta: &Metadata) -> Owner {
    Owner
}

/// See [`Owner`].
pub fn give_to(_file: &File, _owner: Owner) -> io::Result<()> {
    Ok(())
}

/// Moves the finished temporary file over `target` (tempfile's persist is
/// `MoveFileExW` with `MOVEFILE_REPLACE_EXISTING`), trying again for a
/// bounded time while another process holds the target open: Go programs
/// such as kubectl open files without `FILE_SHARE_DELETE`, and virus
/// scanners and editors hold them for a moment too.
pub fn replace_with(temp: tempfile::NamedTempFile, target: &Path) -> io::Result<()> {
    access::retry_replace(
        temp,
        |temp| temp.persist(target).map(drop).map_err(|err| (err.error, err.file)),
        std::thread::sleep,
    )
}

/// Gives the finished, locked temporary file the name `path` only if nothing
/// has that name yet, by a rename that refuses an existing name. (A hard
/// link would leave the temporary name in the directory while the file is
/// open, wherever deletion keeps an open file's name: wine, FAT, Windows
/// before 10.)
pub fn publish_new(temp: tempfile::NamedTempFile, path: &Path, _content: &[u8], _mode: u32) -> io::Result<File> {
    temp.persist_noclobber(path).map_err(|err| err.error)
}

/// Whether `path` (not following a final symlink) names the file we hold open.
pub fn still_names(held: &File, path: &Path) -> bool {
    let named = OpenOptions::new()
        .access_mode(0)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS)
        .open(path);
    match (file_id(held), named.and_then(|named| file_id(&named))) {
        (Ok(held), Ok(named)) => held == named,
        _ => false,
    }
}

/// The volume and file index of an open file: Windows' device and inode.
fn file_id(file: &File) -> io::Result<(u32, u32, u32)> {
    // SAFETY: all-zero is a valid BY_HANDLE_FILE_INFORMATION.
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: an open handle and a structure of the right size.
    if unsafe { GetFileInformationByHandle(file.as_raw_handle() as HANDLE, &mut info) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((info.dwVolumeSerialNumber, info.nFileIndexHigh, info.nFileIndexLow))
}

/// What changes when anyone writes a file: an in-place write changes the
/// last write time or the length; a replacing write brings the temporary
/// file's times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeStamp((u64, u64, u64));

/// The [`ChangeStamp`] of a file's metadata.
pub fn change_stamp(meta: &Metadata) -> ChangeStamp {
    ChangeStamp((meta.file_size(), meta.last_write_time(), meta.creation_time()))
}

/// What `path` is when it is not a regular file on a disk ("a directory",
/// "a character device" such as `NUL` or `CON`, "a named pipe"), so that we
/// never replace a device, pipe or directory.
pub fn special_file_kind(path: &Path, meta: &Metadata) -> Option<&'static str> {
    if meta.is_dir() {
        return Some("a directory");
    }
    let Ok(file) = OpenOptions::new().access_mode(0).custom_flags(FILE_FLAG_BACKUP_SEMANTICS).open(path) else {
        return (!meta.is_file()).then_some("not a file");
    };
    // SAFETY: an open handle.
    match unsafe { GetFileType(file.as_raw_handle() as HANDLE) } {
        FILE_TYPE_DISK if meta.is_file() => None,
        FILE_TYPE_CHAR => Some("a character device"),
        FILE_TYPE_PIPE => Some("a named pipe"),
        _ => Some("not a file"),
    }
}

/// Why we may not write the existing file `path`, or `None`: its read-only
/// attribute (which a replace cannot overwrite), or an access list that
/// denies us writing, as opening it for writing finds.
pub fn write_refusal(path: &Path, meta: &Metadata) -> Option<String> {
    if meta.permissions().readonly() {
        return Some("it is read-only (its read-only attribute is set)".to_string());
    }
    match OpenOptions::new().write(true).open(path) {
        Err(err) if err.kind() == io::ErrorKind::PermissionDenied => Some("permission denied".to_string()),
        _ => None,
    }
}

/// `path` as a NUL-terminated wide string.
fn wide(path: &Path) -> Vec<u16> {
    path.as_os_str().encode_wide().chain(std::iter::once(0)).collect()
}

/// Memory the system allocated for us, freed with `LocalFree`.
struct LocalBox(*mut c_void);

impl Drop for LocalBox {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the system allocated it with LocalAlloc, and only we free it.
            unsafe { LocalFree(self.0) };
        }
    }
}

/// An `Err` for a failed call that returns its error code.
fn win32_result(status: u32) -> io::Result<()> {
    if status == ERROR_SUCCESS { Ok(()) } else { Err(io::Error::from_raw_os_error(status as i32)) }
}

/// The private security descriptor for the user who runs us.
fn private_descriptor(directory: bool) -> io::Result<LocalBox> {
    let user = current_user()?;
    let sddl: Vec<u16> =
        access::private_sddl(&sid_string(user.sid())?, directory).encode_utf16().chain(std::iter::once(0)).collect();
    let mut descriptor = null_mut();
    // SAFETY: a NUL-terminated string; the descriptor is ours to LocalFree.
    let converted = unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            sddl.as_ptr(),
            SDDL_REVISION_1,
            &mut descriptor,
            null_mut(),
        )
    };
    if converted == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(LocalBox(descriptor))
}

/// The user's SID, in the token information that holds it.
struct UserSid {
    /// A `TOKEN_USER` and the SID after it; u64 keeps it aligned.
    buffer: Vec<u64>,
}

impl UserSid {
    fn sid(&self) -> PSID {
        // SAFETY: the buffer holds a TOKEN_USER that GetTokenInformation filled.
        unsafe { (*self.buffer.as_ptr().cast::<TOKEN_USER>()).User.Sid }
    }
}

/// The user whose process token we run with.
fn current_user() -> io::Result<UserSid> {
    let mut token: HANDLE = null_mut();
    // SAFETY: the pseudo-handle of our own process; the token handle is closed below.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut needed = 0u32;
    // SAFETY: asks only for the size the information needs.
    unsafe { GetTokenInformation(token, TokenUser, null_mut(), 0, &mut needed) };
    let mut buffer = vec![0u64; (needed as usize).div_ceil(8).max(1)];
    let size = (buffer.len() * 8) as u32;
    // SAFETY: a writable buffer of `size` bytes.
    let filled = unsafe { GetTokenInformation(token, TokenUser, buffer.as_mut_ptr().cast(), size, &mut needed) };
    let result = if filled == 0 { Err(io::Error::last_os_error()) } else { Ok(UserSid { buffer }) };
    // SAFETY: the token handle we opened above.
    unsafe { CloseHandle(token) };
    result
}

/// A SID as text ("S-1-5-21-...").
fn sid_string(sid: PSID) -> io::Result<String> {
    let mut text = null_mut();
    // SAFETY: a valid SID; the string is ours to LocalFree.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let owned = LocalBox(text.cast());
    // SAFETY: the system wrote a NUL-terminated wide string there.
    let length = (0..).take_while(|&index| unsafe { *text.add(index) } != 0).count();
    // SAFETY: `length` wide characters before the NUL.
    let units = unsafe { std::slice::from_raw_parts(text, length) };
    let string = String::from_utf16_lossy(units);
    drop(owned);
    Ok(string)
}

/// `NT SERVICE\TrustedInstaller`, which owns the system's directories.
const TRUSTED_INSTALLER_SID: &str = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464";

/// Who a SID is, for [`access`]'s rules.
fn trustee(sid: PSID, user: &UserSid) -> Trustee {
    // SAFETY: valid SIDs (from a security descriptor we hold, and our token).
    unsafe {
        if EqualSid(sid, user.sid()) != 0 {
            return Trustee::You;
        }
        if IsWellKnownSid(sid, WinLocalSystemSid) != 0 {
            return Trustee::System;
        }
        if IsWellKnownSid(sid, WinBuiltinAdministratorsSid) != 0 {
            return Trustee::Administrators;
        }
        if IsWellKnownSid(sid, WinCreatorOwnerSid) != 0 {
            return Trustee::CreatorOwner;
        }
    }
    match sid_string(sid) {
        Ok(text) if text == TRUSTED_INSTALLER_SID => Trustee::TrustedInstaller,
        Ok(text) => Trustee::Other(text),
        Err(_) => Trustee::Other("(unreadable)".to_string()),
    }
}

/// The owner and the access-granting entries of a file or directory by name.
fn security_of_path(path: &Path) -> io::Result<(Trustee, Vec<Grant>)> {
    let name = wide(path);
    let mut owner: PSID = null_mut();
    let mut dacl: *mut ACL = null_mut();
    let mut descriptor = null_mut();
    let what = OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION;
    // SAFETY: a NUL-terminated name; owner and list point into the descriptor, ours to LocalFree.
    let status = unsafe {
        GetNamedSecurityInfoW(
            name.as_ptr(),
            SE_FILE_OBJECT,
            what,
            &mut owner,
            null_mut(),
            &mut dacl,
            null_mut(),
            &mut descriptor,
        )
    };
    win32_result(status)?;
    let descriptor = LocalBox(descriptor);
    let security = read_security(owner, dacl);
    drop(descriptor);
    security
}

/// The owner and the access-granting entries of an open file.
fn security_of_handle(file: &File) -> io::Result<(Trustee, Vec<Grant>)> {
    let mut owner: PSID = null_mut();
    let mut dacl: *mut ACL = null_mut();
    let mut descriptor = null_mut();
    let what = OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION;
    // SAFETY: an open handle; owner and list point into the descriptor, ours to LocalFree.
    let status = unsafe {
        GetSecurityInfo(
            file.as_raw_handle() as HANDLE,
            SE_FILE_OBJECT,
            what,
            &mut owner,
            null_mut(),
            &mut dacl,
            null_mut(),
            &mut descriptor,
        )
    };
    win32_result(status)?;
    let descriptor = LocalBox(descriptor);
    let security = read_security(owner, dacl);
    drop(descriptor);
    security
}

/// `ACCESS_ALLOWED_ACE_TYPE` and `ACCESS_ALLOWED_CALLBACK_ACE_TYPE`, the
/// entries of a file's list that grant (same layout); denying entries only
/// take rights away.
const GRANTING_ACE_TYPES: [u8; 2] = [0, 9];

/// Reads an owner and a list (both inside a descriptor the caller holds).
fn read_security(owner: PSID, dacl: *const ACL) -> io::Result<(Trustee, Vec<Grant>)> {
    let user = current_user()?;
    let owner = trustee(owner, &user);
    if dacl.is_null() {
        // No list at all: everyone may do everything.
        let everyone = Grant { trustee: Trustee::Other("S-1-1-0".to_string()), mask: 0x1000_0000, inherit_only: false };
        return Ok((owner, vec![everyone]));
    }
    // SAFETY: all-zero is a valid ACL_SIZE_INFORMATION.
    let mut size: ACL_SIZE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: a valid list and a structure of the size given.
    let read = unsafe {
        GetAclInformation(
            dacl,
            (&mut size as *mut ACL_SIZE_INFORMATION).cast(),
            size_of::<ACL_SIZE_INFORMATION>() as u32,
            AclSizeInformation,
        )
    };
    if read == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut grants = Vec::new();
    for index in 0..size.AceCount {
        let mut entry: *mut c_void = null_mut();
        // SAFETY: an index below the list's count; the entry points into the list.
        if unsafe { GetAce(dacl, index, &mut entry) } == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: every entry starts with its header.
        let header = unsafe { &*entry.cast::<ACE_HEADER>() };
        if !GRANTING_ACE_TYPES.contains(&header.AceType) {
            continue;
        }
        // SAFETY: a granting entry has this layout, its SID starting at SidStart.
        let allowed = unsafe { &*entry.cast::<ACCESS_ALLOWED_ACE>() };
        let sid = (&allowed.SidStart as *const u32).cast_mut().cast::<c_void>();
        grants.push(Grant {
            trustee: trustee(sid, &user),
            mask: allowed.Mask,
            inherit_only: u32::from(header.AceFlags) & INHERIT_ONLY_ACE != 0,
        });
    }
    Ok((owner, grants))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_dir_is_made_private_and_passes_its_own_check() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("a").join("oulogin");
        make_private_dir(&dir).unwrap();
        let meta = std::fs::metadata(&dir).unwrap();
        assert_eq!(private_dir_refusal(&dir, &meta), None);
        let file = dir.join("secret");
        std::fs::write(&file, b"x").unwrap();
        set_mode(&file, 0o600).unwrap();
        let opened = File::open(&file).unwrap();
        assert_eq!(secret_file_refusal(&opened, &file, &opened.metadata().unwrap()), None);
        assert_eq!(mode_of(&file, &opened.metadata().unwrap()), 0o600);
    }

    /// Gives `path` the access list of an SDDL string, as `icacls` would.
    fn set_list(path: &Path, sddl: &str) {
        let text: Vec<u16> = sddl.encode_utf16().chain(std::iter::once(0)).collect();
        let mut descriptor = null_mut();
        // SAFETY: as in private_descriptor.
        let converted = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                text.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                null_mut(),
            )
        };
        assert_ne!(converted, 0, "{}", io::Error::last_os_error());
        let descriptor = LocalBox(descriptor);
        let (mut present, mut defaulted, mut dacl) = (0, 0, null_mut());
        // SAFETY: as in set_mode.
        assert_ne!(unsafe { GetSecurityDescriptorDacl(descriptor.0, &mut present, &mut dacl, &mut defaulted) }, 0);
        let name = wide(path);
        let what = DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION;
        // SAFETY: as in set_mode.
        let status = unsafe {
            SetNamedSecurityInfoW(name.as_ptr(), SE_FILE_OBJECT, what, null_mut(), null_mut(), dacl, null_mut())
        };
        win32_result(status).unwrap();
    }

    #[test]
    fn lists_that_let_others_in_are_refused() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("oulogin");
        make_private_dir(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, b"x").unwrap();
        let you = sid_string(current_user().unwrap().sid()).unwrap();
        // Everyone (WD) may read the file: a secret others can read.
        set_list(&file, &format!("D:P(A;;FA;;;{you})(A;;FR;;;WD)"));
        let opened = File::open(&file).unwrap();
        let refusal = secret_file_refusal(&opened, &file, &opened.metadata().unwrap()).unwrap();
        assert_eq!(refusal.action, FileAction::TrustFile, "{refusal:?}");
        assert!(refusal.why.contains("S-1-1-0"), "{refusal:?}");
        assert_eq!(mode_of(&file, &opened.metadata().unwrap()), 0o644);
        drop(opened);
        set_mode(&file, 0o600).unwrap();
        let opened = File::open(&file).unwrap();
        assert_eq!(secret_file_refusal(&opened, &file, &opened.metadata().unwrap()), None);
        // The verdicts on directories read a list by name as for any file; a
        // file holds it here, granting Everyone, because wine keeps a list as
        // a file's Unix mode (the user's and Everyone's entries only).
        let listed = dir.join("listed");
        std::fs::write(&listed, b"").unwrap();
        let meta = std::fs::metadata(&listed).unwrap();
        // Everyone (WD) may read our directory: fine; add to it: refused.
        set_list(&listed, &format!("D:P(A;;FA;;;{you})(A;;FR;;;WD)"));
        assert_eq!(private_dir_refusal(&listed, &meta), None);
        assert_eq!(parent_refusal(&listed, &meta), None);
        set_list(&listed, &format!("D:P(A;;FA;;;{you})(A;;FW;;;WD)"));
        let refusal = private_dir_refusal(&listed, &meta).unwrap();
        assert_eq!(refusal.action, FileAction::TrustDir, "{refusal:?}");
        // A parent others may remove entries of is refused.
        set_list(&listed, &format!("D:P(A;;FA;;;{you})(A;;DC;;;WD)"));
        assert!(parent_refusal(&listed, &meta).unwrap().contains("S-1-1-0"));
    }

    #[test]
    fn the_same_file_is_recognised_by_its_id() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("config.lock");
        let other = temp.path().join("other.lock");
        std::fs::write(&path, b"x").unwrap();
        std::fs::write(&other, b"x").unwrap();
        let held = File::open(&path).unwrap();
        assert!(still_names(&held, &path));
        assert!(!still_names(&held, &other));
        assert!(!still_names(&held, &temp.path().join("missing")));
    }

    #[test]
    fn a_replace_waits_for_a_process_that_holds_the_target_open_as_go_does() {
        use windows_sys::Win32::Storage::FileSystem::{FILE_SHARE_READ, FILE_SHARE_WRITE};
        let temp = tempfile::tempdir().unwrap();
        let target = temp.path().join("config");
        std::fs::write(&target, b"old").unwrap();
        // Go opens files without FILE_SHARE_DELETE: nothing may rename over it meanwhile.
        let held = OpenOptions::new().read(true).share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE).open(&target).unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            drop(held);
        });
        let mut replacement = tempfile::NamedTempFile::new_in(temp.path()).unwrap();
        std::io::Write::write_all(&mut replacement, b"new").unwrap();
        replace_with(replacement, &target).unwrap();
        releaser.join().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
    }
}
