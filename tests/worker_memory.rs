//! Wasm linear memory of the Worker, measured under `wrangler dev`, for
//! every image of the shared corpus (`../shared/corpus/fetch.sh`) at full
//! size, 2000 px and 400 px, and for generated 24 MP and 50 MP baseline
//! JPEGs: each in a fresh isolate (its own peak), then the corpus at 400 px
//! in one isolate (what a long-lived isolate reaches; wasm memory never
//! shrinks).
//!
//! Cloudflare kills an isolate above 128 MB and `wrangler dev` does not, so
//! this is where the limit is checked. The transform budget's estimate
//! (`pipeline::memory`) must bound what was measured. The table goes to
//! stdout and tests/artifacts/worker-memory.md.

mod support;

use std::path::PathBuf;

use edgethumb::pipeline::Limits;
use edgethumb::pipeline::{self, Job};
use support::harness::{self, closed_port_base, target_env};
use support::origin::{Origin, Route};
use support::wrangler::WranglerServer;

const MIB: f64 = 1024.0 * 1024.0;
const ISOLATE_LIMIT: u64 = 128 * 1024 * 1024;
const OPTIONS: &str = "rs:fit:400:0/q:80";
/// Where a transform's memory should sit (issue 19): every corpus image at
/// every size (the generated JPEGs have their own).
const TARGET: u64 = 64 * 1024 * 1024;
/// How far above the measured memory the estimate may sit (issue 19).
const MAX_OVER: f64 = 1.2;

/// A size measured: name, options, widest output.
type Size = (&'static str, &'static str, u32);

/// An image measured: name, note, bytes, width, and its sizes.
type Image = (String, String, Vec<u8>, u32, &'static [Size]);

/// The sizes measured.
const SIZES: [Size; 3] = [
    ("full", "q:80", u32::MAX),
    ("2000 px", "rs:fit:2000:0/q:80", 2000),
    ("400 px", OPTIONS, 400),
];

fn corpus() -> Option<(PathBuf, Vec<(String, String)>)> {
    let script = support::harness::repo_root().join("../shared/corpus/fetch.sh");
    if !script.exists() {
        return None;
    }
    let out = std::process::Command::new("bash")
        .arg(&script)
        .output()
        .expect("run corpus/fetch.sh");
    assert!(
        out.status.success(),
        "corpus/fetch.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string());
    let manifest = std::fs::read_to_string(dir.join("manifest.tsv")).unwrap();
    let files = manifest
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            Some((
                cols.first()?.to_string(),
                format!("{}x{} {}", cols.get(2)?, cols.get(3)?, cols.get(5)?),
            ))
        })
        .collect();
    Some((dir, files))
}

fn job(options: &str, ext: &str) -> Job {
    let path = edgethumb::request::url_builder::unsigned_path(
        options,
        "http://x/y",
        Some(ext),
        edgethumb::request::url_builder::SourceEncoding::Plain,
    );
    let parsed = edgethumb::request::path::parse(&format!("/_{path}")).unwrap();
    let options = edgethumb::request::options::build(
        &parsed.options,
        parsed.extension.as_deref(),
        &Default::default(),
    )
    .unwrap();
    let negotiated = edgethumb::request::negotiate::negotiate(options.format, None, &[]);
    Job {
        options,
        negotiated,
        limits: Limits::default(),
        default_quality: 80,
        format_quality: Vec::new(),
        skip_processing: Vec::new(),
        watermark: None,
    }
}

fn dimensions(bytes: &[u8]) -> (u32, u32) {
    if edgethumb_codecs::avif_decode::is_avif(bytes) {
        let img = harness::decode(bytes).unwrap();
        return (img.width(), img.height());
    }
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .unwrap()
        .into_dimensions()
        .unwrap()
}

struct Measured {
    status: u16,
    memory: u64,
}

async fn request(
    client: &reqwest::Client,
    base: &str,
    source: &str,
    ext: &'static str,
    options: &'static str,
    width: u32,
) -> Measured {
    let case = support::cases::Case {
        options,
        ext: Some(ext),
        ..support::cases::template()
    };
    let url = format!("{base}{}", harness::case_path(&case, source));
    let r = client.get(&url).send().await.unwrap();
    let status = r.status().as_u16();
    let memory = r
        .headers()
        .get("x-edgethumb-wasm-memory")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .expect("x-edgethumb-wasm-memory header");
    let body = r.bytes().await.unwrap();
    if status == 200 {
        assert_eq!(dimensions(&body).0, width, "{options}");
    }
    Measured { status, memory }
}

/// Linear memory of a fresh isolate that has served only `/health`.
async fn floor(client: &reqwest::Client, base: &str) -> u64 {
    client
        .get(format!("{base}/health?x"))
        .send()
        .await
        .unwrap()
        .headers()
        .get("x-edgethumb-wasm-memory")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .expect("memory header on /health")
}

/// The floor of a fresh isolate started with `env` that has served only
/// `/health`.
async fn fresh_floor(client: &reqwest::Client, env: &[(String, String)]) -> u64 {
    let server = WranglerServer::start(env).await;
    floor(client, &server.base).await
}

fn env(origin: &Origin) -> Vec<(String, String)> {
    let mut env = target_env(origin, &closed_port_base());
    // The production limits, not the conformance table's small ones.
    env.retain(|(k, _)| !k.starts_with("EDGETHUMB_MAX_") && k != "EDGETHUMB_AVIF_MAX_PIXELS");
    env.push(("EDGETHUMB_REPORT_WASM_MEMORY".into(), "true".into()));
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_memory_over_the_corpus() {
    let Some((dir, files)) = corpus() else {
        println!("SKIPPED: ../shared/corpus/fetch.sh not found");
        return;
    };
    let origin = Origin::start().await;
    let client = support::over_http::client();
    let limit = Limits::default().max_transform_bytes;

    let floor = fresh_floor(&client, &env(&origin)).await;

    let mut rows = vec![
        "| image | source | size | estimate (MiB) | linear memory, fresh isolate (MiB) | estimate ÷ (memory − floor) | status | served under target |"
            .to_string(),
        "| --- | --- | --- | ---: | ---: | ---: | --- | --- |".to_string(),
    ];
    let mut failures = Vec::new();
    let mut sources = Vec::new();
    let mut misses = Vec::new();
    // The corpus at every size, then the generated large JPEGs.
    let mut images: Vec<Image> = files
        .iter()
        .map(|(file, note)| {
            let bytes = std::fs::read(dir.join(file)).unwrap();
            let width = dimensions(&bytes).0;
            (file.clone(), note.clone(), bytes, width, &SIZES[..])
        })
        .collect();
    const FULL: [Size; 1] = [("full", "q:80", u32::MAX)];
    const AT_2048: [Size; 1] = [("2048 px", "rs:fit:2048:0/q:80", 2048)];
    images.push((
        "generated-6000x4000.jpg".into(),
        "6000x4000 24 MP baseline".into(),
        support::fixtures::jpeg(6000, 4000),
        6000,
        &FULL,
    ));
    images.push((
        "generated-8660x5773.jpg".into(),
        "8660x5773 50 MP baseline".into(),
        support::fixtures::jpeg(8660, 5773),
        8660,
        &AT_2048,
    ));
    for (file, note, bytes, source_width, sizes) in images {
        let source = origin.route(
            &format!("/corpus/{file}"),
            Route::Body(bytes.clone(), "image/jpeg"),
        );
        if sizes.len() == SIZES.len() {
            sources.push(source.clone());
        }
        for &(size, options, widest) in sizes {
            let estimate = pipeline::memory_estimate(&bytes, &job(options, "jpg")).unwrap();
            let server = WranglerServer::start(&env(&origin)).await;
            let width = source_width.min(widest);
            let m = request(&client, &server.base, &source, "jpg", options, width).await;
            drop(server);
            // The targets: 64 MiB and served; the 24 MP JPEG at
            // full size under 96 MiB, the 50 MP one at 2048 px under 48.
            let target = if file.starts_with("generated-6000") {
                96 << 20
            } else if file.starts_with("generated-8660") {
                48 << 20
            } else {
                TARGET
            };
            let met = m.status == 200 && m.memory < target;
            let used = m.memory.saturating_sub(floor).max(1);
            let ratio = estimate as f64 / used as f64;
            rows.push(format!(
                "| {file} | {note} | {size} | {:.1} | {:.1} | {ratio:.2} | {} | {} |",
                estimate as f64 / MIB,
                m.memory as f64 / MIB,
                m.status,
                if met { "yes" } else { "**no**" }
            ));
            if !met {
                misses.push(format!("{file} at {size}"));
            }
            let want = if estimate > limit { 413 } else { 200 };
            if m.status != want {
                failures.push(format!(
                    "{file} at {size}: status {} (want {want})",
                    m.status
                ));
            }
            if m.memory >= ISOLATE_LIMIT {
                failures.push(format!(
                    "{file} at {size}: {} bytes of wasm memory",
                    m.memory
                ));
            }
            // The estimate is what a transform adds to the isolate: at
            // least what was measured, and at most 20% above it (issue 19).
            if m.status == 200 && !(1.0..=MAX_OVER).contains(&ratio) {
                failures.push(format!(
                    "{file} at {size}: estimate {:.1} MiB is {ratio:.2}× the {:.1} MiB measured over the floor (want 1 to {MAX_OVER})",
                    estimate as f64 / MIB,
                    used as f64 / MIB,
                ));
            }
            // What banding and streaming have reached, kept: every image
            // meets its target, except at full size where the estimate
            // is over the budget (progressive 4:4:4 frames, whose every
            // coefficient is held until the last scan).
            if !(met || size == "full" && estimate > limit) {
                failures.push(format!("{file} at {size}: not served under its target"));
            }
        }
    }
    rows.push(String::new());
    rows.push(format!(
        "Not yet under the targets: {}.",
        if misses.is_empty() {
            "none".to_string()
        } else {
            misses.join(", ")
        }
    ));

    // One isolate through the whole corpus, JPEG then WebP output.
    let server = WranglerServer::start(&env(&origin)).await;
    let mut last = 0;
    for ext in ["jpg", "webp"] {
        for source in &sources {
            last = request(&client, &server.base, source, ext, OPTIONS, 400)
                .await
                .memory;
        }
    }
    drop(server);
    rows.push(String::new());
    rows.push(format!(
        "Fresh isolate after /health: {:.1} MiB. One isolate after the whole corpus, as JPEG then WebP: {:.1} MiB. Transform budget: {:.0} MiB.",
        floor as f64 / MIB,
        last as f64 / MIB,
        limit as f64 / MIB
    ));
    if last >= ISOLATE_LIMIT {
        failures.push(format!("one isolate reached {last} bytes"));
    }
    let table = rows.join("\n");
    println!("{table}");
    std::fs::write(
        support::browser::artifacts_dir().join("worker-memory.md"),
        format!("{table}\n"),
    )
    .unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The security review's memory bombs (issue 18) against one isolate with
/// the production limits: each is refused before it allocates, so the
/// isolate's linear memory stays near its floor, far inside the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_memory_after_the_bomb_rows() {
    use support::fixtures as fx;
    let origin = Origin::start().await;
    let client = support::over_http::client();
    let budget = Limits::default().max_transform_bytes;
    let server = WranglerServer::start(&env(&origin)).await;
    let floor = floor(&client, &server.base).await;
    let bombs: [(&str, Vec<u8>, &str, u16); 3] = [
        (
            "gif-frame-8000x8000-in-1x1",
            fx::gif_frame_outside_screen(8000, 8000),
            "image/gif",
            415,
        ),
        (
            "png-iccp-256-mib",
            fx::png_iccp_bomb(256 << 20),
            "image/png",
            413,
        ),
        (
            "jpeg-421-scans-8192x6096",
            fx::jpeg_scan_flood(8192, 6096, 421),
            "image/jpeg",
            413,
        ),
    ];
    let mut failures = Vec::new();
    let mut last = floor;
    for (name, bytes, ct, want) in bombs {
        let source = origin.route(&format!("/bomb/{name}"), Route::Body(bytes, ct));
        let m = request(&client, &server.base, &source, "jpg", OPTIONS, 400).await;
        println!(
            "bomb {name}: {}, linear memory {:.1} MiB (floor {:.1} MiB)",
            m.status,
            m.memory as f64 / MIB,
            floor as f64 / MIB
        );
        if m.status != want {
            failures.push(format!("{name}: status {} (want {want})", m.status));
        }
        last = m.memory;
    }
    drop(server);
    // Refused before any decoder allocates: a few MiB at most above the
    // floor, and never near the budget.
    if last > floor + 8 * 1024 * 1024 || last > floor + budget {
        failures.push(format!(
            "after the bombs: {:.1} MiB over a floor of {:.1} MiB",
            last as f64 / MIB,
            floor as f64 / MIB
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Prints a table row for one fresh-isolate request (`row` holds its first
/// cells), and notes a failure unless it was served, stayed under the
/// isolate's limit, and the estimate bounded what it added to the floor.
fn bounded(row: &str, estimate: u64, m: &Measured, floor: u64, failures: &mut Vec<String>) {
    let used = m.memory.saturating_sub(floor).max(1);
    let ratio = estimate as f64 / used as f64;
    println!(
        "| {row} | {:.1} | {:.1} | {ratio:.2} | {} |",
        estimate as f64 / MIB,
        m.memory as f64 / MIB,
        m.status
    );
    if m.status != 200 {
        failures.push(format!("{row}: status {}", m.status));
    }
    if m.memory >= ISOLATE_LIMIT {
        failures.push(format!("{row}: {} bytes of wasm memory", m.memory));
    }
    if ratio < 1.0 {
        failures.push(format!(
            "{row}: estimate {:.1} MiB under the {:.1} MiB measured",
            estimate as f64 / MIB,
            used as f64 / MIB
        ));
    }
}

/// Animated GIFs made into animated WebP and GIF (the frame limit raised
/// to 100), each in a fresh isolate: the estimate, which counts every
/// finished frame, must bound the linear memory they take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_memory_for_animations() {
    const FRAMES: u32 = 100;
    let origin = Origin::start().await;
    let client = support::over_http::client();
    let mut env = env(&origin);
    env.push(("EDGETHUMB_MAX_ANIMATION_FRAMES".into(), FRAMES.to_string()));
    let floor = fresh_floor(&client, &env).await;
    let mut failures = Vec::new();
    for (w, h, frames) in [(480, 270, 40), (800, 450, 100)] {
        let bytes = support::fixtures::panning_gif(w, h, frames);
        let name = format!("pan-{w}x{h}x{frames}.gif");
        let source = origin.route(
            &format!("/anim/{name}"),
            Route::Body(bytes.clone(), "image/gif"),
        );
        for ext in ["webp", "gif"] {
            let mut job = job(OPTIONS, ext);
            job.limits.max_animation_frames = FRAMES;
            let estimate = pipeline::memory_estimate(&bytes, &job).unwrap();
            let server = WranglerServer::start(&env).await;
            let m = request(&client, &server.base, &source, ext, OPTIONS, 400).await;
            drop(server);
            let row = format!("{name} ({} KiB) | {ext}", bytes.len() >> 10);
            bounded(&row, estimate, &m, floor, &mut failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// AVIF outputs (rav1e) of the corpus, each in a fresh isolate, at 400 px
/// and near the widest 16:10 output under the default AVIF pixel limit: the
/// estimate, which counts rav1e's frames, must bound what they take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_memory_for_avif() {
    let Some((dir, files)) = corpus() else {
        println!("SKIPPED: ../shared/corpus/fetch.sh not found");
        return;
    };
    let origin = Origin::start().await;
    let client = support::over_http::client();
    let floor = fresh_floor(&client, &env(&origin)).await;
    let mut failures = Vec::new();
    println!("| image | options | estimate (MiB) | linear memory (MiB) | estimate ÷ (memory − floor) | status |");
    println!("| --- | --- | ---: | ---: | ---: | --- |");
    for (file, _) in files
        .iter()
        .filter(|(f, _)| f.contains("2560x1600"))
        // Two photos: each row is a fresh isolate (about 20 s to start).
        .take(2)
    {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let source = origin.route(
            &format!("/avif/{file}"),
            Route::Body(bytes.clone(), "image/jpeg"),
        );
        // 880x550 (0.48 MP) is just under the default AVIF limit.
        for (options, width) in [("rs:fit:400:0", 400), ("rs:fit:880:0", 880)] {
            let estimate = pipeline::memory_estimate(&bytes, &job(options, "avif")).unwrap();
            let server = WranglerServer::start(&env(&origin)).await;
            let m = request(&client, &server.base, &source, "avif", options, width).await;
            drop(server);
            bounded(
                &format!("{file} | {options}"),
                estimate,
                &m,
                floor,
                &mut failures,
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `trim` on the largest corpus images (the largest JPEG and PNG by
/// pixels, then bytes), each in a fresh isolate: trimming decodes the
/// whole image at full size, so shrink-on-load and bands are off, and the
/// estimate must still bound the memory, or refuse with 413 what it
/// cannot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_memory_for_trim() {
    let Some((dir, files)) = corpus() else {
        println!("SKIPPED: ../shared/corpus/fetch.sh not found");
        return;
    };
    let origin = Origin::start().await;
    let client = support::over_http::client();
    let limit = Limits::default().max_transform_bytes;
    let floor = fresh_floor(&client, &env(&origin)).await;
    let largest = |ext: &str| {
        files
            .iter()
            .filter(|(f, _)| f.ends_with(ext))
            .map(|(f, _)| {
                let bytes = std::fs::read(dir.join(f)).unwrap();
                let (w, h) = dimensions(&bytes);
                (w as u64 * h as u64, bytes.len(), f.clone(), bytes)
            })
            .max_by_key(|(px, len, _, _)| (*px, *len))
    };
    let mut failures = Vec::new();
    println!("| image | options | estimate (MiB) | linear memory (MiB) | estimate ÷ (memory − floor) | status |");
    println!("| --- | --- | ---: | ---: | ---: | --- |");
    for (_, _, file, bytes) in [largest(".jpg"), largest(".png")].into_iter().flatten() {
        let source = origin.route(
            &format!("/trim/{file}"),
            Route::Body(bytes.clone(), "application/octet-stream"),
        );
        for (options, width) in [("t:10/rs:fit:400:0", 400), ("t:10/rs:fit:2000:0", 2000)] {
            let estimate = pipeline::memory_estimate(&bytes, &job(options, "jpg")).unwrap();
            let server = WranglerServer::start(&env(&origin)).await;
            let m = request(&client, &server.base, &source, "jpg", options, width).await;
            drop(server);
            let row = format!("{file} | {options}");
            if estimate > limit {
                // Refused before decoding: the isolate stays near its floor.
                println!(
                    "| {row} | {:.1} | {:.1} | over the budget | {} |",
                    estimate as f64 / MIB,
                    m.memory as f64 / MIB,
                    m.status
                );
                if m.status != 413 {
                    failures.push(format!("{row}: status {} (want 413)", m.status));
                }
                if m.memory > floor + (8 << 20) {
                    failures.push(format!("{row}: {} bytes for a refusal", m.memory));
                }
            } else {
                bounded(&row, estimate, &m, floor, &mut failures);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
