//! Shared helpers: image generation, EXIF building, pixel comparison.

use image::{DynamicImage, GenericImageView, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

/// A smooth gradient with a few hard edges: compresses like a photo, and
/// any geometric mistake shows.
pub fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let r = (x * 255 / w.max(1)) as u8;
        let g = (y * 255 / h.max(1)) as u8;
        let b = if (x / 37 + y / 23) % 2 == 0 { 40 } else { 200 };
        Rgb([r, g, b])
    })
}

/// Four flat quadrants: red, green / blue, white. Orientation mistakes move
/// colours between quadrants.
pub fn quadrants(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| match (x < w / 2, y < h / 2) {
        (true, true) => Rgb([255, 0, 0]),
        (false, true) => Rgb([0, 255, 0]),
        (true, false) => Rgb([0, 0, 255]),
        (false, false) => Rgb([255, 255, 255]),
    })
}

pub fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode test image");
    out.into_inner()
}

/// A JPEG of `img` carrying an EXIF APP1 segment.
pub fn jpeg_with_exif(img: &RgbImage, exif: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 95);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(exif);
    enc.add_app_segment(1, app1).unwrap();
    enc.encode(img.as_raw(), img.width() as u16, img.height() as u16, jpeg_encoder::ColorType::Rgb).unwrap();
    out
}

/// A little-endian TIFF/EXIF block with an orientation tag and a GPS IFD
/// holding a recognisable latitude reference ("N") and a marker string.
pub fn exif_block(orientation: u16) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"II*\0");
    b.extend_from_slice(&8u32.to_le_bytes()); // IFD0 at 8
                                              // IFD0: 2 entries
    b.extend_from_slice(&2u16.to_le_bytes());
    // Orientation, SHORT, 1
    b.extend_from_slice(&0x0112u16.to_le_bytes());
    b.extend_from_slice(&3u16.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&orientation.to_le_bytes());
    b.extend_from_slice(&[0, 0]);
    // GPS IFD pointer, LONG, 1 -> offset 38
    b.extend_from_slice(&0x8825u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&38u32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    assert_eq!(b.len(), 38);
    // GPS IFD: 1 entry, GPSAreaInformation-like ASCII with a marker
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&0x0001u16.to_le_bytes()); // GPSLatitudeRef
    b.extend_from_slice(&2u16.to_le_bytes()); // ASCII
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&56u32.to_le_bytes()); // offset of the string
    b.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(b.len(), 56);
    b.extend_from_slice(GPS_MARKER);
    b
}

pub const GPS_MARKER: &[u8; 16] = b"GPSLEAKMARKER42\0";

/// Mean absolute difference per channel sample between two RGB images of
/// the same size.
pub fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
    sum as f64 / a.as_raw().len() as f64
}

/// Average colour of a rectangle.
pub fn mean_rgb(img: &DynamicImage, x0: u32, y0: u32, w: u32, h: u32) -> [f64; 3] {
    let mut s = [0f64; 3];
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            let p = img.get_pixel(x, y);
            for c in 0..3 {
                s[c] += f64::from(p[c]);
            }
        }
    }
    let n = f64::from(w * h);
    [s[0] / n, s[1] / n, s[2] / n]
}

pub fn rgba_half_transparent(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_fn(
        w,
        h,
        |x, y| if x < w / 2 { Rgba([10, 20, 30, 0]) } else { Rgba([(y % 256) as u8, 100, 50, 255]) },
    )
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
