//! AV1 still pictures, decoded with rav1d (the Rust port of dav1d, BSD-2).
//! rav1d's public API is dav1d's C API, so this is the one module of the
//! crate with `unsafe`: it owns the decoder context and the picture, and
//! copies the planes out into plain vectors before anything else sees them.
//! Everything after that (colour conversion, alpha, orientation) is safe
//! code in `avif.rs`.

use std::ffi::c_int;
use std::mem::MaybeUninit;
use std::ptr::{self, NonNull};

use rav1d::include::dav1d::data::Dav1dData;
use rav1d::include::dav1d::dav1d::{Dav1dContext, Dav1dSettings};
use rav1d::include::dav1d::headers::{
    Dav1dSequenceHeader, DAV1D_PIXEL_LAYOUT_I400, DAV1D_PIXEL_LAYOUT_I420, DAV1D_PIXEL_LAYOUT_I422,
    DAV1D_PIXEL_LAYOUT_I444,
};
use rav1d::include::dav1d::picture::Dav1dPicture;
use rav1d::src::lib::{
    dav1d_close, dav1d_data_create, dav1d_data_unref, dav1d_default_settings, dav1d_get_picture, dav1d_open,
    dav1d_parse_sequence_header, dav1d_picture_unref, dav1d_send_data,
};
use rav1d::Dav1dResult;

/// How the chroma planes are subsampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// Luma only.
    I400,
    I420,
    I422,
    I444,
}

impl Layout {
    fn from_dav1d(layout: u32) -> Option<Layout> {
        Some(match layout {
            DAV1D_PIXEL_LAYOUT_I400 => Layout::I400,
            DAV1D_PIXEL_LAYOUT_I420 => Layout::I420,
            DAV1D_PIXEL_LAYOUT_I422 => Layout::I422,
            DAV1D_PIXEL_LAYOUT_I444 => Layout::I444,
            _ => return None,
        })
    }

    /// Horizontal and vertical chroma subsampling shifts.
    pub(super) fn shifts(self) -> (u32, u32) {
        match self {
            Layout::I400 | Layout::I444 => (0, 0),
            Layout::I420 => (1, 1),
            Layout::I422 => (1, 0),
        }
    }
}

/// One plane's samples, rows packed without padding.
#[derive(Debug, Clone)]
pub(super) enum Samples {
    /// 8-bit pictures.
    U8(Vec<u8>),
    /// 10- and 12-bit pictures.
    U16(Vec<u16>),
}

#[derive(Debug, Clone)]
pub(super) struct Plane {
    pub width: usize,
    pub samples: Samples,
}

/// What the AV1 sequence header says about colour (ITU-T H.273 code points).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ColourInfo {
    pub primaries: u8,
    pub transfer: u8,
    pub matrix: u8,
    pub full_range: bool,
}

/// A decoded picture: Y, then U and V unless the layout is I400.
#[derive(Debug, Clone)]
pub(super) struct Frame {
    pub width: usize,
    pub height: usize,
    pub bit_depth: u8,
    pub layout: Layout,
    pub colour: ColourInfo,
    pub planes: Vec<Plane>,
}

/// The frame size the sequence header allows, read before any decoding so
/// the pixel limits apply to what the bytes claim.
pub(super) fn max_frame_size(obus: &[u8]) -> Result<(u32, u32), String> {
    if obus.is_empty() {
        return Err("empty av1 payload".into());
    }
    let mut header = MaybeUninit::<Dav1dSequenceHeader>::uninit();
    // SAFETY: `header` is valid to write a whole Dav1dSequenceHeader to, and
    // the data pointer and length describe `obus`, which rav1d only reads.
    let res = unsafe {
        dav1d_parse_sequence_header(
            Some(NonNull::from(&mut header).cast()),
            Some(NonNull::from(obus).cast()),
            obus.len(),
        )
    };
    check(res, "av1 sequence header")?;
    // SAFETY: a zero result means rav1d wrote the header.
    let header = unsafe { header.assume_init() };
    let side = |v: c_int| u32::try_from(v).map_err(|_| format!("av1 sequence header: bad frame size {v}"));
    Ok((side(header.max_width)?, side(header.max_height)?))
}

/// Decode one AV1 temporal unit (an AVIF item) to its picture. `max_pixels`
/// is also handed to rav1d, so a frame header cannot ask for more.
pub(super) fn decode(obus: &[u8], max_pixels: u64, threads: usize) -> Result<Frame, String> {
    if obus.is_empty() {
        return Err("empty av1 payload".into());
    }
    let context = Context::open(max_pixels, threads)?;
    let picture = context.decode(obus)?;
    picture.copy_out()
}

fn check(res: Dav1dResult, what: &str) -> Result<(), String> {
    match res.0 {
        0 => Ok(()),
        e if e == -libc::ENOMEM => Err(format!("{what}: out of memory")),
        e if e == -libc::ERANGE => Err(format!("{what}: frame larger than the pixel limit")),
        e => Err(format!("{what}: invalid data (error {})", e.unsigned_abs())),
    }
}

/// An open rav1d decoder, closed on drop.
struct Context(Option<Dav1dContext>);

impl Context {
    fn open(max_pixels: u64, threads: usize) -> Result<Context, String> {
        let mut settings = MaybeUninit::<Dav1dSettings>::uninit();
        // SAFETY: dav1d_default_settings writes a whole Dav1dSettings.
        unsafe { dav1d_default_settings(NonNull::from(&mut settings).cast()) };
        // SAFETY: initialised just above.
        let mut settings = unsafe { settings.assume_init() };
        // Two frame contexts at least: with one, rav1d 1.1.0 panics inside
        // dav1d_send_data on some corrupt streams (memorysafety/rav1d#1497),
        // and a panic cannot unwind out of an `extern "C"` function, so the
        // process would abort. With two, errors take the path that returns
        // them. The picture then comes out when the decoder is drained.
        settings.n_threads = c_int::try_from(threads.clamp(2, 16)).unwrap_or(2);
        settings.max_frame_delay = 2;
        settings.apply_grain = 1;
        settings.operating_point = 0;
        // Only the highest spatial layer, which is the whole image.
        settings.all_layers = 0;
        settings.frame_size_limit = u32::try_from(max_pixels).unwrap_or(u32::MAX);
        let mut context = Context(None);
        // SAFETY: both pointers come from live references; rav1d reads the
        // settings and writes the context handle.
        let res = unsafe { dav1d_open(Some(NonNull::from(&mut context.0)), Some(NonNull::from(&mut settings))) };
        check(res, "av1 decoder")?;
        if context.0.is_none() {
            return Err("av1 decoder: no context".into());
        }
        Ok(context)
    }

    fn decode(&self, obus: &[u8]) -> Result<Picture, String> {
        let ctx = self.0.ok_or("av1 decoder: closed")?;
        let mut data = Data(Dav1dData::default());
        // SAFETY: `data.0` is a live Dav1dData that rav1d fills in with a
        // buffer of `obus.len()` bytes.
        let buf = unsafe { dav1d_data_create(Some(NonNull::from(&mut data.0)), obus.len()) };
        if buf.is_null() {
            return Err("av1 decoder: out of memory".into());
        }
        // SAFETY: `buf` is a fresh allocation of `obus.len()` bytes that
        // cannot overlap `obus`.
        unsafe { ptr::copy_nonoverlapping(obus.as_ptr(), buf, obus.len()) };

        // Send until the data is consumed, taking the picture when it is
        // ready; once everything is sent, asking again drains the frame
        // threads. A malformed stream can neither consume its data nor give
        // a picture; the bounds turn that into an error instead of a spin.
        let mut drained = 0;
        for _ in 0..4096 {
            if data.0.sz > 0 {
                // SAFETY: `ctx` is open (owned by `self`), `data.0` is live.
                let res = unsafe { dav1d_send_data(Some(ctx), Some(NonNull::from(&mut data.0))) };
                if res.0 != 0 && res.0 != -libc::EAGAIN {
                    check(res, "av1 data")?;
                }
            }
            let mut picture = Picture(Dav1dPicture::default());
            // SAFETY: `ctx` is open; `picture.0` is a live, empty picture
            // that rav1d overwrites.
            let res = unsafe { dav1d_get_picture(Some(ctx), Some(NonNull::from(&mut picture.0))) };
            match res.0 {
                0 => return Ok(picture),
                e if e == -libc::EAGAIN && data.0.sz > 0 => continue,
                e if e == -libc::EAGAIN && drained < 4 => drained += 1,
                e if e == -libc::EAGAIN => return Err("av1 data: no picture in the item".into()),
                _ => check(res, "av1 picture")?,
            }
        }
        Err("av1 data: the decoder made no progress".into())
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        if self.0.is_some() {
            // SAFETY: the context came from dav1d_open and is closed once;
            // rav1d sets the handle back to None.
            unsafe { dav1d_close(Some(NonNull::from(&mut self.0))) };
        }
    }
}

/// Input data handed to rav1d, released on drop.
struct Data(Dav1dData);

impl Drop for Data {
    fn drop(&mut self) {
        // SAFETY: `self.0` is a live Dav1dData (empty or from
        // dav1d_data_create); unref releases what rav1d still holds.
        unsafe { dav1d_data_unref(Some(NonNull::from(&mut self.0))) };
    }
}

/// A picture from dav1d_get_picture, released on drop.
struct Picture(Dav1dPicture);

impl Drop for Picture {
    fn drop(&mut self) {
        // SAFETY: `self.0` is either empty or a picture rav1d handed out;
        // unref releases its references once and leaves it empty.
        unsafe { dav1d_picture_unref(Some(NonNull::from(&mut self.0))) };
    }
}

impl Picture {
    fn copy_out(&self) -> Result<Frame, String> {
        let p = &self.0.p;
        let bad = |what: &str| Err(format!("av1 picture: {what}"));
        let (Ok(width), Ok(height)) = (usize::try_from(p.w), usize::try_from(p.h)) else {
            return bad("negative size");
        };
        if width == 0 || height == 0 {
            return bad("empty");
        }
        let Some(layout) = Layout::from_dav1d(p.layout) else { return bad("unknown pixel layout") };
        let bit_depth = match p.bpc {
            8 => 8u8,
            10 => 10,
            12 => 12,
            _ => return bad("unsupported bit depth"),
        };
        let Some(seq) = self.0.seq_hdr else { return bad("no sequence header") };
        // SAFETY: the sequence header is kept alive by the picture's own
        // reference (`seq_hdr_ref`), which lives as long as `self`.
        let seq = unsafe { seq.as_ref() };
        let code = |v: u32| u8::try_from(v).unwrap_or(2);
        let colour = ColourInfo {
            primaries: code(seq.pri),
            transfer: code(seq.trc),
            matrix: code(seq.mtrx),
            full_range: seq.color_range != 0,
        };

        let (sx, sy) = layout.shifts();
        let count = if layout == Layout::I400 { 1 } else { 3 };
        let mut planes = Vec::with_capacity(count);
        for index in 0..count {
            let (pw, ph) = if index == 0 {
                (width, height)
            } else {
                ((width + (1 << sx) - 1) >> sx, (height + (1 << sy) - 1) >> sy)
            };
            let Some(base) = self.0.data[index] else { return bad("missing plane") };
            // One stride for luma, one shared by both chroma planes.
            let stride = self.0.stride[usize::from(index > 0)];
            let bytes_per_sample = if bit_depth == 8 { 1 } else { 2 };
            let Ok(stride) = usize::try_from(stride) else { return bad("negative stride") };
            if stride < pw * bytes_per_sample || stride % bytes_per_sample != 0 {
                return bad("stride shorter than a row");
            }
            let base = base.as_ptr().cast::<u8>();
            let samples = if bit_depth == 8 {
                let mut out = Vec::with_capacity(pw * ph);
                for row in 0..ph {
                    // SAFETY: rav1d allocates `stride` bytes for each of the
                    // plane's `ph` rows, and `pw <= stride`; the picture
                    // (and so the buffer) lives as long as `self`.
                    let src = unsafe { std::slice::from_raw_parts(base.add(row * stride), pw) };
                    out.extend_from_slice(src);
                }
                Samples::U8(out)
            } else {
                let mut out = Vec::with_capacity(pw * ph);
                for row in 0..ph {
                    // SAFETY: as above, in 16-bit samples; rav1d aligns plane
                    // buffers to 64 bytes and the stride is even, so every
                    // row start is aligned for u16.
                    let src = unsafe { std::slice::from_raw_parts(base.add(row * stride).cast::<u16>(), pw) };
                    out.extend_from_slice(src);
                }
                Samples::U16(out)
            };
            planes.push(Plane { width: pw, samples });
        }
        Ok(Frame { width, height, bit_depth, layout, colour, planes })
    }
}
