//! Serves the Spin component with a real wasi:http host, `wasmtime serve`,
//! on a free loopback port.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::log::LogLines;
use super::native::built;

pub struct WasmtimeServer {
    pub base: String,
    /// What it wrote to stderr (the component's stderr among it), also echoed.
    pub log: LogLines,
    _child: Child,
}

/// The component, rebuilt if stale.
pub fn component() -> PathBuf {
    built(
        "EDGETHUMB_SPIN_WASM",
        &[
            "build",
            "--quiet",
            "--profile",
            "wasm",
            "--target",
            "wasm32-wasip2",
            "-p",
            "edgethumb-spin",
        ],
        &["wasm32-wasip2", "wasm", "edgethumb_spin.wasm"],
    )
}

/// `WASMTIME` if set, else the copy `scripts/test` installs under
/// `.tools/`, else `wasmtime` on the PATH.
pub fn wasmtime() -> PathBuf {
    if let Ok(p) = std::env::var("WASMTIME") {
        return PathBuf::from(p);
    }
    let local = super::harness::repo_root().join(".tools/wasmtime/wasmtime_cli/wasmtime");
    if local.exists() {
        return local;
    }
    PathBuf::from("wasmtime")
}

impl WasmtimeServer {
    pub async fn start(env: &[(String, String)]) -> WasmtimeServer {
        let mut cmd = Command::new(wasmtime());
        cmd.args(["serve", "-Scli", "--addr", "127.0.0.1:0"]);
        for (k, v) in env {
            cmd.arg("--env").arg(format!("{k}={v}"));
        }
        cmd.arg(component())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .expect("start wasmtime serve (run scripts/test to install it)");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix("Serving HTTP on ") {
                    return rest.trim_end_matches('/').to_string();
                }
                eprintln!("wasmtime: {line}");
            }
            panic!("wasmtime serve exited before serving");
        })
        .await
        .expect("wasmtime serve did not start in 60 s");
        let log = LogLines::default();
        let into = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("wasmtime: {line}");
                into.push(line);
            }
        });
        WasmtimeServer {
            base,
            log,
            _child: child,
        }
    }
}
