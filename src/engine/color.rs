//! Colour management: embedded ICC profiles converted to sRGB with moxcms.
//! A profile we cannot parse or build a transform for is ignored (logged),
//! never a reason to refuse an image: the pixels are then taken as sRGB.

use moxcms::{
    CicpColorPrimaries, CicpProfile, ColorProfile, DataColorSpace, Layout, MatrixCoefficients, TransferCharacteristics,
    TransformOptions,
};

/// A parsed embedded profile, classified by what it converts from.
pub(super) enum Icc {
    Rgb(ColorProfile),
    Gray(ColorProfile),
    Cmyk(ColorProfile),
}

/// The largest ICC profile read. Real ones are a few KB (a camera's or a
/// printer's LUT-based profile rarely passes 1 MB); a larger one costs
/// parsing time and memory for nothing but an attacker's benefit.
pub const MAX_ICC_BYTES: usize = 4 << 20;

impl Icc {
    /// Parse `bytes`; `None` for sRGB itself, unknown spaces, garbage, or
    /// a profile over `MAX_ICC_BYTES` (ignored, as an unusable one is).
    pub(super) fn parse(bytes: &[u8]) -> Option<Icc> {
        if bytes.len() > MAX_ICC_BYTES {
            tracing::debug!(bytes = bytes.len(), "ignoring an icc profile over the size cap");
            return None;
        }
        let profile = match ColorProfile::new_from_slice(bytes) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "ignoring unparseable icc profile");
                return None;
            }
        };
        match profile.color_space {
            DataColorSpace::Rgb if is_srgb(&profile) => None,
            DataColorSpace::Rgb => Some(Icc::Rgb(profile)),
            DataColorSpace::Gray => Some(Icc::Gray(profile)),
            DataColorSpace::Cmyk => Some(Icc::Cmyk(profile)),
            _ => None,
        }
    }
}

/// A profile for pixels described by CICP code points (ITU-T H.273), as AV1
/// streams describe themselves. `None` when they already are sRGB for our
/// purposes (BT.709 or unspecified primaries with an sRGB-like curve) or
/// name something moxcms cannot model.
pub(super) fn cicp_profile(primaries: u8, transfer: u8) -> Option<ColorProfile> {
    // BT.709, BT.601 and BT.2020 (10/12-bit) curves are display-referred
    // sRGB in practice; unspecified is taken as sRGB.
    let srgb_like_curve = matches!(transfer, 1 | 2 | 6 | 13 | 14 | 15);
    if matches!(primaries, 1 | 2) && srgb_like_curve {
        return None;
    }
    let color_primaries = match CicpColorPrimaries::try_from(primaries).ok()? {
        CicpColorPrimaries::Reserved | CicpColorPrimaries::Unspecified => CicpColorPrimaries::Bt709,
        p => p,
    };
    let transfer_characteristics = match transfer {
        2 => TransferCharacteristics::Srgb,
        t => TransferCharacteristics::try_from(t).ok()?,
    };
    let profile = ColorProfile::new_from_cicp(CicpProfile {
        color_primaries,
        transfer_characteristics,
        matrix_coefficients: MatrixCoefficients::Bt709,
        full_range: true,
    });
    // moxcms leaves the curves unset for code points it has no model for.
    if profile.red_trc.is_none() || profile.cicp.is_none() {
        tracing::debug!(primaries, transfer, "no colour model for these cicp code points; pixels taken as sRGB");
        return None;
    }
    Some(profile)
}

/// sRGB-like profiles (the usual "sRGB IEC61966-2.1" in camera files) are
/// left alone: converting them would cost time and change nothing visible.
fn is_srgb(p: &ColorProfile) -> bool {
    let srgb = ColorProfile::new_srgb();
    let close = |a: moxcms::Xyzd, b: moxcms::Xyzd| {
        (a.x - b.x).abs() < 0.003 && (a.y - b.y).abs() < 0.003 && (a.z - b.z).abs() < 0.003
    };
    close(p.red_colorant, srgb.red_colorant)
        && close(p.green_colorant, srgb.green_colorant)
        && close(p.blue_colorant, srgb.blue_colorant)
}

/// Convert interleaved pixels in `src_layout` under `profile` to sRGB in
/// `dst_layout`. `None` when no transform could be built or run.
pub(super) fn to_srgb(
    profile: &ColorProfile,
    src: &[u8],
    src_layout: Layout,
    dst_layout: Layout,
    pixels: usize,
) -> Option<Vec<u8>> {
    let srgb = ColorProfile::new_srgb();
    let transform = match profile.create_transform_8bit(src_layout, &srgb, dst_layout, TransformOptions::default()) {
        Ok(t) => t,
        Err(e) => {
            tracing::debug!(error = %e, "icc transform unavailable; keeping pixels as they are");
            return None;
        }
    };
    let mut dst = vec![0u8; pixels * dst_layout.channels()];
    match transform.transform(src, &mut dst) {
        Ok(()) => Some(dst),
        Err(e) => {
            tracing::debug!(error = %e, "icc transform failed; keeping pixels as they are");
            None
        }
    }
}

#[cfg(test)]
mod cap_tests {
    use super::*;

    #[test]
    fn a_profile_over_the_cap_is_ignored() {
        let p3 = ColorProfile::new_display_p3().encode().unwrap();
        assert!(matches!(Icc::parse(&p3), Some(Icc::Rgb(_))), "a real profile is read");
        // The same profile followed by padding past the cap: not read.
        let mut huge = p3.clone();
        huge.resize(MAX_ICC_BYTES + 1, 0);
        assert!(Icc::parse(&huge).is_none());
    }
}
