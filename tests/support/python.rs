#![allow(dead_code)]
//! The Python side of the test harness: the cached virtualenv that
//! `tests/support/testenv.sh` prepares (Synapse and embedded PostgreSQL), and
//! spawning the `synapse.py` / `postgres.py` watchdog scripts from it.
//!
//! The watchdog scripts run their server until their stdin reaches EOF. We keep
//! the write end of that pipe in the `Child`, so the server stops when the
//! `Child` is dropped *or* when this test process exits for any reason.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// The package root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/support`, where the scripts live.
pub fn support_dir() -> PathBuf {
    repo_root().join("tests").join("support")
}

/// `$OPENMEET_TEST_CACHE`, else `<repo>/target/test-env`: the venv and the
/// servers' scratch directories.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("OPENMEET_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target").join("test-env"))
}

/// The venv's python, after making sure the venv exists (runs testenv.sh
/// once per process). Panics with the script's explanation when it fails.
pub fn venv_python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(ensure_venv) {
        Ok(python) => python.clone(),
        Err(message) => panic!("{message}"),
    }
}

fn ensure_venv() -> Result<PathBuf, String> {
    let script = support_dir().join("testenv.sh");
    let output = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!(
                "could not run {} with bash ({e}): the end-to-end tests need bash.",
                script.display()
            )
        })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "the test virtualenv with Synapse and embedded PostgreSQL could not be prepared \
             ({} exited with {}):\n{stderr}",
            script.display(),
            output.status
        ));
    }
    if !stderr.trim().is_empty() {
        eprint!("{stderr}");
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let python = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| PathBuf::from(l.trim()));
    match python {
        Some(python) if python.exists() => Ok(python),
        _ => Err(format!(
            "{} succeeded but did not print the path of an existing python as its last line \
             (it printed {stdout:?}); delete {} and run the tests again.",
            script.display(),
            cache_dir().join("venv").display()
        )),
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago, and never handed out before in this
/// process (the operating system may offer a just-released port again). Something else can still
/// take it before it is bound: `Daemon::start` retries with new ports when that happens.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| {
                panic!(
                    "could not bind a free port on 127.0.0.1 ({e}); is the loopback interface up?"
                )
            });
        let mut handed_out = HANDED_OUT
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// A new scratch directory `<cache>/<kind>-<pid>-<n>` for one server; also
/// removes the ones left by test processes that no longer run.
pub fn scratch_dir(kind: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let cache = cache_dir();
    prune_dead_scratch_dirs(&cache);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = cache.join(format!("{kind}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| {
        panic!(
            "could not create {} ({e}); make {} writable.",
            dir.display(),
            cache.display()
        )
    });
    dir
}

/// Scratch dirs are named `<kind>-<pid>-<n>`; drop those whose process is
/// gone (only where /proc tells us; elsewhere they stay until `cargo clean`).
fn prune_dead_scratch_dirs(cache: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let parts: Vec<&str> = name.split('-').collect();
        let [_kind, pid, n] = parts[..] else {
            continue;
        };
        if let (Ok(pid), Ok(_)) = (pid.parse::<u32>(), n.parse::<u32>())
            && pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
            && entry.path().is_dir()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Starts `tests/support/<script>` with the venv's python, its stdin piped
/// (the watchdog: keep the returned `Child`, or leak it, to keep the server)
/// and its stderr in `stderr_log`, and waits for its `READY <url>` line.
/// On failure the error says what happened and includes the script's stderr.
pub fn spawn_until_ready(
    script: &str,
    args: &[String],
    stderr_log: &Path,
    timeout: Duration,
) -> Result<(Child, String), String> {
    let script_path = support_dir().join(script);
    let stderr = File::create(stderr_log)
        .map_err(|e| format!("could not create {} ({e}).", stderr_log.display()))?;
    let mut child = Command::new(venv_python())
        .arg(&script_path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("could not start {} ({e}).", script_path.display()))?;

    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let ready = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("READY ").map(|url| url.trim().to_owned()));
        let _ = tx.send(ready);
    });

    let failure = match rx.recv_timeout(timeout) {
        Ok(Some(url)) => return Ok((child, url)),
        Ok(None) => format!("{script} exited before it was ready"),
        Err(_) => format!("{script} was not ready within {} s", timeout.as_secs()),
    };
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(stderr_log).unwrap_or_default();
    Err(format!(
        "{failure}. Its output ({}):\n{log}",
        stderr_log.display()
    ))
}

/// The last `lines` lines of a text file ("" when it cannot be read).
pub fn file_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs `script` (`python -I -c`) with the venv's python, `input` on its stdin; returns its
/// stdout, or panics with its stderr when it fails (`what` says which script, for the message).
pub fn run_script(what: &str, script: &str, input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new(venv_python())
        .args(["-I", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the venv's python");
    child
        .stdin
        .take()
        .expect("the script's stdin")
        .write_all(input)
        .expect("write the script's input");
    let output = child.wait_with_output().expect("the script's output");
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}
