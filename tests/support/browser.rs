//! Headless Chromium (Debian's `chromium`), started per page with the
//! flags this offline machine needs, and a fresh profile each time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

pub fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser"]
        .iter()
        .map(|n| PathBuf::from("/usr/bin").join(n))
        .find(|p| p.exists())
}

/// Where tests leave files worth looking at (git-ignored).
pub fn artifacts_dir() -> PathBuf {
    let d = super::harness::repo_root().join("tests/artifacts");
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn run(chromium: &Path, extra: &[String], url: &str) -> String {
    let profile = std::env::temp_dir().join(format!(
        "edgethumb-chromium-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--force-device-scale-factor=2",
        "--window-size=800,600",
        "--virtual-time-budget=20000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url)
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("chromium did not finish in 90 s")
        .expect("run chromium");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The page's DOM after load (scripts run).
pub async fn dump_dom(chromium: &Path, url: &str) -> String {
    run(chromium, &["--dump-dom".to_string()], url).await
}

pub async fn screenshot(chromium: &Path, url: &str, path: &Path) {
    run(chromium, &[format!("--screenshot={}", path.display())], url).await;
}
