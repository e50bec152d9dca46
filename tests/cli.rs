//! The `edgethumb` binary's own behaviour: `--dev` works out of the box
//! (and only on loopback), a missing key or bad configuration stops
//! start-up naming the variable, `sign` signs.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use edgethumb::request::signature::{self, KeyPair};
use support::native::binary;
use tokio::io::{AsyncBufReadExt, BufReader};

fn clean(cmd: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars() {
        if k.starts_with("EDGETHUMB_") || k.starts_with("IMGPROXY_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// `edgethumb sign` for DESIGN.md's example URL (base64 source, png).
fn sign_design_vector(env: &[(&str, &str)], dev: bool) -> String {
    let out = clean(&mut Command::new(binary()))
        .arg("sign")
        .args(dev.then_some("--dev"))
        .args([
            "--options",
            "rs:fill:300:400:0/g:sm",
            "--ext",
            "png",
            "--base64",
        ])
        .arg("http://example.com/images/curiosity.jpg")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn serve_dev_prints_working_sample_urls() {
    let mut cmd = tokio::process::Command::new(binary());
    for (k, _) in std::env::vars() {
        if k.starts_with("EDGETHUMB_") || k.starts_with("IMGPROXY_") {
            cmd.env_remove(k);
        }
    }
    // Dev mode keeps results under the user's cache directory: here, one
    // of the test's own.
    let xdg = std::env::temp_dir().join(format!("edgethumb-xdg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&xdg);
    let mut child = cmd
        .env("XDG_CACHE_HOME", &xdg)
        .args(["serve", "--dev", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(l)) = lines.next_line().await {
            out.push(l);
            if out.iter().filter(|l| l.starts_with("try: ")).count() == 3 {
                break;
            }
        }
    })
    .await
    .expect("dev server printed its URLs");
    let text = out.join("\n");
    assert!(text.contains("PUBLISHED TEST KEY"), "{text}");
    let client = support::over_http::client();
    for url in out.iter().filter_map(|l| l.strip_prefix("try: ")) {
        let resp = client.get(url).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        assert!(
            resp.headers()["x-edgethumb-dev"]
                .to_str()
                .unwrap()
                .contains("published test key"),
            "{url}"
        );
        let body = resp.bytes().await.unwrap();
        let img = image::load_from_memory(&body).unwrap();
        assert!(
            img.width() >= 300,
            "{url}: {}x{}",
            img.width(),
            img.height()
        );
    }
    // Dev mode fetches only its own sample, not arbitrary loopback URLs.
    let base = text
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("edgethumb listening on ");
    let key = KeyPair::from_hex("736563726574", "68656C6C6F").unwrap();
    let p = edgethumb::request::url_builder::unsigned_path(
        "w:10",
        &format!("{base}/health"),
        None,
        edgethumb::request::url_builder::SourceEncoding::Plain,
    );
    let url = format!(
        "{base}{}",
        edgethumb::request::url_builder::sign_path(&p, Some(&key), 32)
    );
    assert_eq!(client.get(url).send().await.unwrap().status(), 403);
    // The three thumbnails went to the dev result store (written off the
    // response path, so give the writes a moment).
    // `results-<version>/v1/<2 hex>/<key>`.
    let results = xdg.join("edgethumb");
    let count = || support::files_under(&results).len();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(), 3, "{}", results.display());
    drop(child);
    let _ = std::fs::remove_dir_all(&xdg);
}

/// The review's finding: a secret that did not mount (unset or empty)
/// must stop start-up, even with an allowlist, never fall back to the
/// published key; and `--dev` is refused off loopback.
#[test]
fn serve_without_a_key_exits_78_and_dev_stays_on_loopback() {
    for key in [None, Some("")] {
        let mut cmd = Command::new(binary());
        clean(&mut cmd)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("EDGETHUMB_ALLOWED_SOURCES", "https://images.example.com/");
        if let Some(k) = key {
            cmd.env("EDGETHUMB_KEY", k).env("EDGETHUMB_SALT", k);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "key {key:?}: {err}");
        assert!(
            err.contains("EDGETHUMB_KEY") && err.contains("--dev"),
            "{err}"
        );
    }
    let out = clean(&mut Command::new(binary()))
        .args(["serve", "--dev", "--bind", "0.0.0.0:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("loopback"), "{err}");
    // `sign` does not fall back to the published key either.
    let out = clean(&mut Command::new(binary()))
        .args(["sign", "http://example.com/a.jpg"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
}

#[test]
fn bad_configuration_names_the_variable() {
    for (var, val, extra) in [
        ("EDGETHUMB_KEY", "not-hex", ("EDGETHUMB_SALT", "aa")),
        ("EDGETHUMB_SIGNATURE_SIZE", "99", ("EDGETHUMB_KEY", "aa")),
        (
            "EDGETHUMB_UPSTREAM_TIMEOUT_MS",
            "soon",
            ("EDGETHUMB_KEY", "aa"),
        ),
        // Missing, and not PEM.
        (
            "EDGETHUMB_UPSTREAM_CA_FILE",
            "/nonexistent/ca.pem",
            ("EDGETHUMB_KEY", "aa"),
        ),
        (
            "EDGETHUMB_UPSTREAM_CA_FILE",
            "Cargo.toml",
            ("EDGETHUMB_KEY", "aa"),
        ),
    ] {
        let out = clean(&mut Command::new(binary()))
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env(var, val)
            .env(extra.0, extra.1)
            .env("EDGETHUMB_SALT", "bb")
            .env(
                "EDGETHUMB_KEY",
                if var == "EDGETHUMB_KEY" { val } else { "aa" },
            )
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{var}: {err}");
        assert!(err.contains(var), "{var}: {err}");
    }
}

#[test]
fn sign_matches_the_published_vector_and_verifies() {
    let path = sign_design_vector(
        &[
            ("IMGPROXY_KEY", "736563726574"),
            ("IMGPROXY_SALT", "68656C6C6F"),
        ],
        false,
    );
    let path = path.trim();
    // DESIGN.md's vector, with the base64 source unsplit.
    let (sig, rest) = path[1..].split_once('/').unwrap();
    let rest = format!("/{rest}");
    assert_eq!(
        rest,
        "/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1wbGUuY29tL2ltYWdlcy9jdXJpb3NpdHkuanBn.png"
    );
    let key = KeyPair::from_hex("736563726574", "68656C6C6F").unwrap();
    assert!(signature::verify(sig, &rest, &[key], 32));

    let out = clean(&mut Command::new(binary()))
        .args([
            "sign",
            "--base",
            "https://thumbs.example.com/",
            "--options",
            "w:300",
        ])
        .arg("https://example.com/a b.jpg")
        .env("EDGETHUMB_KEY", "736563726574")
        .env("EDGETHUMB_SALT", "68656C6C6F")
        .env("EDGETHUMB_SIGNATURE_SIZE", "8")
        .output()
        .unwrap();
    let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(url.starts_with("https://thumbs.example.com/"), "{url}");
    assert!(
        url.ends_with("/w:300/plain/https://example.com/a%20b.jpg"),
        "{url}"
    );
    assert_eq!(
        url.split('/').nth(3).unwrap().len(),
        11,
        "8-byte signature: {url}"
    );
}

/// The README's Python and Node snippets sign exactly as the binary does.
#[test]
fn python_and_node_examples_sign_like_the_binary() {
    let root = support::harness::repo_root();
    // `--dev`: the binary signs with the published key, as the examples do.
    let rust = sign_design_vector(&[], true);
    for (cmd, file) in [
        ("python3", "examples/sign.py"),
        ("node", "examples/sign.mjs"),
    ] {
        let out = Command::new(cmd).arg(root.join(file)).output().unwrap();
        assert!(out.status.success(), "{cmd} {file}");
        assert_eq!(String::from_utf8(out.stdout).unwrap(), rust, "{file}");
    }
}
