//! `imgpipe bench`: the five-variant recipe timed step by step, printing one
//! JSON line per image in the same shape as the peer scripts under
//! `bench/peers/` (median and minimum ms per step, bytes per variant), so
//! `scripts/bench.sh` can put them side by side. `--dump` writes the outputs
//! and the pre-encode pixels for the SSIM script. `--render SPEC` times one
//! on-demand render instead (`webp/w=640`): what a cache miss costs.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::engine::{Engine, EngineError, Fit, OutputFormat, Pixels, Plan, RenderSpec};
use crate::keys::ImageId;
use crate::transform::{self, Target};

/// Steps in the order the peers report them.
pub const STEPS: [&str; 8] = ["decode", "resize", "jpeg85", "jpeg60", "webp85", "png", "thumb300", "total"];

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("bad render spec {0:?}: {1}")]
    Spec(String, String),
}

#[derive(Debug, Serialize)]
pub struct BenchLine {
    pub peer: String,
    pub image: String,
    pub out_size: [u32; 2],
    pub thumb_size: [u32; 2],
    pub reps: usize,
    pub median_ms: BTreeMap<&'static str, f64>,
    pub min_ms: BTreeMap<&'static str, f64>,
    pub bytes: BTreeMap<&'static str, usize>,
}

struct Run {
    ms: BTreeMap<&'static str, f64>,
    outputs: Vec<(&'static str, Vec<u8>)>,
    main: Pixels,
    thumb: Pixels,
}

fn elapsed_ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn run_once(engine: &Engine, data: &[u8]) -> Result<Run, EngineError> {
    let mut ms = BTreeMap::new();
    let t0 = Instant::now();
    let decoded = engine.decode(data)?;
    ms.insert("decode", elapsed_ms(t0));
    let t = Instant::now();
    let side = engine.limits.max_dimension;
    let (w, h) = decoded.pixels.dimensions();
    let main = if w.max(h) > side {
        Cow::Owned(
            engine.resize(&decoded.pixels, Plan { w: Some(side), h: Some(side), fit: Fit::Inside, upscale: false })?,
        )
    } else {
        Cow::Borrowed(&decoded.pixels)
    };
    ms.insert("resize", elapsed_ms(t));
    let mut outputs = Vec::with_capacity(5);
    for (name, format, q) in [
        ("jpeg85", OutputFormat::Jpeg, 85),
        ("jpeg60", OutputFormat::Jpeg, 60),
        ("webp85", OutputFormat::Webp, 85),
        ("png", OutputFormat::Png, 85),
    ] {
        let t = Instant::now();
        outputs.push((name, engine.encode(&main, format, q)?));
        ms.insert(name, elapsed_ms(t));
    }
    let t = Instant::now();
    let thumb_side = engine.limits.thumb_size;
    let thumb =
        engine.resize(&main, Plan { w: Some(thumb_side), h: Some(thumb_side), fit: Fit::Inside, upscale: false })?;
    outputs.push(("thumb300", engine.encode(&thumb, OutputFormat::Jpeg, 80)?));
    ms.insert("thumb300", elapsed_ms(t));
    ms.insert("total", elapsed_ms(t0));
    Ok(Run { ms, outputs, main: main.into_owned(), thumb })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn save_png(path: &Path, pixels: &Pixels) -> std::io::Result<()> {
    let (img, color) = match pixels {
        Pixels::Rgb(i) => (i.as_raw(), image::ExtendedColorType::Rgb8),
        Pixels::Rgba(i) => (i.as_raw(), image::ExtendedColorType::Rgba8),
    };
    let (w, h) = pixels.dimensions();
    image::save_buffer(path, img, w, h, color).map_err(std::io::Error::other)
}

/// Benchmark one image file.
pub fn bench_file(
    engine: &Engine,
    path: &Path,
    reps: usize,
    warmup: usize,
    dump: Option<&Path>,
) -> Result<BenchLine, BenchError> {
    let data = std::fs::read(path)?;
    for _ in 0..warmup {
        run_once(engine, &data)?;
    }
    let mut times: BTreeMap<&'static str, Vec<f64>> = STEPS.iter().map(|s| (*s, Vec::new())).collect();
    let mut last = None;
    for _ in 0..reps.max(1) {
        let run = run_once(engine, &data)?;
        for (k, v) in &run.ms {
            times.get_mut(k).expect("known step").push(*v);
        }
        last = Some(run);
    }
    let last = last.expect("at least one rep");
    let stem = path.file_stem().map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
    if let Some(dir) = dump {
        let d = dir.join(&stem);
        std::fs::create_dir_all(&d)?;
        for (name, bytes) in &last.outputs {
            let ext = if *name == "webp85" {
                "webp"
            } else if *name == "png" {
                "png"
            } else {
                "jpg"
            };
            std::fs::write(d.join(format!("{name}.{ext}")), bytes)?;
        }
        save_png(&d.join("ref.png"), &last.main)?;
        save_png(&d.join("thumbref.png"), &last.thumb)?;
    }
    let (mw, mh) = last.main.dimensions();
    let (tw, th) = last.thumb.dimensions();
    Ok(BenchLine {
        peer: format!("imgpipe-{}", env!("CARGO_PKG_VERSION")),
        image: path.file_name().map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
        out_size: [mw, mh],
        thumb_size: [tw, th],
        reps,
        min_ms: times.iter().map(|(k, v)| (*k, round1(v.iter().copied().fold(f64::INFINITY, f64::min)))).collect(),
        median_ms: times.iter_mut().map(|(k, v)| (*k, round1(median(v)))).collect(),
        bytes: last.outputs.iter().map(|(k, v)| (*k, v.len())).collect(),
    })
}

#[derive(Debug, Serialize)]
pub struct RenderLine {
    pub peer: String,
    pub image: String,
    pub spec: String,
    pub reps: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub bytes: usize,
    pub size: [u32; 2],
}

/// The engine's spec for `spec`, written as the part of an image URL after
/// the id (`webp/w=640`, `webp?w=640`, `thumb`).
pub fn render_spec(engine: &Engine, spec: &str) -> Result<(String, RenderSpec), BenchError> {
    let uri = format!("/img/{}/{spec}", ImageId::new());
    let canonical = transform::parse_uri(&uri, None).map_err(|e| BenchError::Spec(spec.into(), e.to_string()))?;
    let render = match &canonical.target {
        Target::Standard(v) => engine.standard_spec(*v),
        Target::Custom(s) => s.render_spec(&engine.limits),
    };
    Ok((canonical.suffix(), render))
}

/// Time one on-demand render of one file, from its bytes, as a cache miss
/// in the service does it: decode, resize, encode.
pub fn bench_render(
    engine: &Engine,
    path: &Path,
    spec: &str,
    reps: usize,
    warmup: usize,
) -> Result<RenderLine, BenchError> {
    let (canonical, render) = render_spec(engine, spec)?;
    let data = std::fs::read(path)?;
    let once = || -> Result<crate::engine::Rendered, EngineError> {
        let decoded = engine.decode_for(&data, render.plan)?;
        engine.render(&decoded, &render)
    };
    for _ in 0..warmup {
        once()?;
    }
    let mut ms = Vec::with_capacity(reps.max(1));
    let mut last = None;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        last = Some(once()?);
        ms.push(elapsed_ms(t));
    }
    let last = last.expect("at least one rep");
    Ok(RenderLine {
        peer: format!("imgpipe-{}", env!("CARGO_PKG_VERSION")),
        image: path.file_name().map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
        spec: canonical,
        reps: ms.len(),
        min_ms: round1(ms.iter().copied().fold(f64::INFINITY, f64::min)),
        median_ms: round1(median(&mut ms)),
        bytes: last.bytes.len(),
        size: [last.width, last.height],
    })
}
