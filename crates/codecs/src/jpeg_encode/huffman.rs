//! Huffman tables for the encoder: the example tables of the JPEG
//! standard (Annex K.3), used when the data is written before it is all
//! seen, and tables built from counted symbols (Annex K.2) when it is held.

/// A table as a DHT segment carries it: how many codes of each length
/// (1..=16), and the symbols in order of their codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub bits: [u8; 16],
    pub values: Vec<u8>,
}

/// A table ready to write with: each symbol's code and its length.
#[derive(Debug, Clone)]
pub struct Codes {
    code: [u16; 256],
    len: [u8; 256],
}

impl Codes {
    /// Codes assigned in order of length, as the decoder will (Annex C).
    pub fn new(spec: &Spec) -> Codes {
        let mut codes = Codes {
            code: [0; 256],
            len: [0; 256],
        };
        let mut values = spec.values.iter();
        let mut code = 0u16;
        for (i, &n) in spec.bits.iter().enumerate() {
            for _ in 0..n {
                if let Some(&v) = values.next() {
                    codes.code[v as usize] = code;
                    codes.len[v as usize] = i as u8 + 1;
                }
                code = code.wrapping_add(1);
            }
            code <<= 1;
        }
        codes
    }

    /// The code of `symbol` and its length; length 0 if the table has none.
    #[inline(always)]
    pub fn get(&self, symbol: u8) -> (u16, u8) {
        (self.code[symbol as usize], self.len[symbol as usize])
    }
}

/// How often each symbol of a table was coded.
#[derive(Debug, Clone)]
pub struct Counts(pub [u32; 256]);

impl Default for Counts {
    fn default() -> Self {
        Counts([0; 256])
    }
}

impl Counts {
    /// The table that codes these counts in the fewest bits with codes of
    /// at most 16 bits, none of them all ones (Annex K.2, as libjpeg).
    pub fn optimal(&self) -> Spec {
        // One more symbol (256) with a count of one reserves the all-ones
        // code; it is taken out again at the end.
        let mut freq = [0u64; 257];
        for (f, &c) in freq.iter_mut().zip(self.0.iter()) {
            *f = c as u64;
        }
        freq[256] = 1;
        let mut size = [0usize; 257];
        let mut next: [Option<usize>; 257] = [None; 257];
        loop {
            // The two least frequent; on a tie, the larger symbol.
            let mut least: Option<usize> = None;
            let mut second: Option<usize> = None;
            for i in 0..257 {
                if freq[i] == 0 {
                    continue;
                }
                match least {
                    Some(l) if freq[i] > freq[l] => match second {
                        Some(s) if freq[i] > freq[s] => {}
                        _ => second = Some(i),
                    },
                    _ => {
                        second = least;
                        least = Some(i);
                    }
                }
            }
            let (Some(a), Some(b)) = (least, second) else {
                break;
            };
            freq[a] += freq[b];
            freq[b] = 0;
            // Every symbol in both chains gets one bit longer; b's chain
            // joins a's.
            let mut i = a;
            size[i] += 1;
            while let Some(n) = next[i] {
                i = n;
                size[i] += 1;
            }
            next[i] = Some(b);
            let mut j = b;
            size[j] += 1;
            while let Some(n) = next[j] {
                j = n;
                size[j] += 1;
            }
        }
        let mut count = [0u32; 33];
        for &s in &size {
            if s > 0 {
                // A chain is at most 257 long, so a code is too; past 32
                // would need 2^32 symbols.
                count[s.min(32)] += 1;
            }
        }
        // Codes over 16 bits: take two codes of length i and one shorter
        // code j, and make them three codes of lengths i-1, j+1, j+1.
        for i in (17..=32).rev() {
            while count[i] > 0 {
                let mut j = i - 2;
                while count[j] == 0 {
                    j -= 1;
                }
                count[i] -= 2;
                count[i - 1] += 1;
                count[j + 1] += 2;
                count[j] -= 1;
            }
        }
        // Give up the reserved code (the longest).
        if let Some(i) = (1..=16).rev().find(|&i| count[i] > 0) {
            count[i] -= 1;
        }
        let mut bits = [0u8; 16];
        for (b, &c) in bits.iter_mut().zip(count[1..=16].iter()) {
            *b = c as u8;
        }
        // Symbols by code length, then by value.
        let mut values = Vec::new();
        for len in 1..=32 {
            for (symbol, &s) in size[..256].iter().enumerate() {
                if s == len {
                    values.push(symbol as u8);
                }
            }
        }
        Spec { bits, values }
    }
}

/// The standard's DC luminance table (K.3.3.1).
pub fn dc_luma() -> Spec {
    Spec {
        bits: [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
        values: (0..12).collect(),
    }
}

/// The standard's DC chrominance table (K.3.3.1).
pub fn dc_chroma() -> Spec {
    Spec {
        bits: [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
        values: (0..12).collect(),
    }
}

/// The standard's AC luminance table (K.3.3.2).
pub fn ac_luma() -> Spec {
    let mut values = vec![
        0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
        0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52,
        0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25,
        0x26, 0x27, 0x28, 0x29, 0x2a,
    ];
    // Then every remaining run/size in order: sizes 4..=10 of run 3,
    // 3..=10 of runs 4..=8, 2..=10 of runs 9..=13, 1..=10 of 14 and 15.
    for run in 3u8..=15 {
        let first = match run {
            3 => 4,
            4..=8 => 3,
            9..=13 => 2,
            _ => 1,
        };
        values.extend((first..=10).map(|size| run << 4 | size));
    }
    Spec {
        bits: [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d],
        values,
    }
}

/// The standard's AC chrominance table (K.3.3.2).
pub fn ac_chroma() -> Spec {
    let mut values = vec![
        0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61,
        0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33,
        0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18,
        0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a,
    ];
    // Sizes 3..=10 of runs 4..=7, 2..=10 of runs 8..=15.
    for run in 4u8..=15 {
        let first = if run <= 7 { 3 } else { 2 };
        values.extend((first..=10).map(|size| run << 4 | size));
    }
    Spec {
        bits: [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77],
        values,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every AC symbol a sequential scan can code: run 0..=15 and size
    /// 1..=10, end-of-block and sixteen zeros.
    fn every_ac_symbol() -> Vec<u8> {
        let mut all: Vec<u8> = (0u8..16)
            .flat_map(|run| (1u8..=10).map(move |size| run << 4 | size))
            .chain([0x00, 0xf0])
            .collect();
        all.sort_unstable();
        all
    }

    #[test]
    fn the_standard_ac_tables_code_every_symbol_once() {
        for spec in [ac_luma(), ac_chroma()] {
            let total: usize = spec.bits.iter().map(|&b| b as usize).sum();
            assert_eq!(total, spec.values.len());
            let mut values = spec.values.clone();
            values.sort_unstable();
            assert_eq!(values, every_ac_symbol());
        }
    }

    /// Kraft: the codes of a table fit, with the all-ones code unused.
    fn kraft_below_one(spec: &Spec) -> bool {
        let sum: u64 = (0..16).map(|i| (spec.bits[i] as u64) << (15 - i)).sum();
        sum < 1 << 16
    }

    #[test]
    fn optimal_tables_are_prefix_codes_of_at_most_16_bits() {
        // Skewed counts that a plain Huffman code would make over 16 deep.
        let mut counts = Counts::default();
        for (i, c) in counts.0.iter_mut().enumerate().take(40) {
            *c = 1 << (i / 2).min(30);
        }
        let spec = counts.optimal();
        assert_eq!(spec.values.len(), 40);
        assert!(kraft_below_one(&spec));
        // One symbol alone still gets a code.
        let mut one = Counts::default();
        one.0[7] = 100;
        let spec = one.optimal();
        assert_eq!(spec.values, vec![7]);
        assert_eq!(spec.bits[0], 1);
    }

    #[test]
    fn more_frequent_symbols_get_codes_no_longer() {
        let mut counts = Counts::default();
        counts.0[1] = 1000;
        counts.0[2] = 100;
        counts.0[3] = 10;
        counts.0[4] = 1;
        let codes = Codes::new(&counts.optimal());
        let len = |s| codes.get(s).1;
        assert!(len(1) <= len(2) && len(2) <= len(3) && len(3) <= len(4));
        assert!(len(4) > 0);
    }
}
