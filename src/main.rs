//! The `imgpipe` binary: read `Config`, pick a mode. `process` runs the
//! engine over files; `serve` runs the HTTP router on a port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use imgpipe::config::{Backend, Config, LogFormat};
use imgpipe::engine::{Engine, Variant};
use imgpipe::process;

#[derive(Parser)]
#[command(name = "imgpipe", version, about = "Upload once, get optimized image variants; any size on demand")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Time the five-variant recipe step by step; one JSON line per image.
    Bench {
        /// Image files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Timed repetitions per image (the median is reported).
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Untimed repetitions first.
        #[arg(long, default_value_t = 1)]
        warmup: usize,
        /// Write outputs and pre-encode pixels here (for SSIM).
        #[arg(long)]
        dump: Option<PathBuf>,
    },
    /// Run the HTTP service locally: a folder for images, SQLite for metadata.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "IMGPIPE_ADDR", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Folder for uploads, variants and metadata (default: IMGPIPE_DATA_DIR or ./data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Make the standard variants of image files: OUT/<stem>/<variant>.<ext>.
    Process {
        /// Image files or folders of images.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Comma-separated subset of jpeg,jpeg-low,webp,png,thumb.
        #[arg(long, value_delimiter = ',', value_parser = parse_variant)]
        variants: Option<Vec<Variant>>,
        /// One JSON object per image on stdout instead of text.
        #[arg(long)]
        json: bool,
        /// Files processed at once (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
    },
}

fn parse_variant(s: &str) -> Result<Variant, String> {
    Variant::from_name(s.trim()).ok_or_else(|| format!("unknown variant {s:?} (jpeg, jpeg-low, webp, png, thumb)"))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("imgpipe: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let config = Config::from_env().context("configuration")?;
    init_logging(config.log_format);
    match cli.command {
        Command::Bench { images, reps, warmup, dump } => {
            let engine = Engine::new(config.limits);
            for image in &images {
                let line = imgpipe::bench::bench_file(&engine, image, reps, warmup, dump.as_deref())
                    .with_context(|| format!("benchmarking {}", image.display()))?;
                println!("{}", serde_json::to_string(&line)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { addr, data_dir } => {
            let mut config = config;
            let data_dir = match (data_dir, &config.backend) {
                (Some(d), _) => d,
                (None, Backend::Local { data_dir }) => data_dir.clone(),
                (None, Backend::Aws { .. }) => {
                    anyhow::bail!("IMGPIPE_BACKEND=aws is not available in this build of serve")
                }
            };
            if config.public_base_url.is_empty() {
                config.public_base_url = format!("http://{addr}");
            }
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            runtime.block_on(imgpipe::serve::run(config, addr, &data_dir))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Process { inputs, out, variants, json, jobs } => {
            let engine = Engine::new(config.limits);
            let files = process::expand_inputs(&inputs).context("reading inputs")?;
            let variants = variants.unwrap_or_else(|| Variant::ALL.to_vec());
            let workers = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let reports = process::run(&engine, &files, &out, &variants, workers, |r| {
                if json {
                    println!("{}", serde_json::to_string(r).unwrap_or_default());
                } else {
                    println!("{}", process::describe(r));
                }
            });
            let rejected = reports.iter().filter(|r| !r.ok).count();
            if !json {
                eprintln!("{} processed, {} rejected", reports.len() - rejected, rejected);
            }
            Ok(if rejected == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
    }
}
