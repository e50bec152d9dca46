//! `edgethumb warm` against the native server and a counting origin:
//! sharding, warmed entries served as hits, resuming from a state file,
//! and which failures are retried.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use edgethumb::request::signature::KeyPair;
use edgethumb::request::url_builder::{self, SourceEncoding};
use support::fixtures;
use support::harness::{closed_port_base, target_env, TEST_KEY, TEST_SALT};
use support::native::{binary, NativeServer};
use support::origin::{Origin, Route};

const OPTIONS: &str = "rs:fit:32:0";
/// What `warm` sends without `--accept` (a browser's image Accept).
const BROWSER_ACCEPT: &str = support::cases::CHROME_ACCEPT;

fn work_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgethumb-warm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn warm_cmd(base: &str, input: &Path, extra: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(binary());
    cmd.arg("warm")
        .arg("--base")
        .arg(base)
        .arg(input)
        .args(["--progress", "json"])
        .args(extra)
        .env("EDGETHUMB_KEY", TEST_KEY)
        .env("EDGETHUMB_SALT", TEST_SALT)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

fn summary(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.contains("\"summary\""))
        .unwrap_or_else(|| {
            panic!(
                "no summary: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    serde_json::from_str(line).unwrap()
}

fn n(v: &serde_json::Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"))
}

/// The URL `warm` makes of an `options<TAB>source` line.
fn signed(base: &str, source: &str) -> String {
    let key = KeyPair::from_hex(TEST_KEY, TEST_SALT).unwrap();
    let path = url_builder::unsigned_path(OPTIONS, source, None, SourceEncoding::Base64);
    format!("{base}{}", url_builder::sign_path(&path, Some(&key), 32))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_warm_each_entry_exactly_once() {
    let origin = Origin::start().await;
    let server = NativeServer::start(&target_env(&origin, &closed_port_base())).await;
    let dir = work_dir("shards");
    let jpeg = fixtures::jpeg(64, 48);
    let mut lines = vec!["# 200 thumbnails, one a line".to_string()];
    let mut sources = Vec::new();
    for i in 0..200 {
        let src = origin.route(
            &format!("/w/{i}.jpg"),
            Route::Body(jpeg.clone(), "image/jpeg"),
        );
        lines.push(format!("{OPTIONS}\t{src}"));
        sources.push((format!("/w/{i}.jpg"), src));
    }
    let input = dir.join("work.tsv");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();

    // Three workers at once, as an orchestrator would run them.
    let runs = futures_util::future::join_all((0..3).map(|i| {
        let shard = format!("{i}/3");
        let mut cmd = warm_cmd(
            &server.base,
            &input,
            &["--shard", &shard, "--concurrency", "4"],
        );
        async move { cmd.output().await.unwrap() }
    }))
    .await;
    let mut ok = 0;
    for (i, out) in runs.iter().enumerate() {
        assert!(
            out.status.success(),
            "shard {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s = summary(out);
        println!("shard {i}: {s}");
        assert!(n(&s, "total") == 66 || n(&s, "total") == 67, "{s}");
        assert_eq!(n(&s, "ok"), n(&s, "total"));
        assert_eq!(s["percentage_complete"].as_f64(), Some(100.0));
        ok += n(&s, "ok");
        // Progress lines for an orchestrator went to stderr (at least the
        // summary's fields are there; a short run may print no tick).
    }
    assert_eq!(ok, 200);
    for (path, _) in &sources {
        assert_eq!(origin.hits(path), 1, "{path}");
    }

    // Warmed: every thumbnail is now a cache hit, and the origin stays flat.
    let client = support::over_http::client();
    for (path, src) in &sources {
        let r = client
            .get(signed(&server.base, src))
            .header("accept", BROWSER_ACCEPT)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["x-edgethumb-cache"].to_str().unwrap(),
            "hit",
            "{path}"
        );
        assert_eq!(origin.hits(path), 1, "{path}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_job_resumes_from_its_state_file() {
    let origin = Origin::start().await;
    let server = NativeServer::start(&target_env(&origin, &closed_port_base())).await;
    let dir = work_dir("resume");
    let jpeg = fixtures::jpeg(64, 48);
    let mut lines = Vec::new();
    for i in 0..40 {
        let src = origin.route(
            &format!("/r/{i}.jpg"),
            Route::Slow(Duration::from_millis(150), jpeg.clone()),
        );
        lines.push(format!("{OPTIONS}\t{src}"));
    }
    let input = dir.join("work.tsv");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let state = dir.join("state");
    let state_arg = state.to_string_lossy().to_string();
    let args = ["--state", state_arg.as_str(), "--concurrency", "2"];

    let mut first = warm_cmd(&server.base, &input, &args).spawn().unwrap();
    let recorded = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let k = std::fs::read_to_string(&state).map_or(0, |s| s.lines().count());
            if k >= 10 {
                return k;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the first run recorded nothing");
    first.kill().await.unwrap();
    let done: Vec<String> = std::fs::read_to_string(&state)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        done.len() >= recorded && done.len() < 40,
        "{} done",
        done.len()
    );

    let out = warm_cmd(&server.base, &input, &args)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out);
    println!("resumed after {} done: {s}", done.len());
    assert_eq!(n(&s, "skipped"), done.len() as u64);
    assert_eq!(n(&s, "ok"), 40 - done.len() as u64);
    assert_eq!(std::fs::read_to_string(&state).unwrap().lines().count(), 40);
    // What was recorded was not asked for again.
    for line in &done {
        let url = line.split('\t').nth(1).unwrap();
        let i = (0..40)
            .find(|i| url == signed(&server.base, &format!("{}/r/{i}.jpg", origin.base())))
            .expect("a state line for a work line");
        assert_eq!(origin.hits(&format!("/r/{i}.jpg")), 1, "entry {i}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_and_client_errors_are_not() {
    let origin = Origin::start().await;
    let mut env = target_env(&origin, &closed_port_base());
    // Upstream errors not cached, so each retry reaches the origin.
    env.retain(|(k, _)| k != "EDGETHUMB_UPSTREAM_ERROR_TTL");
    env.push(("EDGETHUMB_UPSTREAM_ERROR_TTL".into(), "0".into()));
    let server = NativeServer::start(&env).await;
    let dir = work_dir("retry");
    let flaky = origin.route(
        "/f/flaky.jpg",
        Route::Flaky {
            fail: 2,
            status: 503,
            body: fixtures::jpeg(64, 48),
        },
    );
    let gone = origin.route("/f/gone.jpg", Route::Status(404));
    let fine = origin.route(
        "/f/fine.jpg",
        Route::Body(fixtures::jpeg(64, 48), "image/jpeg"),
    );
    let gone_line = format!("{OPTIONS}\t{gone}");
    // One line as a signed path, one as a full URL, one to sign.
    let fine_path = signed("", &fine);
    let lines = [signed(&server.base, &flaky), gone_line.clone(), fine_path];
    let input = dir.join("work.txt");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let failed = dir.join("failed.txt");
    let failed_arg = failed.to_string_lossy().to_string();

    let out = warm_cmd(&server.base, &input, &["--failed", &failed_arg])
        .output()
        .await
        .unwrap();
    let s = summary(&out);
    println!("{s}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failure makes the exit code non-zero"
    );
    assert_eq!((n(&s, "ok"), n(&s, "failed"), n(&s, "retries")), (2, 1, 2));
    assert_eq!(origin.hits("/f/flaky.jpg"), 3, "two 503s retried, then 200");
    assert_eq!(origin.hits("/f/gone.jpg"), 1, "a 404 is not retried");
    assert_eq!(origin.hits("/f/fine.jpg"), 1);
    assert_eq!(
        std::fs::read_to_string(&failed).unwrap(),
        format!("{gone_line}\n")
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"event\":\"failed\""), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
