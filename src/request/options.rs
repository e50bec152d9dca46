//! Processing options: imgproxy's `name:arg:arg` grammar, short aliases and
//! argument rules, compiled into one normalised [`Options`] value. Unknown
//! options and bad arguments are 400s that name the option.

use crate::error::Error;
use crate::request::client_hints::Hints;

/// An output format this build can encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Jpeg,
    Png,
    Webp,
    Gif,
    Avif,
}

impl Format {
    /// Parses a format name or extension (`jpg`, `jpeg`, `png`, `webp`,
    /// `gif`, `avif`).
    pub fn from_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" => Some(Format::Jpeg),
            "png" => Some(Format::Png),
            "webp" => Some(Format::Webp),
            "gif" => Some(Format::Gif),
            "avif" => Some(Format::Avif),
            _ => None,
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
            Format::Gif => "image/gif",
            Format::Avif => "image/avif",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Gif => "gif",
            Format::Avif => "avif",
        }
    }

    /// GIF's alpha is one bit: partly transparent pixels become opaque or
    /// clear.
    pub fn supports_alpha(self) -> bool {
        !matches!(self, Format::Jpeg)
    }

    /// Whether an animated source can stay animated in this format.
    pub fn animates(self) -> bool {
        matches!(self, Format::Webp | Format::Gif)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizingType {
    Fit,
    Fill,
    FillDown,
    Force,
    Auto,
}

impl ResizingType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "fit" => ResizingType::Fit,
            "fill" => ResizingType::Fill,
            "fill-down" => ResizingType::FillDown,
            "force" => ResizingType::Force,
            "auto" => ResizingType::Auto,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GravityType {
    Center,
    North,
    South,
    East,
    West,
    NorthEast,
    NorthWest,
    SouthEast,
    SouthWest,
    /// Content-aware: the most detailed region wins.
    Smart,
    /// `fp:x:y`, relative coordinates of the point to keep centred.
    FocusPoint,
}

/// Where a crop or an extension is anchored. `x`/`y` are offsets (pixels if
/// ≥ 1, else relative) or, for a focus point, relative coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gravity {
    pub kind: GravityType,
    pub x: f64,
    pub y: f64,
}

impl Default for Gravity {
    fn default() -> Self {
        Gravity {
            kind: GravityType::Center,
            x: 0.0,
            y: 0.0,
        }
    }
}

/// `trim`: what counts as background, and whether opposite sides lose the
/// same amount.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trim {
    /// How far a channel may stray from the background and still be it.
    pub threshold: f64,
    /// `None`: the top-left pixel's colour.
    pub colour: Option<[u8; 3]>,
    pub equal_hor: bool,
    pub equal_ver: bool,
}

/// `watermark`: how the configured image is placed on the result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Watermark {
    /// 0 to 1, times `EDGETHUMB_WATERMARK_OPACITY`.
    pub opacity: f64,
    /// Where it goes; `None`: tiled over the whole result (`re`).
    pub position: Option<GravityType>,
    /// Offsets from the edge, or the gaps between tiles: pixels (times
    /// `dpr`) when 1 or more, else a share of the result.
    pub x: f64,
    pub y: f64,
    /// Its size as a share of the result's (fitted, enlarged if need be);
    /// 0: its own size.
    pub scale: f64,
}

/// Every processing option, normalised. Defaults match imgproxy's.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub resizing_type: ResizingType,
    pub width: u32,
    pub height: u32,
    pub dpr: f64,
    pub enlarge: bool,
    pub extend: bool,
    pub extend_gravity: Gravity,
    /// Extend to the asked aspect ratio (`extend_aspect_ratio`).
    pub extend_aspect_ratio: bool,
    pub extend_aspect_ratio_gravity: Gravity,
    /// The result is never narrower or lower than these (0 = no minimum).
    pub min_width: u32,
    pub min_height: u32,
    /// Multiplies the result size, unlike `dpr` leaving offsets alone.
    pub zoom: (f64, f64),
    /// Added around the result, in CSS order: top, right, bottom, left.
    pub padding: [u32; 4],
    /// Clockwise, after EXIF orientation: 0, 90, 180 or 270.
    pub rotate: u32,
    /// Horizontal, vertical; after `rotate`.
    pub flip: (bool, bool),
    pub gravity: Gravity,
    /// 0 = no crop; below 1 = relative to the source; else pixels.
    pub crop_width: f64,
    pub crop_height: f64,
    /// `None`: use `gravity`.
    pub crop_gravity: Option<Gravity>,
    /// 0 = `format_quality`'s for the output format, else the configured
    /// default.
    pub quality: u8,
    /// Quality by output format (`format_quality`), over the configured
    /// `EDGETHUMB_FORMAT_QUALITY`.
    pub format_quality: Vec<(Format, u8)>,
    /// Lower the quality until the output fits (0 = no limit).
    pub max_bytes: u32,
    pub format: Option<Format>,
    pub background: Option<[u8; 3]>,
    pub blur: f32,
    pub sharpen: f32,
    /// Block size in output pixels; 0 or 1 = none.
    pub pixelate: u32,
    /// Cut the surrounding background off the source first.
    pub trim: Option<Trim>,
    /// Place the configured watermark image (`None`: opacity 0, off).
    pub watermark: Option<Watermark>,
    pub auto_rotate: bool,
    pub strip_metadata: bool,
    /// Convert to sRGB and drop the profile (imgproxy's default), or keep
    /// the source's RGB profile and its pixels as they are.
    pub strip_color_profile: bool,
    pub expires: Option<i64>,
    pub cachebuster: Option<String>,
    pub filename: Option<String>,
    /// `Content-Disposition: attachment` instead of `inline`.
    pub return_attachment: bool,
    /// Serve the source's bytes as they are; every other processing
    /// option is ignored.
    pub raw: bool,
    /// Source formats served as they are when no other output format is
    /// asked for (`skip_processing`), with `EDGETHUMB_SKIP_PROCESSING_FORMATS`.
    pub skip_processing: Vec<Format>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            resizing_type: ResizingType::Fit,
            width: 0,
            height: 0,
            dpr: 1.0,
            enlarge: false,
            extend: false,
            extend_gravity: Gravity::default(),
            extend_aspect_ratio: false,
            extend_aspect_ratio_gravity: Gravity::default(),
            min_width: 0,
            min_height: 0,
            zoom: (1.0, 1.0),
            padding: [0; 4],
            rotate: 0,
            flip: (false, false),
            gravity: Gravity::default(),
            crop_width: 0.0,
            crop_height: 0.0,
            crop_gravity: None,
            quality: 0,
            format_quality: Vec::new(),
            max_bytes: 0,
            format: None,
            background: None,
            blur: 0.0,
            sharpen: 0.0,
            pixelate: 0,
            trim: None,
            watermark: None,
            auto_rotate: true,
            strip_metadata: true,
            strip_color_profile: true,
            expires: None,
            cachebuster: None,
            filename: None,
            return_attachment: false,
            raw: false,
            skip_processing: Vec::new(),
        }
    }
}

impl Options {
    /// A canonical text of everything that changes the response, for cache
    /// keys: `expires` is left out, since it changes only whether the URL is
    /// served, not what is served.
    pub fn identity(&self) -> String {
        let mut o = self.clone();
        o.expires = None;
        format!("{o:?}")
    }
}

/// One `name:arg:arg` URL segment, unparsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawOption {
    pub name: String,
    pub args: Vec<String>,
}

impl RawOption {
    /// Splits a segment; `None` if it has no `:` (so it starts the source).
    pub fn split(segment: &str) -> Option<RawOption> {
        let mut parts = segment.split(':');
        let name = parts.next()?;
        let args: Vec<String> = parts.map(str::to_string).collect();
        if args.is_empty() {
            return None;
        }
        Some(RawOption {
            name: name.to_string(),
            args,
        })
    }
}

/// Named option lists from `EDGETHUMB_PRESETS` (imgproxy syntax:
/// `name=opt:a/opt:b,name2=...`).
#[derive(Debug, Clone, Default)]
pub struct Presets(Vec<(String, Vec<RawOption>)>);

impl Presets {
    pub fn parse(text: &str) -> Result<Presets, String> {
        let mut list: Vec<(String, Vec<RawOption>)> = Vec::new();
        for entry in text.split(',').map(str::trim) {
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            let (name, value) = entry
                .split_once('=')
                .ok_or_else(|| format!("preset `{entry}` has no `=`"))?;
            let (name, value) = (name.trim(), value.trim());
            if name.is_empty() || value.is_empty() {
                return Err(format!("preset `{entry}` has an empty name or value"));
            }
            let opts = value
                .split('/')
                .map(|seg| {
                    RawOption::split(seg)
                        .ok_or_else(|| format!("preset `{name}`: `{seg}` is not an option"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            list.retain(|(n, _)| n != name);
            list.push((name.to_string(), opts));
        }
        let presets = Presets(list);
        // Validate every preset now, so a typo fails at start-up.
        for (name, _) in &presets.0 {
            let mut o = Options::default();
            apply_preset(&mut o, name, &presets, &mut Vec::new())
                .map_err(|e| format!("preset `{name}`: {e}"))?;
        }
        Ok(presets)
    }

    fn get(&self, name: &str) -> Option<&[RawOption]> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, o)| o.as_slice())
    }
}

/// Builds [`Options`]: the `default` preset first (as imgproxy does), then
/// the URL's options in order, then the source extension as a format.
pub fn build(
    raw: &[RawOption],
    extension: Option<&str>,
    presets: &Presets,
) -> Result<Options, Error> {
    build_with_hints(raw, extension, presets, Hints::default())
}

/// [`build`] with client hints as the defaults for `dpr` and `width`,
/// under the `default` preset and the URL, as imgproxy orders them.
pub fn build_with_hints(
    raw: &[RawOption],
    extension: Option<&str>,
    presets: &Presets,
    hints: Hints,
) -> Result<Options, Error> {
    let mut o = Options::default();
    let (dpr, width) = hints.defaults();
    o.dpr = dpr.unwrap_or(o.dpr);
    o.width = width.unwrap_or(o.width);
    let mut used = Vec::new();
    if presets.get("default").is_some() {
        apply_preset(&mut o, "default", presets, &mut used)?;
    }
    for opt in raw {
        apply(&mut o, opt, presets, &mut used)?;
    }
    if let Some(ext) = extension.filter(|e| !e.is_empty()) {
        o.format = Some(parse_format("format", ext)?);
    }
    Ok(o)
}

fn apply_preset(
    o: &mut Options,
    name: &str,
    presets: &Presets,
    used: &mut Vec<String>,
) -> Result<(), Error> {
    // A preset may name others; each is applied once, which also stops loops.
    if used.iter().any(|u| u == name) {
        return Ok(());
    }
    let opts = presets
        .get(name)
        .ok_or_else(|| Error::bad_option("preset", format!("unknown preset `{name}`")))?;
    used.push(name.to_string());
    for opt in opts {
        apply(o, opt, presets, used)?;
    }
    Ok(())
}

fn apply(
    o: &mut Options,
    opt: &RawOption,
    presets: &Presets,
    used: &mut Vec<String>,
) -> Result<(), Error> {
    let a: Vec<&str> = opt.args.iter().map(String::as_str).collect();
    match opt.name.as_str() {
        "resize" | "rs" => {
            max_args("resize", &a, 8)?;
            if !a[0].is_empty() {
                o.resizing_type = parse_resizing_type(a[0])?;
            }
            apply_size(o, &a[1..])?;
        }
        "size" | "s" => {
            max_args("size", &a, 7)?;
            apply_size(o, &a)?;
        }
        "resizing_type" | "rt" => {
            max_args("resizing_type", &a, 1)?;
            o.resizing_type = parse_resizing_type(a[0])?;
        }
        "width" | "w" => {
            max_args("width", &a, 1)?;
            o.width = parse_dimension("width", a[0])?;
        }
        "height" | "h" => {
            max_args("height", &a, 1)?;
            o.height = parse_dimension("height", a[0])?;
        }
        "dpr" => {
            max_args("dpr", &a, 1)?;
            o.dpr = parse_positive("dpr", a[0])?;
        }
        "enlarge" | "el" => {
            max_args("enlarge", &a, 1)?;
            o.enlarge = parse_bool("enlarge", a[0])?;
        }
        "extend" | "ex" => apply_extend(o, &a)?,
        "extend_aspect_ratio" | "extend_ar" | "exar" => {
            max_args("extend_aspect_ratio", &a, 4)?;
            o.extend_aspect_ratio = parse_bool("extend_aspect_ratio", a[0])?;
            if a.len() > 1 && !a[1].is_empty() {
                o.extend_aspect_ratio_gravity =
                    parse_gravity("extend_aspect_ratio", &a[1..], false)?;
            }
        }
        "min-width" | "mw" => {
            max_args("min-width", &a, 1)?;
            o.min_width = parse_dimension("min-width", a[0])?;
        }
        "min-height" | "mh" => {
            max_args("min-height", &a, 1)?;
            o.min_height = parse_dimension("min-height", a[0])?;
        }
        "zoom" | "z" => {
            max_args("zoom", &a, 2)?;
            let x = parse_positive("zoom", a[0])?;
            let y = match a.get(1) {
                Some(y) => parse_positive("zoom", y)?,
                None => x,
            };
            o.zoom = (x, y);
        }
        "padding" | "pd" => o.padding = parse_padding(&a, o.padding)?,
        "rotate" | "rot" => {
            max_args("rotate", &a, 1)?;
            let angle: i64 = a[0].parse().map_err(|_| {
                Error::bad_option("rotate", format!("`{}` is not a whole number", a[0]))
            })?;
            if angle % 90 != 0 {
                return Err(Error::bad_option(
                    "rotate",
                    format!("`{angle}` is not a multiple of 90"),
                ));
            }
            o.rotate = angle.rem_euclid(360) as u32;
        }
        "flip" | "fl" => {
            max_args("flip", &a, 2)?;
            if !a[0].is_empty() {
                o.flip.0 = parse_bool("flip", a[0])?;
            }
            if let Some(v) = a.get(1).filter(|s| !s.is_empty()) {
                o.flip.1 = parse_bool("flip", v)?;
            }
        }
        // Accepted and checked, with nothing to do: metadata is always
        // stripped, copyright too, and no source format here has an
        // embedded thumbnail (HEIC, AVIF) to enforce. Not stored, so they
        // do not split the cache.
        "keep_copyright" | "kcr" => {
            max_args("keep_copyright", &a, 1)?;
            parse_bool("keep_copyright", a[0])?;
        }
        "enforce_thumbnail" | "eth" => {
            max_args("enforce_thumbnail", &a, 1)?;
            parse_bool("enforce_thumbnail", a[0])?;
        }
        "skip_processing" | "skp" => {
            for name in a {
                let f = parse_skippable("skip_processing", name)?;
                if !o.skip_processing.contains(&f) {
                    o.skip_processing.push(f);
                }
            }
        }
        "return_attachment" | "att" => {
            max_args("return_attachment", &a, 1)?;
            o.return_attachment = parse_bool("return_attachment", a[0])?;
        }
        "gravity" | "g" => o.gravity = parse_gravity("gravity", &a, true)?,
        "crop" | "c" => {
            max_args("crop", &a, 5)?;
            o.crop_width = parse_float("crop", a[0])?;
            if let Some(h) = a.get(1) {
                o.crop_height = parse_float("crop", h)?;
            }
            if o.crop_width < 0.0 || o.crop_height < 0.0 {
                return Err(Error::bad_option("crop", "sizes must be 0 or above"));
            }
            if a.len() > 2 && !a[2].is_empty() {
                o.crop_gravity = Some(parse_gravity("crop", &a[2..], true)?);
            }
        }
        "quality" | "q" => {
            max_args("quality", &a, 1)?;
            o.quality = parse_quality("quality", a[0])?;
        }
        "format_quality" | "fq" => {
            if !a.len().is_multiple_of(2) {
                return Err(Error::bad_option(
                    "format_quality",
                    "takes format:quality pairs",
                ));
            }
            for pair in a.chunks_exact(2) {
                let format = parse_format("format_quality", pair[0])?;
                let q = parse_quality("format_quality", pair[1])?;
                o.format_quality.retain(|(f, _)| *f != format);
                // 0 clears it, as imgproxy reads 0 as unset.
                if q > 0 {
                    o.format_quality.push((format, q));
                }
            }
        }
        "format" | "f" | "ext" => {
            max_args("format", &a, 1)?;
            o.format = Some(parse_format("format", a[0])?);
        }
        "background" | "bg" => o.background = parse_background(&a)?,
        "blur" | "bl" => {
            max_args("blur", &a, 1)?;
            o.blur = parse_sigma("blur", a[0])?;
        }
        "sharpen" | "sh" => {
            max_args("sharpen", &a, 1)?;
            o.sharpen = parse_sigma("sharpen", a[0])?;
        }
        "max_bytes" | "mb" => {
            max_args("max_bytes", &a, 1)?;
            o.max_bytes = parse_dimension("max_bytes", a[0])?;
        }
        "watermark" | "wm" => {
            max_args("watermark", &a, 5)?;
            o.watermark = parse_watermark(&a)?;
        }
        "raw" => {
            max_args("raw", &a, 1)?;
            o.raw = parse_bool("raw", a[0])?;
        }
        "trim" | "t" => {
            max_args("trim", &a, 4)?;
            o.trim = parse_trim(&a)?;
        }
        "pixelate" | "pix" => {
            max_args("pixelate", &a, 1)?;
            o.pixelate = parse_dimension("pixelate", a[0])?;
        }
        "auto_rotate" | "ar" => {
            max_args("auto_rotate", &a, 1)?;
            o.auto_rotate = parse_bool("auto_rotate", a[0])?;
        }
        "strip_metadata" | "sm" => {
            max_args("strip_metadata", &a, 1)?;
            o.strip_metadata = parse_bool("strip_metadata", a[0])?;
        }
        "strip_color_profile" | "scp" => {
            max_args("strip_color_profile", &a, 1)?;
            o.strip_color_profile = parse_bool("strip_color_profile", a[0])?;
        }
        "expires" | "exp" => {
            max_args("expires", &a, 1)?;
            let t: i64 = a[0].parse().map_err(|_| {
                Error::bad_option("expires", format!("`{}` is not a unix timestamp", a[0]))
            })?;
            o.expires = (t > 0).then_some(t);
        }
        "preset" | "pr" => {
            for name in a {
                apply_preset(o, name, presets, used)?;
            }
        }
        "cachebuster" | "cb" => {
            max_args("cachebuster", &a, 1)?;
            o.cachebuster = Some(a[0].to_string()).filter(|s| !s.is_empty());
        }
        "filename" | "fn" => {
            max_args("filename", &a, 2)?;
            let encoded = match a.get(1) {
                Some(e) if !e.is_empty() => parse_bool("filename", e)?,
                _ => false,
            };
            let name = if encoded {
                use base64::Engine;
                let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(a[0].trim_end_matches('='))
                    .map_err(|_| Error::bad_option("filename", "not URL-safe base64"))?;
                String::from_utf8(bytes).map_err(|_| Error::bad_option("filename", "not UTF-8"))?
            } else {
                a[0].to_string()
            };
            o.filename = Some(name).filter(|s| !s.is_empty());
        }
        other => return Err(Error::UnknownOption(other.to_string())),
    }
    Ok(())
}

fn apply_size(o: &mut Options, a: &[&str]) -> Result<(), Error> {
    if let Some(w) = a.first().filter(|s| !s.is_empty()) {
        o.width = parse_dimension("width", w)?;
    }
    if let Some(h) = a.get(1).filter(|s| !s.is_empty()) {
        o.height = parse_dimension("height", h)?;
    }
    if let Some(e) = a.get(2).filter(|s| !s.is_empty()) {
        o.enlarge = parse_bool("enlarge", e)?;
    }
    if a.len() > 3 && !a[3].is_empty() {
        apply_extend(o, &a[3..])?;
    }
    Ok(())
}

fn apply_extend(o: &mut Options, a: &[&str]) -> Result<(), Error> {
    max_args("extend", a, 4)?;
    o.extend = parse_bool("extend", a[0])?;
    if a.len() > 1 && !a[1].is_empty() {
        o.extend_gravity = parse_gravity("extend", &a[1..], false)?;
    }
    Ok(())
}

fn max_args(name: &str, a: &[&str], max: usize) -> Result<(), Error> {
    if a.len() > max {
        return Err(Error::bad_option(
            name,
            format!("takes at most {max} arguments, got {}", a.len()),
        ));
    }
    Ok(())
}

fn parse_resizing_type(s: &str) -> Result<ResizingType, Error> {
    ResizingType::parse(s).ok_or_else(|| {
        Error::bad_option(
            "resizing_type",
            format!("`{s}` is not one of fit, fill, fill-down, force, auto"),
        )
    })
}

fn parse_dimension(name: &str, s: &str) -> Result<u32, Error> {
    s.parse::<u32>()
        .map_err(|_| Error::bad_option(name, format!("`{s}` is not a whole number 0 or above")))
}

fn parse_float(name: &str, s: &str) -> Result<f64, Error> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(f),
        _ => Err(Error::bad_option(name, format!("`{s}` is not a number"))),
    }
}

/// A source format that can be served as it is: one a source can be
/// and an output can be named.
pub fn parse_skippable(name: &str, s: &str) -> Result<Format, Error> {
    Format::from_name(s)
        .filter(|f| *f != Format::Avif)
        .ok_or_else(|| {
            Error::bad_option(
                name,
                format!("`{s}` is not a source format that can be skipped (jpg, png, webp, gif)"),
            )
        })
}

/// 0-100; 0 means unset.
fn parse_quality(name: &str, s: &str) -> Result<u8, Error> {
    match s.parse::<u8>() {
        Ok(q) if q <= 100 => Ok(q),
        _ => Err(Error::bad_option(name, format!("`{s}` is not 0-100"))),
    }
}

/// The quality `pairs` give `format`, if any.
pub fn quality_for(pairs: &[(Format, u8)], format: Format) -> Option<u8> {
    pairs.iter().find(|(f, _)| *f == format).map(|&(_, q)| q)
}

/// A number above 0.
fn parse_positive(name: &str, s: &str) -> Result<f64, Error> {
    let f = parse_float(name, s)?;
    if f <= 0.0 {
        return Err(Error::bad_option(name, format!("`{s}` is not above 0")));
    }
    Ok(f)
}

/// `padding:top:right:bottom:left`, CSS-style: a side left out takes its
/// opposite (right and bottom from top, left from right); an empty top
/// keeps the one set before.
fn parse_padding(a: &[&str], before: [u32; 4]) -> Result<[u32; 4], Error> {
    max_args("padding", a, 4)?;
    let side = |i: usize| -> Result<Option<u32>, Error> {
        a.get(i)
            .filter(|s| !s.is_empty())
            .map(|s| parse_dimension("padding", s))
            .transpose()
    };
    let top = side(0)?.unwrap_or(before[0]);
    let right = side(1)?.unwrap_or(top);
    let bottom = side(2)?.unwrap_or(top);
    let left = side(3)?.unwrap_or(right);
    Ok([top, right, bottom, left])
}

fn parse_sigma(name: &str, s: &str) -> Result<f32, Error> {
    let f = parse_float(name, s)?;
    if !(0.0..=100.0).contains(&f) {
        return Err(Error::bad_option(name, format!("`{s}` is not 0 to 100")));
    }
    Ok(f as f32)
}

/// Go's `strconv.ParseBool` spellings, as imgproxy accepts; anything else is
/// a 400 rather than imgproxy's silent `false`.
fn parse_bool(name: &str, s: &str) -> Result<bool, Error> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(Error::bad_option(name, format!("`{s}` is not a boolean"))),
    }
}

fn parse_format(name: &str, s: &str) -> Result<Format, Error> {
    Format::from_name(s).ok_or_else(|| {
        Error::bad_option(
            name,
            format!("`{s}` is not a supported output format (jpg, png, webp, gif, avif)"),
        )
    })
}

/// imgproxy's `watermark:%opacity:%position:%x_offset:%y_offset:%scale`;
/// opacity 0 turns it off. `ch` (a chessboard) is imgproxy Pro's.
fn parse_watermark(a: &[&str]) -> Result<Option<Watermark>, Error> {
    let bad = |reason: String| Error::bad_option("watermark", reason);
    let arg = |i: usize| a.get(i).copied().filter(|s| !s.is_empty());
    let opacity = parse_float("watermark", a[0])?;
    if !(0.0..=1.0).contains(&opacity) {
        return Err(bad(format!("opacity `{}` is not 0 to 1", a[0])));
    }
    let position = match arg(1).unwrap_or("ce") {
        "re" => None,
        p => Some(compass(p).ok_or_else(|| bad(format!("`{p}` is not a position")))?),
    };
    let float = |i: usize| arg(i).map_or(Ok(0.0), |s| parse_float("watermark", s));
    let scale = float(4)?;
    if scale < 0.0 {
        return Err(bad(format!("scale `{scale}` is negative")));
    }
    Ok((opacity > 0.0).then_some(Watermark {
        opacity,
        position,
        x: float(2)?,
        y: float(3)?,
        scale,
    }))
}

/// imgproxy's `trim:%threshold:%color:%equal_hor:%equal_ver`; an empty
/// threshold turns trimming off.
fn parse_trim(a: &[&str]) -> Result<Option<Trim>, Error> {
    let arg = |i: usize| a.get(i).copied().filter(|s| !s.is_empty());
    let Some(threshold) = arg(0) else {
        return Ok(None);
    };
    let colour = match arg(1) {
        Some(hex) => Some(
            hex::decode(hex)
                .ok()
                .and_then(|b| <[u8; 3]>::try_from(b).ok())
                .ok_or_else(|| {
                    Error::bad_option("trim", format!("`{hex}` is not an RRGGBB colour"))
                })?,
        ),
        None => None,
    };
    let flag = |i: usize| arg(i).map_or(Ok(false), |s| parse_bool("trim", s));
    Ok(Some(Trim {
        threshold: parse_float("trim", threshold)?,
        colour,
        equal_hor: flag(2)?,
        equal_ver: flag(3)?,
    }))
}

fn parse_background(a: &[&str]) -> Result<Option<[u8; 3]>, Error> {
    match a {
        [""] => Ok(None),
        [hex] => {
            let bytes = hex::decode(hex)
                .ok()
                .filter(|b| b.len() == 3)
                .ok_or_else(|| {
                    Error::bad_option("background", format!("`{hex}` is not an RRGGBB colour"))
                })?;
            Ok(Some([bytes[0], bytes[1], bytes[2]]))
        }
        [r, g, b] => {
            let c = |s: &str| {
                s.parse::<u8>()
                    .map_err(|_| Error::bad_option("background", format!("`{s}` is not 0-255")))
            };
            Ok(Some([c(r)?, c(g)?, c(b)?]))
        }
        _ => Err(Error::bad_option(
            "background",
            "takes RRGGBB or three numbers R:G:B",
        )),
    }
}

/// The centre and the eight compass gravities.
fn compass(s: &str) -> Option<GravityType> {
    Some(match s {
        "ce" => GravityType::Center,
        "no" => GravityType::North,
        "so" => GravityType::South,
        "ea" => GravityType::East,
        "we" => GravityType::West,
        "noea" => GravityType::NorthEast,
        "nowe" => GravityType::NorthWest,
        "soea" => GravityType::SouthEast,
        "sowe" => GravityType::SouthWest,
        _ => return None,
    })
}

fn parse_gravity(name: &str, a: &[&str], allow_smart: bool) -> Result<Gravity, Error> {
    let kind = match a.first().copied().unwrap_or("") {
        "sm" if allow_smart => GravityType::Smart,
        "fp" => GravityType::FocusPoint,
        other => compass(other).ok_or_else(|| {
            Error::bad_option(
                name,
                format!("`{other}` is not a gravity (no so ea we noea nowe soea sowe ce sm fp)"),
            )
        })?,
    };
    let mut g = Gravity {
        kind,
        x: 0.0,
        y: 0.0,
    };
    match kind {
        GravityType::Smart => max_args(name, &a[1..], 0)?,
        GravityType::FocusPoint => {
            if a.len() != 3 {
                return Err(Error::bad_option(name, "fp takes x and y, from 0 to 1"));
            }
            g.x = parse_float(name, a[1])?;
            g.y = parse_float(name, a[2])?;
            if !(0.0..=1.0).contains(&g.x) || !(0.0..=1.0).contains(&g.y) {
                return Err(Error::bad_option(name, "fp x and y must be 0 to 1"));
            }
        }
        _ => {
            max_args(name, &a[1..], 2)?;
            if let Some(x) = a.get(1).filter(|s| !s.is_empty()) {
                g.x = parse_float(name, x)?;
            }
            if let Some(y) = a.get(2).filter(|s| !s.is_empty()) {
                g.y = parse_float(name, y)?;
            }
        }
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a `/`-separated option string, as in a URL.
    fn t(opts: &str) -> Result<Options, Error> {
        let raw: Vec<RawOption> = opts
            .split('/')
            .map(|s| RawOption::split(s).unwrap())
            .collect();
        build(&raw, None, &Presets::default())
    }

    #[test]
    fn resize_and_its_aliases() {
        let o = t("rs:fill:300:400:1:1:so").unwrap();
        assert_eq!(o.resizing_type, ResizingType::Fill);
        assert_eq!(
            (o.width, o.height, o.enlarge, o.extend),
            (300, 400, true, true)
        );
        assert_eq!(o.extend_gravity.kind, GravityType::South);
        let o = t("s:100:0/rt:fill-down/el:1/ex:0").unwrap();
        assert_eq!((o.width, o.height), (100, 0));
        assert_eq!(o.resizing_type, ResizingType::FillDown);
        assert!(o.enlarge && !o.extend);
        let o = t("w:10/h:20/dpr:2/rt:auto").unwrap();
        assert_eq!((o.width, o.height, o.dpr), (10, 20, 2.0));
        // Empty arguments keep what was there.
        let o = t("w:10/rs::::1").unwrap();
        assert_eq!(o.width, 10);
        assert!(o.enlarge);
    }

    #[test]
    fn gravity_crop_and_effects() {
        let o = t("g:fp:0.25:0.75/c:100:50:nowe:5:6/bl:2/sh:0.5/q:55/bg:ff0080").unwrap();
        assert_eq!(o.gravity.kind, GravityType::FocusPoint);
        assert_eq!((o.gravity.x, o.gravity.y), (0.25, 0.75));
        assert_eq!((o.crop_width, o.crop_height), (100.0, 50.0));
        let cg = o.crop_gravity.unwrap();
        assert_eq!((cg.kind, cg.x, cg.y), (GravityType::NorthWest, 5.0, 6.0));
        assert_eq!((o.blur, o.sharpen, o.quality), (2.0, 0.5, 55));
        assert_eq!(t("pix:8").unwrap().pixelate, 8);
        assert_eq!(t("pixelate:3").unwrap().pixelate, 3);
        assert_eq!(o.background, Some([255, 0, 128]));
        assert_eq!(t("bg:1:2:3").unwrap().background, Some([1, 2, 3]));
        assert_eq!(t("g:sm").unwrap().gravity.kind, GravityType::Smart);
    }

    #[test]
    fn control_options() {
        let o = t("exp:4102444800/cb:v2/fn:cat/ar:0/sm:f/f:webp").unwrap();
        assert_eq!(o.expires, Some(4102444800));
        assert_eq!(o.cachebuster.as_deref(), Some("v2"));
        assert_eq!(o.filename.as_deref(), Some("cat"));
        assert!(!o.auto_rotate && !o.strip_metadata);
        assert_eq!(o.format, Some(Format::Webp));
        assert!(t("sm:1").unwrap().strip_color_profile);
        assert!(!t("scp:0").unwrap().strip_color_profile);
        assert!(!t("strip_color_profile:false").unwrap().strip_color_profile);
        assert_eq!(t("fn:Y2F0:1").unwrap().filename.as_deref(), Some("cat"));
    }

    #[test]
    fn geometry_and_orientation_options() {
        let o = t("mw:10/mh:20/z:1.5/exar:1:so:2:3/rot:-90/fl:1/att:t").unwrap();
        assert_eq!((o.min_width, o.min_height, o.zoom), (10, 20, (1.5, 1.5)));
        assert!(o.extend_aspect_ratio);
        let g = o.extend_aspect_ratio_gravity;
        assert_eq!((g.kind, g.x, g.y), (GravityType::South, 2.0, 3.0));
        assert_eq!(
            (o.rotate, o.flip, o.return_attachment),
            (270, (true, false), true)
        );
        let o = t("min-width:1/min-height:2/zoom:2:3/extend_ar:1/rotate:450/flip::1").unwrap();
        assert_eq!((o.min_width, o.min_height, o.zoom), (1, 2, (2.0, 3.0)));
        assert_eq!((o.rotate, o.flip), (90, (false, true)));
        // Padding in CSS order; a later `pd` with an empty top keeps it.
        assert_eq!(t("pd:1").unwrap().padding, [1, 1, 1, 1]);
        assert_eq!(t("pd:1:2").unwrap().padding, [1, 2, 1, 2]);
        assert_eq!(t("pd:1:2:3").unwrap().padding, [1, 2, 3, 2]);
        assert_eq!(t("padding:1:2:3:4").unwrap().padding, [1, 2, 3, 4]);
        assert_eq!(t("pd:7/pd::2").unwrap().padding, [7, 2, 7, 2]);
        assert!(t("extend_aspect_ratio:0").unwrap() == Options::default());
        assert!(t("kcr:0/eth:1").unwrap() == Options::default());
        let o = t("skp:jpg:png/skip_processing:jpeg:gif").unwrap();
        assert_eq!(o.skip_processing, [Format::Jpeg, Format::Png, Format::Gif]);
    }

    #[test]
    fn watermark_arguments() {
        let w = t("wm:0.5:soea:10:0.1:0.25").unwrap().watermark.unwrap();
        let want = Watermark {
            opacity: 0.5,
            position: Some(GravityType::SouthEast),
            x: 10.0,
            y: 0.1,
            scale: 0.25,
        };
        assert_eq!(w, want);
        let w = t("watermark:1:re").unwrap().watermark.unwrap();
        assert_eq!((w.position, w.scale), (None, 0.0));
        assert_eq!(
            t("wm:1").unwrap().watermark.unwrap().position,
            Some(GravityType::Center)
        );
        assert_eq!(t("wm:1/wm:0").unwrap().watermark, None);
    }

    #[test]
    fn trim_arguments() {
        let o = t("t:12.5:FF00ff:1:t").unwrap();
        let want = Trim {
            threshold: 12.5,
            colour: Some([255, 0, 255]),
            equal_hor: true,
            equal_ver: true,
        };
        assert_eq!(o.trim, Some(want));
        let o = t("trim:10").unwrap().trim.unwrap();
        assert_eq!((o.colour, o.equal_hor, o.equal_ver), (None, false, false));
        // An empty threshold turns it off, as imgproxy.
        assert_eq!(t("t:10/t::ffffff").unwrap().trim, None);
    }

    #[test]
    fn format_quality_pairs() {
        let o = t("fq:jpg:70:webp:79/format_quality:jpeg:60:avif:0").unwrap();
        assert_eq!(
            o.format_quality,
            vec![(Format::Webp, 79), (Format::Jpeg, 60)]
        );
        assert_eq!(quality_for(&o.format_quality, Format::Jpeg), Some(60));
        assert_eq!(quality_for(&o.format_quality, Format::Avif), None);
    }

    #[test]
    fn errors_name_the_option() {
        let cases = [
            ("frobnicate:1", "frobnicate"),
            ("rs:squash:1:1", "resizing_type"),
            ("w:-1", "width"),
            ("w:abc", "width"),
            ("h:1.5", "height"),
            ("q:101", "quality"),
            ("dpr:0", "dpr"),
            ("el:maybe", "enlarge"),
            ("g:middle", "gravity"),
            ("g:fp:2:0", "gravity"),
            ("g:sm:1", "gravity"),
            ("ex:1:sm", "extend"),
            ("f:heic", "format"),
            ("bg:zz0000", "background"),
            ("bl:-1", "blur"),
            ("sh:nan", "sharpen"),
            ("exp:soon", "expires"),
            ("pr:nope", "preset"),
            ("w:1:2", "width"),
            ("mw:-1", "min-width"),
            ("mh:x", "min-height"),
            ("z:0", "zoom"),
            ("z:1:-2", "zoom"),
            ("z:1:2:3", "zoom"),
            ("exar:2", "extend_aspect_ratio"),
            ("exar:1:sm", "extend_aspect_ratio"),
            ("pd:1:2:3:4:5", "padding"),
            ("pd:-3", "padding"),
            ("rot:45", "rotate"),
            ("rot:ninety", "rotate"),
            ("fl:1:2", "flip"),
            ("fl:1:0:1", "flip"),
            ("att:yes", "return_attachment"),
            ("fq:webp", "format_quality"),
            ("kcr:maybe", "keep_copyright"),
            ("pix:-2", "pixelate"),
            ("skp:tiff", "skip_processing"),
            ("mb:-1", "max_bytes"),
            ("max_bytes:1k", "max_bytes"),
            ("skp:avif", "skip_processing"),
            ("pixelate:1.5", "pixelate"),
            ("t:x", "trim"),
            ("raw:yes", "raw"),
            ("raw:1:1", "raw"),
            ("wm:2", "watermark"),
            ("wm:0.5:ch", "watermark"),
            ("wm:0.5:ce:x", "watermark"),
            ("wm:0.5:ce:0:0:-1", "watermark"),
            ("wm:1:ce:0:0:1:1", "watermark"),
            ("t:10:fff", "trim"),
            ("trim:10::2", "trim"),
            ("t:10:ffffff:1:1:1", "trim"),
            ("eth:2", "enforce_thumbnail"),
            ("fq:webp:101", "format_quality"),
            ("fq:heic:50", "format_quality"),
        ];
        for (opts, name) in cases {
            let e = t(opts).unwrap_err();
            assert_eq!(e.status(), http::StatusCode::BAD_REQUEST, "{opts}");
            assert!(e.to_string().contains(name), "{opts}: {e}");
        }
    }

    #[test]
    fn presets_apply_in_order_and_cannot_loop() {
        let p =
            Presets::parse("default=q:70, thumb=rs:fit:600:0/q:80/pr:thumb, small=w:100").unwrap();
        let raw = [RawOption::split("pr:thumb:small").unwrap()];
        let o = build(&raw, Some("png"), &p).unwrap();
        assert_eq!((o.width, o.quality), (100, 80));
        assert_eq!(o.format, Some(Format::Png));
        // Without options the default preset still applies.
        assert_eq!(build(&[], None, &p).unwrap().quality, 70);
        assert!(Presets::parse("bad=w:x").is_err());
        assert!(Presets::parse("bad=plain").is_err());
    }

    #[test]
    fn identity_ignores_expiry_only() {
        let a = t("w:100/exp:4102444800").unwrap();
        let b = t("w:100").unwrap();
        let c = t("w:100/cb:2").unwrap();
        assert_eq!(a.identity(), b.identity());
        assert_ne!(b.identity(), c.identity());
    }
}
