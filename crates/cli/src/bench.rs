//! `edgethumb bench`: measures the thumbnail pipeline over a folder of real
//! images, beside its references, in one run on one machine.
//!
//! Every (image, format, engine) is one child process, so peak memory is
//! per image and nothing warms up across images:
//! - `native`: this binary's hidden `bench-run` command;
//! - `wasmtime` and `v8`: the `edgethumb-bench-runner` wasm32-wasip1 module
//!   (the same pipeline, simd128) under wasmtime and under Node's WASI;
//! - `workerd`: the built Worker (build/worker) under `wrangler dev`,
//!   fetching from a local origin (`bench/workerd.mjs`): the runtime users
//!   deploy to, timed from its `Server-Timing` and end to end;
//! - `sharp`: `bench/sharp.mjs` (libvips, one thread), the reference;
//! - `photon-wasmtime`, `photon-v8`: the naive photon-rs pipeline in the
//!   same wasm module, the floor (JPEG only);
//! - `photon-workerd`: the Worker users would deploy instead, written as
//!   `@cf-wasm/photon`'s README shows (`bench/photon-worker.mjs`), under
//!   the same `wrangler dev` (JPEG only).
//!
//! Node runs with `--no-turbo-fast-api-calls`. Without it, Node 20 and 22
//! crash (a general-protection fault in V8's stack walk) when a WASI call
//! made as a fast API call triggers a garbage collection, which the
//! external-memory pressure of photon-rs's ~200 MiB wasm memory does: the
//! call to open the output file then killed 6 of 12 photon-rs runs. WASI
//! calls are a handful per run, so the flag does not move the timings.
//!
//! Quality is SSIM (luma) of each output against a reference downscale
//! made here independently: a full decode by `image` and its own Lanczos3.

use crate::exit::Exit;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Args, ValueEnum};
use image::imageops::FilterType;
use image::GrayImage;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Folder of source images: the files listed in its `manifest.tsv`
    /// (as `../shared/corpus/fetch.sh` writes it) or, without one, every
    /// `.jpg`, `.jpeg` and `.png` in it.
    #[arg(long)]
    pub corpus: PathBuf,
    /// Thumbnail width; the height follows the aspect ratio.
    #[arg(long, default_value_t = 400)]
    pub width: u32,
    #[arg(long, default_value_t = 80)]
    pub quality: u8,
    /// Quality for AVIF, the service's default unless set; sharp gets the
    /// same number (both map it to libaom's level as libheif does).
    #[arg(long, default_value_t = edgethumb::config::DEFAULT_AVIF_QUALITY)]
    pub avif_quality: u8,
    /// Timed runs per measurement, after one warm-up run.
    #[arg(long, default_value_t = 5)]
    pub repeats: u32,
    /// Timed runs of the (slow) photon-rs pipeline.
    #[arg(long, default_value_t = 3)]
    pub photon_repeats: u32,
    /// Processes per measurement (photon-rs: one), each with its warm-up
    /// and `--repeats`; the row is the median of their medians. On a
    /// shared VM a process now and then runs slow for its whole life, so
    /// one process per row can misstate it by a third.
    #[arg(long, default_value_t = 3)]
    pub processes: u32,
    /// Output formats to measure (jpeg, webp, avif).
    #[arg(long, value_delimiter = ',', default_value = "jpeg,webp")]
    pub formats: Vec<String>,
    /// Engines to run (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub engines: Option<Vec<Engine>>,
    /// `edgethumb-bench-runner` built for wasm32-wasip1 (the wasm engines).
    #[arg(long)]
    pub runner_wasm: Option<PathBuf>,
    /// The wasmtime binary.
    #[arg(long, default_value = "wasmtime")]
    pub wasmtime: PathBuf,
    /// The Node binary (v8, photon-v8, sharp).
    #[arg(long, default_value = "node")]
    pub node: PathBuf,
    /// Folder holding `sharp.mjs`, `wasi-run.mjs` and `workerd.mjs`.
    #[arg(long, default_value = "bench")]
    pub scripts: PathBuf,
    /// Also measure a ~100 MP baseline JPEG, generated once (kept in the
    /// corpus folder) by upscaling the corpus's first JPEG.
    #[arg(long)]
    pub large: bool,
    /// Also measure a Display P3-tagged copy of each corpus JPEG that has no
    /// profile (made in the output folder), reported apart beside its
    /// original: what converting to sRGB costs.
    #[arg(long)]
    pub wide_gamut: bool,
    /// Measure animations instead of the corpus: animated GIFs that pan
    /// across the corpus's first JPEG (480×270 × 40 frames and 800×450 ×
    /// 100, 80 ms each), generated once beside it, made into animated
    /// `--formats webp,gif`.
    #[arg(long)]
    pub animated: bool,
    /// Where outputs are written (default: a folder under the system
    /// temporary directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write the report (Markdown) to this file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Engine {
    Native,
    Wasmtime,
    V8,
    Workerd,
    Sharp,
    PhotonWasmtime,
    PhotonV8,
    PhotonWorkerd,
}

impl Engine {
    const ALL: [Engine; 8] = [
        Engine::Native,
        Engine::Wasmtime,
        Engine::V8,
        Engine::Workerd,
        Engine::Sharp,
        Engine::PhotonWasmtime,
        Engine::PhotonV8,
        Engine::PhotonWorkerd,
    ];

    fn label(self) -> &'static str {
        match self {
            Engine::Native => "edgethumb native",
            Engine::Wasmtime => "edgethumb wasm (wasmtime)",
            Engine::V8 => "edgethumb wasm (V8)",
            Engine::Workerd => "edgethumb Worker (workerd)",
            Engine::Sharp => "sharp (libvips)",
            Engine::PhotonWasmtime => "photon-rs wasm (wasmtime)",
            Engine::PhotonV8 => "photon-rs wasm (V8)",
            Engine::PhotonWorkerd => "photon-rs Worker (@cf-wasm/photon, workerd)",
        }
    }

    fn uses_wasm(self) -> bool {
        matches!(
            self,
            Engine::Wasmtime | Engine::V8 | Engine::PhotonWasmtime | Engine::PhotonV8
        )
    }

    fn is_photon(self) -> bool {
        matches!(
            self,
            Engine::PhotonWasmtime | Engine::PhotonV8 | Engine::PhotonWorkerd
        )
    }

    /// The photon-rs run on the same engine, to compare against.
    fn photon_twin(self) -> Option<Engine> {
        match self {
            Engine::Wasmtime => Some(Engine::PhotonWasmtime),
            Engine::V8 => Some(Engine::PhotonV8),
            Engine::Workerd => Some(Engine::PhotonWorkerd),
            _ => None,
        }
    }
}

/// One source image.
#[derive(Debug, Clone)]
struct Source {
    path: PathBuf,
    note: String,
    /// In the corpus medians (the generated 100 MP image is reported apart).
    in_medians: bool,
    /// A Display P3-tagged copy of this source (`--wide-gamut`).
    tagged_from: Option<usize>,
}

/// One measured (image, format, engine).
#[derive(Debug, Clone)]
struct Run {
    median_ms: f64,
    bytes: u64,
    peak_memory_bytes: Option<u64>,
    ssim: f64,
    /// The Worker's request around the transform (`workerd` only).
    request: Option<RequestTimes>,
}

/// What a run reported: its median, peak memory and, for the Worker, the
/// request's other times.
struct Measured {
    median_ms: f64,
    peak_memory_bytes: Option<u64>,
    request: Option<RequestTimes>,
}

/// Medians over the Worker's timed requests.
#[derive(Debug, Clone, Copy)]
struct RequestTimes {
    /// The Worker's fetch from the local origin (its `Server-Timing`).
    fetch_ms: f64,
    /// The whole request as the client saw it.
    e2e_ms: f64,
    /// The transform in the isolate's first request (its warm-up).
    first_ms: Option<f64>,
}

pub fn run(args: BenchArgs) -> ExitCode {
    match bench(&args) {
        Ok(report) => {
            println!("{report}");
            if let Some(path) = &args.markdown {
                if let Err(e) = std::fs::write(path, &report) {
                    eprintln!("edgethumb bench: {}: {e}", path.display());
                    return Exit::CannotWrite.into();
                }
            }
            Exit::Done.into()
        }
        Err(e) => {
            eprintln!("edgethumb bench: {e}");
            Exit::Failed.into()
        }
    }
}

fn bench(args: &BenchArgs) -> Result<String, String> {
    let mut sources = corpus(&args.corpus)?;
    if args.animated {
        let first = sources
            .iter()
            .find(|s| has_extension(&s.path, &["jpg", "jpeg"]))
            .ok_or("--animated needs a JPEG in the corpus to pan across")?;
        let from = first.path.clone();
        sources = [(480, 270, 40), (800, 450, 100)]
            .into_iter()
            .map(|size| {
                let path = panning_gif(&from, &args.corpus, size)?;
                Ok(Source {
                    path,
                    note: format!(
                        "generated animated GIF, {}×{} × {} frames (from {})",
                        size.0,
                        size.1,
                        size.2,
                        file_name(&from)
                    ),
                    in_medians: true,
                    tagged_from: None,
                })
            })
            .collect::<Result<_, String>>()?;
    }
    if args.large {
        let first = sources
            .iter()
            .find(|s| has_extension(&s.path, &["jpg", "jpeg"]))
            .ok_or("--large needs a JPEG in the corpus to upscale")?;
        let path = large_jpeg(&first.path, &args.corpus)?;
        sources.push(Source {
            path,
            note: format!(
                "generated ~100 MP baseline (from {})",
                file_name(&first.path)
            ),
            in_medians: false,
            tagged_from: None,
        });
    }
    let out_dir = match &args.out {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("edgethumb-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let out_dir = out_dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", out_dir.display()))?;
    if args.wide_gamut {
        for i in 0..sources.len() {
            let from = &sources[i];
            if !from.in_medians || !has_extension(&from.path, &["jpg", "jpeg"]) {
                continue;
            }
            let bytes =
                std::fs::read(&from.path).map_err(|e| format!("{}: {e}", from.path.display()))?;
            let Some(tagged) = display_p3_copy(&bytes)? else {
                continue;
            };
            let path = out_dir.join(format!("display-p3-{}", file_name(&from.path)));
            std::fs::write(&path, tagged).map_err(|e| format!("{}: {e}", path.display()))?;
            sources.push(Source {
                path,
                note: format!("{} tagged Display P3", file_name(&from.path)),
                in_medians: false,
                tagged_from: Some(i),
            });
        }
    }
    let engines: Vec<Engine> = args.engines.clone().unwrap_or_else(|| Engine::ALL.to_vec());
    if engines.iter().any(|e| e.uses_wasm()) && args.runner_wasm.is_none() {
        return Err("--runner-wasm is needed for the wasm engines".into());
    }
    let formats: Vec<String> = args.formats.iter().map(|f| f.to_lowercase()).collect();
    for f in &formats {
        match (args.animated, f.as_str()) {
            (false, "jpeg" | "webp" | "avif") | (true, "webp" | "gif") => {}
            (false, _) => {
                return Err(format!(
                    "format {f:?}: the benchmark measures jpeg, webp and avif"
                ))
            }
            (true, _) => {
                return Err(format!(
                    "format {f:?}: animations are measured in webp and gif"
                ))
            }
        }
    }
    let launcher = Launcher::new(args, &out_dir)?;

    // results[(source index, format, engine)]
    let mut results: HashMap<(usize, String, Engine), Result<Run, String>> = HashMap::new();
    for (i, source) in sources.iter().enumerate() {
        let mut references: HashMap<(u32, u32), GrayImage> = HashMap::new();
        let original =
            std::fs::read(&source.path).map_err(|e| format!("{}: {e}", source.path.display()))?;
        for format in &formats {
            for &engine in &engines {
                // photon-rs: JPEG only, and not the 100 MP image (~1.6 GB).
                if engine.is_photon() && (format != "jpeg" || !source.in_medians) {
                    continue;
                }
                let output =
                    out_dir.join(format!("{}.{engine:?}.{format}", file_name(&source.path)));
                let result = launcher
                    .run(engine, format, &source.path, &output)
                    .and_then(|m| {
                        let body = std::fs::read(&output)
                            .map_err(|e| format!("{}: {e}", output.display()))?;
                        let ssim = ssim_against_reference(&original, &body, &mut references)?;
                        Ok(Run {
                            median_ms: m.median_ms,
                            bytes: body.len() as u64,
                            peak_memory_bytes: m.peak_memory_bytes,
                            ssim,
                            request: m.request,
                        })
                    });
                match &result {
                    Ok(r) => eprintln!(
                        "{} {format} {}: {:.1} ms, {} B, SSIM {:.4}",
                        file_name(&source.path),
                        engine.label(),
                        r.median_ms,
                        r.bytes,
                        r.ssim
                    ),
                    Err(e) => eprintln!(
                        "{} {format} {}: failed: {e}",
                        file_name(&source.path),
                        engine.label()
                    ),
                }
                results.insert((i, format.clone(), engine), result);
            }
        }
    }
    Ok(report(
        args, &sources, &formats, &engines, &results, &launcher,
    ))
}

/// Starts the child process of each engine.
struct Launcher {
    width: u32,
    quality: u8,
    avif_quality: u8,
    repeats: u32,
    photon_repeats: u32,
    processes: u32,
    out_dir: PathBuf,
    self_exe: PathBuf,
    runner_wasm: Option<PathBuf>,
    wasmtime: PathBuf,
    node: PathBuf,
    sharp_script: PathBuf,
    wasi_script: PathBuf,
    workerd_script: PathBuf,
}

impl Launcher {
    fn new(args: &BenchArgs, out_dir: &Path) -> Result<Launcher, String> {
        let absolute = |p: &Path| {
            p.canonicalize()
                .map_err(|e| format!("{}: {e}", p.display()))
        };
        Ok(Launcher {
            width: args.width,
            quality: args.quality,
            avif_quality: args.avif_quality,
            repeats: args.repeats,
            photon_repeats: args.photon_repeats,
            processes: args.processes,
            out_dir: out_dir.to_path_buf(),
            self_exe: std::env::current_exe().map_err(|e| e.to_string())?,
            runner_wasm: args.runner_wasm.as_deref().map(absolute).transpose()?,
            // Absolute when given as a path, so children started in another
            // folder find them; a bare name is looked up on the PATH.
            wasmtime: absolute(&args.wasmtime).unwrap_or_else(|_| args.wasmtime.clone()),
            node: absolute(&args.node).unwrap_or_else(|_| args.node.clone()),
            sharp_script: args.scripts.join("sharp.mjs"),
            wasi_script: args.scripts.join("wasi-run.mjs"),
            workerd_script: args.scripts.join("workerd.mjs"),
        })
    }

    /// Runs one measurement in `processes` child processes (photon-rs in
    /// one): the median of their medians, the most memory any took, the
    /// median of each request time.
    fn run(
        &self,
        engine: Engine,
        format: &str,
        source: &Path,
        output: &Path,
    ) -> Result<Measured, String> {
        let n = if engine.is_photon() {
            1
        } else {
            self.processes.max(1)
        };
        let runs = (0..n)
            .map(|_| self.run_once(engine, format, source, output))
            .collect::<Result<Vec<_>, _>>()?;
        let mid =
            |f: &dyn Fn(&Measured) -> Option<f64>| median(runs.iter().filter_map(f).collect());
        Ok(Measured {
            median_ms: mid(&|m| Some(m.median_ms)).ok_or("no finite median_ms")?,
            peak_memory_bytes: runs.iter().filter_map(|m| m.peak_memory_bytes).max(),
            request: match (
                mid(&|m| m.request.map(|r| r.fetch_ms)),
                mid(&|m| m.request.map(|r| r.e2e_ms)),
            ) {
                (Some(fetch_ms), Some(e2e_ms)) => Some(RequestTimes {
                    fetch_ms,
                    e2e_ms,
                    first_ms: mid(&|m| m.request.and_then(|r| r.first_ms)),
                }),
                _ => None,
            },
        })
    }

    /// Runs one measurement in a child process.
    fn run_once(
        &self,
        engine: Engine,
        format: &str,
        source: &Path,
        output: &Path,
    ) -> Result<Measured, String> {
        let pipeline = if engine.is_photon() {
            "photon"
        } else {
            "edgethumb"
        };
        let repeats = if engine.is_photon() {
            self.photon_repeats
        } else {
            self.repeats
        };
        let source = source
            .canonicalize()
            .map_err(|e| format!("{}: {e}", source.display()))?;
        let job: Vec<String> = vec![
            format.to_string(),
            self.width.to_string(),
            match format {
                "avif" => self.avif_quality,
                _ => self.quality,
            }
            .to_string(),
            repeats.to_string(),
            source.display().to_string(),
            output.display().to_string(),
        ];
        let src_dir = source
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let out_dir = self.out_dir.display().to_string();
        let wasm = || {
            self.runner_wasm
                .as_ref()
                .map(|p| p.display().to_string())
                .ok_or_else(|| "no --runner-wasm".to_string())
        };
        let mut cmd = match engine {
            Engine::Native => {
                let mut c = Command::new(&self.self_exe);
                c.arg("bench-run").arg(pipeline).args(&job);
                c
            }
            Engine::Wasmtime | Engine::PhotonWasmtime => {
                let mut c = Command::new(&self.wasmtime);
                c.arg("run")
                    .arg(format!("--dir={src_dir}::{src_dir}"))
                    .arg(format!("--dir={out_dir}::{out_dir}"))
                    .arg(wasm()?)
                    .arg(pipeline)
                    .args(&job);
                c
            }
            Engine::V8 | Engine::PhotonV8 => {
                let mut c = Command::new(&self.node);
                c.arg("--no-warnings")
                    .arg("--no-turbo-fast-api-calls")
                    .arg(&self.wasi_script)
                    .arg(wasm()?)
                    .arg(pipeline)
                    .args(&job)
                    .env("EDGETHUMB_WASI_DIRS", format!("{src_dir}:{out_dir}"));
                c
            }
            Engine::Sharp => {
                let mut c = Command::new(&self.node);
                c.arg(&self.sharp_script).args(&job);
                c
            }
            Engine::Workerd | Engine::PhotonWorkerd => {
                let mut c = Command::new(&self.node);
                c.arg(&self.workerd_script);
                if engine.is_photon() {
                    c.arg("--photon");
                }
                c.args(&job);
                c
            }
        };
        let out = cmd
            .output()
            .map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            // The last line that says something (wrangler may end with blanks).
            let last = stderr
                .lines()
                .map(str::trim)
                .rfind(|l| !l.is_empty())
                .unwrap_or("");
            return Err(format!("exited with {}: {last}", out.status));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .ok_or("no JSON line on stdout")?;
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let request = match (v["fetch_ms"].as_f64(), v["e2e_ms"].as_f64()) {
            (Some(fetch_ms), Some(e2e_ms)) => Some(RequestTimes {
                fetch_ms,
                e2e_ms,
                first_ms: v["first_ms"].as_f64(),
            }),
            _ => None,
        };
        Ok(Measured {
            median_ms: v["median_ms"].as_f64().ok_or("no median_ms")?,
            peak_memory_bytes: v["peak_memory_bytes"].as_u64(),
            request,
        })
    }

    fn versions(&self) -> String {
        let version = |program: &Path, arg: &str| {
            Command::new(program)
                .arg(arg)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_else(|| "not found".into())
        };
        let sharp = Command::new(&self.node)
            .args([
                "--input-type=module",
                "-e",
                "import s from 'sharp'; console.log(`sharp ${s.versions.sharp}, libvips ${s.versions.vips}`)",
            ])
            .current_dir(self.sharp_script.parent().unwrap_or(Path::new(".")))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "sharp not found".into());
        format!(
            "node {}, {}, {}",
            version(&self.node, "--version"),
            sharp,
            version(&self.wasmtime, "--version")
        )
    }
}

/// SSIM (luma) of `body` against `original` downscaled to the same size by
/// `image`'s own decoder and Lanczos3, cached per size.
fn ssim_against_reference(
    original: &[u8],
    body: &[u8],
    references: &mut HashMap<(u32, u32), GrayImage>,
) -> Result<f64, String> {
    let out = if edgethumb_codecs::avif_decode::is_avif(body) {
        let rgba = edgethumb_codecs::avif_decode::decode(body)
            .map_err(|e| format!("AVIF output does not decode: {e}"))?;
        image::DynamicImage::ImageRgba8(rgba).to_luma8()
    } else {
        image::load_from_memory(body)
            .map_err(|e| format!("output does not decode: {e}"))?
            .to_luma8()
    };
    let dims = out.dimensions();
    let reference = match references.entry(dims) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => {
            let full = image::load_from_memory(original)
                .map_err(|e| format!("reference decode: {e}"))?
                .to_luma8();
            e.insert(image::imageops::resize(
                &full,
                dims.0,
                dims.1,
                FilterType::Lanczos3,
            ))
        }
    };
    image_compare::gray_similarity_structure(
        &image_compare::Algorithm::MSSIMSimple,
        reference,
        &out,
    )
    .map(|s| s.score)
    .map_err(|e| format!("SSIM: {e}"))
}

fn corpus(dir: &Path) -> Result<Vec<Source>, String> {
    let manifest = dir.join("manifest.tsv");
    let mut sources = Vec::new();
    if let Ok(text) = std::fs::read_to_string(&manifest) {
        // file  format  width  height  bytes  note
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let cols: Vec<&str> = line.split('\t').collect();
            let (Some(file), Some(w), Some(h)) = (cols.first(), cols.get(2), cols.get(3)) else {
                return Err(format!("{}: bad line {line:?}", manifest.display()));
            };
            sources.push(Source {
                path: dir.join(file),
                note: format!("{w}×{h} {}", cols.get(5).copied().unwrap_or("")),
                in_medians: true,
                tagged_from: None,
            });
        }
    } else {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| has_extension(p, &["jpg", "jpeg", "png"]))
            .collect();
        paths.sort();
        sources.extend(paths.into_iter().map(|path| Source {
            note: String::new(),
            path,
            in_medians: true,
            tagged_from: None,
        }));
    }
    if sources.is_empty() {
        return Err(format!("{}: no images", dir.display()));
    }
    Ok(sources)
}

/// `jpeg` with a Display P3 profile (APP2) after its SOI marker, or `None`
/// if it carries a profile already.
fn display_p3_copy(jpeg: &[u8]) -> Result<Option<Vec<u8>>, String> {
    if jpeg.windows(12).any(|w| w == b"ICC_PROFILE\0") {
        return Ok(None);
    }
    let icc = moxcms::ColorProfile::new_display_p3()
        .encode()
        .map_err(|e| format!("Display P3 profile: {e:?}"))?;
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE2]);
    out.extend_from_slice(&((2 + 14 + icc.len()) as u16).to_be_bytes());
    out.extend_from_slice(b"ICC_PROFILE\0\x01\x01");
    out.extend_from_slice(&icc);
    out.extend_from_slice(&jpeg[2..]);
    Ok(Some(out))
}

/// About 100 MP (12648×7905, the corpus's 16:10) as a baseline JPEG q90,
/// upscaled from `from`; made once and kept beside the corpus.
fn large_jpeg(from: &Path, corpus: &Path) -> Result<PathBuf, String> {
    const SIZE: (u32, u32) = (12648, 7905);
    let path = corpus.join(format!("generated-{}x{}.jpg", SIZE.0, SIZE.1));
    if path.exists() {
        return Ok(path);
    }
    eprintln!("edgethumb bench: generating {}", path.display());
    let img = image::open(from)
        .map_err(|e| format!("{}: {e}", from.display()))?
        .to_rgb8();
    let big = image::imageops::resize(&img, SIZE.0, SIZE.1, FilterType::Triangle);
    let tmp = path.with_extension("tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut writer, 90)
        .encode_image(&big)
        .map_err(|e| format!("encoding {}: {e}", tmp.display()))?;
    drop(writer);
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// An animated GIF of `frames` frames of `w`×`h` that pans across `from`
/// (scaled to 1280 wide), 80 ms a frame; made once and kept beside the
/// corpus.
fn panning_gif(
    from: &Path,
    corpus: &Path,
    (w, h, frames): (u32, u32, u32),
) -> Result<PathBuf, String> {
    use image::codecs::gif::{GifEncoder, Repeat};
    let path = corpus.join(format!("generated-pan-{w}x{h}x{frames}.gif"));
    if path.exists() {
        return Ok(path);
    }
    eprintln!("edgethumb bench: generating {}", path.display());
    let img = image::open(from)
        .map_err(|e| format!("{}: {e}", from.display()))?
        .resize(1280, 1280, FilterType::Triangle)
        .to_rgba8();
    if img.width() <= w || img.height() < h {
        return Err(format!("{} is too small to pan across", from.display()));
    }
    let tmp = path.with_extension("tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let fail = |e: image::ImageError| format!("encoding {}: {e}", tmp.display());
    {
        let mut enc = GifEncoder::new_with_speed(std::io::BufWriter::new(file), 10);
        enc.set_repeat(Repeat::Infinite).map_err(fail)?;
        for i in 0..frames {
            let x = i * (img.width() - w) / frames;
            let frame = image::imageops::crop_imm(&img, x, 0, w, h).to_image();
            let delay = image::Delay::from_numer_denom_ms(80, 1);
            enc.encode_frame(image::Frame::from_parts(frame, 0, 0, delay))
                .map_err(fail)?;
        }
    }
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

fn has_extension(path: &Path, exts: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(edgethumb_bench::median_sorted(&values))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn report(
    args: &BenchArgs,
    sources: &[Source],
    formats: &[String],
    engines: &[Engine],
    results: &HashMap<(usize, String, Engine), Result<Run, String>>,
    launcher: &Launcher,
) -> String {
    let mut md = String::new();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = writeln!(
        md,
        "Thumbnails {} px wide, quality {} (AVIF {}); each figure the median over {} processes \
         of each one's median of {} timed runs after a warm-up (photon-rs: one process, {} \
         runs). {cpu}, {cores} cores; {}.\n",
        args.width,
        args.quality,
        args.avif_quality,
        args.processes.max(1),
        args.repeats,
        args.photon_repeats,
        launcher.versions()
    );
    let _ = writeln!(
        md,
        "Peak memory: RSS of the process natively and for sharp (Node's own ~50 MiB \
         included); wasm linear memory for wasm. SSIM: luma, against `image`'s Lanczos3 \
         downscale of the full decode.\n"
    );

    // The summary: medians over the corpus.
    let _ = writeln!(md, "### Medians over the corpus\n");
    let _ = writeln!(
        md,
        "| engine | format | time (ms) | time ÷ sharp | bytes ÷ sharp | SSIM | SSIM − sharp's | peak memory, max (MiB) | faster than photon-rs on the same engine |"
    );
    let _ = writeln!(
        md,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let in_medians: Vec<usize> = (0..sources.len())
        .filter(|&i| sources[i].in_medians)
        .collect();
    for format in formats {
        for &engine in engines {
            let get = |i: usize, e: Engine| {
                results
                    .get(&(i, format.clone(), e))
                    .and_then(|r| r.as_ref().ok())
            };
            let runs: Vec<(usize, &Run)> = in_medians
                .iter()
                .filter_map(|&i| get(i, engine).map(|r| (i, r)))
                .collect();
            if runs.is_empty() {
                continue;
            }
            let ratio = |f: &dyn Fn(&Run) -> f64, e: Engine| {
                median(
                    runs.iter()
                        .filter_map(|&(i, r)| get(i, e).map(|s| f(r) / f(s)))
                        .collect(),
                )
            };
            let time = median(runs.iter().map(|(_, r)| r.median_ms).collect());
            let ssim = median(runs.iter().map(|(_, r)| r.ssim).collect());
            let ssim_delta = median(
                runs.iter()
                    .filter_map(|&(i, r)| Some(r.ssim - get(i, Engine::Sharp)?.ssim))
                    .collect(),
            );
            let peak = runs.iter().filter_map(|(_, r)| r.peak_memory_bytes).max();
            let vs_photon = engine.photon_twin().and_then(|twin| {
                median(
                    runs.iter()
                        .filter_map(|&(i, r)| {
                            let p = results.get(&(i, "jpeg".to_string(), twin))?;
                            Some(p.as_ref().ok()?.median_ms / r.median_ms)
                        })
                        .collect(),
                )
            });
            let f = |v: Option<f64>, digits: usize, suffix: &str| {
                v.map_or("–".to_string(), |v| format!("{v:.digits$}{suffix}"))
            };
            let _ = writeln!(
                md,
                "| {} | {format} | {} | {} | {} | {} | {} | {} | {} |",
                engine.label(),
                f(time, 1, ""),
                f(ratio(&|r| r.median_ms, Engine::Sharp), 2, "×"),
                f(ratio(&|r| r.bytes as f64, Engine::Sharp), 2, "×"),
                f(ssim, 4, ""),
                ssim_delta.map_or("–".into(), |d| format!("{d:+.4}")),
                f(peak.map(mib), 1, ""),
                f(vs_photon, 1, "×"),
            );
        }
    }

    // A failed run drops out of the medians above; say so beside them.
    for format in formats {
        for &engine in engines {
            let failed = in_medians
                .iter()
                .filter(|&&i| matches!(results.get(&(i, format.clone(), engine)), Some(Err(_))))
                .count();
            if failed > 0 {
                let _ = writeln!(
                    md,
                    "\n**{} ({format}) failed on {failed} of {} images**; its medians, and the \
                     ratios against it, leave those images out.",
                    engine.label(),
                    in_medians.len()
                );
            }
        }
    }

    if sources.iter().any(|s| s.tagged_from.is_some()) {
        let _ = writeln!(md, "\n### Colour management (`--wide-gamut`)\n");
        let _ = writeln!(
            md,
            "Each JPEG tagged with a Display P3 profile, against the untagged \
             original: the conversion to sRGB (edgethumb: moxcms on the output \
             pixels; sharp: libvips' `icc_transform`).\n"
        );
        let _ = writeln!(
            md,
            "| image | format | engine | untagged (ms) | Display P3 (ms) | cost |"
        );
        let _ = writeln!(md, "| --- | --- | --- | ---: | ---: | ---: |");
        let mut costs: HashMap<(String, Engine), Vec<f64>> = HashMap::new();
        for (i, source) in sources.iter().enumerate() {
            let Some(from) = source.tagged_from else {
                continue;
            };
            for format in formats {
                for &engine in engines {
                    let get = |k: usize| results.get(&(k, format.clone(), engine));
                    if let (Some(Ok(plain)), Some(Ok(tagged))) = (get(from), get(i)) {
                        let cost = (tagged.median_ms / plain.median_ms - 1.0) * 100.0;
                        let _ = writeln!(
                            md,
                            "| {} | {format} | {} | {:.1} | {:.1} | {cost:+.1}% |",
                            file_name(&sources[from].path),
                            engine.label(),
                            plain.median_ms,
                            tagged.median_ms,
                        );
                        costs
                            .entry((format.clone(), engine))
                            .or_default()
                            .push(cost);
                    }
                }
            }
        }
        for format in formats {
            for &engine in engines {
                if let Some(m) = costs
                    .get(&(format.clone(), engine))
                    .and_then(|c| median(c.clone()))
                {
                    let _ = writeln!(
                        md,
                        "| **median** | {format} | {} | | | **{m:+.1}%** |",
                        engine.label()
                    );
                }
            }
        }
    }

    worker_table(&mut md, sources, formats, engines, results);

    let _ = writeln!(md, "\n### Per image\n");
    let _ = writeln!(
        md,
        "| image | format | engine | time (ms) | bytes | SSIM | peak memory (MiB) |"
    );
    let _ = writeln!(md, "| --- | --- | --- | ---: | ---: | ---: | ---: |");
    for (i, source) in sources.iter().enumerate() {
        for format in formats {
            for &engine in engines {
                let Some(result) = results.get(&(i, format.clone(), engine)) else {
                    continue;
                };
                let name = format!("{} ({})", file_name(&source.path), source.note.trim());
                let _ = match result {
                    Ok(r) => writeln!(
                        md,
                        "| {name} | {format} | {} | {:.1} | {} | {:.4} | {} |",
                        engine.label(),
                        r.median_ms,
                        r.bytes,
                        r.ssim,
                        r.peak_memory_bytes
                            .map_or("–".into(), |b| format!("{:.1}", mib(b))),
                    ),
                    Err(e) => writeln!(
                        md,
                        "| {name} | {format} | {} | failed: {} | | | |",
                        engine.label(),
                        e.replace('|', "/")
                    ),
                };
            }
        }
    }
    md
}

/// The Worker under `wrangler dev`, image by image: its transform against
/// the same wasm under Node's V8, and the request around it.
fn worker_table(
    md: &mut String,
    sources: &[Source],
    formats: &[String],
    engines: &[Engine],
    results: &HashMap<(usize, String, Engine), Result<Run, String>>,
) {
    if !engines.contains(&Engine::Workerd) {
        return;
    }
    let _ = writeln!(md, "\n### The Worker under `wrangler dev` (workerd)\n");
    let _ = writeln!(
        md,
        "Transform: decode + resize + encode from the Worker's `Server-Timing`, which reads \
         `Date.now()`: whole milliseconds (production Workers advance that clock only at I/O, \
         so stage times read lower there; the end-to-end column does not depend on it). \
         Each request is a miss (`EDGETHUMB_TTL=0`); fetch is the Worker's from a local \
         origin; end to end is the client's, through wrangler's local proxy. Timed after five \
         warm-up requests, the steady state of a busy isolate: wasm has no on-stack \
         replacement, so a function that ran one long loop in baseline code (Liftoff) is \
         optimised only from its next call, and the first few requests run slower. The \
         first request, reported apart, is the isolate's first: it compiles the module and \
         grows memory.\n"
    );
    let _ = writeln!(
        md,
        "| image | format | transform (ms) | ÷ V8 | first request's transform (ms) | fetch (ms) | end to end (ms) | @cf-wasm/photon's end to end ÷ ours |"
    );
    let _ = writeln!(
        md,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let mut vs_photon = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        for format in formats {
            let get = |e: Engine| results.get(&(i, format.clone(), e));
            let name = file_name(&source.path);
            let _ = match get(Engine::Workerd) {
                Some(Ok(r)) => {
                    let v8 = match get(Engine::V8) {
                        Some(Ok(v8)) => format!("{:.2}×", r.median_ms / v8.median_ms),
                        _ => "–".into(),
                    };
                    let (fetch, e2e) = r.request.map_or(("–".into(), "–".into()), |t| {
                        (format!("{:.0}", t.fetch_ms), format!("{:.1}", t.e2e_ms))
                    });
                    let first = r
                        .request
                        .and_then(|t| t.first_ms)
                        .map_or("–".into(), |ms| format!("{ms:.0}"));
                    let photon = match (get(Engine::PhotonWorkerd), r.request) {
                        (Some(Ok(p)), Some(ours)) => p.request.map(|t| t.e2e_ms / ours.e2e_ms),
                        _ => None,
                    };
                    if source.in_medians {
                        vs_photon.extend(photon);
                    }
                    let photon = photon.map_or("–".into(), |x| format!("{x:.1}×"));
                    writeln!(
                        md,
                        "| {name} | {format} | {:.0} | {v8} | {first} | {fetch} | {e2e} | {photon} |",
                        r.median_ms
                    )
                }
                Some(Err(e)) => writeln!(
                    md,
                    "| {name} | {format} | failed: {} | | | | | |",
                    e.replace('|', "/")
                ),
                None => Ok(()),
            };
        }
    }
    if let Some(m) = median(vs_photon) {
        let _ = writeln!(
            md,
            "\nEnd to end, the median of the per-image ratios: edgethumb's Worker is {m:.1}× as fast \
             as the `@cf-wasm/photon` Worker."
        );
    }
}
