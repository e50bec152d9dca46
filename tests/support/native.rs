//! Starts the native `edgethumb serve` binary on a free loopback port.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use super::log::LogLines;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct NativeServer {
    pub base: String,
    child: Child,
    /// Its log (stderr), also echoed.
    pub log: LogLines,
}

/// The `edgethumb` binary to test: `EDGETHUMB_BIN`, else the build in
/// target/debug, rebuilt first (by `scripts/test`'s command, so both share
/// the fast tier's artifacts) if it is missing or older than any source, so
/// a stale binary is never tested. (`scripts/test` builds it up front: a
/// `cargo build` nested in `cargo test` sees another environment and would
/// flip build-script fingerprints, rebuilding TLS crates on every run.)
pub fn binary() -> PathBuf {
    built(
        "EDGETHUMB_BIN",
        &[
            "build",
            "--quiet",
            "--profile",
            "test",
            "--tests",
            "--bin",
            "edgethumb",
        ],
        &["debug", "edgethumb"],
    )
}

/// The benchmark's wasm32-wasip1 runner, rebuilt if stale (`scripts/test`
/// builds it first).
pub fn bench_runner_wasm() -> PathBuf {
    built(
        "EDGETHUMB_BENCH_WASM",
        &[
            "build",
            "--quiet",
            "--profile",
            "wasm",
            "--target",
            "wasm32-wasip1",
            "-p",
            "edgethumb-bench",
            "--bin",
            "edgethumb-bench-runner",
        ],
        &["wasm32-wasip1", "wasm", "edgethumb-bench-runner.wasm"],
    )
}

/// A build artifact to test: the path in `env` if set, else `artifact`
/// under the target dir, built with `cargo args` if stale.
pub fn built(env: &str, args: &[&str], artifact: &[&str]) -> PathBuf {
    match std::env::var(env) {
        // Relative to the repository's root, where the README's commands
        // run (the test itself runs in crates/e2e).
        Ok(p) => super::harness::repo_root().join(p),
        Err(_) => build_if_stale(args, artifact),
    }
}

/// The target directory.
pub fn target_dir() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| super::harness::repo_root().join("target"))
}

/// Runs `cargo args` if the artifact (under the target dir) is missing or
/// older than any source, and returns the artifact's path.
fn build_if_stale(args: &[&str], artifact: &[&str]) -> PathBuf {
    let root = super::harness::repo_root();
    let path = artifact.iter().fold(target_dir(), |p, part| p.join(part));
    if is_stale(&path, &["src", "crates", "Cargo.toml", "Cargo.lock"]) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(args)
            .current_dir(&root)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo {args:?} failed");
    }
    path
}

/// Whether `artifact` is missing or older than any file under `sources`
/// (paths relative to the repository root).
pub fn is_stale(artifact: &Path, sources: &[&str]) -> bool {
    let root = super::harness::repo_root();
    let built = std::fs::metadata(artifact).and_then(|m| m.modified()).ok();
    let newest = sources
        .iter()
        .filter_map(|p| newest_mtime(&root.join(p)))
        .max();
    built.is_none() || newest > built
}

fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| newest_mtime(&e.path()))
        .max()
}

impl NativeServer {
    /// Starts `edgethumb serve` with exactly `env` as its `EDGETHUMB_*`
    /// configuration (the caller's own such variables are removed).
    pub async fn start(env: &[(String, String)]) -> NativeServer {
        let mut cmd = Command::new(binary());
        cmd.args(["serve", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, _) in std::env::vars() {
            if k.starts_with("EDGETHUMB_") || k.starts_with("IMGPROXY_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd.spawn().expect("start edgethumb serve");
        let log = LogLines::default();
        let stderr = child.stderr.take().expect("stderr");
        let into = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("{line}");
                into.push(line);
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(b) = line.strip_prefix("edgethumb listening on ") {
                    return b.to_string();
                }
            }
            panic!("edgethumb serve exited before listening");
        })
        .await
        .expect("edgethumb serve did not start in 30 s");
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        NativeServer { base, child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the server is running")
    }

    /// Sends the server a signal by name (`TERM`, `INT`).
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("the server is running").to_string();
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {pid}");
    }

    /// Waits for the server to exit, at most `limit`.
    pub async fn exit_status(&mut self, limit: Duration) -> ExitStatus {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the server did not exit within {limit:?}"))
            .expect("wait for the server")
    }
}

/// One line of `/proc/<pid>/status` (`"VmRSS:"`), in KiB; 0 when unreadable.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// `GET {base}/metrics`, as {sample with its labels: value}.
pub async fn scrape_metrics(
    client: &reqwest::Client,
    base: &str,
) -> std::collections::HashMap<String, f64> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse::<f64>().ok()?))
        })
        .collect()
}
