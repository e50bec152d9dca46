//! URLs signed by imgproxy client libraries, as a media API would sign them:
//! the official Node client `@imgproxy/imgproxy-node` (npm devDependency)
//! and the `imgproxy` PyPI client (installed by scripts/setup into
//! `.tools/pyclients`). The signers are `tests/clients/sign_*`.

use std::path::PathBuf;
use std::process::Command;

use super::harness::{TEST_KEY, TEST_SALT};
use super::origin::{Origin, Route};
use super::over_http::client;

/// What one signed URL must give for a 400×300 JPEG source.
pub struct Expect {
    pub what: &'static str,
    pub content_type: &'static str,
    pub size: (u32, u32),
}

const fn e(what: &'static str, content_type: &'static str, w: u32, h: u32) -> Expect {
    Expect {
        what,
        content_type,
        size: (w, h),
    }
}

/// In the order `tests/clients/sign_node.mjs` prints them.
pub const NODE_CASES: [Expect; 4] = [
    e("rs:fit:200 q:80", "image/jpeg", 200, 150),
    e("rs:fill:120:80 f:webp", "image/webp", 120, 80),
    e("plain source, w:90 f:png", "image/png", 90, 68),
    e("pr:thumb (rs:fit:60:0/q:80)", "image/jpeg", 60, 45),
];

/// In the order `tests/clients/sign_python.py` prints them.
pub const PYTHON_CASES: [Expect; 4] = [
    e("g:ce/rs:fit:200:0:0", "image/jpeg", 200, 150),
    e("q:80/rs:fill:120:80:0 .webp", "image/webp", 120, 80),
    e("rs:fit:90:0:0 .png", "image/png", 90, 68),
    e("g:sm/rs:fill:100:100:0", "image/jpeg", 100, 100),
];

#[derive(Clone, Copy, Debug)]
pub enum Library {
    Node,
    Python,
}

fn root() -> PathBuf {
    super::harness::repo_root()
}

/// Runs the library's signer; panics with how to install it if missing.
pub fn sign(lib: Library, endpoint: &str, source: &str) -> Vec<String> {
    let root = root();
    let mut cmd = match lib {
        Library::Node => {
            assert!(
                root.join("node_modules/@imgproxy/imgproxy-node").exists(),
                "@imgproxy/imgproxy-node is missing: run scripts/setup"
            );
            let mut c = Command::new("node");
            c.arg("tests/clients/sign_node.mjs");
            c
        }
        Library::Python => {
            let lib = root.join(".tools/pyclients");
            assert!(
                lib.join("imgproxy.py").exists(),
                "the imgproxy PyPI client is missing: run scripts/setup"
            );
            let mut c = Command::new("python3");
            c.arg("tests/clients/sign_python.py").env("PYTHONPATH", lib);
            c
        }
    };
    let out = cmd
        .args([endpoint, TEST_KEY, TEST_SALT, source])
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("{lib:?} signer did not run: {e}"));
    assert!(
        out.status.success(),
        "{lib:?} signer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Signs with both libraries against `base` and checks every URL is served
/// as the library meant it: status, format and size.
pub async fn check_client_libraries(base: &str, origin: &Origin) {
    let source = origin.route(
        "/clients/photo.jpg",
        Route::Body(super::fixtures::jpeg(400, 300), "image/jpeg"),
    );
    let client = client();
    for (lib, cases) in [
        (Library::Node, &NODE_CASES[..]),
        (Library::Python, &PYTHON_CASES[..]),
    ] {
        let urls = sign(lib, base, &source);
        assert_eq!(urls.len(), cases.len(), "{lib:?}: {urls:?}");
        for (url, want) in urls.iter().zip(cases) {
            let r = client.get(url).send().await.unwrap();
            let status = r.status().as_u16();
            let ct = r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = r.bytes().await.unwrap();
            assert_eq!(
                status,
                200,
                "{lib:?} {}: {url}: {}",
                want.what,
                String::from_utf8_lossy(&body)
            );
            assert_eq!(ct, want.content_type, "{lib:?} {}", want.what);
            let img = image::load_from_memory(&body).unwrap();
            assert_eq!(
                (img.width(), img.height()),
                want.size,
                "{lib:?} {}",
                want.what
            );
        }
    }
}
