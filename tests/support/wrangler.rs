//! Serves the Worker under `wrangler dev` (workerd) on a free loopback
//! port, offline, with its own configuration and a fresh cache state.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::log::LogLines;
use super::native::is_stale;

pub struct WranglerServer {
    pub base: String,
    /// What wrangler printed once ready (the Worker's console among it).
    pub log: LogLines,
    // Drop order: the processes, then their directory.
    _group: ProcessGroup,
    _child: Child,
    _dir: TempDir,
}

/// Signals a whole process group on drop: wrangler runs a second node
/// process and workerd under it, which must not outlive a test, even one
/// that failed while starting.
pub struct ProcessGroup(pub Option<u32>);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", "--", &format!("-{pid}")])
                .status();
        }
    }
}

fn root() -> PathBuf {
    super::harness::repo_root()
}

/// The built Worker, rebuilt with `scripts/build-worker` if it is missing
/// or older than any source.
pub fn worker_build() -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let root = root();
    let main = root.join("build/worker/index.js");
    if is_stale(&main, &["src", "crates/worker", "Cargo.toml", "Cargo.lock"]) {
        let status = std::process::Command::new(root.join("scripts/build-worker"))
            .current_dir(&root)
            .status()
            .expect("run scripts/build-worker");
        assert!(status.success(), "scripts/build-worker failed");
    }
    main
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// What a Worker runs with besides its vars.
#[derive(Clone, Default)]
pub struct Setup {
    /// Binds a local R2 bucket as `EDGETHUMB_RESULTS`.
    pub r2: bool,
    /// Local state (Cache API, R2) here, kept after the server stops;
    /// otherwise in the server's own directory, removed with it.
    pub state: Option<PathBuf>,
}

impl WranglerServer {
    /// Starts `wrangler dev` with exactly `vars` as the Worker's
    /// configuration (a generated wrangler.toml: the root one's build step
    /// and vars are not used, so every test states what it runs with).
    pub async fn start(vars: &[(String, String)]) -> WranglerServer {
        Self::start_with(vars, &Setup::default()).await
    }

    /// [`WranglerServer::start`], with bindings and state from `setup`.
    pub async fn start_with(vars: &[(String, String)], setup: &Setup) -> WranglerServer {
        // One start at a time: free ports are picked, then bound by workerd.
        static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _starting = STARTING.lock().await;
        let main = worker_build();
        let root = root();
        // Named by a counter, not a free port: a port only probed is free
        // again at once, and a second Worker given the first one's folder
        // lost it (its cwd, mid-start) when the first was dropped.
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "edgethumb-wrangler-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let compat = std::fs::read_to_string(root.join("wrangler.toml"))
            .unwrap()
            .lines()
            .find(|l| l.starts_with("compatibility_date"))
            .expect("compatibility_date in wrangler.toml")
            .to_string();
        let mut config = format!(
            "name = \"edgethumb-test\"\nmain = {}\n{compat}\n\n[vars]\n",
            toml_string(&main.to_string_lossy())
        );
        for (k, v) in vars {
            config.push_str(&format!("{k} = {}\n", toml_string(v)));
        }
        if setup.r2 {
            config.push_str(
                "\n[[r2_buckets]]\nbinding = \"EDGETHUMB_RESULTS\"\nbucket_name = \"edgethumb-results\"\n",
            );
        }
        std::fs::write(dir.join("wrangler.toml"), config).unwrap();

        let port = free_port();
        let bin = root.join("node_modules/.bin");
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new(bin.join("wrangler"));
        cmd.args(["dev", "--config"])
            .arg(dir.join("wrangler.toml"))
            .args(["--ip", "127.0.0.1", "--port", &port.to_string()])
            .args(["--inspector-port", &free_port().to_string()])
            .arg("--persist-to")
            .arg(setup.state.clone().unwrap_or_else(|| dir.join("state")))
            .args([
                "--show-interactive-dev-session=false",
                // `log`, not `info`: wrangler ranks console.log below info.
                "--log-level",
                "log",
            ])
            .current_dir(&dir)
            .env("PATH", path)
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so workerd goes down with it.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .expect("start wrangler dev (run scripts/test to install it)");
        let group = ProcessGroup(child.id());
        let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut err = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let log = LogLines::default();
        let into = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err.next_line().await {
                eprintln!("wrangler: {line}");
                into.push(line);
            }
        });
        let ready = tokio::time::timeout(Duration::from_secs(90), async {
            while let Ok(Some(line)) = out.next_line().await {
                if line.contains("Ready on http://127.0.0.1") {
                    return true;
                }
                eprintln!("wrangler: {line}");
            }
            false
        })
        .await;
        assert!(
            matches!(ready, Ok(true)),
            "wrangler dev did not start in 90 s"
        );
        let into = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                // Per-request access lines are noise; keep the rest.
                if !line.contains("[wrangler:info] GET") {
                    eprintln!("wrangler: {line}");
                }
                into.push(line);
            }
        });
        WranglerServer {
            base: format!("http://127.0.0.1:{port}"),
            log,
            _group: group,
            _child: child,
            _dir: TempDir(dir),
        }
    }
}
