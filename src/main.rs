//! The `imgpipe` binary: read `Config`, pick a mode. On Lambda
//! (`IMGPIPE_HANDLER=http|events`) it runs that handler and takes no
//! arguments; otherwise `process` runs the engine over files, `serve` the
//! HTTP router on a port, `worker` the events handler on an SQS queue,
//! `import` existing images into either backend.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use imgpipe::config::{env_var as env, raw_env_var, Backend, Config, LogFormat};
use imgpipe::engine::{Engine, Variant};
use imgpipe::keys::ImageId;
use imgpipe::process;

#[derive(Parser)]
#[command(name = "imgpipe", version, about = "Upload once, get optimized image variants; any size on demand")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where and how fast a command run by hand (`import`, `reprocess`) works.
#[derive(clap::Args)]
struct ByHand {
    /// local or aws (default: IMGPIPE_BACKEND or local).
    #[arg(long, value_parser = ["local", "aws"])]
    backend: Option<String>,
    /// The local backend's folder (default: IMGPIPE_DATA_DIR or ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Images taken at once (default: twice the number of cores; CPU work
    /// never exceeds the cores).
    #[arg(long)]
    jobs: Option<usize>,
}

impl ByHand {
    fn jobs(&self) -> usize {
        self.jobs.unwrap_or_else(|| 2 * imgpipe::cpu::cores())
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (the upload page at /).
    ///
    /// Locally on a folder + SQLite (default), or on S3 + DynamoDB with
    /// --backend aws.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "IMGPIPE_ADDR", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Folder for uploads, variants and metadata (default: IMGPIPE_DATA_DIR or ./data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// local or aws (default: IMGPIPE_BACKEND or local).
        #[arg(long, value_parser = ["local", "aws"])]
        backend: Option<String>,
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
    /// Import existing images from a folder or s3://bucket/prefix.
    ///
    /// Each is named by its path under the source (its source_key). Running
    /// it again does nothing, and a run cut short is finished by the next.
    Import {
        /// A folder, or s3://bucket/prefix (read with the AWS environment).
        source: String,
        #[command(flatten)]
        run: ByHand,
    },
    /// Make the standard variants again for the current recipe.
    ///
    /// For after IMGPIPE_MAX_DIMENSION or IMGPIPE_THUMB_SIZE changed (see
    /// `imgpipe recipe`). Old variants keep their keys and bytes. Running it
    /// again does nothing.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["ids", "all"])))]
    Reprocess {
        /// An image to reprocess (repeat for more).
        #[arg(long = "id", value_name = "ID")]
        ids: Vec<String>,
        /// Every ready image made with another recipe.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        run: ByHand,
    },
    /// Print the recipe version these settings give, and what it covers.
    Recipe,
    /// Process uploads from the SQS queue of S3 notifications.
    ///
    /// What the Lambda events handler does, outside Lambda.
    Worker {
        /// The queue's URL (default: IMGPIPE_QUEUE_URL).
        #[arg(long)]
        queue_url: Option<String>,
    },
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
        /// Time one on-demand render instead of the five variants: the part
        /// of an image URL after the id, e.g. `webp/w=640`.
        #[arg(long, conflicts_with = "dump")]
        render: Option<String>,
    },
}

/// `imgpipe import`: list the source, then import with a progress bar on
/// a terminal, or one JSON line per image otherwise; a summary at the end.
/// Exit 0 when everything is ready, 1 when some image failed or could not
/// be imported this time.
async fn import(
    config: Config,
    source: imgpipe::import::Source,
    data_dir: Option<PathBuf>,
    jobs: usize,
) -> anyhow::Result<ExitCode> {
    use imgpipe::import::{self, Source};
    let needs_aws = matches!(config.backend, Backend::Aws { .. }) || matches!(source, Source::S3 { .. });
    let clients = match needs_aws {
        true => Some(imgpipe::aws::Clients::from_env(&config).await),
        false => None,
    };
    let state = open_state(config, data_dir, clients.as_ref()).await?;
    let (entries, skipped, bucket) = match &source {
        Source::Dir(dir) => {
            let (entries, skipped) = import::list_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
            (entries, skipped, None)
        }
        Source::S3 { bucket, prefix } => {
            let clients = clients.as_ref().context("AWS clients")?;
            let (entries, skipped) = import::list_bucket(clients, bucket, prefix)
                .await
                .with_context(|| format!("listing s3://{bucket}/{prefix}"))?;
            (entries, skipped, Some(imgpipe::store::s3::S3Store::new(clients.s3.clone(), bucket)))
        }
    };
    let progress = Progress::new(entries.len() + skipped.len());
    let report = |r: &import::Report| {
        let problem = (r.status != "ready").then(|| r.message.as_deref().unwrap_or_default());
        progress.item(r, &r.source_key, r.status, problem);
    };
    let skipped: Vec<import::Report> = skipped.into_iter().map(|(name, why)| import::skipped(name, why)).collect();
    for r in &skipped {
        report(r);
    }
    let mut summary = import::run(&state, bucket, entries, jobs, report).await;
    summary.skipped += skipped.len();
    progress.finish(&summary);
    eprintln!(
        "{} ready, {} failed, {} skipped, {} not imported (run again){}",
        summary.ready,
        summary.failed,
        summary.skipped,
        summary.errors,
        match summary.unchanged {
            0 => String::new(),
            n => format!("; {n} already done before this run"),
        }
    );
    let clean = summary.failed + summary.errors + summary.skipped == 0;
    Ok(if clean { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// How a command run by hand reports: a progress bar on a terminal (with
/// each problem printed above it), or one JSON line per item otherwise and
/// a last `{"summary": …}` line.
struct Progress(Option<imgpipe::progress::Bar>);

impl Progress {
    fn new(len: usize) -> Self {
        Progress(imgpipe::progress::Bar::on_terminal(len))
    }

    /// One item done: `report` as a JSON line, or `name` on the bar and the
    /// `problem`, if any, above it.
    fn item(&self, report: &impl serde::Serialize, name: &str, status: &str, problem: Option<&str>) {
        match &self.0 {
            Some(bar) => {
                if let Some(why) = problem {
                    bar.println(format!("{status} {name}: {why}"));
                }
                bar.done(name);
            }
            None => println!("{}", serde_json::to_string(report).unwrap_or_default()),
        }
    }

    fn finish(self, summary: &impl serde::Serialize) {
        match self.0 {
            Some(bar) => bar.finish(),
            None => println!("{}", serde_json::json!({ "summary": summary })),
        }
    }
}

/// The backend's state for a command run by hand (`import`, `reprocess`):
/// S3 + DynamoDB with `clients`, or the local folder + SQLite. These
/// commands write variant URLs into metadata, and items are final, so the
/// public base URL must be the backend's own: `IMGPIPE_PUBLIC_BASE_URL`,
/// the SSM parameter on AWS, or locally the one `serve` recorded in the
/// data dir. Without one the command refuses to start.
async fn open_state(
    mut config: Config,
    data_dir: Option<PathBuf>,
    clients: Option<&imgpipe::aws::Clients>,
) -> anyhow::Result<imgpipe::app::AppState> {
    match (&config.backend, data_dir) {
        (Backend::Aws { .. }, Some(_)) => anyhow::bail!("--data-dir is for the local backend"),
        (Backend::Aws { .. }, None) => {
            let clients = clients.context("AWS clients")?;
            let config = imgpipe::aws::with_parameters(config, clients).await?;
            if config.public_base_url.is_empty() {
                anyhow::bail!(
                    "no public base URL for the variant URLs this command writes: set IMGPIPE_PUBLIC_BASE_URL \
                     to the CDN's address (https://<distribution>.cloudfront.net), or IMGPIPE_PARAMETERS to \
                     the stack's SSM path, which holds it (terraform output parameters_path)"
                );
            }
            Ok(imgpipe::aws::state(config, clients)?)
        }
        (Backend::Local { data_dir: default }, given) => {
            let data_dir = given.unwrap_or_else(|| default.clone());
            if config.public_base_url.is_empty() {
                config.public_base_url = imgpipe::serve::recorded_public_base(&data_dir).with_context(|| {
                    format!(
                        "no public base URL for the variant URLs this command writes: set IMGPIPE_PUBLIC_BASE_URL \
                         to the address clients reach imgpipe serve at, or run imgpipe serve on {} once (it \
                         records its own)",
                        data_dir.display()
                    )
                })?;
            }
            Ok(imgpipe::serve::local_state(config, &data_dir)?.0)
        }
    }
}

/// `imgpipe reprocess`: like `import`'s output, a progress bar on a
/// terminal or one JSON line per image, and a summary. Exit 0 unless some
/// image could not be done this time.
async fn reprocess(
    config: Config,
    ids: Option<Vec<ImageId>>,
    data_dir: Option<PathBuf>,
    jobs: usize,
) -> anyhow::Result<ExitCode> {
    let clients = match config.backend {
        Backend::Aws { .. } => Some(imgpipe::aws::Clients::from_env(&config).await),
        Backend::Local { .. } => None,
    };
    let state = open_state(config, data_dir, clients.as_ref()).await?;
    let recipe = state.engine.recipe();
    let ids = match ids {
        Some(ids) => ids,
        None => state.meta.outdated(recipe).await.context("listing the images made with another recipe")?,
    };
    let progress = Progress::new(ids.len());
    let summary = imgpipe::reprocess::run(&state, ids, jobs, |r| {
        let problem = matches!(r.status, "refused" | "error")
            .then(|| r.code.as_deref().or(r.message.as_deref()).unwrap_or_default());
        progress.item(r, &r.id.to_string(), r.status, problem);
    })
    .await;
    progress.finish(&summary);
    eprintln!(
        "recipe {recipe}: {} reprocessed, {} already current or not ready, {} refused by the current settings, {} not done (run again)",
        summary.ready, summary.unchanged, summary.refused, summary.errors
    );
    Ok(if summary.errors == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn parse_variant(s: &str) -> Result<Variant, String> {
    Variant::from_name(s.trim()).ok_or_else(|| format!("unknown variant {s:?} (jpeg, jpeg-low, webp, png, thumb)"))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal: a log file or a collector
    // would get raw escape codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
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

/// A command whose output is piped into `head` ends quietly when the reader
/// stops, as other command-line tools do, instead of panicking in
/// `println!`. Rust ignores SIGPIPE by default; this restores it. Sockets
/// are unaffected (Rust sends with MSG_NOSIGNAL), so it is for the
/// commands that print, not for `serve` or `worker`.
fn stdout_may_close() {
    // SAFETY: setting a signal's disposition to its default, once, before
    // any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the runtime")
}

fn run() -> anyhow::Result<ExitCode> {
    // On Lambda the binary takes no arguments: IMGPIPE_HANDLER picks the
    // handler (and is refused outside a Lambda runtime).
    if env("IMGPIPE_HANDLER").is_some() && std::env::args_os().len() == 1 {
        let config = Config::from_env().context("configuration")?;
        init_logging(LogFormat::Json);
        runtime()?.block_on(imgpipe::lambda::run(config)).map_err(|e| anyhow::anyhow!(e))?;
        return Ok(ExitCode::SUCCESS);
    }
    // The command line first: --help and --version never read the
    // environment, and each command reads only the settings it needs.
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Recipe
            | Command::Process { .. }
            | Command::Bench { .. }
            | Command::Import { .. }
            | Command::Reprocess { .. }
    ) {
        stdout_may_close();
    }
    init_logging(imgpipe::config::log_format(&env).context("configuration")?);
    // `serve --backend` stands in for IMGPIPE_BACKEND.
    let backend_flag = match &cli.command {
        Command::Serve { backend, .. } => backend.clone(),
        Command::Import { run, .. } | Command::Reprocess { run, .. } => run.backend.clone(),
        _ => None,
    };
    let full_config = || {
        Config::from_lookup(|k| match k {
            "IMGPIPE_BACKEND" => backend_flag.clone().or_else(|| env(k)),
            _ => raw_env_var(k),
        })
        .context("configuration")
    };
    let limits = || imgpipe::config::limits(&env).context("configuration");
    match cli.command {
        Command::Bench { images, reps, warmup, dump, render } => {
            let engine = Engine::new(limits()?);
            for image in &images {
                let context = || format!("benchmarking {}", image.display());
                let line = match &render {
                    Some(spec) => {
                        let line =
                            imgpipe::bench::bench_render(&engine, image, spec, reps, warmup).with_context(context)?;
                        serde_json::to_string(&line)?
                    }
                    None => {
                        let line = imgpipe::bench::bench_file(&engine, image, reps, warmup, dump.as_deref())
                            .with_context(context)?;
                        serde_json::to_string(&line)?
                    }
                };
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { addr, data_dir, backend: _ } => {
            let mut config = full_config()?;
            if config.public_base_url.is_empty() {
                config.public_base_url = format!("http://{addr}");
            }
            config.loopback_only = addr.ip().is_loopback();
            match (&config.backend, data_dir) {
                (Backend::Aws { .. }, Some(_)) => anyhow::bail!("--data-dir is for the local backend"),
                (Backend::Aws { .. }, None) => runtime()?.block_on(imgpipe::serve::run_aws(config, addr))?,
                (Backend::Local { data_dir: default }, given) => {
                    let data_dir = given.unwrap_or_else(|| default.clone());
                    runtime()?.block_on(imgpipe::serve::run(config, addr, &data_dir))?
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker { queue_url } => {
            let config = full_config()?;
            let names = imgpipe::aws::names(&config).context("imgpipe worker needs IMGPIPE_BACKEND=aws")?;
            let queue_url = queue_url
                .or_else(|| names.queue_url.map(String::from))
                .context("a queue URL is required: --queue-url or IMGPIPE_QUEUE_URL")?;
            let raw_bucket = names.raw_bucket.to_string();
            runtime()?.block_on(async {
                let clients = imgpipe::aws::Clients::from_env(&config).await;
                let config = imgpipe::aws::with_parameters(config, &clients).await?;
                let state = imgpipe::aws::state(config, &clients)?;
                tracing::info!(%queue_url, "imgpipe worker polling");
                imgpipe::worker::run(state, &clients, &queue_url, &raw_bucket, imgpipe::serve::shutdown_signal())
                    .await?;
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { source, run } => {
            let config = full_config()?;
            let source = imgpipe::import::Source::parse(&source).map_err(anyhow::Error::msg)?;
            runtime()?.block_on(import(config, source, run.data_dir.clone(), run.jobs()))
        }
        Command::Reprocess { ids, all, run } => {
            let ids = match all {
                true => None,
                false => Some(
                    ids.iter()
                        .map(|id| ImageId::parse(id).map_err(|_| anyhow::anyhow!("{id:?} is not an image id")))
                        .collect::<anyhow::Result<Vec<_>>>()?,
                ),
            };
            let config = full_config()?;
            runtime()?.block_on(reprocess(config, ids, run.data_dir.clone(), run.jobs()))
        }
        Command::Recipe => {
            let engine = Engine::new(limits()?);
            println!("{}", engine.recipe());
            print!("{}", imgpipe::recipe::describe(&engine));
            Ok(ExitCode::SUCCESS)
        }
        Command::Process { inputs, out, variants, json, jobs } => {
            let engine = Engine::new(limits()?);
            let files = process::expand_inputs(&inputs).context("reading inputs")?;
            let variants = variants.unwrap_or_else(|| Variant::ALL.to_vec());
            let threads = jobs.unwrap_or_else(imgpipe::cpu::cores);
            let reports = process::run(&engine, &files, &out, &variants, threads, |r| {
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
