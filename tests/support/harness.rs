//! Runs the conformance table against one target over HTTP and reports
//! every row, so one run shows all that differs, not just the first.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::fixtures as fx;
use edgethumb::request::signature::KeyPair;
use edgethumb::request::url_builder::{self, SourceEncoding};
use futures_util::future::{join_all, LocalBoxFuture};
use http::HeaderMap;

use super::cases::{Case, Sign, Source};
use super::origin::{Origin, Route};

/// Test signing key: imgproxy's README example pair (public, test only).
pub const TEST_KEY: &str = "943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881";
pub const TEST_SALT: &str = "520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5";

/// One response, as the harness checks it.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    /// What arrived, all of it or up to a cut.
    pub body: Vec<u8>,
    pub took: Duration,
    /// Until the headers and the first body bytes were in.
    pub first_byte: Duration,
    /// Why the body stopped before its end, if it did.
    pub cut: Option<String>,
}

/// How the harness reaches a service: over HTTP (`over_http::Http`, the
/// runtime tier) or by calling `Service::handle` (`in_process`, the fast
/// tier). Requests carry a path and query only.
pub trait Transport {
    fn send(&self, req: http::Request<()>) -> LocalBoxFuture<'_, Result<Reply, String>>;
}

/// The repository's root (test files are shared by the root package and
/// `crates/e2e`).
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|d| d.join("wrangler.toml").exists())
        .unwrap_or(&manifest)
        .to_path_buf()
}

/// A running service under test.
pub struct Target {
    pub name: &'static str,
    pub transport: Box<dyn Transport>,
    /// Rows this runtime cannot run, each with the reason.
    pub skips: Vec<(&'static str, &'static str)>,
    /// Whether requests share a result cache and in-flight map. Without
    /// one (a wasi:http host with a fresh instance per request) every
    /// request must reach the origin and transform: that is asserted too.
    pub shared_cache: bool,
    /// Another instance sharing only the target's result store (its own
    /// cache and memory): what another data centre, or the same server
    /// after a restart, sees. With one, every row's result is asked of it
    /// too: a made thumbnail must come from the store, byte for byte,
    /// without the origin; anything else (failures, fallbacks, what may not
    /// be stored) must not.
    pub store_peer: Option<StorePeer>,
}

pub enum StorePeer {
    /// Another instance beside the target, sharing only its store: each
    /// row's request is asked of it right after the row, once `settle`
    /// resolves (the target's store writes have landed).
    Beside {
        transport: Box<dyn Transport>,
        settle: Box<dyn Fn() -> LocalBoxFuture<'static, ()>>,
    },
    /// The target itself, restarted with only its store kept (a Worker in
    /// another data centre: its own Cache API, the same R2 bucket). Every
    /// row's request is asked of it once the whole table has run; the
    /// target's own transport is gone afterwards.
    Restarted(Box<dyn Fn() -> LocalBoxFuture<'static, Box<dyn Transport>>>),
}

/// The configuration every target runs the table with.
pub fn target_env(origin: &Origin, closed_base: &str) -> Vec<(String, String)> {
    [
        ("EDGETHUMB_KEY", TEST_KEY.to_string()),
        ("EDGETHUMB_SALT", TEST_SALT.to_string()),
        ("EDGETHUMB_ALLOW_PRIVATE_SOURCES", "true".into()),
        (
            "EDGETHUMB_ALLOWED_SOURCES",
            format!("{}/,{closed_base}/", origin.base()),
        ),
        ("EDGETHUMB_UPSTREAM_TIMEOUT_MS", "1000".into()),
        ("EDGETHUMB_MAX_SRC_BYTES", "3000000".into()),
        ("EDGETHUMB_MAX_SRC_PIXELS", "40000000".into()),
        ("EDGETHUMB_MAX_TRANSFORM_BYTES", "48000000".into()),
        ("EDGETHUMB_MAX_ANIMATION_FRAMES", "50".into()),
        // AVIF first, as browsers ask; small outputs only, so the rows
        // that cross the limit stay cheap.
        ("EDGETHUMB_AUTO_FORMATS", "avif,webp,jpeg".into()),
        ("EDGETHUMB_AVIF_MAX_PIXELS", "250000".into()),
        ("EDGETHUMB_MAX_REDIRECTS", "3".into()),
        ("EDGETHUMB_NOT_FOUND_TTL", "300".into()),
        ("EDGETHUMB_UPSTREAM_ERROR_TTL", "5".into()),
        (
            "EDGETHUMB_PRESETS",
            "thumb=rs:fit:60:0/q:80,square=rs:fill:32:32".into(),
        ),
        ("EDGETHUMB_WATERMARK_DATA", {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(super::fixtures::watermark_png())
        }),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A base URL on 127.0.0.1 where nothing listens.
pub fn closed_port_base() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// The request path for a case.
pub fn case_path(c: &Case, source: &str) -> String {
    let key = KeyPair::from_hex(TEST_KEY, TEST_SALT).unwrap();
    let enc = if c.base64 {
        SourceEncoding::Base64
    } else {
        SourceEncoding::Plain
    };
    let path = url_builder::unsigned_path(c.options, source, c.ext, enc);
    match &c.sign {
        Sign::Valid => url_builder::sign_path(&path, Some(&key), 32),
        Sign::Unsigned => url_builder::sign_path(&path, None, 32),
        Sign::WrongKey => {
            let other = KeyPair::from_hex("736563726574", "68656C6C6F").unwrap();
            url_builder::sign_path(&path, Some(&other), 32)
        }
        Sign::Tampered => {
            let signed = url_builder::sign_path(&path, Some(&key), 32);
            let (sig, rest) = signed[1..].split_once('/').unwrap();
            format!("/{sig}/q:99/{rest}")
        }
        Sign::Padded => {
            let signed = url_builder::sign_path(&path, Some(&key), 32);
            let (sig, rest) = signed[1..].split_once('/').unwrap();
            format!("/{sig}=/{rest}")
        }
        Sign::Build(build) => url_builder::sign_path(&build(source), Some(&key), 32),
        Sign::Edit(edit) => edit(&url_builder::sign_path(&path, Some(&key), 32)),
    }
}

/// Sends one request: `path` with its query, and the optional headers.
pub async fn send(
    t: &dyn Transport,
    method: &str,
    path: &str,
    accept: Option<&str>,
    inm: Option<&str>,
) -> Result<Reply, String> {
    let mut req = http::Request::builder().method(method).uri(path);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    if let Some(e) = inm {
        req = req.header("if-none-match", e);
    }
    let req = req.body(()).map_err(|e| format!("bad request: {e}"))?;
    t.send(req).await
}

/// A GET of `path`, panicking if it is not answered at all.
pub async fn get(t: &dyn Transport, path: &str) -> Reply {
    send(t, "GET", path, None, None)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// A response header as text ("" if absent).
pub fn header<'a>(r: &'a Reply, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// An animation of [`fx::ANIMATION`]'s frames, read by `image`'s decoders:
/// every frame, its delay and its colour (the centre pixel), looping
/// forever.
fn check_animation(content_type: &str, body: &[u8]) -> Result<(), String> {
    use image::metadata::LoopCount;
    use image::AnimationDecoder;
    let cursor = std::io::Cursor::new(body);
    let fail = |e: image::ImageError| format!("animation does not decode: {e}");
    let (loops, frames) = match content_type {
        "image/gif" => {
            let d = image::codecs::gif::GifDecoder::new(cursor).map_err(fail)?;
            (
                d.loop_count(),
                d.into_frames().collect_frames().map_err(fail)?,
            )
        }
        "image/webp" => {
            let d = image::codecs::webp::WebPDecoder::new(cursor).map_err(fail)?;
            (
                d.loop_count(),
                d.into_frames().collect_frames().map_err(fail)?,
            )
        }
        other => return Err(format!("{other} is not an animation format")),
    };
    if !matches!(loops, LoopCount::Infinite) {
        return Err("the animation does not loop forever".into());
    }
    if frames.len() != fx::ANIMATION.len() {
        return Err(format!(
            "{} frames (want {})",
            frames.len(),
            fx::ANIMATION.len()
        ));
    }
    for (i, (f, (colour, delay))) in frames.iter().zip(fx::ANIMATION).enumerate() {
        let (n, d) = f.delay().numer_denom_ms();
        if n / d.max(1) != delay {
            return Err(format!(
                "frame {i}: delay {} ms (want {delay})",
                n / d.max(1)
            ));
        }
        let b = f.buffer();
        let p = b.get_pixel(b.width() / 2, b.height() / 2).0;
        if p.iter().zip(colour).any(|(a, b)| a.abs_diff(b) > 24) {
            return Err(format!("frame {i}: centre {p:?} (want {colour:?})"));
        }
    }
    Ok(())
}

fn check_reply(c: &Case, r: &Reply) -> Result<(), String> {
    let e = &c.expect;
    let body_line = || {
        String::from_utf8_lossy(&r.body[..r.body.len().min(200)])
            .trim()
            .to_string()
    };
    if r.status != e.status {
        return Err(format!(
            "status {} (want {}): {}",
            r.status,
            e.status,
            body_line()
        ));
    }
    if let Some(ct) = e.content_type {
        if header(r, "content-type") != ct {
            return Err(format!(
                "content-type `{}` (want `{ct}`)",
                header(r, "content-type")
            ));
        }
    }
    if let Some(s) = e.body_contains {
        let body = String::from_utf8_lossy(&r.body).to_lowercase();
        if !body.contains(&s.to_lowercase()) {
            return Err(format!("body `{}` lacks `{s}`", body_line()));
        }
        if body.trim_end().contains('\n') {
            return Err(format!(
                "error body is more than one line: `{}`",
                body_line()
            ));
        }
    }
    if let Some(want) = e.body_has {
        if !r.body.windows(want.len()).any(|w| w == want) {
            return Err(format!("body lacks {:?}", String::from_utf8_lossy(want)));
        }
    }
    if let Some(range) = &e.body_len {
        if !range.contains(&r.body.len()) && c.method == "GET" {
            return Err(format!("body is {} bytes, not in {range:?}", r.body.len()));
        }
    }
    if let Some(want) = e.vary_accept {
        let has = header(r, "vary").to_ascii_lowercase().contains("accept");
        if has != want {
            return Err(format!("Vary: Accept present={has}, want {want}"));
        }
    }
    if let Some(cc) = e.cache_control {
        if !header(r, "cache-control").contains(cc) {
            return Err(format!(
                "cache-control `{}` lacks `{cc}`",
                header(r, "cache-control")
            ));
        }
    }
    if let Some((name, v)) = e.header {
        if !header(r, name).contains(v) {
            return Err(format!("{name} `{}` lacks `{v}`", header(r, name)));
        }
    }
    match (&r.cut, e.cut) {
        (Some(why), false) => return Err(format!("body cut short: {why}")),
        (None, true) => return Err("the body was not cut short".into()),
        _ => {}
    }
    // A streamed `raw` miss is sent before its bytes are all in, so it
    // cannot carry a digest of them; the stored copy does.
    let streamed = c.options.split('/').any(|o| o.starts_with("raw:"))
        && header(r, "x-edgethumb-cache") == "miss";
    if let Some(gap) = e.streams {
        if streamed && r.took.saturating_sub(r.first_byte) < gap {
            return Err(format!(
                "first bytes at {:?}, the last at {:?}: not streamed",
                r.first_byte, r.took
            ));
        }
    }
    if r.status == 200 {
        if !header(r, "cache-control").starts_with("public, max-age=") {
            return Err(format!(
                "success cache-control `{}`",
                header(r, "cache-control")
            ));
        }
        let etag = header(r, "etag");
        let strong = etag.starts_with('"') || (streamed && etag.is_empty());
        if !strong {
            return Err("no strong ETag".into());
        }
    } else if r.status >= 400 && header(r, "cache-control").contains("max-age=31536000") {
        return Err("a failure was marked cacheable like a success".into());
    }
    if header(r, "content-security-policy") != "script-src 'none'" && r.status != 304 {
        return Err("no Content-Security-Policy: script-src 'none'".into());
    }
    // Responses that went through the cache path say how (hit/miss/coalesced).
    if (r.status == 200 || r.status >= 500) && !header(r, "server-timing").contains("cache;desc=") {
        return Err(format!("Server-Timing `{}`", header(r, "server-timing")));
    }
    // A miss or a hit also says how long asking the cache took.
    let status = header(r, "x-edgethumb-cache");
    if matches!(status, "miss" | "hit")
        && !header(r, "server-timing").contains(&format!("cache;desc={status};dur="))
    {
        return Err(format!(
            "no lookup time: Server-Timing `{}`",
            header(r, "server-timing")
        ));
    }
    if let Some(limit) = e.within {
        if r.took > limit {
            return Err(format!("took {:?}, over {limit:?}", r.took));
        }
    }
    if (e.dims.is_some() || e.pixels.is_some()) && c.method == "GET" {
        let img = decode(&r.body)?;
        if let Some(d) = e.dims {
            if (img.width(), img.height()) != d {
                return Err(format!(
                    "{}x{} (want {}x{})",
                    img.width(),
                    img.height(),
                    d.0,
                    d.1
                ));
            }
        }
        if let Some(f) = e.pixels {
            f(&img)?;
        }
    }
    if e.animated && c.method == "GET" {
        check_animation(header(r, "content-type"), &r.body)?;
    }
    if c.method == "HEAD" && !r.body.is_empty() {
        return Err("HEAD response has a body".into());
    }
    Ok(())
}

/// A served body as pixels: AVIF through rav1d, the rest through `image`.
pub fn decode(body: &[u8]) -> Result<image::DynamicImage, String> {
    if edgethumb_codecs::avif_decode::is_avif(body) {
        return edgethumb_codecs::avif_decode::decode(body)
            .map(image::DynamicImage::ImageRgba8)
            .map_err(|err| format!("AVIF body does not decode: {err}"));
    }
    image::load_from_memory(body).map_err(|err| format!("body does not decode: {err}"))
}

async fn run_case(
    t: &Target,
    origin: &Origin,
    closed: &str,
    c: &Case,
    later: &mut Vec<PeerCheck>,
) -> Result<(), String> {
    let tr = t.transport.as_ref();
    let route_path = format!("/c/{}", c.name);
    let source = match &c.source {
        Source::Route(r) => origin.route(&route_path, r.clone()),
        Source::Literal(s) => s
            .replace("{origin}", &origin.base())
            .replace("{closed}", closed),
    };
    let url = case_path(c, &source);

    let first = if c.concurrent > 1 {
        let replies =
            join_all((0..c.concurrent).map(|_| send(tr, c.method, &url, c.accept, None))).await;
        let mut first = None;
        let mut transforms = 0;
        for r in replies {
            let r = r?;
            check_reply(c, &r)?;
            // Only the request that started the work reports `miss`; the
            // others joined it (`coalesced`) or found it cached (`hit`).
            transforms += usize::from(header(&r, "x-edgethumb-cache") == "miss");
            first.get_or_insert(r);
        }
        let want = if t.shared_cache { 1 } else { c.concurrent };
        if c.expect.origin_hits == Some(1) && transforms != want {
            return Err(format!(
                "{transforms} of {} concurrent requests transformed (want {want})",
                c.concurrent
            ));
        }
        first.ok_or("no reply")?
    } else {
        let r = send(tr, c.method, &url, c.accept, None).await?;
        check_reply(c, &r)?;
        r
    };
    for i in 0..c.repeat {
        let r = send(tr, c.method, &url, c.accept, None).await?;
        check_reply(c, &r).map_err(|e| format!("repeat {}: {e}", i + 1))?;
        let stored = !c.expect.cut;
        if stored && t.shared_cache && r.status == 200 && header(&r, "x-edgethumb-cache") != "hit" {
            return Err(format!(
                "repeat {} was not a cache hit: `{}`",
                i + 1,
                header(&r, "x-edgethumb-cache")
            ));
        }
    }
    if c.revalidate {
        let etag = header(&first, "etag").to_string();
        let r = send(tr, c.method, &url, c.accept, Some(&etag)).await?;
        if r.status != 304 || !r.body.is_empty() || header(&r, "etag") != etag {
            return Err(format!(
                "If-None-Match gave {} with etag `{}`",
                r.status,
                header(&r, "etag")
            ));
        }
    }
    if let Some(mut want) = c.expect.origin_hits {
        if !t.shared_cache {
            want *= (c.concurrent * (1 + c.repeat)) as u32;
        }
        let hits = origin.hits(&route_path);
        if hits != want {
            return Err(format!("origin saw {hits} requests (want {want})"));
        }
    }
    match (&t.store_peer, PeerCheck::of(c, &route_path, &url, first)) {
        (Some(StorePeer::Beside { transport, settle }), Some(check)) => {
            settle().await;
            check.ask(transport.as_ref(), origin).await?;
        }
        (Some(StorePeer::Restarted(_)), Some(check)) => later.push(check),
        _ => {}
    }
    Ok(())
}

/// A row's request, to be asked again of an instance that shares only the
/// target's result store: a made thumbnail must come from the store, byte
/// for byte, without the origin; nothing else may be in the store.
pub struct PeerCheck {
    name: &'static str,
    route_path: String,
    url: String,
    accept: Option<&'static str>,
    /// The body made, if it was stored, and until when it stays fresh.
    stored: Option<(Vec<u8>, Instant)>,
}

impl PeerCheck {
    /// What the row's first reply asks of a peer (GET rows only).
    fn of(c: &Case, route_path: &str, url: &str, first: Reply) -> Option<PeerCheck> {
        if c.method != "GET" {
            return None;
        }
        let max_age = header(&first, "cache-control")
            .strip_prefix("public, max-age=")
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let stored = first.status == 200
            && first.cut.is_none()
            && header(&first, "x-edgethumb-fallback").is_empty();
        let stored = max_age.filter(|_| stored);
        // Upstream failures and timeouts would be waited for again: the 4xx
        // rows stand for every failure (and the in-process table asks all).
        if stored.is_none() && first.status >= 500 && first.took > Duration::from_millis(100) {
            return None;
        }
        Some(PeerCheck {
            name: c.name,
            route_path: route_path.to_string(),
            url: url.to_string(),
            accept: c.accept,
            stored: stored.map(|s| (first.body, Instant::now() + Duration::from_secs(s))),
        })
    }

    async fn ask(&self, peer: &dyn Transport, origin: &Origin) -> Result<(), String> {
        let before = origin.hits(&self.route_path);
        let r = send(peer, "GET", &self.url, self.accept, None).await?;
        let tier = header(&r, "x-edgethumb-cache");
        let Some((made, _)) = &self.stored else {
            return match tier {
                "store-hit" => Err(format!("store peer: a {} was stored", r.status)),
                _ => Ok(()),
            };
        };
        if tier != "store-hit" || r.status != 200 {
            return Err(format!(
                "store peer: {} `{tier}`, not a store hit",
                r.status
            ));
        }
        if &r.body != made {
            return Err("store peer: the stored body differs from the one made".into());
        }
        if origin.hits(&self.route_path) != before {
            return Err("store peer: the origin was asked".into());
        }
        Ok(())
    }
}

/// Every row's request asked of the restarted target (`StorePeer::Restarted`).
async fn ask_restarted(
    name: &str,
    peer: Box<dyn Transport>,
    origin: &Origin,
    checks: Vec<PeerCheck>,
) -> Vec<String> {
    // The same request twice (rows on one literal source): the later row's
    // reply is what the store holds.
    let mut last = std::collections::HashMap::new();
    for (i, c) in checks.iter().enumerate() {
        last.insert((c.url.as_str(), c.accept), i);
    }
    let (mut failures, mut asked, mut stored, mut expired) = (Vec::new(), 0, 0, 0);
    for (i, check) in checks.iter().enumerate() {
        if last.get(&(check.url.as_str(), check.accept)) != Some(&i) {
            continue;
        }
        // A stored result near its end may be gone by now, rightly.
        if let Some((_, fresh_until)) = &check.stored {
            if Instant::now() + Duration::from_secs(5) > *fresh_until {
                expired += 1;
                continue;
            }
        }
        asked += 1;
        stored += usize::from(check.stored.is_some());
        if let Err(e) = check.ask(peer.as_ref(), origin).await {
            println!("[{name}] FAIL {:<36} {e}", check.name);
            failures.push(format!("{}: {e}", check.name));
        }
    }
    println!(
        "[{name}] restarted with the store only: {asked} rows asked ({stored} made \
         thumbnails, the rest must not be stored), {} failed, {expired} not asked \
         (their results near expiry)",
        failures.len()
    );
    failures
}

/// After every row: the server still answers, promptly.
async fn still_answers(t: &Target) -> Result<(), String> {
    let health = send(t.transport.as_ref(), "GET", "/health", None, None);
    let r = tokio::time::timeout(Duration::from_secs(5), health)
        .await
        .map_err(|_| "the server did not answer /health within 5 s afterwards".to_string())?
        .map_err(|e| format!("the server stopped answering afterwards: {e}"))?;
    if r.status != 200 {
        return Err(format!("/health gave {} afterwards", r.status));
    }
    Ok(())
}

/// Runs every row; returns the failures as `name: reason` lines.
pub async fn run_all(t: &Target, origin: &Origin, closed: &str, cases: &[Case]) -> Vec<String> {
    for (path, route) in super::cases::support_routes() {
        origin.route(path, route);
    }
    let mut failures = Vec::new();
    let mut later = Vec::new();
    let (mut passed, mut skipped) = (0, 0);
    for c in cases {
        if let Some((_, why)) = t.skips.iter().find(|(n, _)| *n == c.name) {
            println!("[{}] SKIP {:<36} {why}", t.name, c.name);
            skipped += 1;
            continue;
        }
        let started = Instant::now();
        let outcome = match run_case(t, origin, closed, c, &mut later).await {
            Ok(()) => still_answers(t).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("[{}] ok   {:<36} {:?}", t.name, c.name, started.elapsed());
            }
            Err(e) => {
                println!("[{}] FAIL {:<36} {e}", t.name, c.name);
                failures.push(format!("{}: {e}", c.name));
            }
        }
    }
    println!(
        "[{}] conformance: {passed} passed, {} failed, {skipped} skipped",
        t.name,
        failures.len()
    );
    failures.extend(run_bad_corpus(t, origin).await);
    if let Some(StorePeer::Restarted(restart)) = &t.store_peer {
        failures.extend(ask_restarted(t.name, restart().await, origin, later).await);
    }
    failures
}

/// The must-fail corpus, `tests/bad/`: inputs that once crashed a fuzz
/// target. Each must be answered, twice the same way, without a 5xx,
/// within 5 s, and the server must answer afterwards.
async fn run_bad_corpus(t: &Target, origin: &Origin) -> Vec<String> {
    let dir = repo_root().join("tests/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file() && p.extension().is_none_or(|e| e != "md"));
    files.sort();
    let key = KeyPair::from_hex(TEST_KEY, TEST_SALT).unwrap();
    let mut failures = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&file).unwrap();
        let source = origin.route(&format!("/bad/{name}"), Route::Body(bytes, "image/jpeg"));
        let path = url_builder::unsigned_path("rs:fit:64:64", &source, None, SourceEncoding::Plain);
        let url = url_builder::sign_path(&path, Some(&key), 32);
        let mut statuses = Vec::new();
        let mut outcome = Ok(());
        for _ in 0..2 {
            match send(t.transport.as_ref(), "GET", &url, None, None).await {
                Ok(r) if r.status >= 500 => {
                    outcome = Err(format!(
                        "{}: {}",
                        r.status,
                        String::from_utf8_lossy(&r.body)
                    ));
                }
                Ok(r) if r.took > Duration::from_secs(5) => {
                    outcome = Err(format!("took {:?}", r.took));
                }
                Ok(r) => statuses.push(r.status),
                Err(e) => outcome = Err(e),
            }
        }
        if outcome.is_ok() && statuses.first() != statuses.last() {
            outcome = Err(format!("answered {statuses:?}"));
        }
        let outcome = match outcome {
            Ok(()) => still_answers(t).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => println!("[{}] ok   tests/bad/{name:<25} {statuses:?}", t.name),
            Err(e) => {
                println!("[{}] FAIL tests/bad/{name:<25} {e}", t.name);
                failures.push(format!("tests/bad/{name}: {e}"));
            }
        }
    }
    failures.extend(run_bad_urls(t, &key).await);
    failures
}

/// Runs the whole table against `t` and fails the test listing every row
/// that failed.
pub async fn assert_conformance(t: &Target, origin: &Origin, closed: &str) {
    let failures = run_all(t, origin, closed, &super::cases::cases()).await;
    assert!(
        failures.is_empty(),
        "{} rows failed on {}:\n{}",
        failures.len(),
        t.name,
        failures.join("\n")
    );
}

/// `tests/bad/urls/`: request paths that once crashed the `url` fuzz
/// target, re-signed with the test key (as the server will see them,
/// percent-encoded by the client) so they get past the signature.
async fn run_bad_urls(t: &Target, key: &KeyPair) -> Vec<String> {
    let dir = repo_root().join("tests/bad/urls");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    let mut failures = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let raw = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).to_string();
        let outcome = async {
            // Parsed as a client would before sending (the host is a stand-in).
            let parsed = url::Url::parse(&format!("http://edgethumb.test{raw}"))
                .map_err(|e| format!("not a URL here: {e}"))?;
            let path = parsed.path().to_string();
            let rest = path[1..].split_once('/').map_or("", |(_, r)| r);
            let signed = url_builder::sign_path(&format!("/{rest}"), Some(key), 32);
            let mut url = parsed.clone();
            url.set_path(&signed);
            let path = &url[url::Position::BeforePath..url::Position::AfterQuery];
            let r = send(t.transport.as_ref(), "GET", path, None, None).await?;
            if r.status >= 500 {
                return Err(format!(
                    "{}: {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                ));
            }
            Ok(r.status)
        }
        .await;
        let outcome = match outcome {
            Ok(status) => still_answers(t).await.map(|()| status),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(status) => println!("[{}] ok   tests/bad/urls/{name} {status}", t.name),
            Err(e) => {
                println!("[{}] FAIL tests/bad/urls/{name} {e}", t.name);
                failures.push(format!("tests/bad/urls/{name}: {e}"));
            }
        }
    }
    failures
}

/// The configuration of a media API switching from a resizing proxy
/// (README, "Drop-in for a media API"): SVG passed through, one status
/// (424) for upstream failures, only the `thumb` and `full` presets
/// (presets-only mode), and client hints for `<img sizes>` pages.
pub fn media_api_env(origin: &Origin, closed_base: &str) -> Vec<(String, String)> {
    let mut env = target_env(origin, closed_base);
    env.retain(|(k, _)| k != "EDGETHUMB_PRESETS" && k != "EDGETHUMB_WATERMARK_DATA");
    env.push((
        "IMGPROXY_WATERMARK_URL".into(),
        format!("{}{WATERMARK_PATH}", origin.base()),
    ));
    for (k, v) in [
        ("EDGETHUMB_SVG_PASSTHROUGH", "true"),
        ("EDGETHUMB_UPSTREAM_FAILURE_STATUS", "424"),
        (
            "EDGETHUMB_PRESETS",
            "thumb=rs:fit:600:0/q:80,full=q:80,marked=rs:fit:300:0/wm:1:nowe/f:png",
        ),
        ("EDGETHUMB_ONLY_PRESETS", "true"),
        ("EDGETHUMB_ENABLE_CLIENT_HINTS", "true"),
    ] {
        env.push((k.to_string(), v.to_string()));
    }
    env
}

/// Where [`media_api_env`]'s watermark is served, once the check routes it.
pub const WATERMARK_PATH: &str = "/m/mark.png";

/// Checks a target started with [`media_api_env`].
pub async fn check_media_api(t: &dyn Transport, origin: &Origin, closed_base: &str) {
    use super::fixtures;
    use super::origin::Route;

    let url = |options: &'static str, source: &str| {
        let case = Case {
            options,
            ..super::cases::template()
        };
        case_path(&case, source)
    };
    let get = |u: String| async move {
        let r = get(t, &u).await;
        (r.status, r.headers, r.body)
    };
    let hv = |h: &HeaderMap, n: &str| {
        h.get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };

    // SVG as it is, scripts inert.
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"><script>alert(1)</script></svg>".to_vec();
    let src = origin.route("/m/logo.svg", Route::Body(svg.clone(), "image/svg+xml"));
    let (status, h, body) = get(url("thumb", &src)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(hv(&h, "content-type"), "image/svg+xml");
    assert_eq!(
        hv(&h, "content-security-policy"),
        "script-src 'none'; sandbox"
    );
    assert!(hv(&h, "cache-control").starts_with("public, max-age="));
    assert_eq!(body, svg);

    // Upstream failures answer 424 (a missing original stays 404).
    origin.route("/m/down.jpg", Route::Status(500));
    let (status, h, body) = get(url("pr:thumb", &format!("{}/m/down.jpg", origin.base()))).await;
    assert_eq!(status, 424, "{}", String::from_utf8_lossy(&body));
    assert!(
        hv(&h, "cache-control").contains("max-age="),
        "negative-cached"
    );
    let (status, _, _) = get(url("pr:thumb", &format!("{closed_base}/m/refused.jpg"))).await;
    assert_eq!(status, 424, "connection refused");
    origin.route("/m/missing.jpg", Route::Status(404));
    let (status, _, _) = get(url("pr:thumb", &format!("{}/m/missing.jpg", origin.base()))).await;
    assert_eq!(status, 404);

    // The presets: 600 px wide JPEG q80, and the full size, named alone
    // or with `pr:`.
    let src = origin.route(
        "/m/photo.jpg",
        Route::Body(fixtures::jpeg(1200, 800), "image/jpeg"),
    );
    for (preset, dims) in [
        ("thumb", (600, 400)),
        ("pr:full", (1200, 800)),
        ("full:thumb", (600, 400)),
    ] {
        let (status, h, body) = get(url(preset, &src)).await;
        assert_eq!(status, 200, "{preset}");
        assert_eq!(hv(&h, "content-type"), "image/jpeg", "{preset}");
        let img = image::load_from_memory(&body).unwrap();
        assert_eq!((img.width(), img.height()), dims, "{preset}");
    }
    // Client hints: the browser's DPR and layout width (physical pixels)
    // size `full`; a preset's own width wins over the width hint, and the
    // DPR hint still multiplies it. Each is its own cache entry.
    let hinted = |preset: &'static str, hints: &'static [(&'static str, &'static str)]| {
        let path = url(preset, &src);
        async move {
            let mut req = http::Request::builder().uri(path);
            for (k, v) in hints {
                req = req.header(*k, *v);
            }
            t.send(req.body(()).unwrap()).await.unwrap()
        }
    };
    for (preset, hints, width) in [
        (
            "full",
            &[("sec-ch-dpr", "2"), ("sec-ch-width", "500")][..],
            500,
        ),
        ("full", &[("dpr", "1.5"), ("width", "300")][..], 300),
        (
            "full",
            &[("sec-ch-width", "640"), ("dpr", "nonsense")][..],
            640,
        ),
        ("full", &[("sec-ch-dpr", "0.5")][..], 600),
        ("full", &[][..], 1200),
        (
            "thumb",
            &[("sec-ch-dpr", "2"), ("sec-ch-width", "100")][..],
            1200,
        ),
        ("thumb", &[("sec-ch-dpr", "0.25")][..], 150),
    ] {
        let r = hinted(preset, hints).await;
        assert_eq!(r.status, 200, "{preset} {hints:?}");
        let img = image::load_from_memory(&r.body).unwrap();
        assert_eq!(img.width(), width, "{preset} {hints:?}");
        let vary = header(&r, "vary");
        assert!(
            vary.contains("Sec-CH-DPR") && vary.contains("Width"),
            "{vary}"
        );
        let accept_ch = header(&r, "accept-ch");
        assert!(accept_ch.contains("Sec-CH-Width"), "{accept_ch}");
    }
    // The watermark by URL: while it cannot be fetched, the request fails
    // and nothing is cached; once it can, it is placed.
    let (status, h, _) = get(url("marked", &src)).await;
    assert!(
        status == 424 || status == 502,
        "watermark missing: {status}"
    );
    let cc = hv(&h, "cache-control");
    assert!(!cc.contains("max-age=") || cc.contains("max-age=0"), "{cc}");
    origin.route(
        WATERMARK_PATH,
        Route::Body(fixtures::watermark_png(), "image/png"),
    );
    let (status, _, body) = get(url("marked", &src)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let img = image::load_from_memory(&body).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (300, 200));
    assert_eq!(
        img.get_pixel(5, 5).0,
        [0, 255, 0],
        "the watermark, top-left"
    );
    assert_ne!(img.get_pixel(25, 15).0, [0, 255, 0]);
    // Presets-only: any other option is refused, however it is signed.
    for options in ["rs:fit:100:0", "pr:thumb/w:100", "nope"] {
        let (status, _, body) = get(url(options, &src)).await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 400, "{options}: {body}");
    }
}

/// Where the placeholder comes from in [`fallback_env`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FallbackFrom {
    Data,
    /// Served by the test origin at [`FALLBACK_PATH`].
    Url,
}

pub const FALLBACK_PATH: &str = "/fb/placeholder.png";

/// [`target_env`] plus a fallback image (a 40×40 PNG) for failed sources,
/// embedded or by URL.
pub fn fallback_env(
    origin: &Origin,
    closed_base: &str,
    from: FallbackFrom,
) -> Vec<(String, String)> {
    use base64::Engine as _;
    let png = super::fixtures::png(40, 40);
    let mut env = target_env(origin, closed_base);
    env.push(match from {
        FallbackFrom::Data => (
            "EDGETHUMB_FALLBACK_IMAGE_DATA".into(),
            base64::engine::general_purpose::STANDARD.encode(png),
        ),
        FallbackFrom::Url => (
            "EDGETHUMB_FALLBACK_IMAGE_URL".into(),
            origin.route(FALLBACK_PATH, super::origin::Route::Body(png, "image/png")),
        ),
    });
    env
}

/// Checks a target started with [`fallback_env`]: upstream and source
/// failures answer with the fallback image, made with the request's
/// options, status 200 and the failure's short TTL; request errors do not.
pub async fn check_fallback(t: &dyn Transport, origin: &Origin) {
    use super::origin::Route;

    let url = |options: &'static str, source: &str, sign: super::cases::Sign| {
        let case = Case {
            options,
            sign,
            ..super::cases::template()
        };
        case_path(&case, source)
    };
    origin.route("/fb/down.jpg", Route::Status(500));
    origin.route("/fb/missing.jpg", Route::Status(404));
    origin.route(
        "/fb/junk.jpg",
        Route::Body(b"<html>not an image</html>".to_vec(), "image/jpeg"),
    );
    for (path, failed, ttl) in [
        ("/fb/down.jpg", "502", "max-age=5"),
        ("/fb/missing.jpg", "404", "max-age=300"),
        ("/fb/junk.jpg", "415", "max-age=300"),
    ] {
        let src = format!("{}{path}", origin.base());
        let r = get(t, &url("rs:fill:20:20", &src, super::cases::Sign::Valid)).await;
        let hv = |n: &str| header(&r, n).to_string();
        assert_eq!(r.status, 200, "{path}");
        assert!(
            hv("x-edgethumb-fallback").starts_with(failed),
            "{path}: {}",
            hv("x-edgethumb-fallback")
        );
        assert!(
            hv("cache-control").contains(ttl),
            "{path}: {}",
            hv("cache-control")
        );
        let img = image::load_from_memory(&r.body).unwrap();
        assert_eq!((img.width(), img.height()), (20, 20), "{path}");
    }
    // A bad signature is the client's error: no placeholder for it.
    let src = format!("{}/fb/down.jpg", origin.base());
    let r = get(t, &url("rs:fill:20:20", &src, super::cases::Sign::WrongKey)).await;
    assert_eq!(r.status, 403);
}

/// A media API's failure counter, rebuilt from the negative cache and the
/// per-host breaker ([`breaker_env`]: 2 failures open a host for 2 s).
pub fn breaker_env(origin: &Origin, other: &Origin, closed_base: &str) -> Vec<(String, String)> {
    let mut env = media_api_env(origin, closed_base);
    for (k, v) in &mut env {
        if k == "EDGETHUMB_ALLOWED_SOURCES" {
            v.push_str(&format!(",{}/", other.base()));
        }
    }
    for (k, v) in [
        ("EDGETHUMB_BREAKER_FAILURES", "2"),
        ("EDGETHUMB_BREAKER_COOLDOWN", "2"),
    ] {
        env.push((k.to_string(), v.to_string()));
    }
    env
}

/// Checks a target started with [`breaker_env`] that keeps one service
/// across requests (native, a Worker isolate):
/// - a failed thumbnail is answered from the negative cache, not asked again;
/// - after 2 failures in a row, its host is not asked at all (fail fast,
///   424 here) while other hosts are served;
/// - after the cool-down one probe goes through, and a success closes it.
pub async fn check_breaker(t: &dyn Transport, origin: &Origin, other: &Origin) {
    use super::fixtures;
    use super::origin::Route;

    let url = |source: &str| {
        let case = Case {
            options: "pr:thumb",
            ..super::cases::template()
        };
        case_path(&case, source)
    };
    let get = |source: String| async move {
        let r = get(t, &url(&source)).await;
        let cache = header(&r, "x-edgethumb-cache").to_string();
        let body = String::from_utf8_lossy(&r.body).to_string();
        (r.status, cache, body, r.took)
    };
    let jpeg = fixtures::jpeg(800, 600);

    // One failing thumbnail: asked once, then answered from the negative cache.
    let a = origin.route("/cb/a.jpg", Route::Status(500));
    let (status, cache, body, _) = get(a.clone()).await;
    assert_eq!((status, cache.as_str()), (424, "miss"), "{body}");
    let (status, cache, _, _) = get(a.clone()).await;
    assert_eq!((status, cache.as_str()), (424, "hit"));
    assert_eq!(origin.hits("/cb/a.jpg"), 1, "not asked again");

    // A second failure in a row from the host opens its circuit.
    let b = origin.route(
        "/cb/b.jpg",
        Route::Slow(Duration::from_secs(5), jpeg.clone()),
    );
    let (status, _, body, _) = get(b).await;
    assert_eq!(status, 424, "{body}");
    let c = origin.route("/cb/c.jpg", Route::Body(jpeg.clone(), "image/jpeg"));
    let (status, _, body, took) = get(c.clone()).await;
    assert_eq!(status, 424, "{body}");
    assert!(body.contains("is failing"), "{body}");
    assert!(took < Duration::from_millis(500), "fails fast: {took:?}");
    assert_eq!(origin.hits("/cb/c.jpg"), 0, "the open host is not asked");

    // Another host is untouched.
    let elsewhere = other.route("/cb/ok.jpg", Route::Body(jpeg.clone(), "image/jpeg"));
    let (status, _, body, _) = get(elsewhere).await;
    assert_eq!(status, 200, "{body}");

    // After the cool-down (and the fail-fast answer's TTL, capped by it),
    // a probe goes through; its success closes the circuit.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let (status, _, body, _) = get(c).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(origin.hits("/cb/c.jpg"), 1);
    let d = origin.route("/cb/d.jpg", Route::Body(jpeg, "image/jpeg"));
    let (status, _, body, _) = get(d).await;
    assert_eq!(status, 200, "{body}");
}

/// The access log: one JSON record per miss and per failure on every
/// runtime (and per hit where `logs_hits`: the native server logs every
/// request), with the request id the client sent, status, cache tier,
/// bytes, stage times and the source's host, and never its URL.
pub async fn check_access_log(
    t: &Target,
    log: &super::log::LogLines,
    origin: &Origin,
    logs_hits: bool,
) {
    let source = origin.route("/logged.jpg", Route::Body(fx::jpeg(300, 200), "image/jpeg"));
    let case = Case {
        options: "rs:fit:60:0",
        ..super::cases::template()
    };
    let path = case_path(&case, &source);
    let get = |path: &str, id: &str| {
        let req = http::Request::builder()
            .uri(path)
            .header("x-request-id", id)
            .body(())
            .unwrap();
        t.transport.send(req)
    };
    let miss = get(&path, "log-miss-1").await.unwrap();
    assert_eq!(miss.status, 200, "{}", t.name);
    let again = get(&path, "log-again-1").await.unwrap();
    assert_eq!(again.status, 200, "{}", t.name);
    let bad = get(
        "/not-a-signature/rs:fit:10:0/plain/http://x/y.jpg",
        "log-bad-1",
    )
    .await
    .unwrap();
    assert_eq!(bad.status, 403, "{}", t.name);

    // The log is read by another task: wait for the failure's line, the last.
    let deadline = Instant::now() + Duration::from_secs(10);
    let find = |id: &str| log.access_records().into_iter().find(|r| r["id"] == id);
    while find("log-bad-1").is_none() {
        assert!(
            Instant::now() < deadline,
            "{}: no access record for the failure; the log:\n{}",
            t.name,
            log.lines().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = find("log-miss-1").unwrap_or_else(|| panic!("{}: no record for the miss", t.name));
    assert_eq!(m["status"], 200, "{}: {m}", t.name);
    assert_eq!(m["cache"], "miss", "{}: {m}", t.name);
    assert_eq!(m["bytes"], miss.body.len() as u64, "{}: {m}", t.name);
    assert_eq!(m["host"], "127.0.0.1", "{}: {m}", t.name);
    for stage in ["ms", "fetch_ms", "decode_ms", "encode_ms"] {
        assert!(m[stage].is_number(), "{}: {stage} in {m}", t.name);
    }
    let b = find("log-bad-1").unwrap();
    assert_eq!(b["status"], 403, "{}: {b}", t.name);
    assert_eq!(b["cache"], "none", "{}: {b}", t.name);
    assert_eq!(b["reason"], "invalid signature", "{}: {b}", t.name);
    let again_logged = find("log-again-1");
    match (t.shared_cache, logs_hits) {
        (true, true) => assert_eq!(again_logged.unwrap()["cache"], "hit", "{}", t.name),
        (true, false) => assert!(again_logged.is_none(), "{}: a hit was logged", t.name),
        // No result cache: the repeat is a miss, and logged.
        (false, _) => assert_eq!(again_logged.unwrap()["cache"], "miss", "{}", t.name),
    }
    for r in log.access_records() {
        let line = r.to_string();
        assert!(
            !line.contains("logged.jpg") && !line.contains(&path),
            "{}: a source URL or signed path in the log: {line}",
            t.name
        );
    }
}

/// `base` plus a path signed with the test key for `options` and a plain
/// `source`, for options made at run time.
pub fn signed_url(base: &str, options: &str, source: &str) -> String {
    let key = KeyPair::from_hex(TEST_KEY, TEST_SALT).unwrap();
    let p = url_builder::unsigned_path(options, source, None, SourceEncoding::Plain);
    format!("{base}{}", url_builder::sign_path(&p, Some(&key), 32))
}
