//! `edgethumb warm`: requests thumbnails ahead of users, so new media is at
//! the edge before anyone searches for it.
//!
//! - Work is split into deterministic shards (line `k` of the work list
//!   goes to shard `k mod N`), so N workers cover every line exactly once.
//! - Requests are async and bounded (`--concurrency`), optionally rate
//!   limited (`--rps`), and retried with backoff on 5xx, 429, timeouts and
//!   resets; never on other 4xx.
//! - With `--state`, each success is appended to a file as it happens, so
//!   a killed job restarted with the same arguments skips what is done.
//! - Failed lines go to a file that can be fed back in as the work list.

use crate::exit::Exit;
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use edgethumb::request::url_builder::{self, SourceEncoding};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::settings;

/// The `Accept` a current browser sends for images, used when no
/// `--accept` is given, so the variant users will ask for is the one warmed.
const BROWSER_ACCEPT: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";

#[derive(Debug, Args)]
pub struct WarmArgs {
    /// Where edgethumb is served, e.g. `https://thumbs.example.com`. Lines
    /// that are paths are requested under it.
    #[arg(long)]
    pub base: String,
    /// The work list, one entry a line: a signed path (`/sig/opts/…`), a
    /// full URL, or `options<TAB>source URL` to sign with the configured
    /// key. Blank lines and `#` comments are skipped. `-` or none: stdin.
    pub input: Option<PathBuf>,
    /// This worker's shard, `I/N` with I from 0 to N-1.
    #[arg(long, default_value = "0/1", value_parser = parse_shard)]
    pub shard: Shard,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Requests started per second, at most.
    #[arg(long)]
    pub rps: Option<f64>,
    /// An `Accept` header to warm with; repeat to warm several negotiated
    /// variants (the cache key holds the format), e.g. `--accept image/webp
    /// --accept image/jpeg`. Default: a browser's image `Accept`.
    #[arg(long = "accept")]
    pub accepts: Vec<String>,
    /// Progress file: successes are recorded here, and skipped on a rerun.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Where failed lines go (default: the state file plus `.failed`, or
    /// `edgethumb-warm.failed`).
    #[arg(long)]
    pub failed: Option<PathBuf>,
    /// Retries of one request after a retryable failure.
    #[arg(long, default_value_t = 4)]
    pub retries: u32,
    /// Timeout of one request, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub timeout_ms: u64,
    /// Progress display: a bar on a terminal, JSON lines otherwise.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Sign `options<TAB>source` lines with the published test key (local
    /// use only); otherwise EDGETHUMB_KEY/SALT sign them.
    #[arg(long)]
    pub dev: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    Auto,
    Bar,
    Json,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}`: expected I/N, e.g. 0/3"))?;
    let index: u64 = i
        .trim()
        .parse()
        .map_err(|_| format!("`{i}`: not a number"))?;
    let count: u64 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{n}`: not a number"))?;
    if count == 0 || index >= count {
        return Err(format!(
            "`{s}`: I must be 0 to N-1 (shards are numbered from 0)"
        ));
    }
    Ok(Shard { index, count })
}

/// One request to make: a work line in one `Accept` variant.
#[derive(Debug, Clone)]
struct Item {
    /// The work line as given, for the failed file.
    line: String,
    url: String,
    accept: String,
}

impl Item {
    /// The state file's record of this item.
    fn key(&self) -> String {
        format!("{}\t{}", self.accept, self.url)
    }
}

#[derive(Debug, Default)]
struct Counters {
    ok: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    coalesced: AtomicU64,
    retries: AtomicU64,
    bytes: AtomicU64,
}

impl Counters {
    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    event: &'a str,
    shard: String,
    total: u64,
    done: u64,
    percentage_complete: f64,
    ok: u64,
    failed: u64,
    skipped: u64,
    cache_hit: u64,
    cache_miss: u64,
    cache_coalesced: u64,
    retries: u64,
    bytes: u64,
    elapsed_s: f64,
}

fn report<'a>(
    event: &'a str,
    shard: Shard,
    total: u64,
    c: &Counters,
    started: Instant,
) -> Report<'a> {
    let done = Counters::get(&c.ok) + Counters::get(&c.failed) + Counters::get(&c.skipped);
    Report {
        event,
        shard: format!("{}/{}", shard.index, shard.count),
        total,
        done,
        percentage_complete: if total == 0 {
            100.0
        } else {
            (done as f64 * 1000.0 / total as f64).round() / 10.0
        },
        ok: Counters::get(&c.ok),
        failed: Counters::get(&c.failed),
        skipped: Counters::get(&c.skipped),
        cache_hit: Counters::get(&c.hits),
        cache_miss: Counters::get(&c.misses),
        cache_coalesced: Counters::get(&c.coalesced),
        retries: Counters::get(&c.retries),
        bytes: Counters::get(&c.bytes),
        elapsed_s: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    }
}

/// Exits 0 when all are warmed, 1 when some failed, else as [`Exit`] says
/// (66 unreadable input, 73 unwritable state, 78 bad configuration or
/// arguments).
pub fn run(args: WarmArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("edgethumb warm: cannot start the runtime: {e}");
            return Exit::Internal.into();
        }
    };
    rt.block_on(warm(args))
}

async fn warm(args: WarmArgs) -> ExitCode {
    let lines = match read_lines(args.input.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("edgethumb warm: cannot read the work list: {e}");
            return Exit::NoInput.into();
        }
    };
    let mine: Vec<String> = lines
        .into_iter()
        .enumerate()
        .filter(|(k, _)| *k as u64 % args.shard.count == args.shard.index)
        .map(|(_, l)| l)
        .collect();
    let accepts = if args.accepts.is_empty() {
        vec![BROWSER_ACCEPT.to_string()]
    } else {
        args.accepts.clone()
    };
    let items = match resolve(&mine, &args.base, &accepts, args.dev) {
        Ok(items) => items,
        Err(e) => {
            eprintln!("edgethumb warm: {e}");
            return Exit::Config.into();
        }
    };
    let done = match args.state.as_deref().map(read_state).transpose() {
        Ok(d) => d.unwrap_or_default(),
        Err(e) => {
            eprintln!("edgethumb warm: cannot read the state file: {e}");
            return Exit::NoInput.into();
        }
    };
    let state = match args.state.as_deref().map(open_append).transpose() {
        Ok(f) => f.map(Mutex::new),
        Err(e) => {
            eprintln!("edgethumb warm: cannot write the state file: {e}");
            return Exit::CannotWrite.into();
        }
    };
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_millis(args.timeout_ms))
        .pool_max_idle_per_host(args.concurrency as usize)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("edgethumb warm: cannot build the HTTP client: {e}");
            return Exit::Internal.into();
        }
    };

    let total = items.len() as u64;
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let mode = match args.progress {
        ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bar,
        ProgressMode::Auto => ProgressMode::Json,
        m => m,
    };
    let bar = (mode == ProgressMode::Bar).then(|| progress_bar(total));
    let ticker = (mode == ProgressMode::Json).then(|| {
        let c = Arc::clone(&counters);
        let shard = args.shard;
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(2));
            loop {
                every.tick().await;
                print_json_err(&report("progress", shard, total, &c, started));
            }
        })
    });

    let mut todo = Vec::new();
    for item in items {
        if done.contains(&item.key()) {
            Counters::add(&counters.skipped, 1);
        } else {
            todo.push(item);
        }
    }
    if let Some(b) = &bar {
        b.inc(Counters::get(&counters.skipped));
    }
    let limiter = args.rps.filter(|r| *r > 0.0).map(|rps| {
        let mut i = tokio::time::interval(Duration::from_secs_f64(1.0 / rps));
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::sync::Mutex::new(i)
    });
    let failed_lines: Mutex<Vec<String>> = Mutex::default();

    futures_util::stream::iter(todo)
        .for_each_concurrent(args.concurrency as usize, |item| {
            let (client, counters, bar) = (&client, &counters, &bar);
            let (limiter, state, failed_lines) = (&limiter, &state, &failed_lines);
            async move {
                match fetch_with_retries(client, &item, args.retries, limiter, counters).await {
                    Ok(()) => {
                        Counters::add(&counters.ok, 1);
                        if let Some(f) = state {
                            // One line per success, flushed, so a kill loses
                            // at most the requests in flight.
                            let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
                            let _ = writeln!(f, "{}", item.key()).and_then(|_| f.flush());
                        }
                    }
                    Err(why) => {
                        Counters::add(&counters.failed, 1);
                        if let Some(b) = bar {
                            b.println(format!("failed: {} ({why})", item.url));
                        } else if mode == ProgressMode::Json {
                            print_json_err(&serde_json::json!({
                                "event": "failed", "url": item.url, "accept": item.accept, "reason": why,
                            }));
                        }
                        failed_lines
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(item.line.clone());
                    }
                }
                if let Some(b) = bar {
                    b.set_message(format!("failed {}", Counters::get(&counters.failed)));
                    b.inc(1);
                }
            }
        })
        .await;

    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let summary = report("summary", args.shard, total, &counters, started);
    let failed_path = args.failed.clone().unwrap_or_else(|| match &args.state {
        Some(s) => PathBuf::from(format!("{}.failed", s.display())),
        None => PathBuf::from("edgethumb-warm.failed"),
    });
    let mut failed = failed_lines.into_inner().unwrap_or_else(|e| e.into_inner());
    failed.dedup();
    if !failed.is_empty() {
        if let Err(e) = std::fs::write(&failed_path, failed.join("\n") + "\n") {
            eprintln!(
                "edgethumb warm: cannot write {}: {e}",
                failed_path.display()
            );
        }
    }
    if mode == ProgressMode::Json || !std::io::stdout().is_terminal() {
        if let Ok(s) = serde_json::to_string(&summary) {
            println!("{s}");
        }
    } else {
        println!(
            "warmed {} of {} ({} skipped as done, {} failed) in {:.1} s: cache hit {}, miss {}, coalesced {}; {} retries; {:.1} MB",
            summary.ok,
            summary.total,
            summary.skipped,
            summary.failed,
            summary.elapsed_s,
            summary.cache_hit,
            summary.cache_miss,
            summary.cache_coalesced,
            summary.retries,
            summary.bytes as f64 / 1e6
        );
    }
    if summary.failed > 0 {
        eprintln!(
            "edgethumb warm: {} failed; their lines are in {} (feed it back in to retry)",
            summary.failed,
            failed_path.display()
        );
        return Exit::Failed.into();
    }
    Exit::Done.into()
}

fn print_json_err<T: Serialize>(v: &T) {
    if let Ok(s) = serde_json::to_string(v) {
        eprintln!("{s}");
    }
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{wide_bar} {pos}/{len} {per_sec} ETA {eta} {msg}")
    {
        bar.set_style(style);
    }
    bar.set_message("failed 0");
    bar
}

fn read_lines(input: Option<&Path>) -> std::io::Result<Vec<String>> {
    let reader: Box<dyn BufRead> = match input {
        None => Box::new(BufReader::new(std::io::stdin())),
        Some(p) if p == Path::new("-") => Box::new(BufReader::new(std::io::stdin())),
        Some(p) => Box::new(BufReader::new(File::open(p)?)),
    };
    let mut out = Vec::new();
    for line in reader.lines() {
        let line = line?;
        let t = line.trim_end_matches('\r');
        if t.trim().is_empty() || t.trim_start().starts_with('#') {
            continue;
        }
        out.push(t.to_string());
    }
    Ok(out)
}

/// Turns work lines into requests, signing `options<TAB>source` lines.
fn resolve(
    lines: &[String],
    base: &str,
    accepts: &[String],
    dev: bool,
) -> Result<Vec<Item>, String> {
    let base = base.trim_end_matches('/');
    let needs_key = lines.iter().any(|l| l.contains('\t'));
    let config = if needs_key {
        Some(settings::load(dev, None).map_err(|e| format!("configuration error: {e}"))?)
    } else {
        None
    };
    let mut items = Vec::with_capacity(lines.len() * accepts.len());
    for line in lines {
        let t = line.trim();
        let url = if let Some((options, source)) = t.split_once('\t') {
            let cfg = config.as_ref().ok_or("no signing configuration")?;
            let path = url_builder::unsigned_path(
                options.trim(),
                source.trim(),
                None,
                SourceEncoding::Base64,
            );
            format!(
                "{base}{}",
                url_builder::sign_path(&path, cfg.keys.first(), cfg.signature_size)
            )
        } else if t.starts_with("http://") || t.starts_with("https://") {
            t.to_string()
        } else if t.starts_with('/') {
            format!("{base}{t}")
        } else {
            format!("{base}/{t}")
        };
        for accept in accepts {
            items.push(Item {
                line: line.clone(),
                url: url.clone(),
                accept: accept.clone(),
            });
        }
    }
    Ok(items)
}

fn read_state(path: &Path) -> std::io::Result<HashSet<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s.lines().map(str::to_string).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashSet::new()),
        Err(e) => Err(e),
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Requests one item until it succeeds, fails for good, or runs out of
/// retries. The error is a one-line reason.
async fn fetch_with_retries(
    client: &reqwest::Client,
    item: &Item,
    retries: u32,
    limiter: &Option<tokio::sync::Mutex<tokio::time::Interval>>,
    counters: &Counters,
) -> Result<(), String> {
    let mut attempt = 0u32;
    loop {
        if let Some(l) = limiter {
            l.lock().await.tick().await;
        }
        let (retryable, why, retry_after) = match fetch_once(client, item, counters).await {
            Ok(()) => return Ok(()),
            Err(f) => f,
        };
        if !retryable || attempt >= retries {
            return Err(why);
        }
        attempt += 1;
        Counters::add(&counters.retries, 1);
        tokio::time::sleep(retry_after.unwrap_or_else(|| backoff(attempt))).await;
    }
}

/// Exponential from 250 ms, capped at 10 s, with up to 50% jitter so that
/// many workers do not retry in step.
fn backoff(attempt: u32) -> Duration {
    let base = 250u64.saturating_mul(1 << attempt.min(6)).min(10_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    Duration::from_millis(base + nanos % (base / 2 + 1))
}

type Failure = (bool, String, Option<Duration>);

async fn fetch_once(
    client: &reqwest::Client,
    item: &Item,
    counters: &Counters,
) -> Result<(), Failure> {
    let resp = client
        .get(&item.url)
        .header("accept", &item.accept)
        .send()
        .await
        .map_err(|e| (true, transport_reason(&e), None))?;
    let status = resp.status();
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    let cache = header("x-edgethumb-cache").or_else(|| header("cf-cache-status"));
    let retry_after = header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(60)));
    // Read the whole body: the thumbnail is only cached once it was made.
    let body = resp
        .bytes()
        .await
        .map_err(|e| (true, transport_reason(&e), None))?;
    if status.is_success() || status == reqwest::StatusCode::NOT_MODIFIED {
        Counters::add(&counters.bytes, body.len() as u64);
        match cache.as_deref() {
            Some("hit") => Counters::add(&counters.hits, 1),
            Some("coalesced") => Counters::add(&counters.coalesced, 1),
            Some(_) => Counters::add(&counters.misses, 1),
            None => {}
        }
        return Ok(());
    }
    let reason = String::from_utf8_lossy(&body[..body.len().min(200)])
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let why = format!("{status}: {reason}");
    // 5xx and 429 are the server's "later"; other 4xx will not change.
    let retryable = status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
    Err((retryable, why, retry_after))
}

fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        format!("transport error: {e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_checked() {
        assert_eq!(parse_shard("1/3"), Ok(Shard { index: 1, count: 3 }));
        assert!(parse_shard("3/3").is_err());
        assert!(parse_shard("0/0").is_err());
        assert!(parse_shard("x").is_err());
    }

    #[test]
    fn lines_resolve_to_urls_per_accept() {
        let lines = vec![
            "/sig/rs:fit:10:0/plain/http://a/b.jpg".to_string(),
            "https://t.example/x".to_string(),
        ];
        let items = resolve(&lines, "http://h/", &["a".into(), "b".into()], false).unwrap();
        assert_eq!(items.len(), 4);
        assert_eq!(
            items[0].url,
            "http://h/sig/rs:fit:10:0/plain/http://a/b.jpg"
        );
        assert_eq!(items[3].url, "https://t.example/x");
        assert_eq!(items[3].accept, "b");
    }
}
