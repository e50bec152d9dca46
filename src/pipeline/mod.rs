//! The transform: bytes in, encoded thumbnail out. A fixed order of named
//! steps ([`transform`]), each timed for `Server-Timing` by [`steps`],
//! which checks the [`deadline`] between them:
//!
//! 1. `decode`: sniff, check the structure ([`preflight`]), read the
//!    header, enforce limits, work out the geometry, decode with
//!    shrink-on-load, apply EXIF orientation, `rotate` and `flip`;
//!    with `trim`, then `trim`: the whole image at full size is cut to
//!    its content ([`trim`]) and the geometry worked out again;
//! 2. `resize`: crop and resample in one pass (smart crop after);
//! 3. `effects`: blur, sharpen, pixelate, extend, flatten, watermark;
//! 4. `encode`.
//!
//! An animated GIF or WebP kept animated (`EDGETHUMB_MAX_ANIMATION_FRAMES`
//! over 1, and an output that animates: [`Negotiated::animated`]) runs
//! `frames` instead of the first three: each frame is decoded onto the
//! canvas, resized and given its effects before the next is decoded; then
//! `encode`.
//!
//! A large baseline JPEG output with nothing to do on the whole image
//! (no orientation, blur, sharpen, pixelate, extend or smart crop) is made in one
//! pass instead, timed as `stream`: decoded rows are resampled and
//! encoded as they arrive (`encode::jpeg_rows`), so neither the source
//! nor the output is ever held whole.
//!
//! The decoders we own check the deadline inside too. Pure CPU work with
//! no I/O, so an adapter may run it on any thread.

pub mod banded;
pub mod colour;
pub mod deadline;
pub mod decode;
pub mod effects;
pub mod encode;
pub mod geometry;
pub mod limits;
pub mod memory;
pub mod preflight;
pub mod resize;
pub mod smart_crop;
pub mod sniff;
mod steps;
pub mod trim;
pub mod watermark;

use crate::error::Error;
use crate::request::negotiate::Negotiated;
use crate::request::options::{quality_for, Format, GravityType, Options};
use deadline::Deadline;
use edgethumb_codecs::Gather;
use image::{DynamicImage, RgbaImage};
pub use limits::Limits;
use resize::Region;
use steps::Steps;

/// Everything the transform needs, owned, so it can move to a worker thread.
#[derive(Debug, Clone)]
pub struct Job {
    pub options: Options,
    pub negotiated: Negotiated,
    pub limits: Limits,
    pub default_quality: u8,
    /// `EDGETHUMB_FORMAT_QUALITY`: under the URL's, over the default.
    pub format_quality: Vec<(Format, u8)>,
    /// `EDGETHUMB_SKIP_PROCESSING_FORMATS`, with the URL's.
    pub skip_processing: Vec<Format>,
    /// The configured watermark, for a URL that asks for one.
    pub watermark: Option<watermark::WatermarkImage>,
}

impl Job {
    /// The watermark to place: asked for, and configured.
    fn watermark(
        &self,
    ) -> Option<(
        &watermark::WatermarkImage,
        &crate::request::options::Watermark,
    )> {
        Some((self.watermark.as_ref()?, self.options.watermark.as_ref()?))
    }
}

/// Each step's name and milliseconds, in order.
pub type Timings = Vec<(&'static str, f64)>;

#[derive(Debug, Clone)]
pub struct Output {
    pub body: Vec<u8>,
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub timings: Timings,
}

/// What the header and the options decide before any pixel is decoded.
struct Plan {
    header: decode::Header,
    /// How the source is decoded: `Off` when it is trimmed.
    shrink: ShrinkOnLoad,
    /// Trim the decoded image, then plan the rest again ([`plan_for`]).
    trim: bool,
    /// The orientation to apply, EXIF's (unless `auto_rotate` is off)
    /// with `rotate` and `flip` ([`geometry::orientation`]).
    orientation: u8,
    /// Source size after orientation.
    oriented: (u32, u32),
    geo: geometry::Geometry,
    /// Decoded in rows and resampled as they arrive ([`banded`]).
    banded: bool,
    /// And the resampled rows encoded as they arrive: the output is JPEG
    /// whatever the alpha, baseline, and nothing works on the whole image.
    streamed: bool,
    /// Bytes reserved for a JPEG result ([`memory::jpeg_reserve`]).
    reserve: u64,
    /// Estimated peak bytes ([`memory::estimate`]).
    need: u64,
    /// The conversion to sRGB, if the source is in another space.
    colour: Option<colour::ToSrgb>,
    /// The source's RGB profile, carried over to the output instead
    /// (`strip_color_profile:0`).
    keep_profile: Option<Vec<u8>>,
    /// Made as an animation, not a still of the first frame.
    animation: Option<Animation>,
    /// The job's format decision, without AVIF for an output over
    /// `avif_max_pixels`.
    negotiated: Negotiated,
}

/// An animated source kept animated.
#[derive(Debug, Clone, Copy)]
struct Animation {
    format: Format,
    /// Frames made: the source's, up to `max_animation_frames`.
    frames: u32,
    loops: preflight::Loops,
}

/// Shrink-on-load decodes at the smallest size that still covers the
/// output, in bands where the format allows (`On`, always, outside tests);
/// `Whole` shrinks on load but decodes whole images, as before bands;
/// `Off` decodes whole at full size: the references the faster paths are
/// tested against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShrinkOnLoad {
    On,
    #[cfg_attr(not(test), allow(dead_code))]
    Whole,
    Off,
}

impl ShrinkOnLoad {
    fn bands(self) -> bool {
        self == ShrinkOnLoad::On
    }

    /// The scale the decoder is asked for.
    fn decode_scale(self, scale: f64) -> f64 {
        match self {
            ShrinkOnLoad::On | ShrinkOnLoad::Whole => scale,
            ShrinkOnLoad::Off => 1.0,
        }
    }
}

fn plan(bytes: &[u8], job: &Job, shrink: ShrinkOnLoad) -> Result<Plan, Error> {
    plan_for(bytes, job, shrink, None)
}

/// The plan; with `trimmed`, for the rest of the work once the decoded,
/// oriented, full-size image has been trimmed to that size: its geometry
/// from the trimmed size, and its estimate with the full-size image still
/// counted (its buffer is cut in place).
fn plan_for(
    bytes: &[u8],
    job: &Job,
    shrink: ShrinkOnLoad,
    trimmed: Option<(u32, u32)>,
) -> Result<Plan, Error> {
    let o = &job.options;
    let format = sniff::sniff(bytes)?;
    let frames = preflight::check(bytes, format)?;
    let mut header = decode::probe(bytes, format, &job.limits)?;
    let exif = if o.auto_rotate { header.orientation } else { 1 };
    let orientation = geometry::orientation(exif, o);
    let oriented = match (trimmed, orientation >= 5) {
        (Some(size), _) => size,
        (None, true) => (header.height, header.width),
        (None, false) => (header.width, header.height),
    };
    let geo = geometry::compute(oriented.0, oriented.1, o, job.limits.max_result_dimension)?;
    let negotiated = match geo.output.0 as u64 * geo.output.1 as u64 {
        px if px > job.limits.avif_max_pixels => job.negotiated.without_avif(),
        _ => job.negotiated,
    };
    let animation = animation(&frames, &header, negotiated, &job.limits)?;
    // `trim` needs every pixel at full size, as imgproxy's does; an
    // animation is never trimmed (imgproxy's rule).
    let trim = o.trim.is_some() && animation.is_none();
    let shrink = if trim { ShrinkOnLoad::Off } else { shrink };
    let decoded = decode::decoded_size(&header, shrink.decode_scale(geo.scale));
    // Once trimmed, the image is already oriented.
    header.orientation = if trimmed.is_some() { 1 } else { orientation };
    let smart_pre_crop = matches!(geo.pre_crop, Some((_, _, g)) if g.kind == GravityType::Smart);
    let banded = shrink.bands()
        && !smart_pre_crop
        && decode::decodes_in_rows(&header)
        && (header.format != sniff::SourceFormat::Jpeg || memory::jpeg_in_rows(bytes));
    let may_have_alpha = memory::may_have_alpha(bytes, header.format);
    let smart_cut = matches!(geo.result_crop, Some((_, _, g)) if g.kind == GravityType::Smart);
    let jpeg = |alpha: bool| negotiated.resolve(alpha) == Format::Jpeg;
    let streamed = banded
        && jpeg(false)
        && (jpeg(true) || !may_have_alpha)
        && !encode::progressive(geo.output.0, geo.output.1)
        && orientation == 1
        && o.blur <= 0.0
        && o.sharpen <= 0.0
        && o.pixelate <= 1
        && o.max_bytes == 0
        && job.watermark().is_none()
        && geo.extend.is_none()
        && !smart_cut;
    let reserve = memory::jpeg_reserve(bytes.len(), &header, geo.output);
    let mut need = if banded {
        let effects = memory::Effects {
            orient: orientation != 1,
            blur: o.blur > 0.0,
            sharpen: o.sharpen > 0.0,
            extend: geo.extend.is_some(),
            // Streamed rows are flattened one at a time.
            flatten: may_have_alpha && !streamed,
        };
        let resampled = match geo.result_crop {
            Some((w, h, g)) if g.kind != GravityType::Smart => (w, h),
            _ => geo.scaled,
        };
        let held = if streamed {
            memory::Resampled::Streamed
        } else {
            memory::Resampled::Gathered(resampled)
        };
        // The format may depend on alpha: the costlier of the two.
        [true, false]
            .map(|alpha| {
                let encode = if streamed {
                    memory::Encode::StreamedJpeg
                } else {
                    encode::memory(negotiated.resolve(alpha), geo.output)
                };
                let after = memory::After {
                    output: geo.output,
                    effects,
                    encode,
                    reserve,
                };
                memory::banded(bytes, &header, decoded, resampled, held, &after)
            })
            .into_iter()
            .max()
            .unwrap_or(0)
    } else {
        // The whole-image estimate budgets 8 bytes an output pixel for the
        // effects and an encoder; the AVIF encoder holds more, on top.
        let avif = match negotiated.resolve(true) {
            Format::Avif => memory::avif(geo.output.0 as u64 * geo.output.1 as u64),
            _ => 0,
        };
        memory::estimate(bytes, &header, decoded, geo.output) + avif
    };
    // AVIF describes its colour with sRGB's code points, not a profile
    // (libaom's files carry no ICC box): it is always converted.
    let keep_profile = match o.strip_color_profile || negotiated.resolve(false) == Format::Avif {
        true => None,
        false => colour::ToSrgb::rgb_profile(bytes, header.format),
    };
    let colour = match keep_profile {
        Some(_) => None,
        None => colour::ToSrgb::for_source(bytes, header.format),
    };
    need += colour.as_ref().map_or(0, colour::ToSrgb::memory);
    // Held, then copied into the output.
    need += 2 * keep_profile.as_ref().map_or(0, |p| p.len() as u64);
    if negotiated.resolve(true) == Format::Webp {
        let pads_transparent = geo.extend.is_some() && o.background.is_none();
        need += memory::webp_extra(bytes, &header, geo.output, pads_transparent);
    }
    // `max_bytes` holds the best output and the smallest while it tries
    // another: a JPEG's buffer is the reserve, whatever it holds.
    if o.max_bytes > 0 {
        need += 2 * reserve;
    }
    if let Some(a) = &animation {
        need += memory::animation(&header, geo.output, a.frames, a.format == Format::Gif);
    }
    if let Some((image, w)) = job.watermark() {
        let h = watermark::probe(&image.bytes, &job.limits)?;
        let own = (h.width, h.height);
        let placed = watermark::size(own, geo.output, w, job.limits.max_result_dimension)?;
        need += watermark::memory(own, placed);
    }
    Ok(Plan {
        header,
        shrink,
        trim: trim && trimmed.is_none(),
        orientation,
        oriented,
        geo,
        banded,
        streamed,
        reserve,
        need,
        colour,
        keep_profile,
        animation,
        negotiated,
    })
}

/// Whether an animated source stays animated, and in what; its frames'
/// pixels, summed, count against the pixel limit (as imgproxy's do), so
/// thousands of frames are refused before the first is decoded.
fn animation(
    frames: &preflight::Frames,
    header: &decode::Header,
    negotiated: Negotiated,
    limits: &Limits,
) -> Result<Option<Animation>, Error> {
    let max = limits.max_animation_frames;
    let Some(format) = negotiated.animated() else {
        return Ok(None);
    };
    if frames.count < 2 || max < 2 {
        return Ok(None);
    }
    let made = frames.count.min(max);
    let pixels = header.width as u64 * header.height as u64 * made as u64;
    if pixels > limits.max_src_pixels {
        return Err(Error::OverLimit(format!(
            "{made} frames of {}x{} are {pixels} pixels, over the limit of {}",
            header.width, header.height, limits.max_src_pixels
        )));
    }
    Ok(Some(Animation {
        format,
        frames: made,
        loops: frames.loops,
    }))
}

/// `skip_processing`: the source as it is, when its format is listed and
/// no other output format is asked for (imgproxy's rule). Still checked
/// as any source is (structure, pixels, and frames times pixels), so no
/// image bomb goes out as it came in.
fn as_it_is(bytes: &[u8], job: &Job) -> Result<Option<Output>, Error> {
    let o = &job.options;
    if o.skip_processing.is_empty() && job.skip_processing.is_empty() {
        return Ok(None);
    }
    let source = sniff::sniff(bytes)?;
    let format = match source {
        sniff::SourceFormat::Jpeg => Format::Jpeg,
        sniff::SourceFormat::Png => Format::Png,
        sniff::SourceFormat::Webp => Format::Webp,
        sniff::SourceFormat::Gif => Format::Gif,
        sniff::SourceFormat::Bmp => return Ok(None),
    };
    let listed = o.skip_processing.contains(&format) || job.skip_processing.contains(&format);
    if !listed || o.format.is_some_and(|f| f != format) {
        return Ok(None);
    }
    let frames = preflight::check(bytes, source)?;
    let header = decode::probe(bytes, source, &job.limits)?;
    let pixels = header.width as u64 * header.height as u64 * frames.count.max(1) as u64;
    if pixels > job.limits.max_src_pixels {
        return Err(Error::OverLimit(format!(
            "{} frames of {}x{} are {pixels} pixels, over the limit of {}",
            frames.count, header.width, header.height, job.limits.max_src_pixels
        )));
    }
    Ok(Some(Output {
        body: bytes.to_vec(),
        format,
        width: header.width,
        height: header.height,
        timings: Vec::new(),
    }))
}

/// The estimated peak memory of transforming `bytes` for `job`, from the
/// header alone; what the transform budget is checked against.
pub fn memory_estimate(bytes: &[u8], job: &Job) -> Result<u64, Error> {
    plan(bytes, job, ShrinkOnLoad::On).map(|p| p.need)
}

/// Runs the transform. `clock` returns milliseconds from any fixed point
/// (the runtime's monotonic clock).
pub fn run(bytes: &[u8], job: &Job, clock: fn() -> f64) -> Result<Output, Error> {
    transform(bytes, job, clock, ShrinkOnLoad::On)
}

fn transform(
    bytes: &[u8],
    job: &Job,
    clock: fn() -> f64,
    shrink: ShrinkOnLoad,
) -> Result<Output, Error> {
    if let Some(out) = as_it_is(bytes, job)? {
        return Ok(out);
    }
    let deadline = Deadline::after(clock, job.limits.transform_timeout);
    let plan = plan(bytes, job, shrink)?;
    if plan.need > job.limits.max_transform_bytes {
        return Err(Error::OverMemoryBudget {
            need: plan.need,
            limit: job.limits.max_transform_bytes,
        });
    }
    let mut steps = Steps::new(clock, &deadline);
    if let Some(animation) = plan.animation {
        return animate(bytes, job, &plan, animation, steps, &deadline);
    }
    // A streamed output is decoded, resized and encoded in one step.
    let step = if plan.streamed { "stream" } else { "decode" };
    let img = steps.run(step, || decode_step(bytes, job, &plan, &deadline))?;
    let (img, plan) = match (img, plan.trim) {
        (Decoded::Whole(img), true) => steps.run("trim", || trim_step(img, bytes, job))?,
        (img, _) => (img, plan),
    };
    if let Decoded::Encoded(body, (width, height)) = img {
        return Ok(Output {
            body,
            format: Format::Jpeg,
            width,
            height,
            timings: steps.into_timings(),
        });
    }
    let img = steps.run("resize", || resize_step(img, &plan))?;
    let (img, format) = steps.run("effects", || effects_step(img, job, &plan, &deadline))?;
    let (body, format) = steps.run("encode", || {
        encode_step(&img, job, &plan, format, &deadline)
    })?;
    Ok(Output {
        body,
        format,
        width: img.width(),
        height: img.height(),
        timings: steps.into_timings(),
    })
}

/// The animated path: every frame made, then the animation encoded.
fn animate(
    bytes: &[u8],
    job: &Job,
    plan: &Plan,
    animation: Animation,
    mut steps: Steps,
    deadline: &Deadline,
) -> Result<Output, Error> {
    let frames = steps.run("frames", || {
        make_frames(bytes, job, plan, &animation, deadline)
    })?;
    let (width, height) = frames
        .first()
        .map(|f| f.image.dimensions())
        .ok_or_else(|| Error::Decode("the animation has no frames".into()))?;
    let format = animation.format;
    let body = steps.run("encode", || {
        let body = match format {
            Format::Gif => encode::animated::gif(frames, animation.loops)?,
            _ => within_bytes(job, format, deadline, |q| {
                encode::animated::webp(&frames, animation.loops, q)
            })?,
        };
        Ok(match &plan.keep_profile {
            Some(icc) => encode::with_icc(body, format, icc, (width, height)),
            None => body,
        })
    })?;
    Ok(Output {
        body,
        format,
        width,
        height,
        timings: steps.into_timings(),
    })
}

/// Decodes each frame onto the canvas and makes it, before the next: only
/// the canvas and the finished frames are held. The crop (a smart one
/// too) is found on the first frame and kept for all, so the picture does
/// not jump.
fn make_frames(
    bytes: &[u8],
    job: &Job,
    plan: &Plan,
    animation: &Animation,
    deadline: &Deadline,
) -> Result<Vec<encode::animated::Frame>, Error> {
    let mut out = Vec::with_capacity(animation.frames as usize);
    let mut resample: Option<Target> = None;
    let mut smart: Option<(u32, u32)> = None;
    let frames = decode::frames(bytes, plan.header.format, &job.limits)?;
    // Made once, for the first frame's size, which every frame has.
    let mut mark: Option<RgbaImage> = None;
    for frame in frames.take(animation.frames as usize) {
        deadline.check()?;
        let frame = frame?;
        let mut img = DynamicImage::ImageRgba8(frame.image);
        decode::orient(&mut img, plan.orientation);
        let t = match &resample {
            Some(t) => t,
            None => resample.insert(target(plan, (img.width(), img.height()), Some(&img))),
        };
        let mut img = resize::resample(img, t.region, t.size)?;
        if let Some(to) = &plan.colour {
            to.convert_image(&mut img);
        }
        if let Some((rw, rh)) = t.smart_cut {
            let (x, y) = *smart.get_or_insert_with(|| smart_crop::find(&img, (rw, rh)));
            img = resize::cut(img, x, y, rw, rh);
        }
        let mut img = frame_effects(img, job, plan);
        if let Some((image, w)) = job.watermark() {
            let wm = match &mut mark {
                Some(wm) => wm,
                None => {
                    let out = (img.width(), img.height());
                    mark.insert(watermark::prepare(image, w, out, &job.limits, deadline)?)
                }
            };
            img = watermark::apply(img, wm, w, plan.geo.dpr);
        }
        out.push(encode::animated::Frame {
            image: img.into_rgba8(),
            delay_ms: frame.delay_ms,
        });
    }
    Ok(out)
}

/// [`effects_step`] for one frame of an animation: both animated formats
/// keep alpha, so padding is clear and alpha is flattened only onto a
/// `background` asked for.
fn frame_effects(img: DynamicImage, job: &Job, plan: &Plan) -> DynamicImage {
    let o = &job.options;
    let img = extend(filters(img, o), plan, o, o.background.is_none());
    match o.background {
        Some(bg) if img.color().has_alpha() => effects::flatten(img, bg),
        _ => img,
    }
}

/// The blur, sharpen and pixelate asked for, in imgproxy's order.
fn filters(mut img: DynamicImage, o: &Options) -> DynamicImage {
    if o.blur > 0.0 {
        img = effects::blur(img, o.blur);
    }
    if o.sharpen > 0.0 {
        img = effects::sharpen(img, o.sharpen);
    }
    if o.pixelate > 1 {
        img = effects::pixelate(img, o.pixelate);
    }
    img
}

/// Pads to the canvas `extend`, `extend_aspect_ratio` and `padding` ask
/// for, with the background, else clear
/// (`transparent`) or white.
fn extend(img: DynamicImage, plan: &Plan, o: &Options, transparent: bool) -> DynamicImage {
    let geo = &plan.geo;
    let Some(e) = geo.extend else {
        return img;
    };
    let pos = e.position((img.width(), img.height()), geo.dpr);
    let fill = match o.background {
        Some([r, g, b]) => [r, g, b, 255],
        None if transparent => [0, 0, 0, 0],
        None => [255, 255, 255, 255],
    };
    // The canvas is the output: `geometry::compute` made it `e.outer()`.
    effects::extend(img, geo.output, pos, fill)
}

/// What the decode step hands on: the decoded image (oriented), or, when
/// rows were resampled as they were decoded ([`banded`]), the resampled
/// one with any smart crop still to cut, or, streamed, the finished JPEG
/// and its size.
enum Decoded {
    Whole(DynamicImage),
    Resampled(DynamicImage, Option<(u32, u32)>),
    Encoded(Vec<u8>, (u32, u32)),
}

/// The decode with shrink-on-load, and EXIF orientation, as `plan` (sniff,
/// structure checks, header, limits, geometry) decided. Sources that decode in rows
/// (baseline and progressive JPEG, non-interlaced PNG) are resampled band
/// by band as they decode, so the full-size image is never held: the
/// resample then happens here, not in `resize`.
fn decode_step(
    bytes: &[u8],
    job: &Job,
    plan: &Plan,
    deadline: &Deadline,
) -> Result<Decoded, Error> {
    let scale = plan.shrink.decode_scale(plan.geo.scale);
    if plan.banded {
        if let Some(done) = decode_banded(bytes, job, plan, scale, deadline)? {
            return Ok(done);
        }
    }
    let mut img = decode::decode(
        bytes,
        &plan.header,
        scale,
        &job.limits,
        deadline,
        plan.colour.as_ref(),
    )?;
    decode::orient(&mut img, plan.orientation);
    Ok(Decoded::Whole(img))
}

/// Cuts the decoded image to its content, then plans the rest for the
/// trimmed size, whose output may need more than the first estimate
/// allowed (an enlarged sliver): that is checked before it is made.
fn trim_step(img: DynamicImage, bytes: &[u8], job: &Job) -> Result<(Decoded, Plan), Error> {
    let img = match job.options.trim.as_ref().and_then(|t| trim::find(&img, t)) {
        Some(rect) => trim::cut_in_place(img, rect),
        None => img,
    };
    let plan = plan_for(
        bytes,
        job,
        ShrinkOnLoad::Off,
        Some((img.width(), img.height())),
    )?;
    if plan.need > job.limits.max_transform_bytes {
        return Err(Error::OverMemoryBudget {
            need: plan.need,
            limit: job.limits.max_transform_bytes,
        });
    }
    Ok((Decoded::Whole(img), plan))
}

/// Decodes into the banded resampler. The resample runs in the stored
/// orientation (the target mapped back through it) and the output is
/// oriented after, as libvips' thumbnail does: a flip or transpose of the
/// small output, not of the source. `None` if the decoder does not take
/// this file after all.
fn decode_banded(
    bytes: &[u8],
    job: &Job,
    plan: &Plan,
    scale: f64,
    deadline: &Deadline,
) -> Result<Option<Decoded>, Error> {
    let stored = decode::decoded_size(&plan.header, scale);
    let transposed = plan.orientation >= 5;
    let swap = |(a, b): (u32, u32)| if transposed { (b, a) } else { (a, b) };
    let target = target(plan, swap(stored), None);
    let region = resize::unorient(target.region, plan.orientation, swap(stored));
    let size = swap(target.size);
    if plan.streamed {
        let o = &job.options;
        let quality = quality(job, Format::Jpeg);
        let encoder = encode::jpeg_rows::JpegRows::new(
            quality,
            o.background.unwrap_or(WHITE),
            plan.reserve as usize,
        );
        // Resampled rows become sRGB before they are flattened and encoded.
        let encoder = colour::SrgbRows::new(encoder, plan.colour.as_ref());
        let mut sink = banded::Banded::new(stored, region, size, encoder);
        if !decode::decode_rows(bytes, &plan.header, scale, &job.limits, deadline, &mut sink)? {
            return Ok(None);
        }
        let body = sink.finish()?.into_inner().finish()?;
        let body = match &plan.keep_profile {
            Some(icc) => encode::with_icc(body, Format::Jpeg, icc, size),
            None => body,
        };
        return Ok(Some(Decoded::Encoded(body, size)));
    }
    let channels = if memory::may_have_alpha(bytes, plan.header.format) {
        4
    } else {
        3
    };
    let gather = Gather::reserved(size.0 as usize * size.1 as usize * channels);
    let mut sink = banded::Banded::new(stored, region, size, gather);
    if !decode::decode_rows(bytes, &plan.header, scale, &job.limits, deadline, &mut sink)? {
        return Ok(None);
    }
    let mut img = sink.finish()?.into_image()?;
    decode::orient(&mut img, plan.orientation);
    Ok(Some(Decoded::Resampled(img, target.smart_cut)))
}

/// What alpha is flattened onto when no `background` is set.
const WHITE: [u8; 3] = [255, 255, 255];

/// The quality asked for, or the default.
/// Encodes at the job's quality for `format`, lowered until the output
/// fits `max_bytes` where the format has a quality to lower.
fn within_bytes(
    job: &Job,
    format: Format,
    deadline: &Deadline,
    mut encode: impl FnMut(u8) -> Result<Vec<u8>, Error>,
) -> Result<Vec<u8>, Error> {
    let first = quality(job, format);
    match job.options.max_bytes {
        max if max > 0 && encode::has_quality(format) => {
            encode::within_bytes(max, first, || deadline.check(), encode)
        }
        _ => encode(first),
    }
}

/// imgproxy's order: `quality`, then `format_quality` from the URL, then
/// from the configuration, then the default.
fn quality(job: &Job, format: Format) -> u8 {
    let o = &job.options;
    match o.quality {
        0 => quality_for(&o.format_quality, format)
            .or_else(|| quality_for(&job.format_quality, format))
            .unwrap_or(job.default_quality),
        q => q,
    }
}

/// What the resample takes and makes: a region of the decoded, oriented
/// image, the size it becomes, and the size of a smart crop to cut from
/// that after.
struct Target {
    region: Region,
    size: (u32, u32),
    smart_cut: Option<(u32, u32)>,
}

/// The resample for a decoded, oriented image of size `decoded`. Source
/// coordinates are in oriented, full-size pixels; the decoded image may be
/// smaller (shrink-on-load) by (rx, ry). A smart pre-crop looks at `img`
/// (the banded path, which has none, never has one).
fn target(plan: &Plan, decoded: (u32, u32), img: Option<&DynamicImage>) -> Target {
    let (ow, oh) = plan.oriented;
    let geo = &plan.geo;
    let rx = decoded.0 as f64 / ow as f64;
    let ry = decoded.1 as f64 / oh as f64;
    let mut region = Region {
        x: 0.0,
        y: 0.0,
        w: ow as f64,
        h: oh as f64,
    };
    if let Some((cw, ch, g)) = geo.pre_crop {
        let (x, y) = match img {
            Some(img) if g.kind == GravityType::Smart => {
                let (x, y) = smart_crop::find(
                    img,
                    (
                        ((cw as f64) * rx).round() as u32,
                        ((ch as f64) * ry).round() as u32,
                    ),
                );
                (
                    (x as f64 / rx).round() as u32,
                    (y as f64 / ry).round() as u32,
                )
            }
            _ => geometry::position((ow, oh), (cw, ch), &g, 1.0),
        };
        region = Region {
            x: x as f64,
            y: y as f64,
            w: cw as f64,
            h: ch as f64,
        };
    }
    let to_decoded = |r: Region| Region {
        x: r.x * rx,
        y: r.y * ry,
        w: r.w * rx,
        h: r.h * ry,
    };
    match geo.result_crop {
        Some((rw, rh, g)) if g.kind == GravityType::Smart => Target {
            region: to_decoded(region),
            size: geo.scaled,
            smart_cut: Some((rw, rh)),
        },
        Some((rw, rh, g)) => {
            // Fold the result crop into the resample.
            let (x, y) = geometry::position(geo.scaled, (rw, rh), &g, geo.dpr);
            let sx = region.w / geo.scaled.0 as f64;
            let sy = region.h / geo.scaled.1 as f64;
            let cropped = Region {
                x: region.x + x as f64 * sx,
                y: region.y + y as f64 * sy,
                w: rw as f64 * sx,
                h: rh as f64 * sy,
            };
            Target {
                region: to_decoded(cropped),
                size: (rw, rh),
                smart_cut: None,
            }
        }
        None => Target {
            region: to_decoded(region),
            size: geo.scaled,
            smart_cut: None,
        },
    }
}

/// Crop and resample in one pass (a smart crop after), unless the decode
/// already resampled.
/// The resample (unless the decode did it), then the conversion to sRGB,
/// then any smart crop.
fn resize_step(decoded: Decoded, plan: &Plan) -> Result<DynamicImage, Error> {
    let (mut img, smart_cut) = match decoded {
        Decoded::Resampled(img, cut) => (img, cut),
        Decoded::Encoded(..) => {
            return Err(Error::Internal("an encoded result has no resize".into()))
        }
        Decoded::Whole(img) => {
            let t = target(plan, (img.width(), img.height()), Some(&img));
            (resize::resample(img, t.region, t.size)?, t.smart_cut)
        }
    };
    if let Some(to) = &plan.colour {
        to.convert_image(&mut img);
    }
    Ok(match smart_cut {
        Some((rw, rh)) => {
            let (x, y) = smart_crop::find(&img, (rw, rh));
            resize::cut(img, x, y, rw, rh)
        }
        None => img,
    })
}

/// Blur, sharpen, pixelate, extend, flatten; also settles the output format, which
/// depends on whether alpha is left.
fn effects_step(
    mut img: DynamicImage,
    job: &Job,
    plan: &Plan,
    deadline: &Deadline,
) -> Result<(DynamicImage, Format), Error> {
    let o = &job.options;
    img = effects::drop_opaque_alpha(filters(img, o));
    // Transparent padding only where the output keeps alpha anyway.
    let keeps_alpha = plan
        .negotiated
        .resolve(img.color().has_alpha())
        .supports_alpha();
    img = extend(img, plan, o, keeps_alpha && o.background.is_none());
    let has_alpha = img.color().has_alpha();
    let format = plan.negotiated.resolve(has_alpha);
    if has_alpha && (!format.supports_alpha() || o.background.is_some()) {
        img = effects::flatten(img, o.background.unwrap_or(WHITE));
    }
    if let Some((image, w)) = job.watermark() {
        let out = (img.width(), img.height());
        let wm = watermark::prepare(image, w, out, &job.limits, deadline)?;
        img = watermark::apply(img, &wm, w, plan.geo.dpr);
    }
    Ok((img, format))
}

/// Encodes; a negotiated format the encoder refuses falls back to one
/// every client takes.
fn encode_step(
    img: &DynamicImage,
    job: &Job,
    plan: &Plan,
    format: Format,
    deadline: &Deadline,
) -> Result<(Vec<u8>, Format), Error> {
    let reserve = plan.reserve as usize;
    let encode = |format: Format| {
        within_bytes(job, format, deadline, |q| {
            encode::encode(img, format, q, reserve)
        })
    };
    let (body, format) = match encode(format) {
        Ok(b) => (b, format),
        Err(e @ Error::TransformTimeout(_)) => return Err(e),
        Err(_) if matches!(plan.negotiated, Negotiated::Accepted { .. }) => {
            let fallback = Negotiated::Fallback.resolve(img.color().has_alpha());
            (encode(fallback)?, fallback)
        }
        Err(e) => return Err(e),
    };
    Ok(match &plan.keep_profile {
        Some(icc) => {
            let size = (img.width(), img.height());
            (encode::with_icc(body, format, icc, size), format)
        }
        None => (body, format),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::options::{build, Presets, RawOption};
    use image::{DynamicImage, Rgb, RgbImage, Rgba, RgbaImage};

    /// A smooth scene with edges: gradients, a disc, a bar and a red
    /// marker in the top-left corner, so orientation and crops show.
    fn scene(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            if fx < 0.2 && fy < 0.2 {
                return Rgb([230, 20, 20]);
            }
            let (dx, dy) = (fx - 0.6, fy - 0.5);
            if dx * dx + dy * dy < 0.04 {
                return Rgb([250, 210, 40]);
            }
            if (0.15..0.2).contains(&(fx - fy).abs()) {
                return Rgb([20, 20, 30]);
            }
            Rgb([
                (40.0 + 150.0 * fx) as u8,
                (90.0 + 60.0 * (fy * 9.0).sin()) as u8,
                (200.0 - 120.0 * fx * fy) as u8,
            ])
        })
    }

    fn jpeg(img: &RgbImage, progressive: bool, orientation: Option<u16>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut out, 92);
        enc.set_progressive(progressive);
        if let Some(o) = orientation {
            // A minimal big-endian EXIF block holding only Orientation.
            let mut e = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
            e.extend_from_slice(&o.to_be_bytes());
            e.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
            enc.add_app_segment(1, e).unwrap();
        }
        enc.encode(
            img,
            img.width() as u16,
            img.height() as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .unwrap();
        out
    }

    fn png(img: DynamicImage) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn job(text: &str) -> Job {
        let raw: Vec<RawOption> = text.split('/').filter_map(RawOption::split).collect();
        let options = build(&raw, None, &Presets::default()).unwrap();
        Job {
            negotiated: crate::request::negotiate::negotiate(options.format, None, &[]),
            options,
            limits: Limits::default(),
            default_quality: 80,
            format_quality: Vec::new(),
            skip_processing: Vec::new(),
            watermark: None,
        }
    }

    /// Luma SSIM of two encoded outputs of the same size.
    /// Of what is seen: an image with alpha is compared over black, since
    /// a nearly clear pixel's colour barely shows (and rounds freely).
    fn ssim(a: &[u8], b: &[u8]) -> f64 {
        let seen = |bytes: &[u8]| {
            let mut img = image::load_from_memory(bytes).unwrap().to_rgba8();
            for p in img.pixels_mut() {
                let a = p[3] as u32;
                for c in 0..3 {
                    p[c] = (p[c] as u32 * a / 255) as u8;
                }
            }
            DynamicImage::ImageRgba8(img).to_luma8()
        };
        let (a, b) = (seen(a), seen(b));
        image_compare::gray_similarity_structure(&image_compare::Algorithm::MSSIMSimple, &a, &b)
            .unwrap()
            .score
    }

    /// Every shrink-on-load path (JPEG DCT scaling, progressive JPEG from
    /// DC alone, PNG box shrink with and without alpha) gives the same
    /// geometry as a full-size decode and output that looks the same,
    /// through crops, gravities and EXIF orientation.
    #[test]
    fn shrink_on_load_matches_a_full_decode() {
        let img = scene(1600, 1000);
        // Measured here, the least SSIM of each path over these option
        // sets: jpeg-decoder's DCT scaling 0.962, DC-only 0.974, PNG 0.972.
        let alpha = RgbaImage::from_fn(1600, 1000, |x, y| {
            let p = img.get_pixel(x, y).0;
            Rgba([p[0], p[1], p[2], if x > 1200 { 0 } else { 255 }])
        });
        let sources: [(&str, Vec<u8>); 5] = [
            ("baseline JPEG, DCT-scaled", jpeg(&img, false, None)),
            ("progressive JPEG, DC only", jpeg(&img, true, None)),
            (
                "baseline JPEG, DCT-scaled, EXIF 6",
                jpeg(&scene(1000, 1600), false, Some(6)),
            ),
            ("PNG, box shrink", png(DynamicImage::ImageRgb8(img.clone()))),
            (
                "PNG with alpha, box shrink",
                png(DynamicImage::ImageRgba8(alpha)),
            ),
        ];
        let option_sets = [
            "w:150/f:png",
            "rs:fill:120:120/g:nowe/f:png",
            "rs:fill:100:150/g:fp:0.3:0.7/f:png",
            "c:0.5:0.5:soea/w:75/f:png",
            "rs:fit:125:125/f:jpg/q:95",
        ];
        for (name, bytes) in &sources {
            for text in option_sets {
                let job = job(text);
                let header = plan(bytes, &job, ShrinkOnLoad::On).unwrap();
                let full = plan(bytes, &job, ShrinkOnLoad::Off).unwrap();
                // The path under test really shrinks.
                let (shrunk, whole) = (
                    decode::decoded_size(&header.header, header.geo.scale),
                    (header.header.width, header.header.height),
                );
                assert!(
                    shrunk.0 * 2 <= whole.0,
                    "{name} {text}: decoded {shrunk:?} of {whole:?}"
                );
                assert!(header.need < full.need, "{name} {text}: memory estimate");

                let ours = transform(bytes, &job, || 0.0, ShrinkOnLoad::On)
                    .unwrap_or_else(|e| panic!("{name} {text}: {e:?}"));
                let reference = transform(bytes, &job, || 0.0, ShrinkOnLoad::Off)
                    .unwrap_or_else(|e| panic!("{name} {text} (full): {e:?}"));
                assert_eq!(
                    (ours.width, ours.height),
                    (reference.width, reference.height),
                    "{name} {text}: geometry"
                );
                let score = ssim(&ours.body, &reference.body);
                assert!(score > 0.95, "{name} {text}: SSIM {score}");
            }
        }
    }

    /// The banded path (rows resampled as they decode, oriented after)
    /// gives what decoding whole gave, at the same decode scale: every
    /// EXIF orientation, crops folded in and cut after, alpha, enlarging,
    /// full size and no resize at all.
    #[test]
    fn banded_output_is_the_whole_image_output() {
        let img = scene(700, 450);
        let alpha = RgbaImage::from_fn(700, 450, |x, y| {
            let p = img.get_pixel(x, y).0;
            Rgba([p[0], p[1], p[2], ((x + y) % 256) as u8])
        });
        let mut sources: Vec<(String, Vec<u8>)> = (1..=8)
            .map(|o| {
                (
                    format!("baseline JPEG, EXIF {o}"),
                    jpeg(&img, false, Some(o)),
                )
            })
            .collect();
        sources.push(("progressive JPEG".into(), jpeg(&img, true, None)));
        sources.push(("PNG".into(), png(DynamicImage::ImageRgb8(img.clone()))));
        sources.push((
            "PNG with alpha".into(),
            png(DynamicImage::ImageRgba8(alpha)),
        ));
        let option_sets = [
            "w:0/f:png",
            "w:600/f:png",
            "w:333/f:png",
            "w:120/f:png",
            "rs:fill:200:200/g:nowe/f:png",
            "rs:fill:180:90/g:sm/f:png",
            "c:300:200:soea/w:150/f:png",
            "c:0.5:0.8:fp:0.2:0.3/w:99/f:png",
            "w:1200/el:1/f:png",
            "c:300:200:soea/w:150/rot:270/fl:1/f:png",
            "rs:fit:200:200/exar:1:so/pd:3:5/z:0.8/f:png",
            "w:150/rot:90/f:png",
            "w:150/fl:1/f:png",
            "w:700/rot:90/f:png",
        ];
        for (name, bytes) in &sources {
            for text in option_sets {
                let job = job(text);
                let banded = transform(bytes, &job, || 0.0, ShrinkOnLoad::On)
                    .unwrap_or_else(|e| panic!("{name} {text}: {e:?}"));
                let whole = transform(bytes, &job, || 0.0, ShrinkOnLoad::Whole)
                    .unwrap_or_else(|e| panic!("{name} {text} (whole): {e:?}"));
                assert_eq!(
                    (banded.width, banded.height),
                    (whole.width, whole.height),
                    "{name} {text}: geometry"
                );
                let score = ssim(&banded.body, &whole.body);
                // A transposed source is resampled across its rows, not
                // along them, on one path: at the alpha sawtooth's 255-to-0
                // jumps the two orders round apart (by up to 96 levels in
                // about 50 pixels).
                let jumps = name.contains("alpha") && text.contains("rot:");
                let floor = if jumps { 0.99 } else { 0.995 };
                assert!(score >= floor, "{name} {text}: SSIM {score}");
            }
        }
    }

    /// Large JPEG outputs with nothing to do on the whole image are
    /// streamed (timed as one `stream` step) and look as the whole-image
    /// path's do; an EXIF turn or a PNG output is not streamed. A
    /// transparent PNG made JPEG is flattened row by row onto the
    /// background.
    #[test]
    fn large_jpeg_outputs_stream_and_match_the_whole_image_path() {
        // Just over PROGRESSIVE_MAX_PIXELS: outputs above it are baseline.
        let img = scene(2700, 1900);
        let alpha = RgbaImage::from_fn(2700, 1900, |x, y| {
            let p = img.get_pixel(x, y).0;
            Rgba([
                p[0],
                p[1],
                p[2],
                if (x / 40 + y / 40) % 2 == 0 { 255 } else { 0 },
            ])
        });
        let sources = [
            ("baseline JPEG", jpeg(&img, false, None)),
            ("baseline JPEG, EXIF 6", jpeg(&img, false, Some(6))),
            ("PNG with alpha", png(DynamicImage::ImageRgba8(alpha))),
        ];
        let cases = [
            ("w:0/f:jpg", true),
            ("c:2650:1890:ce/f:jpg/bg:20:40:200", true),
            ("w:2690/f:jpg", true),
            ("w:0/f:png", false),
            ("w:1000/f:jpg", false),
        ];
        for (name, bytes) in &sources {
            for (text, streams) in cases {
                let job = job(text);
                let out = transform(bytes, &job, || 0.0, ShrinkOnLoad::On)
                    .unwrap_or_else(|e| panic!("{name} {text}: {e:?}"));
                let streamed = out.timings.iter().any(|(step, _)| *step == "stream");
                let turned = name.contains("EXIF");
                assert_eq!(streamed, streams && !turned, "{name} {text}");
                if !streamed {
                    continue;
                }
                // The reference holds whole images, over the budget.
                let mut roomy = job.clone();
                roomy.limits.max_transform_bytes = 1 << 30;
                let whole = transform(bytes, &roomy, || 0.0, ShrinkOnLoad::Whole)
                    .unwrap_or_else(|e| panic!("{name} {text} (whole): {e:?}"));
                assert_eq!(
                    (out.width, out.height),
                    (whole.width, whole.height),
                    "{name} {text}"
                );
                let score = ssim(&out.body, &whole.body);
                assert!(score >= 0.995, "{name} {text}: SSIM {score}");
                assert!(
                    memory_estimate(bytes, &job).unwrap() < 40 << 20,
                    "{name} {text}: holds no image"
                );
            }
        }
    }

    /// A wide-gamut source is converted to sRGB on the streamed path too,
    /// row by row, as on the whole-image path.
    #[test]
    fn streamed_outputs_are_converted_to_srgb() {
        let curve = lcms2::ToneCurve::new(2.2);
        let p3 = lcms2::Profile::new_rgb(
            &lcms2::CIExyY {
                x: 0.3127,
                y: 0.329,
                Y: 1.0,
            },
            &lcms2::CIExyYTRIPLE {
                Red: lcms2::CIExyY {
                    x: 0.68,
                    y: 0.32,
                    Y: 1.0,
                },
                Green: lcms2::CIExyY {
                    x: 0.265,
                    y: 0.69,
                    Y: 1.0,
                },
                Blue: lcms2::CIExyY {
                    x: 0.15,
                    y: 0.06,
                    Y: 1.0,
                },
            },
            &[&curve, &curve, &curve],
        )
        .unwrap();
        let (w, h) = (2700u32, 1900u32);
        let colour = [40u8, 200, 60];
        let pixels: Vec<u8> = (0..w * h).flat_map(|_| colour).collect();
        let mut bytes = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut bytes, 95);
        enc.add_icc_profile(&p3.icc().unwrap()).unwrap();
        enc.encode(&pixels, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let to_srgb: lcms2::Transform<[u8; 3], [u8; 3]> = lcms2::Transform::new(
            &p3,
            lcms2::PixelFormat::RGB_8,
            &lcms2::Profile::new_srgb(),
            lcms2::PixelFormat::RGB_8,
            lcms2::Intent::Perceptual,
        )
        .unwrap();
        let mut want = [[0u8; 3]];
        to_srgb.transform_pixels(&[colour], &mut want);
        for (shrink, step) in [
            (ShrinkOnLoad::On, "stream"),
            (ShrinkOnLoad::Whole, "resize"),
        ] {
            let mut job = job("w:0/f:jpg");
            job.limits.max_transform_bytes = 1 << 30;
            let out = transform(&bytes, &job, || 0.0, shrink).unwrap();
            assert!(out.timings.iter().any(|(s, _)| *s == step), "{step}");
            let img = image::load_from_memory(&out.body).unwrap().to_rgb8();
            let got = img.get_pixel(w / 2, h / 2).0;
            let off = got.iter().zip(want[0]).map(|(a, b)| a.abs_diff(b)).max();
            assert!(off <= Some(6), "{step}: {got:?}, LittleCMS {:?}", want[0]);
        }
    }

    /// AVIF's encoder memory counts on the whole-image path too (a GIF
    /// source), not only on the banded one.
    #[test]
    fn avif_memory_counts_on_every_path() {
        let gif = {
            let mut out = std::io::Cursor::new(Vec::new());
            DynamicImage::ImageRgb8(scene(640, 480))
                .write_to(&mut out, image::ImageFormat::Gif)
                .unwrap();
            out.into_inner()
        };
        let png_need = memory_estimate(&gif, &job("rs:fit:400:0/f:png")).unwrap();
        let avif_need = memory_estimate(&gif, &job("rs:fit:400:0/f:avif")).unwrap();
        assert_eq!(avif_need - png_need, memory::avif(400 * 300));
    }

    /// An encode a format refuses (here WebP past libwebp's 16383 px, which
    /// a raised `max_result_dimension` allows) is never served broken: a
    /// negotiated WebP becomes JPEG, an explicit one is a 400.
    #[test]
    fn a_refused_webp_encode_falls_back_or_is_a_bad_request() {
        let source = png(DynamicImage::ImageRgb8(RgbImage::from_fn(
            16400,
            2,
            |x, _| Rgb([(x % 251) as u8, 90, 160]),
        )));
        let mut negotiated = job("w:0");
        negotiated.limits.max_result_dimension = 20000;
        negotiated.negotiated = crate::request::negotiate::negotiate(
            None,
            Some("image/webp,*/*"),
            &[
                crate::request::options::Format::Webp,
                crate::request::options::Format::Jpeg,
            ],
        );
        let out = run(&source, &negotiated, || 0.0).unwrap();
        assert_eq!(out.format, crate::request::options::Format::Jpeg);
        assert_eq!((out.width, out.height), (16400, 2));
        image::load_from_memory(&out.body).unwrap();

        let mut explicit = job("w:0/f:webp");
        explicit.limits.max_result_dimension = 20000;
        let err = run(&source, &explicit, || 0.0).unwrap_err();
        assert!(matches!(err, Error::BadOption { .. }), "{err}");
    }

    /// A smart crop of an animation is found on its first frame and kept
    /// for every frame: a detailed patch on the right of frame 0 moves
    /// to the left in frame 1, and frame 1's output is still cut from the
    /// right, so it shows the plain background there.
    #[test]
    fn skip_processing_serves_the_source_as_it_is_but_checked() {
        use image::codecs::gif::GifEncoder;
        let source = jpeg(&scene(300, 200), false, None);
        let out = run(&source, &job("rs:fit:100:0/skp:jpg"), || 0.0).unwrap();
        assert_eq!(
            (out.format, out.width, out.height),
            (Format::Jpeg, 300, 200)
        );
        assert_eq!(out.body, source);
        // From the configuration too; a named format still wins.
        let mut from_config = job("rs:fit:100:0");
        from_config.skip_processing = vec![Format::Jpeg];
        assert_eq!(run(&source, &from_config, || 0.0).unwrap().body, source);
        let png_out = run(&source, &job("rs:fit:100:0/skp:jpg/f:png"), || 0.0).unwrap();
        assert_eq!((png_out.format, png_out.width), (Format::Png, 100));
        assert_eq!(
            run(&source, &job("rs:fit:100:0/skp:png"), || 0.0)
                .unwrap()
                .width,
            100
        );
        // Frames times pixels are bounded as an animation's are.
        let mut gif = Vec::new();
        {
            let mut enc = GifEncoder::new_with_speed(&mut gif, 30);
            for _ in 0..3 {
                let frame = RgbaImage::from_pixel(100, 100, Rgba([9, 9, 9, 255]));
                enc.encode_frame(image::Frame::new(frame)).unwrap();
            }
        }
        let mut bomb = job("skp:gif");
        bomb.limits.max_src_pixels = 25_000;
        let e = run(&gif, &bomb, || 0.0).unwrap_err();
        assert!(e.to_string().contains("3 frames of 100x100"), "{e}");
        bomb.limits.max_src_pixels = 30_000;
        assert_eq!(run(&gif, &bomb, || 0.0).unwrap().body, gif);
    }

    #[test]
    fn an_animation_keeps_its_first_frames_smart_crop() {
        use image::codecs::gif::{GifEncoder, Repeat};
        use image::AnimationDecoder;
        let frame = |patch_x: u32| {
            RgbaImage::from_fn(300, 100, |x, y| {
                let on = x >= patch_x && x < patch_x + 80 && (x / 4 + y / 4) % 2 == 0;
                if on {
                    Rgba([255, 255, 0, 255])
                } else {
                    Rgba([40, 40, 40, 255])
                }
            })
        };
        let mut gif = Vec::new();
        {
            let mut enc = GifEncoder::new_with_speed(&mut gif, 30);
            enc.set_repeat(Repeat::Infinite).unwrap();
            for x in [210, 10] {
                let delay = image::Delay::from_numer_denom_ms(100, 1);
                enc.encode_frame(image::Frame::from_parts(frame(x), 0, 0, delay))
                    .unwrap();
            }
        }
        let mut job = job("rs:fill:100:100/g:sm/f:gif");
        job.limits.max_animation_frames = 10;
        let out = run(&gif, &job, || 0.0).unwrap();
        assert_eq!((out.format, out.width, out.height), (Format::Gif, 100, 100));
        let d = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(&out.body)).unwrap();
        let frames = d.into_frames().collect_frames().unwrap();
        assert_eq!(frames.len(), 2);
        let yellow = |f: &image::Frame| {
            f.buffer()
                .pixels()
                .filter(|p| p[0] > 200 && p[1] > 200)
                .count()
        };
        assert!(yellow(&frames[0]) > 1000, "frame 0 is cut around its patch");
        assert_eq!(yellow(&frames[1]), 0, "frame 1 is cut where frame 0 was");
    }
}
