//! The shared corpus: `$IMGPIPE_CORPUS` (default `../shared/corpus`) and
//! its MANIFEST.tsv, for the engine and API suites alike.

use std::path::PathBuf;

pub fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("IMGPIPE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus")));
    if dir.join("MANIFEST.tsv").is_file() {
        Some(dir)
    } else if std::env::var_os("IMGPIPE_REQUIRE_CORPUS").is_some() {
        panic!("corpus not found at {} (IMGPIPE_REQUIRE_CORPUS is set, as scripts/test.sh sets it)", dir.display());
    } else {
        eprintln!("SKIP: corpus not found at {} (set IMGPIPE_CORPUS)", dir.display());
        None
    }
}

pub struct Row {
    pub file: String,
    pub category: String,
    pub accept: bool,
    pub oriented: Option<(u32, u32)>,
}

pub fn manifest(dir: &std::path::Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let oriented = cols[6].split(';').map(str::trim).find_map(|f| {
                let (w, h) = f.strip_prefix("oriented=")?.split_once('x')?;
                Some((w.parse().ok()?, h.parse().ok()?))
            });
            Row { file: cols[0].to_string(), category: cols[4].to_string(), accept: cols[5] == "accept", oriented }
        })
        .collect()
}

/// The error code a reject row's category calls for.
pub fn expected_code(category: &str) -> &'static str {
    match category {
        "truncated" | "corrupt" => "undecodable",
        "bomb" => "too_many_pixels",
        "empty" | "not-an-image" | "svg" | "unsupported" => "unsupported_format",
        other => panic!("no expected code for category {other}"),
    }
}
