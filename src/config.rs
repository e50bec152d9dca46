//! Configuration: plain structs with safe defaults, loaded from `EDGETHUMB_*`
//! names through a lookup function, so every runtime (process env, wrangler
//! vars, Spin variables) feeds the same loader. The library reads no
//! environment itself.

use std::time::Duration;

use crate::error::ConfigError;
use crate::pipeline::Limits;
use crate::request::options::{Format, Presets};
use crate::request::signature::KeyPair;
use crate::request::source_policy::SourcePolicy;
use crate::resilience::breaker::BreakerConfig;
use crate::resilience::shedding::SheddingLimits;
use crate::seams::cache::Ttls;
use crate::seams::fetch::FetchLimits;

/// The published imgproxy documentation test key ("secret"). For local
/// development only: anyone can sign URLs with it.
pub const DEV_KEY_HEX: &str = "736563726574";
/// The published imgproxy documentation test salt ("hello"). Dev only.
pub const DEV_SALT_HEX: &str = "68656C6C6F";

/// Everything the core needs to answer a request.
#[derive(Debug, Clone)]
pub struct Config {
    pub keys: Vec<KeyPair>,
    /// Bytes of the HMAC kept in the URL (imgproxy `SIGNATURE_SIZE`), 1..=32.
    pub signature_size: usize,
    pub allow_unsigned: bool,
    pub sources: SourcePolicy,
    /// Upstream fetch: time and size.
    pub fetch: FetchLimits,
    /// The transform's limits (pixels, memory, time, result size).
    pub limits: Limits,
    /// Misses and source bytes in flight at once.
    pub shedding: SheddingLimits,
    pub ttls: Ttls,
    /// Formats chosen by `Accept`, in order of preference. JPEG (or PNG for
    /// alpha) is always the fallback.
    pub auto_formats: Vec<Format>,
    pub presets: Presets,
    /// Quality used when the URL gives none (imgproxy `QUALITY`).
    pub default_quality: u8,
    /// Quality by output format, between the URL's and the default
    /// (imgproxy `FORMAT_QUALITY`).
    pub format_quality: Vec<(Format, u8)>,
    /// Serve SVG sources as they are (with `script-src 'none'`) instead
    /// of refusing them with 415.
    pub svg_passthrough: bool,
    /// Presets-only mode: the path names presets and nothing else
    /// (imgproxy `ONLY_PRESETS`).
    pub only_presets: bool,
    /// Client hints (`Sec-CH-DPR`/`DPR`, `Sec-CH-Width`/`Width`) give the
    /// defaults for `dpr` and `width` (imgproxy `ENABLE_CLIENT_HINTS`).
    pub client_hints: bool,
    /// Source formats served as they are when no output format is asked
    /// for (imgproxy `SKIP_PROCESSING_FORMATS`).
    pub skip_processing: Vec<Format>,
    /// The status for upstream failures (5xx, other statuses, timeouts,
    /// resets, redirect loops), for APIs that expect one status (424);
    /// `None`: 502, and 504 for timeouts.
    pub upstream_failure_status: Option<http::StatusCode>,
    /// Served instead of an error when the upstream or its bytes fail.
    pub fallback: Option<Fallback>,
    /// Placed by `watermark`; without one the option does nothing, as
    /// imgproxy's.
    pub watermark: Option<Watermark>,
    /// Fail fast for upstream hosts that keep failing.
    pub breaker: BreakerConfig,
    /// The longest a lookup waits for the persistent result store before
    /// it counts as a miss (`EDGETHUMB_RESULT_STORE_TIMEOUT_MS`).
    pub store_read_timeout: Duration,
}

/// A placeholder image for failed sources (imgproxy `FALLBACK_IMAGE_*`).
#[derive(Debug, Clone)]
pub struct Fallback {
    pub image: AuxImage,
    /// Status it is served with (default 200, as `<img>` tags want).
    pub status: http::StatusCode,
    /// Seconds it may be cached; `None`: the failure's own negative TTL.
    pub ttl: Option<u32>,
}

/// An image the operator configures (the fallback, the watermark).
#[derive(Debug, Clone)]
pub enum AuxImage {
    /// `…_DATA`: embedded, checked at load.
    Data(bytes::Bytes),
    /// `…_URL`: fetched on first use (edge runtimes cannot fetch while
    /// loading), kept while the service lives.
    Url(url::Url),
}

/// The image `watermark` URLs place (imgproxy `WATERMARK_*`).
#[derive(Debug, Clone)]
pub struct Watermark {
    pub image: AuxImage,
    /// Multiplies the URL's opacity (0 to 1).
    pub opacity: f64,
}

/// AVIF's quality unless `EDGETHUMB_FORMAT_QUALITY` says otherwise: where
/// its SSIM met WebP's at the default 80, on the corpus at 400 px (imgproxy's
/// default, 63, came out 0.01 below; README, "AVIF").
pub const DEFAULT_AVIF_QUALITY: u8 = 68;

impl Config {
    /// A configuration with the given keys and every default.
    pub fn with_keys(keys: Vec<KeyPair>) -> Self {
        Config {
            keys,
            signature_size: 32,
            allow_unsigned: false,
            sources: SourcePolicy::default(),
            fetch: FetchLimits::default(),
            limits: Limits::default(),
            shedding: SheddingLimits::default(),
            ttls: Ttls::default(),
            auto_formats: vec![Format::Webp, Format::Jpeg],
            presets: Presets::default(),
            default_quality: 80,
            format_quality: vec![(Format::Avif, DEFAULT_AVIF_QUALITY)],
            svg_passthrough: false,
            only_presets: false,
            client_hints: false,
            skip_processing: Vec::new(),
            watermark: None,
            upstream_failure_status: None,
            fallback: None,
            breaker: BreakerConfig::default(),
            // R2 and S3 answer a small GET in tens of milliseconds; past
            // this, the origin path is the better bet.
            store_read_timeout: Duration::from_millis(200),
        }
    }

    /// Loads from `EDGETHUMB_*` names (with `IMGPROXY_KEY`, `IMGPROXY_SALT`
    /// and `IMGPROXY_SIGNATURE_SIZE` as aliases). Unset and empty are the
    /// same. Every error names the variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let get_alias = |name: &str, alias: &str| -> Option<(String, String)> {
            get(name)
                .map(|v| (name.to_string(), v))
                .or_else(|| get(alias).map(|v| (alias.to_string(), v)))
        };

        let allow_unsigned = parse_bool(&get, "EDGETHUMB_ALLOW_UNSIGNED")?.unwrap_or(false);
        let key = get_alias("EDGETHUMB_KEY", "IMGPROXY_KEY");
        let salt = get_alias("EDGETHUMB_SALT", "IMGPROXY_SALT");
        let keys = match (key, salt) {
            (Some((kvar, k)), Some((svar, s))) => KeyPair::parse_lists(&kvar, &k, &svar, &s)?,
            (Some((kvar, _)), None) => {
                return Err(ConfigError::new(
                    "EDGETHUMB_SALT",
                    format!("{kvar} is set but no salt is"),
                ))
            }
            (None, Some((svar, _))) => {
                return Err(ConfigError::new(
                    "EDGETHUMB_KEY",
                    format!("{svar} is set but no key is"),
                ))
            }
            (None, None) if allow_unsigned => Vec::new(),
            (None, None) => return Err(ConfigError::new(
                "EDGETHUMB_KEY",
                "not set (hex key; set EDGETHUMB_ALLOW_UNSIGNED=true to run without signatures)",
            )),
        };

        let mut cfg = Config::with_keys(keys);
        cfg.allow_unsigned = allow_unsigned;

        if let Some((var, v)) = get_alias("EDGETHUMB_SIGNATURE_SIZE", "IMGPROXY_SIGNATURE_SIZE") {
            let n: usize = parse_num(&var, &v)?;
            if !(1..=32).contains(&n) {
                return Err(ConfigError::new(&var, format!("`{v}` must be 1 to 32")));
            }
            cfg.signature_size = n;
        }

        if let Some(v) = get("EDGETHUMB_ALLOWED_SOURCES") {
            cfg.sources.allowed_prefixes = crate::request::source_policy::parse_allowed_sources(
                "EDGETHUMB_ALLOWED_SOURCES",
                &v,
            )?;
        }
        if let Some(b) = parse_bool(&get, "EDGETHUMB_ALLOW_PRIVATE_SOURCES")? {
            cfg.sources.allow_private = b;
        }
        if let Some(v) = get("EDGETHUMB_MAX_REDIRECTS") {
            cfg.sources.max_redirects = parse_num("EDGETHUMB_MAX_REDIRECTS", &v)?;
        }

        if let Some(v) = get("EDGETHUMB_MAX_SRC_BYTES") {
            cfg.fetch.max_bytes = parse_positive("EDGETHUMB_MAX_SRC_BYTES", &v)?;
        }
        if let Some(v) = get("EDGETHUMB_UPSTREAM_TIMEOUT_MS") {
            cfg.fetch.timeout =
                Duration::from_millis(parse_positive("EDGETHUMB_UPSTREAM_TIMEOUT_MS", &v)?);
        }
        let l = &mut cfg.limits;
        if let Some(v) = get("EDGETHUMB_MAX_SRC_PIXELS") {
            l.max_src_pixels = parse_positive("EDGETHUMB_MAX_SRC_PIXELS", &v)?;
        }
        if let Some(v) = get("EDGETHUMB_MAX_RESULT_DIMENSION") {
            l.max_result_dimension = parse_positive("EDGETHUMB_MAX_RESULT_DIMENSION", &v)?;
        }

        if let Some((var, v)) = get_alias(
            "EDGETHUMB_MAX_ANIMATION_FRAMES",
            "IMGPROXY_MAX_ANIMATION_FRAMES",
        ) {
            l.max_animation_frames = parse_positive(&var, &v)?;
        }
        if let Some(v) = get("EDGETHUMB_AVIF_MAX_PIXELS") {
            l.avif_max_pixels = parse_positive("EDGETHUMB_AVIF_MAX_PIXELS", &v)?;
        }
        if let Some(v) = get("EDGETHUMB_MAX_TRANSFORM_BYTES") {
            l.max_transform_bytes = parse_positive("EDGETHUMB_MAX_TRANSFORM_BYTES", &v)?;
        }
        if let Some(v) = get("EDGETHUMB_TRANSFORM_TIMEOUT_MS") {
            l.transform_timeout =
                Duration::from_millis(parse_positive("EDGETHUMB_TRANSFORM_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = get("EDGETHUMB_MAX_SOURCE_BYTES_IN_FLIGHT") {
            cfg.shedding.max_source_bytes_in_flight =
                parse_positive("EDGETHUMB_MAX_SOURCE_BYTES_IN_FLIGHT", &v)?;
        }
        if let Some(v) = get("EDGETHUMB_MAX_MISSES_IN_FLIGHT") {
            cfg.shedding.max_misses_in_flight =
                parse_positive("EDGETHUMB_MAX_MISSES_IN_FLIGHT", &v)?;
        }
        if let Some(v) = get("EDGETHUMB_TTL") {
            cfg.ttls.success = parse_num("EDGETHUMB_TTL", &v)?;
        }
        if let Some(v) = get("EDGETHUMB_NOT_FOUND_TTL") {
            cfg.ttls.not_found = parse_num("EDGETHUMB_NOT_FOUND_TTL", &v)?;
        }
        if let Some(v) = get("EDGETHUMB_UPSTREAM_ERROR_TTL") {
            cfg.ttls.upstream_error = parse_num("EDGETHUMB_UPSTREAM_ERROR_TTL", &v)?;
        }

        if let Some(v) = get("EDGETHUMB_AUTO_FORMATS") {
            cfg.auto_formats = parse_auto_formats(&v)?;
        }
        if let Some(v) = get("EDGETHUMB_QUALITY") {
            let q: u8 = parse_num("EDGETHUMB_QUALITY", &v)?;
            if !(1..=100).contains(&q) {
                return Err(ConfigError::new("EDGETHUMB_QUALITY", "must be 1 to 100"));
            }
            cfg.default_quality = q;
        }
        if let Some((var, v)) = get_alias("EDGETHUMB_FORMAT_QUALITY", "IMGPROXY_FORMAT_QUALITY") {
            cfg.format_quality = parse_format_quality(&var, &v)?;
        }
        if let Some(v) = get("EDGETHUMB_PRESETS") {
            cfg.presets = Presets::parse(&v)
                .map_err(|reason| ConfigError::new("EDGETHUMB_PRESETS", reason))?;
        }
        for var in ["IMGPROXY_ONLY_PRESETS", "EDGETHUMB_ONLY_PRESETS"] {
            if let Some(b) = parse_bool(&get, var)? {
                cfg.only_presets = b;
            }
        }
        for var in [
            "IMGPROXY_ENABLE_CLIENT_HINTS",
            "EDGETHUMB_ENABLE_CLIENT_HINTS",
        ] {
            if let Some(b) = parse_bool(&get, var)? {
                cfg.client_hints = b;
            }
        }
        if let Some((var, v)) = get_alias(
            "EDGETHUMB_SKIP_PROCESSING_FORMATS",
            "IMGPROXY_SKIP_PROCESSING_FORMATS",
        ) {
            for name in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let f = crate::request::options::parse_skippable(&var, name)
                    .map_err(|e| ConfigError::new(&var, e.to_string()))?;
                if !cfg.skip_processing.contains(&f) {
                    cfg.skip_processing.push(f);
                }
            }
        }
        if let Some(b) = parse_bool(&get, "EDGETHUMB_SVG_PASSTHROUGH")? {
            cfg.svg_passthrough = b;
        }
        if let Some(v) = get("EDGETHUMB_UPSTREAM_FAILURE_STATUS") {
            let s: u16 = parse_num("EDGETHUMB_UPSTREAM_FAILURE_STATUS", &v)?;
            if s != 424 && !(500..=599).contains(&s) {
                return Err(ConfigError::new(
                    "EDGETHUMB_UPSTREAM_FAILURE_STATUS",
                    "must be 424 or a 5xx status",
                ));
            }
            cfg.upstream_failure_status = http::StatusCode::from_u16(s).ok();
        }
        if let Some(v) = get("EDGETHUMB_BREAKER_FAILURES") {
            cfg.breaker.failures = parse_num("EDGETHUMB_BREAKER_FAILURES", &v)?;
        }
        if let Some(v) = get("EDGETHUMB_BREAKER_COOLDOWN") {
            cfg.breaker.cooldown =
                Duration::from_secs(parse_positive("EDGETHUMB_BREAKER_COOLDOWN", &v)?);
        }
        if let Some(v) = get("EDGETHUMB_RESULT_STORE_TIMEOUT_MS") {
            cfg.store_read_timeout =
                Duration::from_millis(parse_positive("EDGETHUMB_RESULT_STORE_TIMEOUT_MS", &v)?);
        }
        cfg.fallback = parse_fallback(&get)?;
        let image = parse_aux_image(
            get_alias("EDGETHUMB_WATERMARK_DATA", "IMGPROXY_WATERMARK_DATA"),
            get_alias("EDGETHUMB_WATERMARK_URL", "IMGPROXY_WATERMARK_URL"),
        )?;
        let opacity = match get_alias("EDGETHUMB_WATERMARK_OPACITY", "IMGPROXY_WATERMARK_OPACITY") {
            Some((var, v)) => v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|o| (0.0..=1.0).contains(o))
                .ok_or_else(|| ConfigError::new(&var, "must be between 0 and 1"))?,
            None => 1.0,
        };
        cfg.watermark = image.map(|image| Watermark { image, opacity });
        Ok(cfg)
    }
}

/// An image given as base64 (`data`) or by URL (`url`), each a variable's
/// name and value; not both.
fn parse_aux_image(
    data: Option<(String, String)>,
    url: Option<(String, String)>,
) -> Result<Option<AuxImage>, ConfigError> {
    use base64::Engine as _;
    Ok(Some(match (data, url) {
        (None, None) => return Ok(None),
        (Some((dvar, _)), Some((uvar, _))) => {
            return Err(ConfigError::new(
                &uvar,
                format!("set {dvar} or {uvar}, not both"),
            ))
        }
        (Some((var, data)), None) => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|e| ConfigError::new(&var, format!("not base64: {e}")))?;
            crate::pipeline::sniff::sniff(&raw)
                .map_err(|e| ConfigError::new(&var, format!("not an image we can decode: {e}")))?;
            AuxImage::Data(bytes::Bytes::from(raw))
        }
        (None, Some((var, u))) => {
            let url = url::Url::parse(u.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| ConfigError::new(&var, "must be an http(s) URL"))?;
            AuxImage::Url(url)
        }
    }))
}

fn parse_fallback(get: &impl Fn(&str) -> Option<String>) -> Result<Option<Fallback>, ConfigError> {
    let named = |var: &str| get(var).map(|v| (var.to_string(), v));
    let Some(image) = parse_aux_image(
        named("EDGETHUMB_FALLBACK_IMAGE_DATA"),
        named("EDGETHUMB_FALLBACK_IMAGE_URL"),
    )?
    else {
        return Ok(None);
    };
    let status = match get("EDGETHUMB_FALLBACK_IMAGE_HTTP_CODE") {
        Some(v) => {
            let code: u16 = parse_num("EDGETHUMB_FALLBACK_IMAGE_HTTP_CODE", &v)?;
            http::StatusCode::from_u16(code)
                .ok()
                .filter(|s| s.is_success() || s.is_client_error() || s.is_server_error())
                .ok_or_else(|| {
                    ConfigError::new("EDGETHUMB_FALLBACK_IMAGE_HTTP_CODE", "must be 200 to 599")
                })?
        }
        None => http::StatusCode::OK,
    };
    let ttl = match get("EDGETHUMB_FALLBACK_IMAGE_TTL") {
        Some(v) => Some(parse_num("EDGETHUMB_FALLBACK_IMAGE_TTL", &v)?),
        None => None,
    };
    Ok(Some(Fallback { image, status, ttl }))
}

fn parse_auto_formats(v: &str) -> Result<Vec<Format>, ConfigError> {
    let mut out = Vec::new();
    for name in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        // GIF is an output only when asked for, or kept for an animation.
        let f = Format::from_name(name)
            .filter(|f| *f != Format::Gif)
            .ok_or_else(|| {
                ConfigError::new(
                    "EDGETHUMB_AUTO_FORMATS",
                    format!("`{name}` is not an automatic output format (avif, webp, jpeg, png)"),
                )
            })?;
        if !out.contains(&f) {
            out.push(f);
        }
    }
    Ok(out)
}

/// `jpeg=70,webp=79`: each 1 to 100.
fn parse_format_quality(var: &str, v: &str) -> Result<Vec<(Format, u8)>, ConfigError> {
    let mut out: Vec<(Format, u8)> = Vec::new();
    for pair in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = |why: String| ConfigError::new(var, why);
        let (name, q) = pair
            .split_once('=')
            .ok_or_else(|| bad(format!("`{pair}` is not format=quality")))?;
        let format = Format::from_name(name.trim())
            .ok_or_else(|| bad(format!("`{name}` is not an output format")))?;
        let q: u8 = q
            .trim()
            .parse()
            .ok()
            .filter(|q| (1..=100).contains(q))
            .ok_or_else(|| bad(format!("`{q}` for {name} is not 1 to 100")))?;
        out.retain(|(f, _)| *f != format);
        out.push((format, q));
    }
    Ok(out)
}

fn parse_bool(
    get: &impl Fn(&str) -> Option<String>,
    var: &str,
) -> Result<Option<bool>, ConfigError> {
    match get(var) {
        None => Ok(None),
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" => Ok(Some(false)),
            _ => Err(ConfigError::new(var, format!("`{v}` is not true or false"))),
        },
    }
}

fn parse_num<T: std::str::FromStr>(var: &str, v: &str) -> Result<T, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| ConfigError::new(var, format!("`{v}` is not a valid number")))
}

fn parse_positive<T: std::str::FromStr + PartialOrd + Default>(
    var: &str,
    v: &str,
) -> Result<T, ConfigError> {
    let n: T = parse_num(var, v)?;
    if n <= T::default() {
        return Err(ConfigError::new(var, format!("`{v}` must be above 0")));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let owned: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(move |k| owned.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn a_key_is_required_unless_unsigned_is_allowed() {
        assert_eq!(load(&[]).unwrap_err().var, "EDGETHUMB_KEY");
        assert!(load(&[("EDGETHUMB_ALLOW_UNSIGNED", "true")]).is_ok());
    }

    #[test]
    fn avif_is_opt_in_and_bounded() {
        let k = ("EDGETHUMB_KEY", DEV_KEY_HEX);
        let s = ("EDGETHUMB_SALT", DEV_SALT_HEX);
        let default = load(&[k, s]).unwrap();
        assert!(!default.auto_formats.contains(&Format::Avif));
        assert_eq!(default.limits.avif_max_pixels, 500_000);
        let on = load(&[
            ("EDGETHUMB_AUTO_FORMATS", "avif, webp,avif"),
            ("EDGETHUMB_AVIF_MAX_PIXELS", "250000"),
            k,
            s,
        ])
        .unwrap();
        assert_eq!(on.auto_formats, vec![Format::Avif, Format::Webp]);
        assert_eq!(on.limits.avif_max_pixels, 250_000);
    }

    #[test]
    fn format_quality_by_either_name() {
        let k = ("EDGETHUMB_KEY", DEV_KEY_HEX);
        let s = ("EDGETHUMB_SALT", DEV_SALT_HEX);
        let cfg = load(&[
            ("EDGETHUMB_FORMAT_QUALITY", "jpeg=70, webp=79,jpg=60"),
            k,
            s,
        ])
        .unwrap();
        assert_eq!(
            cfg.format_quality,
            vec![(Format::Webp, 79), (Format::Jpeg, 60)]
        );
        let cfg = load(&[("IMGPROXY_FORMAT_QUALITY", "avif=63"), k, s]).unwrap();
        assert_eq!(cfg.format_quality, vec![(Format::Avif, 63)]);
        // The default names AVIF only; a setting replaces it whole, as
        // imgproxy's does.
        let cfg = load(&[k, s]).unwrap();
        assert_eq!(
            cfg.format_quality,
            vec![(Format::Avif, DEFAULT_AVIF_QUALITY)]
        );
    }

    #[test]
    fn skip_processing_formats() {
        let k = ("EDGETHUMB_KEY", DEV_KEY_HEX);
        let s = ("EDGETHUMB_SALT", DEV_SALT_HEX);
        let cfg = load(&[("IMGPROXY_SKIP_PROCESSING_FORMATS", "gif, png,gif"), k, s]).unwrap();
        assert_eq!(cfg.skip_processing, [Format::Gif, Format::Png]);
    }

    #[test]
    fn only_presets_by_either_name() {
        let k = ("EDGETHUMB_KEY", DEV_KEY_HEX);
        let s = ("EDGETHUMB_SALT", DEV_SALT_HEX);
        assert!(!load(&[k, s]).unwrap().only_presets);
        assert!(
            load(&[("IMGPROXY_ONLY_PRESETS", "true"), k, s])
                .unwrap()
                .only_presets
        );
        let both = [
            ("IMGPROXY_ONLY_PRESETS", "true"),
            ("EDGETHUMB_ONLY_PRESETS", "false"),
            k,
            s,
        ];
        assert!(!load(&both).unwrap().only_presets);
    }

    #[test]
    fn watermark_by_either_name() {
        use base64::Engine as _;
        let k = ("EDGETHUMB_KEY", DEV_KEY_HEX);
        let s = ("EDGETHUMB_SALT", DEV_SALT_HEX);
        let gif = base64::engine::general_purpose::STANDARD.encode(b"GIF89a\x01\x00\x01\x00");
        let c = load(&[("IMGPROXY_WATERMARK_DATA", &gif), k, s]).unwrap();
        let wm = c.watermark.unwrap();
        assert!(matches!(wm.image, AuxImage::Data(_)));
        assert_eq!(wm.opacity, 1.0);
        let c = load(&[
            ("EDGETHUMB_WATERMARK_URL", "https://cdn.example/mark.png"),
            ("IMGPROXY_WATERMARK_OPACITY", "0.4"),
            k,
            s,
        ])
        .unwrap();
        assert_eq!(c.watermark.unwrap().opacity, 0.4);
        let both = [
            ("EDGETHUMB_WATERMARK_DATA", gif.as_str()),
            ("EDGETHUMB_WATERMARK_URL", "https://cdn.example/mark.png"),
            k,
            s,
        ];
        assert_eq!(load(&both).unwrap_err().var, "EDGETHUMB_WATERMARK_URL");
        let e = load(&[("EDGETHUMB_WATERMARK_OPACITY", "1.5"), k, s]).unwrap_err();
        assert_eq!(e.var, "EDGETHUMB_WATERMARK_OPACITY");
        let e = load(&[("EDGETHUMB_WATERMARK_DATA", "bm90IGFuIGltYWdl"), k, s]).unwrap_err();
        assert_eq!(e.var, "EDGETHUMB_WATERMARK_DATA");
    }

    #[test]
    fn client_hints_by_either_name() {
        let k = ("EDGETHUMB_KEY", DEV_KEY_HEX);
        let s = ("EDGETHUMB_SALT", DEV_SALT_HEX);
        assert!(!load(&[k, s]).unwrap().client_hints);
        let on = load(&[("IMGPROXY_ENABLE_CLIENT_HINTS", "1"), k, s]).unwrap();
        assert!(on.client_hints);
        let off = [
            ("IMGPROXY_ENABLE_CLIENT_HINTS", "true"),
            ("EDGETHUMB_ENABLE_CLIENT_HINTS", "false"),
            k,
            s,
        ];
        assert!(!load(&off).unwrap().client_hints);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let k = ("EDGETHUMB_KEY", DEV_KEY_HEX);
        let s = ("EDGETHUMB_SALT", DEV_SALT_HEX);
        for (var, val) in [
            ("EDGETHUMB_KEY", "zz"),
            ("EDGETHUMB_SIGNATURE_SIZE", "33"),
            ("EDGETHUMB_MAX_SRC_BYTES", "0"),
            ("EDGETHUMB_MAX_MISSES_IN_FLIGHT", "0"),
            ("EDGETHUMB_MAX_SOURCE_BYTES_IN_FLIGHT", "lots"),
            ("EDGETHUMB_UPSTREAM_TIMEOUT_MS", "soon"),
            ("EDGETHUMB_RESULT_STORE_TIMEOUT_MS", "0"),
            ("EDGETHUMB_AUTO_FORMATS", "webp,heic"),
            ("EDGETHUMB_AVIF_MAX_PIXELS", "0"),
            ("EDGETHUMB_ALLOWED_SOURCES", "https://example.com"),
            ("EDGETHUMB_ALLOW_PRIVATE_SOURCES", "maybe"),
            ("EDGETHUMB_PRESETS", "thumb"),
            ("EDGETHUMB_FORMAT_QUALITY", "jpeg=0"),
            ("EDGETHUMB_FORMAT_QUALITY", "webp:79"),
            ("IMGPROXY_FORMAT_QUALITY", "heic=50"),
            ("EDGETHUMB_SKIP_PROCESSING_FORMATS", "jpg,svg"),
        ] {
            let err = load(&[(var, val), k, s]).unwrap_err();
            assert_eq!(err.var, var, "{var}={val}: {err}");
        }
    }

    #[test]
    fn imgproxy_names_are_aliases() {
        let cfg = load(&[
            ("IMGPROXY_KEY", DEV_KEY_HEX),
            ("IMGPROXY_SALT", DEV_SALT_HEX),
            ("IMGPROXY_SIGNATURE_SIZE", "8"),
        ])
        .unwrap();
        assert_eq!(cfg.keys.len(), 1);
        assert_eq!(cfg.signature_size, 8);
    }

    #[test]
    fn media_api_switches() {
        let base = [("EDGETHUMB_ALLOW_UNSIGNED", "true")];
        let c = load(&base).unwrap();
        assert!(!c.svg_passthrough);
        assert_eq!(c.upstream_failure_status, None);
        let c = load(&[
            base[0],
            ("EDGETHUMB_SVG_PASSTHROUGH", "true"),
            ("EDGETHUMB_UPSTREAM_FAILURE_STATUS", "424"),
        ])
        .unwrap();
        assert!(c.svg_passthrough);
        assert_eq!(
            c.upstream_failure_status,
            Some(http::StatusCode::FAILED_DEPENDENCY)
        );
        let e = load(&[base[0], ("EDGETHUMB_UPSTREAM_FAILURE_STATUS", "404")]).unwrap_err();
        assert_eq!(e.var, "EDGETHUMB_UPSTREAM_FAILURE_STATUS");
    }

    #[test]
    fn fallback_images_are_checked_at_load() {
        let base = ("EDGETHUMB_ALLOW_UNSIGNED", "true");
        // A 1x1 GIF.
        let gif = "R0lGODlhAQABAAAAACw=";
        let c = load(&[base, ("EDGETHUMB_FALLBACK_IMAGE_DATA", gif)]).unwrap();
        let fb = c.fallback.unwrap();
        assert_eq!((fb.status.as_u16(), fb.ttl), (200, None));
        let c = load(&[
            base,
            ("EDGETHUMB_FALLBACK_IMAGE_URL", "https://cdn.example/p.png"),
            ("EDGETHUMB_FALLBACK_IMAGE_TTL", "60"),
        ])
        .unwrap();
        let fb = c.fallback.unwrap();
        assert!(matches!(fb.image, AuxImage::Url(_)));
        assert_eq!(fb.ttl, Some(60));
        let e = load(&[base, ("EDGETHUMB_FALLBACK_IMAGE_URL", "ftp://x/p.png")]).unwrap_err();
        assert_eq!(e.var, "EDGETHUMB_FALLBACK_IMAGE_URL");
        for (var, value) in [
            ("EDGETHUMB_FALLBACK_IMAGE_DATA", "%%%"),
            ("EDGETHUMB_FALLBACK_IMAGE_DATA", "aGVsbG8="),
            ("EDGETHUMB_FALLBACK_IMAGE_HTTP_CODE", "99"),
            (
                "EDGETHUMB_FALLBACK_IMAGE_URL",
                "https://cdn.example/placeholder.png",
            ),
        ] {
            let mut vars = vec![base, ("EDGETHUMB_FALLBACK_IMAGE_DATA", gif)];
            vars.retain(|(k, _)| *k != var);
            vars.push((var, value));
            assert_eq!(load(&vars).unwrap_err().var, var, "{var}={value}");
        }
    }

    #[test]
    fn the_upstream_failure_status_covers_upstream_failures_only() {
        use crate::error::Error;
        let s = Some(http::StatusCode::FAILED_DEPENDENCY);
        assert_eq!(Error::UpstreamStatus(500).status_with(s).as_u16(), 424);
        assert_eq!(Error::UpstreamTimeout(4000).status_with(s).as_u16(), 424);
        assert_eq!(Error::UpstreamTimeout(4000).status_with(None).as_u16(), 504);
        assert_eq!(Error::UpstreamNotFound(404).status_with(s).as_u16(), 404);
        assert_eq!(Error::NotAnImage.status_with(s).as_u16(), 415);
    }
}
