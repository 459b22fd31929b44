//! `imgpipe process` as a user runs it: the real binary on real files.

use std::process::Command;

use image::{DynamicImage, GenericImageView, ImageFormat};

use crate::helpers::{encode, gradient};

#[test]
fn process_writes_variants_and_reports_rejects() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::write(input.join("photo.png"), encode(&DynamicImage::ImageRgb8(gradient(640, 480)), ImageFormat::Png))
        .unwrap();
    std::fs::write(input.join("bad.jpg"), b"<svg onload='alert(1)'/>").unwrap();
    let out = tmp.path().join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(["process", "--json", "--out"])
        .arg(&out)
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "a rejected file makes the exit status non-zero");
    let stdout = String::from_utf8(run.stdout).unwrap();
    let reports: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(reports.len(), 2);
    let bad = reports.iter().find(|r| r["file"].as_str().unwrap().ends_with("bad.jpg")).unwrap();
    assert_eq!(bad["ok"], false);
    assert_eq!(bad["error"]["code"], "unsupported_format");
    assert!(!out.join("bad").exists(), "a rejected file writes nothing");
    for (name, size) in [
        ("jpeg.jpg", (640, 480)),
        ("jpeg-low.jpg", (640, 480)),
        ("webp.webp", (640, 480)),
        ("png.png", (640, 480)),
        ("thumb.jpg", (300, 225)),
    ] {
        let img = image::open(out.join("photo").join(name)).unwrap();
        assert_eq!(img.dimensions(), size, "{name}");
    }

    // --variants limits what is written
    let out2 = tmp.path().join("out2");
    let run = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(["process", "--variants", "thumb,webp", "--out"])
        .arg(&out2)
        .arg(input.join("photo.png"))
        .output()
        .unwrap();
    assert!(run.status.success());
    let mut names: Vec<String> = std::fs::read_dir(out2.join("photo"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["thumb.jpg", "webp.webp"]);
    let text = String::from_utf8(run.stdout).unwrap();
    assert!(text.contains("640x480") && text.contains("thumb 300x225"), "{text}");
}

#[test]
fn bench_render_times_one_on_demand_render() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("photo.png");
    std::fs::write(&input, encode(&DynamicImage::ImageRgb8(gradient(800, 600)), ImageFormat::Png)).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(["bench", "--reps", "2", "--warmup", "0", "--render", "webp?w=64&fit=inside"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let line: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(line["spec"], "webp/w=64", "the spec is reported in canonical form");
    assert_eq!(line["size"], serde_json::json!([64, 48]));
    assert_eq!(line["reps"], 2);
    assert!(line["bytes"].as_u64().unwrap() > 0);
    assert!(line["median_ms"].as_f64().unwrap() > 0.0);

    let bad = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(["bench", "--render", "webp?w=0"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("bad render spec"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// Logs to a pipe or a file carry no ANSI colour codes.
#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path())
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().expect("a log line").unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(first.contains("imgpipe serving"), "{first}");
    assert!(!first.contains('\u{1b}'), "escape codes in {first:?}");
}

/// The command line is parsed before any configuration: `--help` works
/// whatever the environment holds, and `process` needs no AWS settings.
#[test]
fn commands_parse_before_they_configure() {
    let bin = env!("CARGO_BIN_EXE_imgpipe");
    let help = Command::new(bin).arg("--help").env("IMGPIPE_MAX_PIXELS", "lots").output().unwrap();
    assert!(help.status.success(), "{}", String::from_utf8_lossy(&help.stderr));
    assert!(String::from_utf8_lossy(&help.stdout).contains("serve"));

    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("photo.png");
    std::fs::write(&input, encode(&DynamicImage::ImageRgb8(gradient(64, 48)), ImageFormat::Png)).unwrap();
    let process = |env: (&str, &str)| {
        Command::new(bin)
            .args(["process", "--variants", "thumb", "--out"])
            .arg(tmp.path().join("out"))
            .arg(&input)
            .env(env.0, env.1)
            .output()
            .unwrap()
    };
    let aws = process(("IMGPIPE_BACKEND", "aws"));
    assert!(aws.status.success(), "process needs no buckets: {}", String::from_utf8_lossy(&aws.stderr));
    let bad = process(("IMGPIPE_MAX_PIXELS", "lots"));
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("IMGPIPE_MAX_PIXELS"));

    let serve = Command::new(bin).args(["serve", "--backend", "aws"]).output().unwrap();
    assert_eq!(serve.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&serve.stderr).contains("IMGPIPE_RAW_BUCKET"));
}

/// An empty token list or signing key would open what the operator meant
/// to close: every command that reads them refuses to start, before it
/// touches a store or a port.
#[test]
fn empty_secrets_are_refused_by_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let commands: [&[&str]; 5] = [
        &["serve", "--addr", "127.0.0.1:0"],
        &["import", "."],
        &["reprocess", "--all"],
        &["worker", "--queue-url", "http://127.0.0.1:9/q"],
        &["serve", "--backend", "aws", "--addr", "127.0.0.1:0"],
    ];
    for name in ["IMGPIPE_UPLOAD_TOKENS", "IMGPIPE_SIGNING_KEY"] {
        for args in commands {
            let out = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
                .args(args)
                .current_dir(tmp.path())
                .env_clear()
                .env("IMGPIPE_DATA_DIR", &data)
                .env("IMGPIPE_PUBLIC_BASE_URL", "https://img.example.test")
                .env(name, "")
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name}= {args:?}: {err}");
            assert!(err.contains(name) && err.contains("not empty"), "{name}= {args:?}: {err}");
        }
    }
    assert!(!data.exists(), "nothing was created");
}
