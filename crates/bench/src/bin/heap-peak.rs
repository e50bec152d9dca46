//! `edgethumb-heap-peak`: the peak live heap of one transform beside its
//! memory estimate (`pipeline::memory`), natively, for fitting that model
//! without a Worker. Usage:
//!
//! `edgethumb-heap-peak [--trace] [--options q:80,rs:fit:400:0/q:80] FILE...`
//!
//! `--trace` lists every allocation and free of 64 KiB or more, in order,
//! with the live bytes after it: the phases the estimate models. What the
//! Worker's linear memory adds (wasm's allocator grows by whole blocks) is
//! measured by `tests/worker_memory.rs`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

use edgethumb::pipeline;

/// System's allocator, counting live bytes, their peak, and (when
/// tracing) large events into a fixed table: no allocation inside.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static TRACING: AtomicBool = AtomicBool::new(false);
const EVENTS: usize = 4096;
/// (kind: 1 alloc, 2 free, 3 realloc; size; live after).
static TABLE: [[AtomicUsize; 3]; EVENTS] = [const {
    [
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    ]
}; EVENTS];
static COUNT: AtomicUsize = AtomicUsize::new(0);
const TRACED: usize = 64 * 1024;

fn grew(by: usize) {
    let live = LIVE.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(live, Relaxed);
}

fn event(kind: usize, size: usize) {
    if size >= TRACED && TRACING.load(Relaxed) {
        let i = COUNT.fetch_add(1, Relaxed);
        if let Some(row) = TABLE.get(i) {
            row[0].store(kind, Relaxed);
            row[1].store(size, Relaxed);
            row[2].store(LIVE.load(Relaxed), Relaxed);
        }
    }
}

// SAFETY: every call is passed to `System` unchanged; only counters are
// added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        event(1, layout.size());
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        event(2, layout.size());
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        // Both blocks are live while the bytes are copied.
        grew(new);
        LIVE.fetch_sub(layout.size(), Relaxed);
        event(3, new);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MIB: f64 = 1024.0 * 1024.0;

fn main() {
    let mut trace = false;
    let mut options = "q:80,rs:fit:2000:0/q:80,rs:fit:400:0/q:80".to_string();
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--trace" => trace = true,
            "--options" => options = args.next().unwrap_or_default(),
            _ => files.push(arg),
        }
    }
    if files.is_empty() {
        eprintln!("usage: edgethumb-heap-peak [--trace] [--options A,B] FILE...");
        std::process::exit(2);
    }
    println!("| file | options | estimate (MiB) | peak live (MiB) | estimate ÷ peak |");
    println!("| --- | --- | ---: | ---: | ---: |");
    for file in &files {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        let name = file.rsplit('/').next().unwrap_or(file);
        for opts in options.split(',') {
            // JPEG out unless asked otherwise, as the Worker memory test.
            let opts_f = match opts.contains("f:") {
                true => opts.to_string(),
                false => format!("{opts}/f:jpg"),
            };
            let job = edgethumb_bench::job(&opts_f, 80).unwrap_or_else(|e| panic!("{opts}: {e}"));
            let estimate =
                pipeline::memory_estimate(&bytes, &job).unwrap_or_else(|e| panic!("{name}: {e}"));
            let base = LIVE.load(Relaxed);
            PEAK.store(base, Relaxed);
            COUNT.store(0, Relaxed);
            TRACING.store(trace, Relaxed);
            let result = pipeline::run(&bytes, &job, || 0.0);
            TRACING.store(false, Relaxed);
            // The source is held throughout, as the estimate counts it.
            let peak = (PEAK.load(Relaxed) - base + bytes.len()) as f64;
            if let Err(e) = result {
                panic!("{name} {opts}: {e}");
            }
            for row in TABLE.iter().take(COUNT.load(Relaxed).min(EVENTS)) {
                let kind = ["", "alloc", "free", "realloc"][row[0].load(Relaxed).min(3)];
                let size = row[1].load(Relaxed) as f64 / MIB;
                let live = (row[2].load(Relaxed) - base + bytes.len()) as f64 / MIB;
                println!("    {kind} {size:.2} MiB, live {live:.2} MiB");
            }
            println!(
                "| {name} | {opts} | {:.1} | {:.1} | {:.2} |",
                estimate as f64 / MIB,
                peak / MIB,
                estimate as f64 / peak
            );
        }
    }
}
