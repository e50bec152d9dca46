//! The transform's limits, handed to every decoder: what one source may
//! cost in pixels, memory and time, and how large a result may be.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Limits {
    /// Checked against every frame an animation is made from, summed.
    pub max_src_pixels: u64,
    /// Frames of an animated source that are made; 1 (imgproxy's default)
    /// makes only the first, as a still.
    pub max_animation_frames: u32,
    /// Largest width or height of a result, so `enlarge` cannot allocate
    /// unbounded memory.
    pub max_result_dimension: u32,
    /// Largest estimated peak memory of one transform, source included
    /// ([`memory`](super::memory)). Sized for a Worker isolate's 128 MB.
    pub max_transform_bytes: u64,
    /// Largest output, in pixels, encoded as AVIF; a larger one takes the
    /// next choice ([`Negotiated::without_avif`](crate::request::
    /// negotiate::Negotiated::without_avif)), since AVIF's encode costs
    /// several times WebP's (README, "AVIF").
    pub avif_max_pixels: u64,
    /// Longest one transform may run ([`deadline`](super::deadline)); past
    /// it, 413.
    pub transform_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_src_pixels: 50_000_000,
            max_animation_frames: 1,
            max_result_dimension: 8192,
            max_transform_bytes: 96 * 1024 * 1024,
            // An 880x550 output: libaom takes about 0.2 s natively and 0.28
            // under V8 (WebP: 0.05-0.08), and more above, per miss.
            avif_max_pixels: 500_000,
            // Far above real images (a 100 MP JPEG takes about 0.2 s
            // here), so only hostile sources meet it.
            transform_timeout: Duration::from_millis(10_000),
        }
    }
}
