//! Runtime dispatch to x86-64-v3 (AVX2, FMA, BMI1/2, LZCNT, MOVBE, and
//! POPCNT from v2, which LLVM does not infer from the others).
//!
//! The codecs' inner loops are plain lane-wise Rust, which LLVM turns into
//! whatever SIMD the target allows. A portable x86-64 binary may assume
//! only SSE2, which has no 32-bit multiply or min/max, so the IDCTs, the
//! colour conversion and the encoder's transform ran at half width or
//! scalar. The hot functions are therefore compiled twice, and the v3 copy
//! runs when the CPU has it (checked once; std caches the answer), as
//! libjpeg-turbo picks its AVX2 code at run time. Output is the same bytes
//! either way: all of it is integer arithmetic but the encoder's DCT,
//! whose float operations are the same ones in the same order (no FMA
//! contraction: Rust never fuses on its own).
//!
//! Elsewhere (wasm is built with simd128, aarch64 always has NEON) there
//! is one copy.

/// A CPU check asked once, then one load: 0 not yet asked, 1 no, 2 yes.
#[cfg(target_arch = "x86_64")]
struct Found(std::sync::atomic::AtomicU8);

#[cfg(target_arch = "x86_64")]
impl Found {
    const fn new() -> Found {
        Found(std::sync::atomic::AtomicU8::new(0))
    }

    #[inline(always)]
    fn get(&self, check: fn() -> bool) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        match self.0.load(Relaxed) {
            0 => {
                let yes = check();
                self.0.store(if yes { 2 } else { 1 }, Relaxed);
                yes
            }
            found => found == 2,
        }
    }
}

/// Whether the v3 copies may run here.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn v3() -> bool {
    #[cfg(test)]
    if tests::BASELINE.with(std::cell::Cell::get) {
        return false;
    }
    static FOUND: Found = Found::new();
    FOUND.get(detect)
}

#[cfg(target_arch = "x86_64")]
#[cold]
fn detect() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("bmi1")
        && std::arch::is_x86_feature_detected!("bmi2")
        && std::arch::is_x86_feature_detected!("lzcnt")
        && std::arch::is_x86_feature_detected!("movbe")
        && std::arch::is_x86_feature_detected!("popcnt")
}

/// Whether the v3 copies may run and use PDEP, which AMD CPUs before Zen 3
/// (and Hygon's) run in microcode, one step a set bit: there a PDEP of a
/// dense mask costs more than the loop it replaces.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn fast_pdep() -> bool {
    static FOUND: Found = Found::new();
    v3() && FOUND.get(|| !microcoded_pdep())
}

#[cfg(target_arch = "x86_64")]
#[cold]
fn microcoded_pdep() -> bool {
    use std::arch::x86_64::__cpuid;
    let vendor = __cpuid(0);
    let id = [vendor.ebx, vendor.edx, vendor.ecx].map(u32::to_le_bytes);
    slow_pdep(id.as_flattened(), __cpuid(1).eax)
}

/// By CPUID's vendor string and leaf 1's EAX: AMD's (and Hygon's) families
/// before 0x19 (Zen 3) run PDEP in microcode.
#[cfg(target_arch = "x86_64")]
fn slow_pdep(vendor: &[u8], signature: u32) -> bool {
    let base = (signature >> 8) & 0xF;
    let family = if base == 0xF {
        base + ((signature >> 20) & 0xFF)
    } else {
        base
    };
    matches!(vendor, b"AuthenticAMD" | b"HygonGenuine") && family < 0x19
}

/// `v3_copy! { fn name_v3(..) { name_body(..) } }`: the function compiled
/// for the features [`detect`] checks, on x86-64 only. The list is written
/// here once, so no copy can ask for a feature `v3()` did not find.
macro_rules! v3_copy {
    ($(#[$meta:meta])* fn $($rest:tt)*) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,movbe,popcnt")]
        $(#[$meta])*
        fn $($rest)*
    };
}
pub(crate) use v3_copy;

/// `dispatch!(v3_call, call)`: on x86-64 with v3, `v3_call` (a
/// [`v3_copy!`] whose body is `call`'s, inlined); otherwise `call`.
macro_rules! dispatch {
    ($v3:expr, $base:expr) => {{
        #[cfg(target_arch = "x86_64")]
        if $crate::cpu::v3() {
            // SAFETY: `v3()` found every feature the v3 copy is compiled
            // for on this CPU.
            return unsafe { $v3 };
        }
        $base
    }};
}
pub(crate) use dispatch;

#[cfg(test)]
#[cfg(target_arch = "x86_64")]
mod tests {
    use std::cell::Cell;

    use crate::jpeg::{self, Limits};
    use crate::jpeg_encode::{encode_rgb, Mode};
    use crate::never;

    thread_local! {
        /// Set: this thread runs the baseline copies, whatever the CPU.
        pub static BASELINE: Cell<bool> = const { Cell::new(false) };
    }

    fn baseline<R>(f: impl FnOnce() -> R) -> R {
        BASELINE.with(|b| b.set(true));
        let r = f();
        BASELINE.with(|b| b.set(false));
        r
    }

    /// A source with detail everywhere, so every AC path runs.
    fn source(progressive: bool, sampling: jpeg_encoder::SamplingFactor) -> Vec<u8> {
        let (w, h) = (203u16, 141u16);
        let mut seed = 0x2545_f491u32;
        let pixels: Vec<u8> = (0..w as u32 * h as u32 * 3)
            .map(|i| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let (x, y) = ((i / 3) % w as u32, (i / 3) / w as u32);
                ((x * 3 + y * (i % 3 + 1)) as u8).wrapping_add((seed >> 27) as u8)
            })
            .collect();
        let mut bytes = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut bytes, 90);
        enc.set_progressive(progressive);
        enc.set_sampling_factor(sampling);
        enc.encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        bytes
    }

    /// Decodes at every scale and encodes each result both ways.
    fn run(bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for n in [1, 2, 4, 8] {
            let img = jpeg::decode(bytes, n, &Limits::default(), &never)
                .unwrap()
                .unwrap();
            for mode in [Mode::Baseline, Mode::Progressive] {
                let (w, h) = img.dimensions();
                out.push(encode_rgb(img.as_raw(), w, h, 80, mode, Vec::new()).unwrap());
            }
            out.push(img.into_raw());
        }
        out
    }

    #[test]
    fn pdep_is_slow_on_amd_before_zen_3_only() {
        use super::slow_pdep;
        // Leaf 1 EAX of: Zen 2 (EPYC 7002), Hygon Dhyana, Zen 3 (EPYC
        // 7003), Zen 5, an Intel Ice Lake.
        assert!(slow_pdep(b"AuthenticAMD", 0x0083_0F10));
        assert!(slow_pdep(b"HygonGenuine", 0x0090_0F02));
        assert!(!slow_pdep(b"AuthenticAMD", 0x00A0_0F11));
        assert!(!slow_pdep(b"AuthenticAMD", 0x00B0_0F20));
        assert!(!slow_pdep(b"GenuineIntel", 0x0006_06A6));
    }

    #[test]
    fn the_v3_copies_give_the_baselines_bytes() {
        if !super::v3() {
            eprintln!("no x86-64-v3 on this CPU: only the baseline copies run here");
            return;
        }
        use jpeg_encoder::SamplingFactor as S;
        for progressive in [false, true] {
            for sampling in [S::R_4_2_0, S::R_4_4_4, S::R_4_2_2, S::R_4_1_1] {
                let bytes = source(progressive, sampling);
                assert_eq!(
                    run(&bytes),
                    baseline(|| run(&bytes)),
                    "progressive {progressive}, {sampling:?}"
                );
            }
        }
    }
}
