//! A small tmpfs of a test's own, which the test fills to give the daemon a full volume and then
//! frees again. Mounting needs root with mount rights (`CAP_SYS_ADMIN`): a test that needs it fails
//! with how to get them rather than being skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Tmpfs {
    pub dir: PathBuf,
    ballast: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size_bytes` on `dir` (created if missing).
    pub fn mount(dir: &Path, size_bytes: u64) -> Self {
        std::fs::create_dir_all(dir).expect("create the mount point");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size_bytes},mode=0755"))
            .arg("openmeet-test-tmpfs")
            .arg(dir)
            .output()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot run `mount` ({error}): this test mounts a small tmpfs to give the \
                     daemon a full volume; install util-linux (Debian: apt-get install mount)"
                )
            });
        assert!(
            output.status.success(),
            "`mount -t tmpfs` on {} failed ({}): {}\nThis test fills a small tmpfs of its own to \
             give SQLite a full volume, which needs root with mount rights: run the tests as root \
             on a machine or VM, or in a container started with `--cap-add SYS_ADMIN` (or \
             `--privileged`).",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Self {
            dir: dir.to_owned(),
            ballast: dir.join("ballast"),
        }
    }

    /// Fills every free byte with a ballast file; returns how many bytes it took.
    pub fn fill(&self) -> u64 {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.ballast)
            .expect("create the ballast file");
        let mut written = 0u64;
        for chunk in [64 * 1024, 4096, 512, 1] {
            let bytes = vec![0x5au8; chunk];
            loop {
                match file.write(&bytes) {
                    Ok(0) => break,
                    Ok(n) => written += n as u64,
                    Err(error) if error.kind() == std::io::ErrorKind::StorageFull => break,
                    Err(error) => panic!("filling {}: {error}", self.dir.display()),
                }
            }
        }
        match file.sync_all() {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::StorageFull => {}
            Err(error) => panic!("syncing the ballast: {error}"),
        }
        written
    }

    /// Removes the ballast: the space is back.
    pub fn free(&self) {
        std::fs::remove_file(&self.ballast).expect("remove the ballast file");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|status| status.success());
        if !unmounted {
            // Something still holds a file there (a daemon being killed): detach it anyway.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}
