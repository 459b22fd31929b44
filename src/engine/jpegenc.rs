//! The JPEG encoder: baseline, YCbCr 4:2:0 in one interleaved scan, the
//! Annex K quantisation tables scaled by quality as libjpeg scales them, and
//! Huffman tables built for each image (Annex K.2, as libjpeg's
//! `optimize_coding`). Optimal tables are 2–8 % smaller than the standard
//! ones; they are written in a single interleaved scan because that is the
//! layout every decoder reads (jpeg-encoder writes optimised tables as one
//! scan per component, which zune-jpeg misreads).
//!
//! Two passes over the image: the first converts, transforms and quantises
//! every block, keeping the coefficients and counting symbols; the second
//! writes them with the tables the counts give.

/// Annex K.1 luminance table, natural order.
const LUMA: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51,
    87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
];

/// Annex K.1 chrominance table, natural order.
const CHROMA: [u16; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99,
];

/// Natural index of each zigzag position.
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21,
    28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54,
    47, 55, 62, 63,
];

/// libjpeg's quality scaling (`jpeg_quality_scaling` + `jpeg_add_quant_table`
/// with baseline limits): 50 is the table as printed.
fn scaled_table(base: &[u16; 64], quality: u8) -> [u16; 64] {
    let q = u32::from(quality.clamp(1, 100));
    let scale = if q < 50 { 5000 / q } else { 200 - q * 2 };
    base.map(|b| ((u32::from(b) * scale + 50) / 100).clamp(1, 255) as u16)
}

type Row = [f32; 8];

#[inline(always)]
fn add(a: Row, b: Row) -> Row {
    std::array::from_fn(|i| a[i] + b[i])
}

#[inline(always)]
fn sub(a: Row, b: Row) -> Row {
    std::array::from_fn(|i| a[i] - b[i])
}

#[inline(always)]
fn mul(a: Row, k: f32) -> Row {
    a.map(|v| v * k)
}

/// One pass of the AAN float DCT (libjpeg's `jfdctflt.c`) down the columns
/// of a block, eight columns at once: `rows[y]` in, `out[u]` out, each
/// output scaled by `AAN[u]` (and 8 after both passes), which quantisation
/// undoes.
#[inline(always)]
fn aan_columns(d: &[Row; 8]) -> [Row; 8] {
    let (t0, t7) = (add(d[0], d[7]), sub(d[0], d[7]));
    let (t1, t6) = (add(d[1], d[6]), sub(d[1], d[6]));
    let (t2, t5) = (add(d[2], d[5]), sub(d[2], d[5]));
    let (t3, t4) = (add(d[3], d[4]), sub(d[3], d[4]));
    // Even part.
    let (t10, t13) = (add(t0, t3), sub(t0, t3));
    let (t11, t12) = (add(t1, t2), sub(t1, t2));
    let z1 = mul(add(t12, t13), std::f32::consts::FRAC_1_SQRT_2);
    let (o0, o4, o2, o6) = (add(t10, t11), sub(t10, t11), add(t13, z1), sub(t13, z1));
    // Odd part.
    let (t10, t11, t12) = (add(t4, t5), add(t5, t6), add(t6, t7));
    let z5 = mul(sub(t10, t12), 0.382_683_43);
    let z2 = add(mul(t10, 0.541_196_1), z5);
    let z4 = add(mul(t12, 1.306_563), z5);
    let z3 = mul(t11, std::f32::consts::FRAC_1_SQRT_2);
    let (z11, z13) = (add(t7, z3), sub(t7, z3));
    [o0, add(z11, z4), o2, sub(z13, z2), o4, add(z13, z2), o6, sub(z11, z4)]
}

#[inline(always)]
fn transpose(m: &[Row; 8]) -> [Row; 8] {
    std::array::from_fn(|j| std::array::from_fn(|i| m[i][j]))
}

/// 1.5·2^23: see [`Quant::block`].
const ROUNDER: f32 = 12_582_912.0;

/// libjpeg's AAN output scale per frequency.
const AAN: [f64; 8] =
    [1.0, 1.387_039_845, 1.306_562_965, 1.175_875_602, 1.0, 0.785_694_958, 0.541_196_100, 0.275_899_379];

/// A quantisation table ready for use.
struct Quant {
    /// The table in zigzag order, as DQT carries it.
    zigzag: [u16; 64],
    /// 1 / (q · AAN scale · 8), in the transposed order the DCT leaves.
    recip: [f32; 64],
    /// For zigzag position k, where the DCT left that coefficient.
    from: [usize; 64],
}

impl Quant {
    fn new(base: &[u16; 64], quality: u8) -> Quant {
        let natural = scaled_table(base, quality);
        let mut q = Quant { zigzag: [0; 64], recip: [0.0; 64], from: [0; 64] };
        for (k, &n) in ZIGZAG.iter().enumerate() {
            q.zigzag[k] = natural[n];
            q.from[k] = (n % 8) * 8 + n / 8;
        }
        for (n, &qv) in natural.iter().enumerate() {
            let (u, v) = (n / 8, n % 8);
            q.recip[v * 8 + u] = (1.0 / (f64::from(qv) * AAN[u] * AAN[v] * 8.0)) as f32;
        }
        q
    }

    /// Transform one level-shifted block and quantise it into zigzag order.
    #[inline(always)]
    fn block(&self, samples: &[Row; 8], out: &mut [i16; 64]) {
        let pass = aan_columns(&transpose(&aan_columns(samples)));
        let flat = pass.as_flattened();
        let mut quantised = [0i32; 64];
        for i in 0..64 {
            // Round to nearest by adding 1.5·2^23: the integer lands in the
            // low mantissa bits (|v| < 2^22 always: at most 2^11 here).
            // Unlike a saturating float-to-int cast, this vectorises.
            let v = flat[i] * self.recip[i] + ROUNDER;
            quantised[i] = v.to_bits() as i32 - ROUNDER.to_bits() as i32;
        }
        for k in 0..64 {
            out[k] = quantised[self.from[k]] as i16;
        }
    }
}

/// Symbol counts for one DC and one AC table.
struct Counts {
    dc: [u32; 257],
    ac: [u32; 257],
}

impl Counts {
    fn new() -> Counts {
        Counts { dc: [0; 257], ac: [0; 257] }
    }

    fn block(&mut self, coefs: &[i16; 64], prev_dc: &mut i16) {
        let diff = coefs[0].wrapping_sub(*prev_dc);
        *prev_dc = coefs[0];
        self.dc[bit_len(diff) as usize] += 1;
        let mut last = 0u32;
        for k in nonzero_ac(coefs) {
            let mut run = k - last - 1;
            while run > 15 {
                self.ac[0xF0] += 1;
                run -= 16;
            }
            self.ac[((run << 4) | bit_len(coefs[k as usize])) as usize] += 1;
            last = k;
        }
        if last < 63 {
            self.ac[0] += 1;
        }
    }
}

/// Zigzag positions 1..64 holding a non-zero coefficient, in order.
#[inline(always)]
fn nonzero_ac(coefs: &[i16; 64]) -> impl Iterator<Item = u32> {
    let mut mask = 0u64;
    for (k, &c) in coefs.iter().enumerate() {
        mask |= u64::from(c != 0) << k;
    }
    mask &= !1;
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let k = mask.trailing_zeros();
            mask &= mask - 1;
            k
        })
    })
}

/// Number of bits of |v| (the JPEG "category").
#[inline(always)]
fn bit_len(v: i16) -> u32 {
    16 - v.unsigned_abs().leading_zeros()
}

/// A Huffman table: what DHT carries and the codes it implies.
struct Huffman {
    bits: [u8; 16],
    values: Vec<u8>,
    code: [u16; 256],
    len: [u8; 256],
}

impl Huffman {
    /// Annex K.2 (libjpeg's `jpeg_gen_optimal_table`): code lengths from the
    /// counts, limited to 16 bits, with one code point reserved so that no
    /// code is all ones.
    fn optimal(counts: &[u32; 257]) -> Huffman {
        let mut freq: Vec<u64> = counts.iter().map(|&c| u64::from(c)).collect();
        freq[256] = 1;
        let mut size = [0usize; 257];
        let mut others = [usize::MAX; 257];
        loop {
            // The two least frequent, ties going to the larger symbol.
            let mut c1 = None;
            let mut c2 = None;
            for i in 0..257 {
                if freq[i] == 0 {
                    continue;
                }
                if c1.is_none_or(|c: usize| freq[i] <= freq[c]) {
                    c2 = c1;
                    c1 = Some(i);
                } else if c2.is_none_or(|c: usize| freq[i] <= freq[c]) {
                    c2 = Some(i);
                }
            }
            let (Some(mut a), Some(mut b)) = (c1, c2) else { break };
            freq[a] += freq[b];
            freq[b] = 0;
            size[a] += 1;
            while others[a] != usize::MAX {
                a = others[a];
                size[a] += 1;
            }
            others[a] = b;
            size[b] += 1;
            while others[b] != usize::MAX {
                b = others[b];
                size[b] += 1;
            }
        }
        let mut bits = [0u32; 258];
        for &s in &size {
            if s > 0 {
                bits[s] += 1;
            }
        }
        // Figure K.3: fold lengths over 16 into the tree.
        for i in (17..bits.len()).rev() {
            while bits[i] > 0 {
                let mut j = i - 2;
                while bits[j] == 0 {
                    j -= 1;
                }
                bits[i] -= 2;
                bits[i - 1] += 1;
                bits[j + 1] += 2;
                bits[j] -= 1;
            }
        }
        // Drop the reserved code point from the longest length.
        let mut i = 16;
        while bits[i] == 0 {
            i -= 1;
        }
        bits[i] -= 1;
        let mut values = Vec::new();
        for len in 1..=256 {
            for (sym, &s) in size.iter().enumerate().take(256) {
                if s == len {
                    values.push(sym as u8);
                }
            }
        }
        let mut table = Huffman { bits: [0; 16], values, code: [0; 256], len: [0; 256] };
        for (l, b) in table.bits.iter_mut().enumerate() {
            *b = bits[l + 1] as u8;
        }
        // Figure C.1–C.3: canonical codes in order of length.
        let mut code = 0u32;
        let mut k = 0;
        for l in 1..=16u8 {
            for _ in 0..table.bits[usize::from(l) - 1] {
                let sym = usize::from(table.values[k]);
                table.code[sym] = code as u16;
                table.len[sym] = l;
                code += 1;
                k += 1;
            }
            code <<= 1;
        }
        table
    }
}

/// Bits into bytes, 0xFF followed by a stuffed zero.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    #[inline(always)]
    fn put(&mut self, bits: u32, len: u32) {
        self.acc = (self.acc << len) | u64::from(bits);
        self.n += len;
        if self.n >= 32 {
            self.n -= 32;
            let word = (self.acc >> self.n) as u32;
            let bytes = word.to_be_bytes();
            if bytes.contains(&0xFF) {
                for b in bytes {
                    self.out.push(b);
                    if b == 0xFF {
                        self.out.push(0);
                    }
                }
            } else {
                self.out.extend_from_slice(&bytes);
            }
        }
    }

    /// Pad the last byte with ones.
    fn finish(mut self) -> Vec<u8> {
        let pad = (8 - self.n % 8) % 8;
        self.put((1 << pad) - 1, pad);
        while self.n >= 8 {
            self.n -= 8;
            let b = (self.acc >> self.n) as u8;
            self.out.push(b);
            if b == 0xFF {
                self.out.push(0);
            }
        }
        self.out
    }
}

#[inline(always)]
fn write_block(w: &mut BitWriter, coefs: &[i16; 64], prev_dc: &mut i16, dc: &Huffman, ac: &Huffman) {
    let diff = coefs[0].wrapping_sub(*prev_dc);
    *prev_dc = coefs[0];
    let n = bit_len(diff);
    let sym = n as usize;
    w.put((u32::from(dc.code[sym]) << n) | extra(diff, n), u32::from(dc.len[sym]) + n);
    let mut last = 0u32;
    for k in nonzero_ac(coefs) {
        let mut run = k - last - 1;
        while run > 15 {
            w.put(u32::from(ac.code[0xF0]), u32::from(ac.len[0xF0]));
            run -= 16;
        }
        let c = coefs[k as usize];
        let n = bit_len(c);
        let sym = ((run << 4) | n) as usize;
        w.put((u32::from(ac.code[sym]) << n) | extra(c, n), u32::from(ac.len[sym]) + n);
        last = k;
    }
    if last < 63 {
        w.put(u32::from(ac.code[0]), u32::from(ac.len[0]));
    }
}

/// The `n` low bits that follow a category: v, or v - 1 for negatives.
#[inline(always)]
fn extra(v: i16, n: u32) -> u32 {
    let v = i32::from(v);
    let v = if v < 0 { v - 1 } else { v };
    (v as u32) & ((1u32 << n) - 1)
}

fn segment(out: &mut Vec<u8>, marker: u8, body: &[u8]) {
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(body);
}

/// Encode 8-bit RGB (`width`×`height`, row-major) at `quality` (1–100).
pub(super) fn encode(rgb: &[u8], width: u32, height: u32, quality: u8) -> Result<Vec<u8>, String> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `encode_avx2` only differs from `encode_portable` in being
        // compiled for AVX2, which the CPU was just checked to have.
        return unsafe { encode_avx2(rgb, width, height, quality) };
    }
    encode_portable(rgb, width, height, quality)
}

/// The same code compiled with AVX2 enabled: the eight-lane rows of the DCT
/// and the colour conversion become single 256-bit operations. Rust never
/// fuses a multiply and an add on its own, so the output is identical.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn encode_avx2(rgb: &[u8], width: u32, height: u32, quality: u8) -> Result<Vec<u8>, String> {
    encode_portable(rgb, width, height, quality)
}

#[inline(always)]
fn encode_portable(rgb: &[u8], width: u32, height: u32, quality: u8) -> Result<Vec<u8>, String> {
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 || w > 65_535 || h > 65_535 || rgb.len() != w * h * 3 {
        return Err(format!("jpeg: {} bytes are not {width}x{height} RGB pixels within 65535 per side", rgb.len()));
    }
    let luma = Quant::new(&LUMA, quality);
    let chroma = Quant::new(&CHROMA, quality);
    let (mcus_x, mcus_y) = (w.div_ceil(16), h.div_ceil(16));
    // Per MCU: four luma blocks, then Cb, then Cr.
    let mut coefs = vec![[0i16; 64]; mcus_x * mcus_y * 6];
    let (mut y_counts, mut c_counts) = (Counts::new(), Counts::new());
    let mut prev = [0i16; 3];

    // One strip of 16 rows at a time, edges replicated to whole MCUs:
    // level-shifted Y per pixel, Cb and Cr per 2×2 quad from its mean RGB.
    let padded = mcus_x * 16;
    let half = padded / 2;
    let quads = w.div_ceil(2);
    let mut ys = vec![0f32; 16 * padded];
    let mut cbs = vec![0f32; 8 * half];
    let mut crs = vec![0f32; 8 * half];
    for my in 0..mcus_y {
        for r in 0..8 {
            let row = |i: usize| {
                let sy = (my * 16 + 2 * r + i).min(h - 1);
                &rgb[sy * w * 3..(sy + 1) * w * 3]
            };
            let (a, b) = (row(0), row(1));
            for (i, src) in [a, b].into_iter().enumerate() {
                let yr = &mut ys[(2 * r + i) * padded..(2 * r + i + 1) * padded];
                for (y, p) in yr.iter_mut().zip(src.chunks_exact(3)) {
                    *y = 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]) - 128.0;
                }
                let edge = yr[w - 1];
                yr[w..].fill(edge);
            }
            let (cbr, crr) = (&mut cbs[r * half..(r + 1) * half], &mut crs[r * half..(r + 1) * half]);
            // Sums of four samples; the 1/4 is folded into the weights.
            let chroma = |r4: f32, g4: f32, b4: f32| {
                (-0.042_183_98 * r4 - 0.082_816_03 * g4 + 0.125 * b4, 0.125 * r4 - 0.104_671_9 * g4 - 0.020_328_1 * b4)
            };
            let pairs = a.chunks_exact(6).zip(b.chunks_exact(6));
            for ((pa, pb), (cb, cr)) in pairs.zip(cbr.iter_mut().zip(crr.iter_mut())) {
                let sum = |c: usize| {
                    f32::from(u16::from(pa[c]) + u16::from(pa[c + 3]) + u16::from(pb[c]) + u16::from(pb[c + 3]))
                };
                (*cb, *cr) = chroma(sum(0), sum(1), sum(2));
            }
            if w % 2 == 1 {
                // The last column pairs with its own replica.
                let x = (w - 1) * 3;
                let sum = |c: usize| f32::from(2 * (u16::from(a[x + c]) + u16::from(b[x + c])));
                (cbr[quads - 1], crr[quads - 1]) = chroma(sum(0), sum(1), sum(2));
            }
            let (cb_edge, cr_edge) = (cbr[quads - 1], crr[quads - 1]);
            cbr[quads..].fill(cb_edge);
            crr[quads..].fill(cr_edge);
        }
        for mx in 0..mcus_x {
            let base = (my * mcus_x + mx) * 6;
            for (i, (oy, ox)) in [(0, 0), (0, 8), (8, 0), (8, 8)].into_iter().enumerate() {
                // A luma block wholly past the right or bottom edge is a
                // dummy, as libjpeg writes it: no AC, and the DC of the block
                // before it (the top-right one for a bottom row), so it costs
                // two short symbols instead of coding replicated pixels.
                let below = my * 16 + oy >= h;
                if below || mx * 16 + ox >= w {
                    let from = if below { base + 1 } else { base + i - 1 };
                    let dc = coefs[from][0];
                    coefs[base + i] = [0; 64];
                    coefs[base + i][0] = dc;
                } else {
                    let samples: [Row; 8] = std::array::from_fn(|r| {
                        let at = (oy + r) * padded + mx * 16 + ox;
                        ys[at..at + 8].try_into().expect("8 samples")
                    });
                    luma.block(&samples, &mut coefs[base + i]);
                }
                y_counts.block(&coefs[base + i], &mut prev[0]);
            }
            for (j, plane) in [&cbs, &crs].into_iter().enumerate() {
                let samples: [Row; 8] = std::array::from_fn(|r| {
                    let at = r * half + mx * 8;
                    plane[at..at + 8].try_into().expect("8 samples")
                });
                chroma.block(&samples, &mut coefs[base + 4 + j]);
                c_counts.block(&coefs[base + 4 + j], &mut prev[1 + j]);
            }
        }
    }
    drop((ys, cbs, crs));

    let tables = [
        Huffman::optimal(&y_counts.dc),
        Huffman::optimal(&y_counts.ac),
        Huffman::optimal(&c_counts.dc),
        Huffman::optimal(&c_counts.ac),
    ];
    let mut out = Vec::with_capacity(coefs.len() * 8 + 1024);
    out.extend_from_slice(&[0xFF, 0xD8]);
    segment(&mut out, 0xE0, b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00");
    let mut dqt = Vec::with_capacity(130);
    for (id, q) in [&luma, &chroma].into_iter().enumerate() {
        dqt.push(id as u8);
        dqt.extend(q.zigzag.iter().map(|&v| v as u8));
    }
    segment(&mut out, 0xDB, &dqt);
    let mut sof = vec![8];
    sof.extend_from_slice(&(height as u16).to_be_bytes());
    sof.extend_from_slice(&(width as u16).to_be_bytes());
    sof.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    segment(&mut out, 0xC0, &sof);
    let mut dht = Vec::new();
    for (class_id, t) in [0x00u8, 0x10, 0x01, 0x11].into_iter().zip(&tables) {
        dht.push(class_id);
        dht.extend_from_slice(&t.bits);
        dht.extend_from_slice(&t.values);
    }
    segment(&mut out, 0xC4, &dht);
    segment(&mut out, 0xDA, &[3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);

    let mut bits = BitWriter { out, acc: 0, n: 0 };
    let mut prev = [0i16; 3];
    for mcu in coefs.chunks_exact(6) {
        for block in &mcu[..4] {
            write_block(&mut bits, block, &mut prev[0], &tables[0], &tables[1]);
        }
        write_block(&mut bits, &mcu[4], &mut prev[1], &tables[2], &tables[3]);
        write_block(&mut bits, &mcu[5], &mut prev[2], &tables[2], &tables[3]);
    }
    let mut out = bits.finish();
    out.extend_from_slice(&[0xFF, 0xD9]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::xorshift;

    /// A smooth gradient with texture: what photos look like to an encoder.
    fn photo_like(w: u32, h: u32) -> Vec<u8> {
        let mut state = 0x1234_5678_u32;
        let mut out = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                let n = (xorshift(&mut state) % 9) as i32 - 4;
                let base = [x * 255 / w.max(1), y * 255 / h.max(1), (x + y) * 127 / (w + h).max(1)];
                out.extend(base.map(|v| (v as i32 + n).clamp(0, 255) as u8));
            }
        }
        out
    }

    fn psnr(a: &[u8], b: &[u8]) -> f64 {
        let mse = a.iter().zip(b).map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2)).sum::<f64>() / a.len() as f64;
        10.0 * (255.0 * 255.0 / mse.max(1e-9)).log10()
    }

    fn zune(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg)
            .expect("zune-jpeg reads it")
            .into_rgb8();
        (img.width(), img.height(), img.into_raw())
    }

    fn jpeg_decoder(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let mut d = jpeg_decoder::Decoder::new(bytes);
        let px = d.decode().expect("jpeg-decoder reads it");
        let info = d.info().unwrap();
        assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::RGB24);
        (u32::from(info.width), u32::from(info.height), px)
    }

    #[test]
    fn two_decoders_read_every_size_and_quality_alike() {
        for (w, h) in [(1, 1), (7, 5), (16, 16), (17, 33), (300, 200)] {
            let src = photo_like(w, h);
            for q in [1u8, 50, 85, 100] {
                let bytes = encode(&src, w, h, q).unwrap();
                let (zw, zh, z) = zune(&bytes);
                let (jw, jh, j) = jpeg_decoder(&bytes);
                assert_eq!((zw, zh, jw, jh), (w, h, w, h));
                // The decoders upsample chroma differently; nothing else may differ.
                assert!(psnr(&z, &j) > 30.0, "{w}x{h} q{q}: decoders disagree ({:.1} dB)", psnr(&z, &j));
                if q >= 85 && w >= 16 {
                    assert!(psnr(&z, &src) > 32.0, "{w}x{h} q{q}: {:.1} dB", psnr(&z, &src));
                }
            }
        }
    }

    #[test]
    fn optimal_tables_beat_the_standard_ones_at_the_same_quantisation() {
        let (w, h) = (640, 480);
        let src = photo_like(w, h);
        for q in [60u8, 85] {
            let ours = encode(&src, w, h, q).unwrap();
            let mut standard = Vec::new();
            jpeg_encoder::Encoder::new(&mut standard, q)
                .encode(&src, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
                .unwrap();
            assert!(
                ours.len() < standard.len(),
                "q{q}: {} bytes vs {} with standard tables",
                ours.len(),
                standard.len()
            );
            let (ours_db, standard_db) = (psnr(&zune(&ours).2, &src), psnr(&zune(&standard).2, &src));
            assert!(ours_db > standard_db - 0.3, "q{q}: {ours_db:.2} dB vs {standard_db:.2} dB");
        }
    }

    #[test]
    fn blocks_past_the_edge_are_dummies_not_replicated_pixels() {
        // 256×8 fills only the top half of its 16-row MCUs. Coding the
        // bottom half from replicated edge pixels would cost what 256×16
        // with rows 8..16 repeating row 7 costs; dummy blocks cost almost
        // nothing, and the 8 rows decode to what the tall image's top 8 do
        // (PSNR above 40 dB: only the chroma of the replicas differs).
        let (w, mut state) = (256u32, 0x9E37_79B9_u32);
        let top: Vec<u8> = (0..w * 8 * 3).map(|_| xorshift(&mut state) as u8).collect();
        let row = (w * 3) as usize;
        let mut replicated = top.clone();
        for _ in 8..16 {
            replicated.extend_from_slice(&top[7 * row..]);
        }
        let short = encode(&top, w, 8, 85).unwrap();
        let tall = encode(&replicated, w, 16, 85).unwrap();
        assert!(short.len() * 10 < tall.len() * 9, "{} bytes vs {} coding the replicas", short.len(), tall.len());
        let (zw, zh, z) = zune(&short);
        let (_, _, t) = zune(&tall);
        assert_eq!((zw, zh), (w, 8));
        assert!(psnr(&z, &t[..z.len()]) > 40.0, "{:.1} dB", psnr(&z, &t[..z.len()]));
        assert_eq!(jpeg_decoder(&short).2.len(), z.len());
    }

    #[test]
    fn portable_and_vector_builds_write_the_same_bytes() {
        let src = photo_like(123, 77);
        assert_eq!(encode(&src, 123, 77, 85).unwrap(), encode_portable(&src, 123, 77, 85).unwrap());
    }

    #[test]
    fn flat_images_have_one_symbol_tables_and_still_decode() {
        let src = vec![200u8; 64 * 48 * 3];
        let bytes = encode(&src, 64, 48, 85).unwrap();
        let (_, _, px) = zune(&bytes);
        assert!(px.iter().all(|&v| v.abs_diff(200) <= 1));
    }

    /// Lengths from a table: no code longer than 16, room left over (the
    /// reserved code point, so no code is all ones), every counted symbol
    /// present once.
    fn check_table(counts: &[u32; 257]) {
        let t = Huffman::optimal(counts);
        let kraft: f64 = t.bits.iter().enumerate().map(|(i, &n)| f64::from(n) / 2f64.powi(i as i32 + 1)).sum();
        assert!(kraft < 1.0, "kraft sum {kraft}");
        let mut seen = t.values.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), t.values.len());
        let used: Vec<u8> = (0..256).filter(|&s| counts[s] > 0).map(|s| s as u8).collect();
        assert_eq!(seen, used);
        for &v in &t.values {
            let (code, len) = (t.code[usize::from(v)], t.len[usize::from(v)]);
            assert!((1..=16).contains(&len));
            assert_ne!(u32::from(code), (1u32 << len) - 1, "all-ones code for {v}");
        }
    }

    #[test]
    fn huffman_tables_stay_within_16_bits_and_never_use_all_ones() {
        // Fibonacci counts make the deepest possible trees.
        let mut fib = [0u32; 257];
        let (mut a, mut b) = (1u32, 1u32);
        for c in fib.iter_mut().take(40) {
            *c = a;
            (a, b) = (b, a.saturating_add(b));
        }
        check_table(&fib);
        let mut one = [0u32; 257];
        one[0] = 5;
        check_table(&one);
        let mut all = [0u32; 257];
        all.iter_mut().take(256).enumerate().for_each(|(i, c)| *c = (i as u32).wrapping_mul(2_654_435_761) % 1000 + 1);
        check_table(&all);
    }

    #[test]
    fn bad_buffers_are_refused() {
        assert!(encode(&[0; 10], 2, 2, 85).is_err());
        assert!(encode(&[], 0, 0, 85).is_err());
        assert!(encode(&vec![0; 70_000 * 3], 70_000, 1, 85).is_err());
    }
}
