//! Configuration: `IMGPIPE_*` environment variables (12-factor), with flags
//! for `serve` layered on top by `main.rs`. Read and checked once, here;
//! nothing else in the crate reads the environment.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::engine::Limits;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} must be {what}, got {value:?}")]
    Invalid { name: &'static str, what: &'static str, value: String },
    #[error("{0} is required with IMGPIPE_BACKEND=aws")]
    Missing(&'static str),
    #[error(
        "IMGPIPE_RAW_BUCKET and IMGPIPE_PROCESSED_BUCKET are both {0:?}: every variant written would be \
         taken as a new drop-in, without end; give the processed objects a bucket of their own"
    )]
    SameBucket(String),
    #[error(
        "IMGPIPE_HANDLER is set, but this is not a Lambda runtime (AWS_LAMBDA_RUNTIME_API is unset); \
         outside Lambda run `imgpipe worker` or `imgpipe serve --backend aws`"
    )]
    NotLambda,
}

/// Variables only the local backend or the `serve` process reads (Lambda
/// runs one request per sandbox, so it has no render queue): everything
/// else named `IMGPIPE_*` is read in AWS mode too, and `infra/` sets it on
/// the Lambda functions (checked by `scripts/check_infra.py`).
pub const LOCAL_ONLY_VARIABLES: &[&str] = &[
    "IMGPIPE_DATA_DIR",
    "IMGPIPE_UPLOAD_SECRET",
    "IMGPIPE_ADDR",
    "IMGPIPE_MAX_QUEUED_RENDERS",
    "IMGPIPE_MAX_QUEUED_RENDERS_PER_CLIENT",
    "IMGPIPE_TRUSTED_PROXIES",
    "IMGPIPE_MAX_CONNECTIONS",
    "IMGPIPE_UPLOAD_BODY_TIMEOUT_SECS",
    "IMGPIPE_UPLOADS_PER_MINUTE",
    "IMGPIPE_MAX_PENDING_UPLOADS",
    "IMGPIPE_INBOX_SETTLE_SECS",
    "IMGPIPE_RENDER_EXPIRY_DAYS",
    "IMGPIPE_MAX_RENDER_BYTES",
];

/// An address or a network (`10.0.0.0/8`, `2001:db8::/32`, `127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    pub fn parse(s: &str) -> Option<Net> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, p.parse::<u8>().ok()?),
            None => {
                let a = s.parse::<IpAddr>().ok()?;
                (a, if a.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Net { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        };
        let ((net, width), (ip, ip_width)) = (bits(self.addr), bits(ip.to_canonical()));
        if width != ip_width {
            return false;
        }
        let shift = width - u32::from(self.prefix);
        shift >= width || (net >> shift) == (ip >> shift)
    }
}

/// The default bound on one render's cost (`render_cost`): a 50 MP JPEG or
/// PNG, a 25 MP AVIF.
pub const DEFAULT_MAX_RENDER_COST: u64 = 100;

/// Variables that, when set, must say something: an empty token list or
/// signing key would silently open what the operator meant to close.
const NOT_EMPTY_VARIABLES: &[&str] = &["IMGPIPE_UPLOAD_TOKENS", "IMGPIPE_SIGNING_KEY", "IMGPIPE_ADMIN_TOKENS"];

/// Variables that may also come from SSM Parameter Store, as parameters
/// named `<IMGPIPE_PARAMETERS><VARIABLE>` (SecureString for the secrets),
/// read once at start; an environment variable of the same name wins.
/// `infra/` keeps the secrets and the CDN's URL there rather than in the
/// functions' environment.
pub const PARAMETER_VARIABLES: &[&str] = &[
    "IMGPIPE_UPLOAD_TOKENS",
    "IMGPIPE_SIGNING_KEY",
    "IMGPIPE_ADMIN_TOKENS",
    "IMGPIPE_PUBLIC_BASE_URL",
    "IMGPIPE_DISTRIBUTION_ID",
];

/// The process environment, with empty values as unset.
pub fn env_var(name: &str) -> Option<String> {
    raw_env_var(name).filter(|v| !v.is_empty())
}

/// The process environment as it is, an empty value included: what
/// `Config::from_lookup` takes, so that it can refuse an empty secret.
pub fn raw_env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Where blobs and metadata live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A folder for both buckets and SQLite for metadata.
    Local { data_dir: PathBuf },
    /// S3 buckets and a DynamoDB table; endpoints from the AWS SDK's own
    /// configuration (`AWS_ENDPOINT_URL`, region, credentials).
    Aws { raw_bucket: String, processed_bucket: String, table: String, queue_url: Option<String> },
}

/// Which Lambda entry point this process is (`IMGPIPE_HANDLER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// The Function URL: the HTTP router through `lambda_http`.
    Http,
    /// S3 ObjectCreated notifications, through SQS or direct.
    Events,
}

/// Which other origins' pages may call the API (`IMGPIPE_CORS_ORIGINS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// Same-origin only: no CORS headers are sent (the default).
    #[default]
    None,
    /// Any origin (`*`): the API takes no cookies, so this exposes nothing
    /// a plain HTTP client could not read.
    Any,
    /// Exactly these origins, as `scheme://host[:port]`.
    List(Vec<String>),
}

impl CorsOrigins {
    /// `*`, or a comma list of origins; anything with a path, query or
    /// another scheme is refused, since a browser never sends it as Origin.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let raw = raw.trim();
        if raw == "*" {
            return Ok(CorsOrigins::Any);
        }
        let mut origins = Vec::new();
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let origin = item.trim_end_matches('/').to_ascii_lowercase();
            let host = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
            if !host.is_some_and(|h| !h.is_empty() && !h.contains(['/', '?', '#', '*', ' '])) {
                return Err(ConfigError::Invalid {
                    name: "IMGPIPE_CORS_ORIGINS",
                    what: "* or a comma list of origins like https://app.example.com",
                    value: raw.to_string(),
                });
            }
            origins.push(origin);
        }
        Ok(if origins.is_empty() { CorsOrigins::None } else { CorsOrigins::List(origins) })
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`,
    /// or `None` when that origin may not read the answer.
    pub fn allow(&self, origin: &str) -> Option<String> {
        match self {
            CorsOrigins::None => None,
            CorsOrigins::Any => Some("*".into()),
            CorsOrigins::List(list) => list.iter().find(|o| o.eq_ignore_ascii_case(origin)).map(|_| origin.to_string()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub backend: Backend,
    pub limits: Limits,
    /// Base of the variant URLs in metadata, e.g. `https://cdn.example.com`.
    /// Empty means URLs relative to the host that served the request.
    pub public_base_url: String,
    /// The CloudFront distribution whose copies `DELETE /images/<id>`
    /// invalidates (AWS only; none locally).
    pub distribution_id: Option<String>,
    /// Tokens accepted by `POST /uploads` (`X-Imgpipe-Token` or
    /// `Authorization: Bearer`); empty means open.
    pub upload_tokens: Vec<String>,
    /// Tokens that may delete any image (drop-ins and imports included);
    /// an upload token never deletes.
    pub admin_tokens: Vec<String>,
    /// The server answers on loopback addresses only (`serve` on
    /// 127.0.0.1 or ::1, set from its address, never from the
    /// environment): only then may a DELETE come without a token.
    pub loopback_only: bool,
    /// Origins whose pages may call the API from a browser.
    pub cors_origins: CorsOrigins,
    /// Key for `s=` signatures on on-demand transforms; `None` means unsigned.
    pub signing_key: Option<Vec<u8>>,
    /// Key for the local presigned PUT; `None` means one kept in the data dir.
    pub upload_secret: Option<Vec<u8>>,
    /// How long a presigned PUT stays valid.
    pub upload_ttl: Duration,
    pub log_format: LogFormat,
    /// Set on Lambda: which entry point to run.
    pub handler: Option<Handler>,
    /// Path-style S3 URLs (`endpoint/bucket/key`), for endpoints without
    /// per-bucket host names (MinIO, some emulators).
    pub s3_path_style: bool,
    /// SSM Parameter Store path (`/imgpipe/prod/`) holding some of
    /// `PARAMETER_VARIABLES`; `None` means the environment alone.
    pub parameters_path: Option<String>,
    /// Renders that may wait for a core before more are refused with 503.
    pub max_queued_renders: usize,
    /// Of those, how many one client may have waiting.
    pub max_queued_renders_per_client: usize,
    /// Proxies whose `X-Forwarded-For` names the client
    /// (`IMGPIPE_TRUSTED_PROXIES`); by default none, so a client is the
    /// address it connects from.
    pub trusted_proxies: Vec<Net>,
    /// The most an on-demand render may cost, in megapixels of the source
    /// weighted by its format's decode cost (see `render_cost`).
    pub max_render_cost: u64,
    /// Connections `serve` keeps open at once (kept below the open-file
    /// limit at start).
    pub max_connections: usize,
    /// What every upload body to the local `/_upload` route gets, plus a
    /// second per `MIN_UPLOAD_RATE` bytes signed: past it the body is cut.
    pub upload_body_timeout: Duration,
    /// `POST /uploads` one client may make a minute.
    pub uploads_per_minute: u32,
    /// Items one client may have waiting for their bytes.
    pub max_pending_uploads: usize,
    /// How long an inbox file must stay unchanged before it is taken
    /// (unless it was renamed in complete).
    pub inbox_settle: Duration,
    /// Renders not read for this long are removed (`serve`; off by default,
    /// as the AWS lifecycle rule is).
    pub render_expiry: Option<Duration>,
    /// All renders together are kept under this many bytes, the least
    /// recently read removed first (`serve`; off by default).
    pub max_render_bytes: Option<u64>,
}

/// The slowest upload body `serve` waits for, in bytes a second: a
/// 50 MiB upload gets the base timeout plus 800 s.
pub const MIN_UPLOAD_RATE: u64 = 64 * 1024;

/// What rendering from a `width` × `height` source of `format` costs, in
/// weighted megapixels: decoding dominates a render, and its cost per pixel
/// differs by format (AV1's is several times a JPEG's, with shrink-on-load
/// a JPEG costs less). Rounded up.
pub fn render_cost(format: &str, width: u32, height: u32) -> u64 {
    let weight = match format {
        "avif" | "heic" | "heif" => 4.0,
        "webp" | "png" | "tiff" => 1.5,
        "bmp" => 0.5,
        _ => 1.0,
    };
    (f64::from(width) * f64::from(height) / 1e6 * weight).ceil() as u64
}

impl Config {
    /// Read the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(raw_env_var)
    }

    /// The one config builder: every command, `serve` and both Lambda
    /// handlers come through here, with `get` answering each variable as it
    /// is set (tests pass a map, so they need not touch the process
    /// environment). A variable of `NOT_EMPTY_VARIABLES` set to an empty
    /// value is refused; any other empty value counts as unset.
    pub fn from_lookup(raw: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        for name in NOT_EMPTY_VARIABLES {
            if raw(name).is_some_and(|v| v.trim().is_empty()) {
                return Err(ConfigError::Invalid {
                    name,
                    what: "unset, or not empty",
                    value: raw(name).unwrap_or_default(),
                });
            }
        }
        let get = |name: &str| raw(name).filter(|v| !v.is_empty());
        let limits = limits(&get)?;
        let backend = match get("IMGPIPE_BACKEND").as_deref() {
            None | Some("local") => Backend::Local {
                data_dir: get("IMGPIPE_DATA_DIR").map_or_else(|| PathBuf::from("./data"), PathBuf::from),
            },
            Some("aws") => {
                let need = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
                let (raw_bucket, processed_bucket) = (need("IMGPIPE_RAW_BUCKET")?, need("IMGPIPE_PROCESSED_BUCKET")?);
                if raw_bucket == processed_bucket {
                    return Err(ConfigError::SameBucket(raw_bucket));
                }
                Backend::Aws {
                    raw_bucket,
                    processed_bucket,
                    table: need("IMGPIPE_TABLE")?,
                    queue_url: get("IMGPIPE_QUEUE_URL"),
                }
            }
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "IMGPIPE_BACKEND",
                    what: "local or aws",
                    value: other.to_string(),
                })
            }
        };
        let log_format = log_format(&get)?;
        let upload_ttl = Duration::from_secs(number(&get, "IMGPIPE_UPLOAD_TTL_SECS", 900)?);
        let handler = match get("IMGPIPE_HANDLER").as_deref() {
            None => None,
            Some("http") => Some(Handler::Http),
            Some("events") => Some(Handler::Events),
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "IMGPIPE_HANDLER",
                    what: "http or events",
                    value: other.to_string(),
                })
            }
        };
        if handler.is_some() {
            if get("AWS_LAMBDA_RUNTIME_API").is_none() {
                return Err(ConfigError::NotLambda);
            }
            if !matches!(backend, Backend::Aws { .. }) {
                return Err(ConfigError::Invalid {
                    name: "IMGPIPE_BACKEND",
                    what: "aws when IMGPIPE_HANDLER is set",
                    value: get("IMGPIPE_BACKEND").unwrap_or_else(|| "local".into()),
                });
            }
        }
        let s3_path_style = match get("IMGPIPE_S3_PATH_STYLE").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("false" | "0" | "no") => false,
            Some("true" | "1" | "yes") => true,
            Some(_) => return Err(invalid("IMGPIPE_S3_PATH_STYLE", "true or false", &get)),
        };
        let parameters_path = match get("IMGPIPE_PARAMETERS") {
            None => None,
            Some(p) if p.starts_with('/') && !p.contains(char::is_whitespace) && p.len() <= 900 => {
                Some(if p.ends_with('/') { p } else { format!("{p}/") })
            }
            Some(_) => return Err(invalid("IMGPIPE_PARAMETERS", "an SSM parameter path like /imgpipe/prod/", &get)),
        };
        if parameters_path.is_some() && !matches!(backend, Backend::Aws { .. }) {
            return Err(invalid("IMGPIPE_PARAMETERS", "set only with IMGPIPE_BACKEND=aws", &get));
        }
        let tokens = |name: &'static str| {
            let list: Vec<String> = get(name)
                .map(|v| v.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect())
                .unwrap_or_default();
            match get(name).is_some() && list.is_empty() {
                true => Err(invalid(name, "unset, or a comma list of tokens", &get)),
                false => Ok(list),
            }
        };
        let upload_tokens = tokens("IMGPIPE_UPLOAD_TOKENS")?;
        let admin_tokens = tokens("IMGPIPE_ADMIN_TOKENS")?;
        let signing_key = get("IMGPIPE_SIGNING_KEY").map(String::into_bytes);
        if signing_key.as_ref().is_some_and(|k| k.trim_ascii().is_empty()) {
            return Err(invalid("IMGPIPE_SIGNING_KEY", "unset, or a key that is not blank", &get));
        }
        let cores = crate::cpu::cores() as u64;
        let max_queued_renders = number(&get, "IMGPIPE_MAX_QUEUED_RENDERS", 8 * cores)? as usize;
        let max_queued_renders_per_client =
            number(&get, "IMGPIPE_MAX_QUEUED_RENDERS_PER_CLIENT", (max_queued_renders as u64 / 4).max(1))? as usize;
        let trusted_proxies = match get("IMGPIPE_TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Net::parse)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    invalid("IMGPIPE_TRUSTED_PROXIES", "a comma list of addresses or networks (10.0.0.0/8)", &get)
                })?,
        };
        let max_render_cost = number(&get, "IMGPIPE_MAX_RENDER_COST", DEFAULT_MAX_RENDER_COST)?;
        let max_connections = number(&get, "IMGPIPE_MAX_CONNECTIONS", 1024)? as usize;
        let upload_body_timeout = Duration::from_secs(number(&get, "IMGPIPE_UPLOAD_BODY_TIMEOUT_SECS", 30)?);
        let uploads_per_minute = u32::try_from(number(&get, "IMGPIPE_UPLOADS_PER_MINUTE", 120)?)
            .map_err(|_| invalid("IMGPIPE_UPLOADS_PER_MINUTE", "a whole number up to 4294967295", &get))?;
        let max_pending_uploads = number(&get, "IMGPIPE_MAX_PENDING_UPLOADS", 100)? as usize;
        let inbox_settle = Duration::from_secs(number(&get, "IMGPIPE_INBOX_SETTLE_SECS", 5)?);
        let optional = |name: &'static str| match get(name) {
            None => Ok(None),
            Some(_) => number(&get, name, 0).map(Some),
        };
        let render_expiry = optional("IMGPIPE_RENDER_EXPIRY_DAYS")?.map(|d| Duration::from_secs(d * 86_400));
        let max_render_bytes = optional("IMGPIPE_MAX_RENDER_BYTES")?;
        Ok(Config {
            parameters_path,
            max_queued_renders,
            max_queued_renders_per_client,
            trusted_proxies,
            max_render_cost,
            max_connections,
            upload_body_timeout,
            uploads_per_minute,
            max_pending_uploads,
            inbox_settle,
            render_expiry,
            max_render_bytes,
            backend,
            limits,
            public_base_url: get("IMGPIPE_PUBLIC_BASE_URL").unwrap_or_default().trim_end_matches('/').to_string(),
            distribution_id: get("IMGPIPE_DISTRIBUTION_ID"),
            upload_tokens,
            admin_tokens,
            loopback_only: false,
            cors_origins: get("IMGPIPE_CORS_ORIGINS").map_or(Ok(CorsOrigins::None), |v| CorsOrigins::parse(&v))?,
            signing_key,
            upload_secret: get("IMGPIPE_UPLOAD_SECRET").map(String::into_bytes),
            upload_ttl,
            log_format,
            handler,
            s3_path_style,
        })
    }
}

/// The engine's limits (`IMGPIPE_MAX_*`, `IMGPIPE_THUMB_SIZE`): all that
/// `process` and `bench` need, so they work whatever the backend settings.
pub fn limits(get: &impl Fn(&str) -> Option<String>) -> Result<Limits, ConfigError> {
    let defaults = Limits::default();
    Ok(Limits {
        max_upload_bytes: number(get, "IMGPIPE_MAX_UPLOAD_BYTES", defaults.max_upload_bytes)?,
        max_pixels: number(get, "IMGPIPE_MAX_PIXELS", defaults.max_pixels)?,
        max_dimension: number(get, "IMGPIPE_MAX_DIMENSION", u64::from(defaults.max_dimension))?
            .try_into()
            .ok()
            .filter(|d| (1..=crate::transform::MAX_SIDE).contains(d))
            .ok_or_else(|| invalid("IMGPIPE_MAX_DIMENSION", "1..=8192", get))?,
        thumb_size: number(get, "IMGPIPE_THUMB_SIZE", u64::from(defaults.thumb_size))?
            .try_into()
            .ok()
            .filter(|d| (1..=crate::transform::MAX_SIDE).contains(d))
            .ok_or_else(|| invalid("IMGPIPE_THUMB_SIZE", "1..=8192", get))?,
    })
}

/// `IMGPIPE_LOG_FORMAT`.
pub fn log_format(get: &impl Fn(&str) -> Option<String>) -> Result<LogFormat, ConfigError> {
    match get("IMGPIPE_LOG_FORMAT").as_deref() {
        None | Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => {
            Err(ConfigError::Invalid { name: "IMGPIPE_LOG_FORMAT", what: "text or json", value: other.to_string() })
        }
    }
}

fn invalid(name: &'static str, what: &'static str, get: &impl Fn(&str) -> Option<String>) -> ConfigError {
    ConfigError::Invalid { name, what, value: get(name).unwrap_or_default() }
}

fn number(get: &impl Fn(&str) -> Option<String>, name: &'static str, default: u64) -> Result<u64, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(v) => v.trim().parse::<u64>().ok().filter(|n| *n > 0).ok_or(ConfigError::Invalid {
            name,
            what: "a positive whole number",
            value: v,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_safe() {
        let c = config(&[]).unwrap();
        assert_eq!(c.limits.max_pixels, 50_000_000);
        assert_eq!(c.limits.max_upload_bytes, 50 * 1024 * 1024);
        assert_eq!(c.limits.max_dimension, 4096);
        assert_eq!(c.backend, Backend::Local { data_dir: PathBuf::from("./data") });
        assert!(c.upload_tokens.is_empty() && c.signing_key.is_none());
    }

    #[test]
    fn bad_values_are_named() {
        let e = config(&[("IMGPIPE_MAX_PIXELS", "lots")]).unwrap_err().to_string();
        assert!(e.contains("IMGPIPE_MAX_PIXELS"), "{e}");
        assert!(config(&[("IMGPIPE_MAX_DIMENSION", "9000")]).is_err());
        assert!(config(&[("IMGPIPE_BACKEND", "gcs")]).is_err());
        let e = config(&[("IMGPIPE_BACKEND", "aws")]).unwrap_err().to_string();
        assert!(e.contains("IMGPIPE_RAW_BUCKET"), "{e}");
    }

    #[test]
    fn lambda_handlers_need_the_runtime_and_aws() {
        let aws = [
            ("IMGPIPE_BACKEND", "aws"),
            ("IMGPIPE_RAW_BUCKET", "raw"),
            ("IMGPIPE_PROCESSED_BUCKET", "out"),
            ("IMGPIPE_TABLE", "t"),
            ("IMGPIPE_HANDLER", "events"),
        ];
        assert!(matches!(config(&aws), Err(ConfigError::NotLambda)));
        let mut on_lambda = aws.to_vec();
        on_lambda.push(("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"));
        assert_eq!(config(&on_lambda).unwrap().handler, Some(Handler::Events));
        let local = [("IMGPIPE_HANDLER", "http"), ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")];
        assert!(config(&local).unwrap_err().to_string().contains("IMGPIPE_BACKEND"));
        assert!(config(&[("IMGPIPE_HANDLER", "cron")]).is_err());
        assert!(config(&[("IMGPIPE_S3_PATH_STYLE", "TRUE")]).unwrap().s3_path_style);
        assert!(config(&[("IMGPIPE_S3_PATH_STYLE", "maybe")]).is_err());
    }

    #[test]
    fn cors_origins_parse_and_match() {
        assert_eq!(config(&[]).unwrap().cors_origins, CorsOrigins::None);
        let any = config(&[("IMGPIPE_CORS_ORIGINS", " * ")]).unwrap().cors_origins;
        assert_eq!(any.allow("https://x.example"), Some("*".into()));
        let list = CorsOrigins::parse("https://App.example.com/, http://127.0.0.1:5173").unwrap();
        assert_eq!(list.allow("https://app.example.com").as_deref(), Some("https://app.example.com"));
        assert_eq!(list.allow("http://127.0.0.1:5173").as_deref(), Some("http://127.0.0.1:5173"));
        assert_eq!(list.allow("http://127.0.0.1:5174"), None);
        assert_eq!(list.allow("null"), None);
        assert_eq!(CorsOrigins::None.allow("https://app.example.com"), None);
        for bad in ["app.example.com", "https://app.example.com/path", "ftp://x", "https://*.example.com", "https://"] {
            let e = CorsOrigins::parse(bad).unwrap_err().to_string();
            assert!(e.contains("IMGPIPE_CORS_ORIGINS"), "{bad}: {e}");
        }
    }

    #[test]
    fn parameters_path_is_an_aws_setting() {
        let aws = [
            ("IMGPIPE_BACKEND", "aws"),
            ("IMGPIPE_RAW_BUCKET", "r"),
            ("IMGPIPE_PROCESSED_BUCKET", "p"),
            ("IMGPIPE_TABLE", "t"),
        ];
        let with = |path: &'static str| {
            let mut vars = aws.to_vec();
            vars.push(("IMGPIPE_PARAMETERS", path));
            config(&vars)
        };
        assert_eq!(with("/imgpipe/prod").unwrap().parameters_path.as_deref(), Some("/imgpipe/prod/"));
        assert_eq!(with("/imgpipe/prod/").unwrap().parameters_path.as_deref(), Some("/imgpipe/prod/"));
        assert!(with("imgpipe/prod").is_err());
        assert!(config(&[("IMGPIPE_PARAMETERS", "/imgpipe/")]).unwrap_err().to_string().contains("IMGPIPE_PARAMETERS"));
        assert_eq!(config(&aws).unwrap().parameters_path, None);
    }

    #[test]
    fn raw_and_processed_must_be_two_buckets() {
        let aws = |processed: &'static str| {
            config(&[
                ("IMGPIPE_BACKEND", "aws"),
                ("IMGPIPE_RAW_BUCKET", "photos"),
                ("IMGPIPE_PROCESSED_BUCKET", processed),
                ("IMGPIPE_TABLE", "t"),
            ])
        };
        let e = aws("photos").unwrap_err().to_string();
        assert!(e.contains("IMGPIPE_PROCESSED_BUCKET") && e.contains("\"photos\""), "{e}");
        assert!(aws("photos-out").is_ok());
    }

    #[test]
    fn other_empty_values_are_unset() {
        let c =
            config(&[("IMGPIPE_MAX_PIXELS", ""), ("IMGPIPE_PUBLIC_BASE_URL", ""), ("IMGPIPE_BACKEND", "")]).unwrap();
        assert_eq!(c.limits.max_pixels, 50_000_000);
        assert!(matches!(c.backend, Backend::Local { .. }));
    }

    #[test]
    fn fairness_settings() {
        let c = config(&[]).unwrap();
        assert_eq!(c.max_queued_renders_per_client, (c.max_queued_renders / 4).max(1));
        assert!(c.trusted_proxies.is_empty());
        let c = config(&[("IMGPIPE_TRUSTED_PROXIES", "10.0.0.0/8, ::1"), ("IMGPIPE_MAX_RENDER_COST", "40")]).unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.max_render_cost, 40);
        let e = config(&[("IMGPIPE_TRUSTED_PROXIES", "10.0.0.0/8, proxy.example")]).unwrap_err().to_string();
        assert!(e.contains("IMGPIPE_TRUSTED_PROXIES"), "{e}");
        // A 12 MP JPEG is well inside the default, a 49 MP AVIF is not.
        assert!(render_cost("jpeg", 4032, 3024) <= DEFAULT_MAX_RENDER_COST);
        assert!(render_cost("avif", 8192, 6000) > DEFAULT_MAX_RENDER_COST);
    }

    #[test]
    fn tokens_split_and_trim() {
        let c = config(&[("IMGPIPE_UPLOAD_TOKENS", " a, b ,,c"), ("IMGPIPE_ADMIN_TOKENS", "root ,x")]).unwrap();
        assert_eq!(c.upload_tokens, vec!["a", "b", "c"]);
        assert_eq!(c.admin_tokens, vec!["root", "x"]);
        assert!(!c.loopback_only, "never from the environment");
        assert!(config(&[("IMGPIPE_ADMIN_TOKENS", "")]).is_err());
        assert!(config(&[("IMGPIPE_ADMIN_TOKENS", " , ")]).is_err());
    }

    #[test]
    fn secrets_that_say_nothing_are_refused() {
        for (name, value) in [
            ("IMGPIPE_UPLOAD_TOKENS", " , ,"),
            ("IMGPIPE_SIGNING_KEY", "   "),
            ("IMGPIPE_UPLOAD_TOKENS", ""),
            ("IMGPIPE_SIGNING_KEY", ""),
        ] {
            let e = config(&[(name, value)]).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
        assert!(config(&[("IMGPIPE_MAX_QUEUED_RENDERS", "0")]).is_err());
        assert_eq!(config(&[("IMGPIPE_MAX_QUEUED_RENDERS", "3")]).unwrap().max_queued_renders, 3);
    }
}
