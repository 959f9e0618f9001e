//! The files a login writes and where: a kubeconfig that is not a regular
//! file or that the user may not write is refused before the browser opens,
//! a replaced kubeconfig keeps its owner and group, a secret makes it
//! private, a kubeconfig of 20,000 contexts is read and kept, and a session
//! directory another user planted or could swap is refused.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use super::hostile::{
    FOREIGN_KUBECONFIG, NOBODY, Scene, assert_failed_naming, give_to_nobody, oulogin_unprivileged, running_as_root,
};

/// A character device like `/dev/null` (1, 3) at `path` (mknod needs root,
/// as CI runs), else a named pipe, which must be refused in the same way.
fn make_device_or_pipe(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path inside the test's own temporary directory.
    if unsafe { libc::mknod(c_path.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) } != 0 {
        // SAFETY: as above.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o666) }, 0, "{}", std::io::Error::last_os_error());
    }
}

#[test]
fn a_kubeconfig_that_is_a_device_is_refused_before_the_browser_and_stays_a_device() {
    let scene = Scene::new();
    let device = scene.env.root().join("null");
    make_device_or_pipe(&device);
    let output =
        scene.env.oulogin(scene.login_args()).env("KUBECONFIG", &device).timeout(Duration::from_secs(60)).run();
    assert_failed_naming(&output, &format!("kubeconfig `{}` is a", device.display()), true);
    assert!(output.stderr.contains("not a regular file"), "{output}");
    assert_eq!(scene.browser.opened(), 0, "a browser opened for a login that cannot be written:\n{output}");
    let file_type = std::fs::symlink_metadata(&device).unwrap().file_type();
    assert!(file_type.is_char_device() || file_type.is_fifo(), "the device was replaced: {file_type:?}");
    let beside: Vec<_> = std::fs::read_dir(scene.env.root()).unwrap().map(|entry| entry.unwrap().file_name()).collect();
    assert!(!beside.iter().any(|name| name.to_string_lossy().starts_with("null.")), "{beside:?}");
    assert!(!scene.session_file().exists());
}

#[test]
fn a_write_protected_kubeconfig_is_refused_before_the_browser_as_kubectl_refuses_it() {
    let scene = Scene::new();
    give_to_nobody(scene.env.root());
    give_to_nobody(scene.browser.urls_file().parent().unwrap());
    std::fs::set_permissions(&scene.env.kubeconfig, std::fs::Permissions::from_mode(0o444)).unwrap();
    // What kubectl says about the same file, as the same user.
    let kubectl = oulogin_unprivileged_kubectl(&scene);
    assert!(!kubectl.success() && kubectl.stderr.contains("permission denied"), "{kubectl}");
    let output = oulogin_unprivileged(&scene.env, &scene.login_args()).run();
    assert_failed_naming(
        &output,
        &format!("cannot write kubeconfig `{}`: permission denied", scene.env.kubeconfig.display()),
        true,
    );
    assert!(output.stderr.contains("chmod u+w"), "{output}");
    assert_eq!(scene.browser.opened(), 0, "a browser opened for a login that cannot be written:\n{output}");
    assert_eq!(std::fs::read_to_string(&scene.env.kubeconfig).unwrap(), FOREIGN_KUBECONFIG);
    assert_eq!(std::fs::metadata(&scene.env.kubeconfig).unwrap().mode() & 0o777, 0o444);
}

/// `kubectl config set-context x` on the scene's kubeconfig, as `nobody` when we are root.
fn oulogin_unprivileged_kubectl(scene: &Scene) -> crate::common::Output {
    let kubectl = crate::common::kubectl_path().display().to_string();
    let args = ["config", "set-context", "x", "--kubeconfig"].map(String::from);
    let mut full: Vec<String> = if running_as_root() {
        ["--reuid=65534", "--regid=65534", "--clear-groups", "--", &kubectl].map(String::from).to_vec()
    } else {
        Vec::new()
    };
    full.extend(args);
    full.push(scene.env.kubeconfig.display().to_string());
    if running_as_root() {
        scene.env.command("/usr/bin/setpriv", full).run()
    } else {
        scene.env.command(&kubectl, full).run()
    }
}

#[test]
fn a_kubeconfig_root_logs_in_to_keeps_its_owner_and_group() {
    let scene = Scene::new();
    if running_as_root() {
        // `sudo kubectl oulogin` on another user's kubeconfig.
        std::os::unix::fs::chown(&scene.env.kubeconfig, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let before = std::fs::metadata(&scene.env.kubeconfig).unwrap();
    scene.login(&[]).assert_success();
    let after = std::fs::metadata(&scene.env.kubeconfig).unwrap();
    assert_ne!(before.ino(), after.ino(), "the kubeconfig was replaced, not written in place");
    assert_eq!((after.uid(), after.gid(), after.mode() & 0o7777), (before.uid(), before.gid(), before.mode() & 0o7777));
    assert!(std::fs::read_to_string(&scene.env.kubeconfig).unwrap().contains("not-ours-to-touch"));
}

#[test]
fn auth_provider_tokens_make_a_readable_kubeconfig_private_and_say_so() {
    let scene = Scene::new();
    std::fs::set_permissions(&scene.env.kubeconfig, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = scene.login(&["--auth-provider"]);
    output.assert_success();
    assert_eq!(std::fs::metadata(&scene.env.kubeconfig).unwrap().mode() & 0o777, 0o600);
    let warning =
        output.stderr.lines().find(|line| line.contains("made private")).unwrap_or_else(|| panic!("{output}"));
    assert!(warning.contains(&format!("`{}`", scene.env.kubeconfig.display())) && warning.contains("644"), "{output}");
    assert!(String::from_utf8(scene.env.read_kubeconfig()).unwrap().contains("refresh-token"));

    // The exec stanza holds no secret: the mode the user chose stays.
    let scene = Scene::new();
    std::fs::set_permissions(&scene.env.kubeconfig, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = scene.login(&[]);
    output.assert_success();
    assert_eq!(std::fs::metadata(&scene.env.kubeconfig).unwrap().mode() & 0o777, 0o644);
    assert!(!output.stderr.contains("made private"), "{output}");
}

#[test]
fn a_login_into_a_kubeconfig_of_twenty_thousand_contexts_keeps_them_all() {
    let scene = Scene::new();
    scene.env.write_kubeconfig(&crate::fake::kubeconfigs::other_tools_contexts(
        20_000,
        "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t",
    ));
    scene.login(&[]).assert_success();
    let names = scene.env.kubectl(["config", "get-contexts", "-o", "name"]).timeout(Duration::from_secs(60)).run();
    names.assert_success();
    let names: Vec<&str> = names.stdout.lines().collect();
    assert_eq!(names.len(), 20_001, "{:?}", &names[..3]);
    assert!(names.contains(&"context-19999") && names.contains(&scene.fake.cluster_name()));
    let status = scene.env.oulogin(["status"]).timeout(Duration::from_secs(60)).run();
    status.assert_success();
    assert!(status.stdout.contains(scene.fake.cluster_name()), "{status}");
}

#[test]
fn a_planted_session_directory_symlink_is_refused_and_cannot_be_swapped_in_later() {
    let scene = Scene::new();
    // KUBECACHEDIR on a shared directory, sticky as /tmp is.
    let shared = scene.env.root().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let theirs = scene.env.root().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
    let planted = shared.join("oulogin");
    std::os::unix::fs::symlink(&theirs, &planted).unwrap();
    if running_as_root() {
        // Made by another user, as on a shared host.
        std::os::unix::fs::lchown(&theirs, Some(NOBODY), Some(NOBODY)).unwrap();
        std::os::unix::fs::lchown(&planted, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let output = scene.env.oulogin(scene.login_args()).env("KUBECACHEDIR", &shared).run();
    assert_failed_naming(&output, &format!("`{}`", planted.display()), true);
    assert!(output.stderr.contains("symbolic link"), "{output}");
    assert_eq!(scene.browser.opened(), 0, "{output}");
    assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), 0, "something was written where the link points");

    // With the link gone, the login makes its own directory there; another
    // user cannot move it away or replace it (the sticky bit), so what was
    // checked is what is written.
    std::fs::remove_file(&planted).unwrap();
    scene.env.oulogin(scene.login_args()).env("KUBECACHEDIR", &shared).run().assert_success();
    let session_dir = std::fs::symlink_metadata(&planted).unwrap();
    assert!(session_dir.is_dir() && session_dir.mode() & 0o777 == 0o700);
    if running_as_root() {
        let moved = scene
            .env
            .command(
                "/usr/bin/setpriv",
                ["--reuid=65534", "--regid=65534", "--clear-groups", "--", "mv"]
                    .map(String::from)
                    .into_iter()
                    .chain([planted.display().to_string(), shared.join("x").display().to_string()]),
            )
            .run();
        assert!(!moved.success() && moved.stderr.contains("not permitted"), "{moved}");
        assert!(std::fs::symlink_metadata(&planted).unwrap().is_dir());
    }

    // A shared parent that is not sticky lets others swap `oulogin`: refused, naming it.
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let output = scene.env.oulogin(scene.login_args()).env("KUBECACHEDIR", &shared).run();
    assert_failed_naming(&output, &format!("`{}`", shared.display()), true);
    assert!(output.stderr.contains("not sticky"), "{output}");
}

#[test]
fn a_logout_the_kubeconfig_cannot_take_leaves_the_session_in_place() {
    let scene = Scene::new();
    scene.login(&[]).assert_success();
    let session = scene.session_file();
    assert!(session.exists());
    give_to_nobody(scene.env.root());
    std::fs::set_permissions(&scene.env.kubeconfig, std::fs::Permissions::from_mode(0o444)).unwrap();
    let before = std::fs::read(&scene.env.kubeconfig).unwrap();
    let output = oulogin_unprivileged(&scene.env, &["logout".to_string()]).run();
    assert_failed_naming(
        &output,
        &format!("cannot write kubeconfig `{}`: permission denied", scene.env.kubeconfig.display()),
        true,
    );
    // Refused as a whole: the session still serves, the kubeconfig is untouched.
    assert!(session.exists(), "logout removed the session of a context it could not log out:\n{output}");
    assert_eq!(std::fs::read(&scene.env.kubeconfig).unwrap(), before);
}
