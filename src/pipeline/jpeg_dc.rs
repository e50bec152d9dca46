//! Progressive JPEG at 1/8 scale from the DC coefficients alone.
//!
//! At 1/8 each 8×8 block becomes one pixel, its mean, which is the DC
//! coefficient. A progressive JPEG sends DC in scans of its own (spectral
//! selection 0..0, then refinement bits), so every AC scan can be skipped
//! whole, without Huffman decoding it: that is most of the file and most of
//! the decode time. Only one coefficient a block is kept (2 bytes instead of
//! the 128 a full progressive decoder holds until the last scan).
//!
//! Covers Huffman-coded progressive frames (SOF2) with 8-bit samples and one
//! (grey) or three (YCbCr or RGB) components. For anything else
//! [`decode`] returns `Ok(None)` and the caller uses the full decoder.
//! Every length and index comes from the file, so each is checked; data
//! that ends early decodes as zeros, as libjpeg does with a warning.

use image::RgbImage;

use crate::error::Error;

/// Decodes `bytes` at 1/8 scale (`ceil(w/8)` × `ceil(h/8)`), or `Ok(None)`
/// if this file is not one this path covers.
pub fn decode(bytes: &[u8]) -> Result<Option<RgbImage>, Error> {
    if bytes.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err(corrupt("no JPEG start marker"));
    }
    let mut st = State::default();
    let mut pos = 2;
    // Without an EOI, what arrived is used.
    while let Some((marker, at)) = next_marker(bytes, pos) {
        pos = at;
        match marker {
            0xD9 => break,
            0xD8 | 0xD0..=0xD7 | 0x01 => continue,
            _ => {}
        }
        let len = match bytes.get(pos..pos + 2) {
            Some(b) => u16::from_be_bytes([b[0], b[1]]) as usize,
            None => break,
        };
        if len < 2 {
            return Err(corrupt("segment length under 2"));
        }
        let seg = bytes
            .get(pos + 2..pos + len)
            .ok_or_else(|| corrupt("segment runs past the end"))?;
        pos += len;
        match marker {
            0xDB => st.quant_tables(seg)?,
            0xC4 => st.huffman_tables(seg)?,
            0xDD => {
                let b = seg.get(..2).ok_or_else(|| corrupt("short DRI"))?;
                st.restart_interval = u16::from_be_bytes([b[0], b[1]]) as u32;
            }
            0xEE if seg.starts_with(b"Adobe") => st.adobe_transform = seg.get(11).copied(),
            0xC2 => {
                if st.frame.is_some() {
                    return Err(corrupt("two frame headers"));
                }
                match Frame::parse(seg)? {
                    Some(f) => st.frame = Some(f),
                    None => return Ok(None),
                }
            }
            // Any other frame type (baseline, arithmetic, lossless…).
            0xC0 | 0xC1 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return Ok(None),
            0xDA => pos = st.scan(seg, bytes, pos)?,
            _ => {}
        }
    }
    let frame = st
        .frame
        .as_ref()
        .ok_or_else(|| corrupt("no frame header"))?;
    frame.to_rgb(&st).map(Some)
}

fn corrupt(what: &str) -> Error {
    Error::Decode(format!("progressive JPEG: {what}"))
}

/// Finds the next marker at or after `pos`: its code and the index just
/// past it. Skips entropy-coded bytes, stuffed `FF 00` and fill `FF`s.
fn next_marker(bytes: &[u8], mut pos: usize) -> Option<(u8, usize)> {
    while pos + 1 < bytes.len() {
        if bytes[pos] != 0xFF {
            pos += 1;
            continue;
        }
        let code = bytes[pos + 1];
        match code {
            0x00 | 0xFF => pos += 1,
            _ => return Some((code, pos + 2)),
        }
    }
    None
}

/// The same, but RSTn markers inside a scan are skipped too: where the
/// entropy-coded data of a scan ends.
fn end_of_scan(bytes: &[u8], mut pos: usize) -> usize {
    while let Some((code, at)) = next_marker(bytes, pos) {
        if (0xD0..=0xD7).contains(&code) {
            pos = at;
            continue;
        }
        return at - 2;
    }
    bytes.len()
}

#[derive(Default)]
struct State {
    /// DC quantiser of each table (the first entry of the table).
    quant: [Option<u16>; 4],
    dc_tables: [Option<Huffman>; 4],
    restart_interval: u32,
    adobe_transform: Option<u8>,
    frame: Option<Frame>,
}

impl State {
    fn quant_tables(&mut self, mut seg: &[u8]) -> Result<(), Error> {
        while let Some((&pq_tq, rest)) = seg.split_first() {
            let (precision, id) = (pq_tq >> 4, (pq_tq & 0x0F) as usize);
            let size = if precision == 0 { 64 } else { 128 };
            let table = rest.get(..size).ok_or_else(|| corrupt("short DQT"))?;
            let slot = self
                .quant
                .get_mut(id)
                .ok_or_else(|| corrupt("quantisation table id over 3"))?;
            *slot = Some(if precision == 0 {
                table[0] as u16
            } else {
                u16::from_be_bytes([table[0], table[1]])
            });
            seg = &rest[size..];
        }
        Ok(())
    }

    fn huffman_tables(&mut self, mut seg: &[u8]) -> Result<(), Error> {
        while let Some((&tc_th, rest)) = seg.split_first() {
            let (class, id) = (tc_th >> 4, (tc_th & 0x0F) as usize);
            let counts: [u8; 16] = rest
                .get(..16)
                .and_then(|c| c.try_into().ok())
                .ok_or_else(|| corrupt("short DHT"))?;
            let total: usize = counts.iter().map(|&c| c as usize).sum();
            let symbols = rest
                .get(16..16 + total)
                .ok_or_else(|| corrupt("short DHT"))?;
            if id > 3 {
                return Err(corrupt("Huffman table id over 3"));
            }
            if class == 0 {
                self.dc_tables[id] = Some(Huffman::new(&counts, symbols)?);
            }
            seg = &rest[16 + total..];
        }
        Ok(())
    }

    /// Decodes one scan if it carries DC, skips it otherwise. `data` is
    /// where its entropy-coded bytes start; returns where they end.
    fn scan(&mut self, seg: &[u8], bytes: &[u8], data: usize) -> Result<usize, Error> {
        let frame = self
            .frame
            .as_mut()
            .ok_or_else(|| corrupt("scan before the frame header"))?;
        let count = *seg.first().ok_or_else(|| corrupt("short SOS"))? as usize;
        let head = seg
            .get(1..1 + 2 * count + 3)
            .ok_or_else(|| corrupt("short SOS"))?;
        let (ss, ah_al) = (head[2 * count], head[2 * count + 2]);
        let end = end_of_scan(bytes, data);
        if ss != 0 {
            return Ok(end); // An AC scan: not needed at 1/8.
        }
        if count == 0 || count > frame.components.len() {
            return Err(corrupt("bad scan component count"));
        }
        let (ah, al) = (ah_al >> 4, ah_al & 0x0F);
        if al > 13 {
            return Err(corrupt("bad successive approximation"));
        }
        let mut members = Vec::with_capacity(count);
        for pair in head[..2 * count].chunks_exact(2) {
            let index = frame
                .components
                .iter()
                .position(|c| c.id == pair[0])
                .ok_or_else(|| corrupt("scan names an unknown component"))?;
            let table = (pair[1] >> 4) as usize;
            let huffman = if ah == 0 {
                Some(
                    self.dc_tables
                        .get(table)
                        .and_then(|t| t.as_ref())
                        .ok_or_else(|| corrupt("scan uses an undefined DC table"))?,
                )
            } else {
                None
            };
            members.push((index, huffman));
        }
        let mut reader = BitReader::new(&bytes[data..end]);
        let mut predictors = vec![0i32; count];
        let interleaved = count > 1;
        // Units: MCUs when interleaved, single blocks otherwise.
        let (units_x, units_y) = if interleaved {
            (frame.mcus_x, frame.mcus_y)
        } else {
            let c = &frame.components[members[0].0];
            (c.blocks_w, c.blocks_h)
        };
        let mut unit = 0u32;
        for uy in 0..units_y {
            for ux in 0..units_x {
                if self.restart_interval > 0
                    && unit > 0
                    && unit.is_multiple_of(self.restart_interval)
                {
                    reader.restart();
                    predictors.iter_mut().for_each(|p| *p = 0);
                }
                unit += 1;
                for (m, &(index, huffman)) in members.iter().enumerate() {
                    let c = &mut frame.components[index];
                    let (bw, bh) = if interleaved {
                        (c.h as u32, c.v as u32)
                    } else {
                        (1, 1)
                    };
                    for by in 0..bh {
                        for bx in 0..bw {
                            let (x, y) = (ux * bw + bx, uy * bh + by);
                            let i = y as usize * c.stride + x as usize;
                            let Some(coef) = c.dc.get_mut(i) else {
                                return Err(corrupt("block outside the frame"));
                            };
                            match huffman {
                                Some(h) => {
                                    let size = h.decode(&mut reader)?;
                                    if size > 11 {
                                        return Err(corrupt("DC difference over 11 bits"));
                                    }
                                    let diff = reader.receive_extend(size);
                                    predictors[m] = predictors[m].wrapping_add(diff);
                                    let v = predictors[m].wrapping_shl(al as u32);
                                    *coef = v.clamp(i16::MIN as i32, i16::MAX as i32) as i16;
                                }
                                None => {
                                    if reader.bit() == 1 {
                                        *coef |= 1 << al;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(end)
    }
}

struct Frame {
    width: u32,
    height: u32,
    components: Vec<Component>,
    hmax: u8,
    vmax: u8,
    mcus_x: u32,
    mcus_y: u32,
}

struct Component {
    id: u8,
    h: u8,
    v: u8,
    quant: usize,
    /// Blocks that hold image data (a non-interleaved scan covers these).
    blocks_w: u32,
    blocks_h: u32,
    /// Blocks a row, padded to whole MCUs.
    stride: usize,
    dc: Vec<i16>,
}

impl Frame {
    /// `Ok(None)` for frames this path does not cover.
    fn parse(seg: &[u8]) -> Result<Option<Frame>, Error> {
        let head = seg.get(..6).ok_or_else(|| corrupt("short frame header"))?;
        let precision = head[0];
        let height = u16::from_be_bytes([head[1], head[2]]) as u32;
        let width = u16::from_be_bytes([head[3], head[4]]) as u32;
        let count = head[5] as usize;
        if precision != 8 || !(count == 1 || count == 3) || height == 0 || width == 0 {
            return Ok(None);
        }
        let specs = seg
            .get(6..6 + 3 * count)
            .ok_or_else(|| corrupt("short frame header"))?;
        let mut components = Vec::with_capacity(count);
        for s in specs.chunks_exact(3) {
            let (h, v) = (s[1] >> 4, s[1] & 0x0F);
            if !(1..=4).contains(&h) || !(1..=4).contains(&v) || s[2] > 3 {
                return Err(corrupt("bad component sampling or table"));
            }
            components.push(Component {
                id: s[0],
                h,
                v,
                quant: s[2] as usize,
                blocks_w: 0,
                blocks_h: 0,
                stride: 0,
                dc: Vec::new(),
            });
        }
        let hmax = components.iter().map(|c| c.h).max().unwrap_or(1);
        let vmax = components.iter().map(|c| c.v).max().unwrap_or(1);
        let mcus_x = width.div_ceil(8 * hmax as u32);
        let mcus_y = height.div_ceil(8 * vmax as u32);
        for c in &mut components {
            let comp_w = (width * c.h as u32).div_ceil(hmax as u32);
            let comp_h = (height * c.v as u32).div_ceil(vmax as u32);
            c.blocks_w = comp_w.div_ceil(8);
            c.blocks_h = comp_h.div_ceil(8);
            c.stride = (mcus_x * c.h as u32) as usize;
            let rows = (mcus_y * c.v as u32) as usize;
            c.dc = vec![0; c.stride * rows];
        }
        Ok(Some(Frame {
            width,
            height,
            components,
            hmax,
            vmax,
            mcus_x,
            mcus_y,
        }))
    }

    fn to_rgb(&self, st: &State) -> Result<RgbImage, Error> {
        let (w, h) = (self.width.div_ceil(8), self.height.div_ceil(8));
        // Block means, as 8-bit samples: the DC coefficient dequantised,
        // divided by 8 (the DCT's scale), level-shifted by 128.
        let mut planes = Vec::with_capacity(self.components.len());
        for c in &self.components {
            let q = st.quant[c.quant].ok_or_else(|| corrupt("component uses an undefined table"))?
                as i32;
            let plane: Vec<u8> =
                c.dc.iter()
                    .map(|&d| ((d as i32 * q + 4).div_euclid(8) + 128).clamp(0, 255) as u8)
                    .collect();
            planes.push(plane);
        }
        let rgb_ids = self.components.iter().map(|c| c.id).eq(*b"RGB");
        let is_rgb = match st.adobe_transform {
            Some(t) => t == 0,
            None => rgb_ids,
        };
        let mut out = RgbImage::new(w, h);
        // Subsampled (chroma) planes are upsampled bilinearly between
        // sample centres, like libjpeg's "fancy" upsampling; full-size
        // planes are read directly.
        let taps = |len: u32, factor: u8, max: u8, valid: u32| -> Vec<(usize, usize, f32)> {
            (0..len)
                .map(|i| {
                    if factor == max {
                        return (i as usize, i as usize, 0.0);
                    }
                    let last = valid.saturating_sub(1) as f32;
                    let f = ((i as f32 + 0.5) * factor as f32 / max as f32 - 0.5).clamp(0.0, last);
                    let i0 = f.floor();
                    (i0 as usize, (i0 + 1.0).min(last) as usize, f - i0)
                })
                .collect()
        };
        let grid: Vec<_> = self
            .components
            .iter()
            .map(|c| {
                (
                    taps(w, c.h, self.hmax, c.blocks_w),
                    taps(h, c.v, self.vmax, c.blocks_h),
                )
            })
            .collect();
        let sample = |ci: usize, x: u32, y: u32| {
            let (c, plane) = (&self.components[ci], &planes[ci]);
            let ((x0, x1, tx), (y0, y1, ty)) = (grid[ci].0[x as usize], grid[ci].1[y as usize]);
            let at = |xx: usize, yy: usize| plane[yy * c.stride + xx] as f32;
            let top = at(x0, y0) + (at(x1, y0) - at(x0, y0)) * tx;
            let bottom = at(x0, y1) + (at(x1, y1) - at(x0, y1)) * tx;
            (top + (bottom - top) * ty).round() as u8
        };
        for (x, y, px) in out.enumerate_pixels_mut() {
            px.0 = if self.components.len() == 1 {
                let l = sample(0, x, y);
                [l, l, l]
            } else if is_rgb {
                [sample(0, x, y), sample(1, x, y), sample(2, x, y)]
            } else {
                ycbcr_to_rgb(sample(0, x, y), sample(1, x, y), sample(2, x, y))
            };
        }
        Ok(out)
    }
}

/// JFIF's YCbCr to RGB.
fn ycbcr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let (y, cb, cr) = (y as f32, cb as f32 - 128.0, cr as f32 - 128.0);
    let c = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    [
        c(y + 1.402 * cr),
        c(y - 0.344_136 * cb - 0.714_136 * cr),
        c(y + 1.772 * cb),
    ]
}

/// A canonical Huffman table, decoded bit by bit (JPEG F.2.2.3): fine for
/// DC, where there is one symbol a block.
struct Huffman {
    /// Largest code of each length (1..=16), or -1.
    max_code: [i32; 17],
    /// Index into `symbols` of the first code of each length, minus it.
    offset: [i32; 17],
    symbols: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8; 16], symbols: &[u8]) -> Result<Huffman, Error> {
        let mut max_code = [-1i32; 17];
        let mut offset = [0i32; 17];
        let (mut code, mut k) = (0i32, 0i32);
        for len in 1..=16 {
            let n = counts[len - 1] as i32;
            if n > 0 {
                offset[len] = k - code;
                code += n;
                k += n;
                max_code[len] = code - 1;
                if code > (1 << len) {
                    return Err(corrupt("Huffman table has too many codes"));
                }
            }
            code <<= 1;
        }
        Ok(Huffman {
            max_code,
            offset,
            symbols: symbols.to_vec(),
        })
    }

    fn decode(&self, r: &mut BitReader) -> Result<u8, Error> {
        let mut code = 0i32;
        for len in 1..=16 {
            code = (code << 1) | r.bit() as i32;
            if code <= self.max_code[len] {
                let i = (code + self.offset[len]) as usize;
                return self
                    .symbols
                    .get(i)
                    .copied()
                    .ok_or_else(|| corrupt("bad Huffman code"));
            }
        }
        Err(corrupt("bad Huffman code"))
    }
}

/// Reads entropy-coded bits: `FF 00` is a data `FF`, RSTn markers are
/// consumed by [`BitReader::restart`], and past the end every bit is 0.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u32,
    bits: u32,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> BitReader<'a> {
        BitReader {
            data,
            pos: 0,
            acc: 0,
            bits: 0,
        }
    }

    fn byte(&mut self) -> u8 {
        match self.data.get(self.pos) {
            // `FF 00` is a data byte; any other `FF` starts a marker (RSTn,
            // or the scan's end), which is not data: stop there.
            Some(&0xFF) if self.data.get(self.pos + 1) == Some(&0x00) => {
                self.pos += 2;
                0xFF
            }
            Some(&0xFF) => 0,
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn bit(&mut self) -> u32 {
        if self.bits == 0 {
            self.acc = self.byte() as u32;
            self.bits = 8;
        }
        self.bits -= 1;
        (self.acc >> self.bits) & 1
    }

    fn receive_extend(&mut self, size: u8) -> i32 {
        if size == 0 {
            return 0;
        }
        let mut v = 0i32;
        for _ in 0..size {
            v = (v << 1) | self.bit() as i32;
        }
        if v < 1 << (size - 1) {
            v - (1 << size) + 1
        } else {
            v
        }
    }

    /// At a restart interval: drop the partial byte and step over the
    /// RSTn marker (and any fill bytes before it).
    fn restart(&mut self) {
        self.bits = 0;
        while self.data.get(self.pos) == Some(&0xFF) && self.data.get(self.pos + 1) == Some(&0xFF) {
            self.pos += 1;
        }
        if self.data.get(self.pos) == Some(&0xFF)
            && self
                .data
                .get(self.pos + 1)
                .is_some_and(|m| (0xD0..=0xD7).contains(m))
        {
            self.pos += 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// jpeg-decoder's own 1/8 decode (it decodes every scan), as RGB.
    fn full_decoder_eighth(bytes: &[u8]) -> RgbImage {
        let mut d = jpeg_decoder::Decoder::new(bytes);
        d.read_info().unwrap();
        d.scale(1, 1).unwrap();
        let px = d.decode().unwrap();
        let info = d.info().unwrap();
        let rgb = match info.pixel_format {
            jpeg_decoder::PixelFormat::L8 => px.iter().flat_map(|&l| [l, l, l]).collect(),
            _ => px,
        };
        RgbImage::from_raw(info.width as u32, info.height as u32, rgb).unwrap()
    }

    /// Mean absolute difference per sample.
    fn mean_difference(a: &RgbImage, b: &RgbImage) -> f64 {
        assert_eq!(a.dimensions(), b.dimensions());
        let total: u64 = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(&x, &y)| x.abs_diff(y) as u64)
            .sum();
        total as f64 / a.as_raw().len() as f64
    }

    /// The ground truth at 1/8: a full-size decode, averaged per 8×8 block.
    fn block_means_of_full_decode(bytes: &[u8]) -> RgbImage {
        let mut d = jpeg_decoder::Decoder::new(bytes);
        let px = d.decode().unwrap();
        let info = d.info().unwrap();
        let (w, h) = (info.width as u32, info.height as u32);
        let rgb = match info.pixel_format {
            jpeg_decoder::PixelFormat::L8 => px.iter().flat_map(|&l| [l, l, l]).collect(),
            _ => px,
        };
        let full = RgbImage::from_raw(w, h, rgb).unwrap();
        RgbImage::from_fn(w.div_ceil(8), h.div_ceil(8), |bx, by| {
            let (mut sum, mut n) = ([0u32; 3], 0);
            for y in by * 8..(by * 8 + 8).min(h) {
                for x in bx * 8..(bx * 8 + 8).min(w) {
                    for (s, v) in sum.iter_mut().zip(full.get_pixel(x, y).0) {
                        *s += v as u32;
                    }
                    n += 1;
                }
            }
            image::Rgb(sum.map(|s| ((s + n / 2) / n) as u8))
        })
    }

    /// The DC-only decode is as faithful as jpeg-decoder's own 1/8 decode,
    /// which reads every scan: measured against the block means of a full
    /// decode, and close to jpeg-decoder's 1/8 output itself.
    fn assert_matches_full_decoder(bytes: &[u8], name: &str) {
        let ours = decode(bytes).unwrap().expect(name);
        let theirs = full_decoder_eighth(bytes);
        let truth = block_means_of_full_decode(bytes);
        let (ours_error, theirs_error) = (
            mean_difference(&ours, &truth),
            mean_difference(&theirs, &truth),
        );
        assert!(
            ours_error <= theirs_error + 0.5,
            "{name}: {ours_error} from the block means, jpeg-decoder {theirs_error}"
        );
        // Chroma upsampling differs a little (both interpolate).
        let diff = mean_difference(&ours, &theirs);
        assert!(diff < 2.5, "{name}: {diff} from jpeg-decoder's 1/8");
    }

    #[test]
    fn libjpeg_progressive_files_match_the_full_decoder() {
        // Interleaved DC with successive approximation and a refinement
        // scan; restart markers every 5 MCUs; 4:2:0, 4:4:4 and grey.
        for (name, bytes) in [
            (
                "420-restart",
                &include_bytes!("testdata/progressive-420-restart.jpg")[..],
            ),
            ("444", include_bytes!("testdata/progressive-444.jpg")),
            ("grey", include_bytes!("testdata/progressive-grey.jpg")),
        ] {
            assert_matches_full_decoder(bytes, name);
            let img = decode(bytes).unwrap().unwrap();
            assert_eq!(
                img.dimensions(),
                (26, 20),
                "{name}: ceil(203/8)×ceil(157/8)"
            );
        }
    }

    #[test]
    fn per_component_dc_scans_and_restarts_match_the_full_decoder() {
        // jpeg-encoder writes one DC scan per component, no refinement.
        let (w, h) = (181u16, 123u16);
        let pixels: Vec<u8> = (0..h as u32)
            .flat_map(|y| {
                (0..w as u32).flat_map(move |x| {
                    [(x * 255 / 181) as u8, (y * 2) as u8, ((x ^ y) & 0xFF) as u8]
                })
            })
            .collect();
        for (sampling, restart) in [
            (jpeg_encoder::SamplingFactor::F_2_2, 0),
            (jpeg_encoder::SamplingFactor::F_1_1, 3),
            (jpeg_encoder::SamplingFactor::F_2_1, 7),
        ] {
            let mut bytes = Vec::new();
            let mut enc = jpeg_encoder::Encoder::new(&mut bytes, 85);
            enc.set_progressive(true);
            enc.set_sampling_factor(sampling);
            if restart > 0 {
                enc.set_restart_interval(restart);
            }
            enc.encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb)
                .unwrap();
            assert_matches_full_decoder(&bytes, &format!("{sampling:?} restart {restart}"));
        }
    }

    #[test]
    fn other_frames_go_to_the_full_decoder() {
        let baseline = include_bytes!("testdata/baseline-420.jpg");
        assert!(decode(baseline).unwrap().is_none());
    }

    #[test]
    fn cut_or_damaged_files_never_panic() {
        let bytes = include_bytes!("testdata/progressive-420-restart.jpg");
        for cut in (0..bytes.len()).step_by(97) {
            let _ = decode(&bytes[..cut]);
        }
        // Flip bytes all through the file: any answer but a panic.
        for at in (2..bytes.len()).step_by(13) {
            let mut damaged = bytes.to_vec();
            damaged[at] ^= 0x5A;
            let _ = decode(&damaged);
        }
    }

    #[test]
    fn data_cut_inside_a_scan_still_decodes_what_arrived() {
        let bytes = include_bytes!("testdata/progressive-444.jpg");
        // Past the first DC scan but before the rest.
        let img = decode(&bytes[..bytes.len() / 2]).unwrap().unwrap();
        assert_eq!(img.dimensions(), (26, 20));
    }
}
