//! The container image's run-time contract: the binary alone, as a non-root user, with a
//! read-only root and only `/tmp` writable, checked in a minimal root built from the binary and
//! the libraries it links.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::render::{BIN, SECRETS_DIR, config_text, must};
use crate::support::python::{free_port, scratch_dir};

/// The image's run-time contract, without Docker: a root holding only the binary, the shared
/// libraries it links and /etc/passwd (no shell, like the distroless runtime image), mounted
/// read-only, with a tmpfs on /tmp, entered as the image's non-root user 65532; the chart's config
/// and secrets laid out at the chart's paths.
#[test]
fn binary_runs_help_and_check_from_a_read_only_root_with_only_tmp_writable() {
    let work = scratch_dir("rootfs");
    let root = work.join("root");
    build_minimal_root(&root, "fixed");
    assert!(!root.join("bin/sh").exists());
    let before = tree(&root);

    let (code, stdout, stderr) = run_in_read_only_root(&root, &["--help"], &[]);
    assert_eq!(
        code, 0,
        "--help failed in the read-only root:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("Usage: openmeet-appservice"), "{stdout}");
    assert_eq!(
        tmp_files(&stdout),
        Vec::<String>::new(),
        "--help wrote to /tmp"
    );

    let unreachable = format!("http://127.0.0.1:{}", free_port());
    let (code, stdout, stderr) = run_in_read_only_root(
        &root,
        &["check", "--config", "/etc/openmeet-appservice/config.yaml"],
        &[
            ("OPENMEET_AS__HOMESERVER__URL", unreachable.as_str()),
            (
                "OPENMEET_AS__DATABASE__URL",
                "sqlite:///tmp/openmeet-appservice.db",
            ),
        ],
    );
    assert_eq!(
        code, 12,
        "check against no homeserver must exit 12 (`homeserver does not answer`) after the config and \
         database steps pass:\n{stdout}\n{stderr}"
    );
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains("ok   config") && all.contains("ok   database"),
        "{all}"
    );
    let written: Vec<String> = tmp_files(&stdout)
        .into_iter()
        .filter(|f| !f.starts_with("openmeet-appservice.db"))
        .collect();
    assert_eq!(
        written,
        Vec::<String>::new(),
        "check wrote to /tmp beyond its database"
    );
    assert_eq!(
        tree(&root),
        before,
        "something in the read-only root changed"
    );
}

const TMP_MARKER: &str = "\n--- files in /tmp:\n";

fn tmp_files(stdout: &str) -> Vec<String> {
    let listing = stdout
        .split_once(TMP_MARKER)
        .map(|(_, l)| l)
        .unwrap_or_else(|| panic!("no /tmp listing in {stdout}"));
    listing
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Runs the binary in `root` (read-only, tmpfs on /tmp, /proc bound) as uid/gid 65532 with only
/// `env` in its environment; returns (exit code, stdout with the /tmp listing appended, stderr).
fn run_in_read_only_root(
    root: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let script = r#"set -e
root="$1"; shift
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount -t tmpfs -o size=16m,mode=1777 tmpfs "$root/tmp"
mount --bind /proc "$root/proc"
set +e
chroot --userspec=65532:65532 "$root" /usr/local/bin/openmeet-appservice "$@"
code=$?
printf '\n--- files in /tmp:\n'
ls -A "$root/tmp"
exit $code
"#;
    let mut command = Command::new("unshare");
    command
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            script,
            "sh",
        ])
        .arg(root)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap_or_else(|e| {
        panic!(
            "could not run unshare ({e}): this test needs util-linux's unshare, mount and chroot"
        )
    });
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.contains("mount:") && !stderr.contains("unshare:") && !stderr.contains("chroot:"),
        "could not set up the read-only root: the test must run as root (or with CAP_SYS_ADMIN and \
         CAP_SYS_CHROOT) where mount namespaces are allowed:\n{stderr}"
    );
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr,
    )
}

/// The files under `dir` with their sizes and modification times.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            files.insert(entry.path(), (meta.len(), meta.modified().unwrap()));
            if meta.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    files
}

/// The binary, the libraries `ldd` says it loads, the image's user, and the chart's config and
/// secrets for the rendered case `name`.
fn build_minimal_root(root: &Path, name: &str) {
    let copy = |from: &Path, to: &Path| {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {} ({e})", from.display()));
    };
    copy(
        Path::new(BIN),
        &root.join("usr/local/bin/openmeet-appservice"),
    );
    // The runtime image's CA bundle (distroless ships it): the HTTP client refuses to start without.
    let ca = "etc/ssl/certs/ca-certificates.crt";
    copy(&Path::new("/").join(ca), &root.join(ca));
    let ldd = Command::new("ldd")
        .arg(BIN)
        .output()
        .expect("ldd (libc-bin) lists the libraries to copy");
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = match line.split_once("=>") {
            Some((_, target)) => target.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            copy(Path::new(path), &root.join(path.trim_start_matches('/')));
        }
    }
    for dir in ["tmp", "proc", "etc/openmeet-appservice"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nnonroot:x:65532:\n").unwrap();
    std::fs::write(
        root.join("etc/openmeet-appservice/config.yaml"),
        config_text(name),
    )
    .unwrap();
    let secrets = root.join(SECRETS_DIR.trim_start_matches('/'));
    std::fs::create_dir_all(&secrets).unwrap();
    for (key, value) in must(name, "Secret", "-tokens")["decoded"]
        .as_object()
        .unwrap()
    {
        std::fs::write(secrets.join(key), value.as_str().unwrap()).unwrap();
    }
    // As the pod sees them: readable by the user (the chart's fsGroup), writable by nobody.
    let status = Command::new("chmod")
        .args(["-R", "a+rX,a-w"])
        .arg(root)
        .status()
        .unwrap();
    assert!(status.success());
}
