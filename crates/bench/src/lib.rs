//! The work `edgethumb bench` measures, in one process: a source file made
//! into a thumbnail `repeats` times, by edgethumb's pipeline or by the
//! naive photon-rs pipeline, with the median time, the output and the
//! process's peak memory.
//!
//! The same code runs natively (the `edgethumb` binary calls [`main`] in a
//! child process per image, so peak RSS is per image) and as the
//! wasm32-wasip1 module `edgethumb-bench-runner` under wasmtime and Node,
//! where peak memory is the wasm linear memory (which never shrinks).

use std::time::Instant;

use edgethumb::pipeline::Limits;
use edgethumb::pipeline::{run, Job};
use edgethumb::request::negotiate::negotiate;
use edgethumb::request::options::{build, Format, Presets, RawOption};

/// Which implementation makes the thumbnail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pipeline {
    /// edgethumb's transform, as the service runs it.
    Edgethumb,
    /// photon-rs: decode everything to RGBA, Lanczos3 resize, encode.
    Photon,
}

/// One thumbnail job: `width` px wide, the height from the aspect ratio.
#[derive(Debug, Clone, Copy)]
pub struct Work {
    pub pipeline: Pipeline,
    pub format: Format,
    pub width: u32,
    pub quality: u8,
}

/// What one measured run reports.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub median_ms: f64,
    pub min_ms: f64,
    pub output: Vec<u8>,
    /// Peak RSS natively, wasm linear memory on wasm32; `None` where the
    /// platform does not say.
    pub peak_memory_bytes: Option<u64>,
}

/// Limits for measuring, not refusing: a 100 MP source must run so its
/// memory can be reported, and an animated one is made whole.
fn bench_limits() -> Limits {
    Limits {
        max_src_pixels: 400_000_000,
        max_transform_bytes: u64::MAX,
        max_animation_frames: 1000,
        ..Limits::default()
    }
}

/// The job for processing options in URL form (`w:400/q:80/f:jpg`), with
/// [`bench_limits`]: what both the benchmark and `edgethumb-heap-peak` run.
pub fn job(options: &str, default_quality: u8) -> Result<Job, String> {
    let raw: Vec<RawOption> = options.split('/').filter_map(RawOption::split).collect();
    let options = build(&raw, None, &Presets::default()).map_err(|e| e.to_string())?;
    let negotiated = negotiate(options.format, None, &[]);
    Ok(Job {
        options,
        negotiated,
        limits: bench_limits(),
        default_quality,
        format_quality: Vec::new(),
        skip_processing: Vec::new(),
        watermark: None,
    })
}

/// Makes one thumbnail of `src`.
pub fn thumbnail(src: &[u8], work: &Work) -> Result<Vec<u8>, String> {
    match work.pipeline {
        Pipeline::Edgethumb => {
            let text = format!(
                "w:{}/q:{}/f:{}",
                work.width,
                work.quality,
                work.format.extension()
            );
            run(src, &job(&text, work.quality)?, || 0.0)
                .map(|o| o.body)
                .map_err(|e| e.to_string())
        }
        Pipeline::Photon => {
            if work.format != Format::Jpeg {
                return Err("the photon-rs pipeline is measured for JPEG only".into());
            }
            // photon-rs panics on undecodable input; the benchmark feeds it
            // the corpus only.
            let img = photon_rs::PhotonImage::new_from_byteslice(src.to_vec());
            let (w, h) = (img.get_width(), img.get_height());
            let height = ((h as f64 * work.width as f64 / w as f64).round() as u32).max(1);
            let small = photon_rs::transform::resize(
                &img,
                work.width,
                height,
                photon_rs::transform::SamplingFilter::Lanczos3,
            );
            Ok(small.get_bytes_jpeg(work.quality))
        }
    }
}

/// Runs `work` once to warm up, then `repeats` times.
pub fn measure(src: &[u8], work: &Work, repeats: usize) -> Result<Measurement, String> {
    let mut output = thumbnail(src, work)?;
    let mut times = Vec::with_capacity(repeats.max(1));
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        output = thumbnail(src, work)?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(Measurement {
        median_ms: median_sorted(&times),
        min_ms: times[0],
        output,
        peak_memory_bytes: peak_memory(),
    })
}

/// The median of sorted, non-empty values (the mean of the middle two for
/// an even count).
pub fn median_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// This process's peak memory so far.
pub fn peak_memory() -> Option<u64> {
    #[cfg(target_arch = "wasm32")]
    {
        // Linear memory only grows, so its size now is its peak.
        Some(core::arch::wasm32::memory_size(0) as u64 * 65536)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}

/// The runner's command line, shared by the wasm module and the native
/// binary's hidden `bench-run` command:
///
/// `PIPELINE FORMAT WIDTH QUALITY REPEATS SOURCE OUTPUT`
///
/// It writes the last output to OUTPUT and prints one JSON line:
/// `{"median_ms", "min_ms", "bytes", "peak_memory_bytes"}`. Exit code 0,
/// or 1 with the reason on stderr.
pub fn main(args: &[String]) -> i32 {
    match run_args(args) {
        Ok(line) => {
            println!("{line}");
            0
        }
        Err(e) => {
            eprintln!("edgethumb-bench-runner: {e}");
            1
        }
    }
}

fn run_args(args: &[String]) -> Result<String, String> {
    let [pipeline, format, width, quality, repeats, source, output] = args else {
        return Err(
            "usage: PIPELINE(edgethumb|photon) FORMAT(jpeg|webp|png|gif) WIDTH QUALITY REPEATS SOURCE OUTPUT"
                .into(),
        );
    };
    let pipeline = match pipeline.as_str() {
        "edgethumb" => Pipeline::Edgethumb,
        "photon" => Pipeline::Photon,
        other => return Err(format!("unknown pipeline {other:?}")),
    };
    let format = Format::from_name(format).ok_or_else(|| format!("unknown format {format:?}"))?;
    let number = |name: &str, text: &str| {
        text.parse::<u32>()
            .map_err(|_| format!("{name} must be a whole number, got {text:?}"))
    };
    let work = Work {
        pipeline,
        format,
        width: number("WIDTH", width)?,
        quality: u8::try_from(number("QUALITY", quality)?).map_err(|_| "QUALITY over 255")?,
    };
    let repeats = number("REPEATS", repeats)? as usize;
    let src = std::fs::read(source).map_err(|e| format!("{source}: {e}"))?;
    let m = measure(&src, &work, repeats)?;
    std::fs::write(output, &m.output).map_err(|e| format!("{output}: {e}"))?;
    Ok(serde_json::json!({
        "median_ms": m.median_ms,
        "min_ms": m.min_ms,
        "bytes": m.output.len(),
        "peak_memory_bytes": m.peak_memory_bytes,
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median_sorted(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median_sorted(&[1.0, 2.0, 4.0, 9.0]), 3.0);
        assert!(median_sorted(&[]).is_nan());
    }

    #[test]
    fn bad_arguments_are_refused_with_a_reason() {
        let args: Vec<String> = ["edgethumb", "tiff", "400", "80", "1", "a", "b"]
            .map(String::from)
            .to_vec();
        assert!(run_args(&args).unwrap_err().contains("unknown format"));
        assert!(run_args(&args[..3]).unwrap_err().contains("usage"));
    }
}
