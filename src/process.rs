//! `imgpipe process`: run the engine over files on disk and write
//! `OUT/<stem>/<variant>.<ext>`. A rejected file writes nothing (all
//! variants are encoded before the first byte is written, then each file is
//! written to a temporary name and renamed); the others go on.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::engine::{Engine, EngineError, SourceInfo, Variant};

/// One input's outcome.
#[derive(Debug, Serialize)]
pub struct Report {
    pub file: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode_ms: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<VariantReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
}

#[derive(Debug, Serialize)]
pub struct VariantReport {
    pub name: &'static str,
    pub path: String,
    pub width: u32,
    pub height: u32,
    pub bytes: usize,
    pub ms: f64,
}

#[derive(Debug, Serialize)]
pub struct ErrorReport {
    pub code: &'static str,
    pub message: String,
}

/// Expand directories (their files, sorted, not recursive, no dotfiles).
pub fn expand_inputs(inputs: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(input)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}

/// Output folder names: the file stem, or the whole file name when two
/// inputs share a stem.
fn output_names(files: &[PathBuf]) -> Vec<String> {
    let mut seen = HashSet::new();
    files
        .iter()
        .map(|f| {
            let stem = f.file_stem().map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
            if seen.insert(stem.clone()) {
                stem
            } else {
                f.file_name().map_or(stem, |s| s.to_string_lossy().into_owned())
            }
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

/// Process one file into `out_dir`.
pub fn process_file(engine: &Engine, path: &Path, out_dir: &Path, variants: &[Variant]) -> Report {
    let file = path.display().to_string();
    let fail = |e: EngineError| Report {
        file: file.clone(),
        ok: false,
        source: None,
        decode_ms: None,
        variants: Vec::new(),
        error: Some(ErrorReport { code: e.code(), message: e.to_string() }),
    };
    let io_fail = |e: std::io::Error| Report {
        file: file.clone(),
        ok: false,
        source: None,
        decode_ms: None,
        variants: Vec::new(),
        error: Some(ErrorReport { code: "io", message: e.to_string() }),
    };
    // Refuse oversized files from their length, before reading them.
    match std::fs::metadata(path) {
        Ok(m) if m.len() > engine.limits.max_upload_bytes => {
            return fail(EngineError::TooLarge { bytes: m.len(), limit: engine.limits.max_upload_bytes })
        }
        Ok(_) => {}
        Err(e) => return io_fail(e),
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return io_fail(e),
    };
    let started = Instant::now();
    let decoded = match engine.decode(&bytes) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let decode_ms = ms(started.elapsed());
    let rendered = match engine.standard(&decoded, variants) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    drop(bytes);
    if let Err(e) = std::fs::create_dir_all(out_dir) {
        return io_fail(e);
    }
    let mut reports = Vec::with_capacity(rendered.len());
    for (variant, r) in &rendered {
        let target = out_dir.join(format!("{}.{}", variant.name(), r.format.extension()));
        if let Err(e) = crate::store::fs::write_atomic(&target, &r.bytes) {
            return io_fail(e);
        }
        reports.push(VariantReport {
            name: variant.name(),
            path: target.display().to_string(),
            width: r.width,
            height: r.height,
            bytes: r.bytes.len(),
            ms: ms(r.resize + r.encode),
        });
    }
    Report { file, ok: true, source: Some(decoded.info), decode_ms: Some(decode_ms), variants: reports, error: None }
}

/// Human-readable one-liner for a report.
pub fn describe(r: &Report) -> String {
    match (&r.source, &r.error) {
        (Some(s), _) => {
            let mut line = format!(
                "{}: {} {}x{}{} decode {:.1} ms",
                r.file,
                s.format.name(),
                s.width,
                s.height,
                if s.animated { format!(" ({} frames, first used)", s.frames) } else { String::new() },
                r.decode_ms.unwrap_or_default()
            );
            for v in &r.variants {
                line.push_str(&format!(" | {} {}x{} {:.1} ms {} B", v.name, v.width, v.height, v.ms, v.bytes));
            }
            line
        }
        (None, Some(e)) => format!("{}: rejected: {} ({})", r.file, e.code, e.message),
        (None, None) => format!("{}: no result", r.file),
    }
}

/// Process every file, `threads` at a time; reports come back in input order.
pub fn run(
    engine: &Engine,
    files: &[PathBuf],
    out: &Path,
    variants: &[Variant],
    threads: usize,
    mut on_done: impl FnMut(&Report) + Send,
) -> Vec<Report> {
    let names = output_names(files);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Report>>> = Mutex::new((0..files.len()).map(|_| None).collect());
    let progress = if files.len() > 1 { crate::progress::Bar::on_terminal(files.len()) } else { None };
    let on_done = Mutex::new(&mut on_done);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1).min(files.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { break };
                let report = process_file(engine, path, &out.join(&names[i]), variants);
                if let Some(bar) = &progress {
                    bar.done(&names[i]);
                    bar.suspend(|| (on_done.lock().expect("report sink"))(&report));
                } else {
                    (on_done.lock().expect("report sink"))(&report);
                }
                results.lock().expect("results")[i] = Some(report);
            });
        }
    });
    if let Some(bar) = progress {
        bar.finish();
    }
    results.into_inner().expect("results").into_iter().flatten().collect()
}
