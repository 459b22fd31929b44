//! AWS wiring: one SDK configuration, clients built once per process, and
//! the `AppState` on S3 + DynamoDB. Region, credentials and endpoints come
//! from the SDK's own environment (`AWS_REGION`, `AWS_ENDPOINT_URL`,
//! `AWS_ACCESS_KEY_ID`, ...), so MinIO, R2 or an emulator need no code here.

pub mod cloudfront;

use std::collections::HashMap;
use std::sync::Arc;

use aws_config::BehaviorVersion;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::error::SdkError;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

use crate::app::AppState;
use crate::config::{Backend, Config, ConfigError, PARAMETER_VARIABLES};
use crate::meta::dynamo::DynamoMeta;
use crate::store::s3::S3Store;

/// The service clients, sharing one connection pool and credentials.
#[derive(Clone, Debug)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// Parameter Store: read once at start (`with_parameters`).
    pub ssm: aws_sdk_ssm::Client,
    /// Invalidations of deleted images (`IMGPIPE_DISTRIBUTION_ID`).
    pub cloudfront: aws_sdk_cloudfront::Client,
}

impl Clients {
    /// Load the SDK configuration from the environment and build clients.
    pub async fn from_env(config: &Config) -> Self {
        let sdk = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client()).load().await;
        Self::from_sdk(&sdk, config.s3_path_style)
    }

    /// Clients on an SDK configuration built elsewhere.
    pub fn from_sdk(sdk: &aws_config::SdkConfig, s3_path_style: bool) -> Self {
        let s3 = aws_sdk_s3::config::Builder::from(sdk).force_path_style(s3_path_style).build();
        Clients {
            s3: aws_sdk_s3::Client::from_conf(s3),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            ssm: aws_sdk_ssm::Client::new(sdk),
            cloudfront: aws_sdk_cloudfront::Client::new(sdk),
        }
    }
}

/// The SDK's HTTPS client, on rustls with ring.
pub fn http_client() -> aws_sdk_s3::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

#[derive(Debug, thiserror::Error)]
pub enum ParametersError {
    #[error("reading SSM parameters under {path}: {message}")]
    Read { path: String, message: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// `config` with the `PARAMETER_VARIABLES` found under its SSM path
/// (`IMGPIPE_PARAMETERS`) filled in where the environment leaves them
/// unset. One paginated call at start, SecureStrings decrypted; other
/// parameters under the path are ignored. Without a path, `config` as is.
pub async fn with_parameters(config: Config, clients: &Clients) -> Result<Config, ParametersError> {
    let Some(path) = config.parameters_path.clone() else { return Ok(config) };
    let mut attempt = 0;
    let found = loop {
        match read_parameters(clients, &path).await {
            Ok(found) => break found,
            // GetParametersByPath is throttled at about 40 calls a second
            // per account: cold starts of a scale-up collide, so a throttled
            // read waits a random share of a growing delay (full jitter) and
            // tries again, rather than failing the start.
            Err((true, _)) if attempt + 1 < PARAMETER_ATTEMPTS => {
                let delay = jittered(PARAMETER_BASE_DELAY * 2u32.pow(attempt));
                tracing::warn!(%path, attempt, ?delay, "SSM parameters throttled or unreachable; trying again");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err((_, message)) => return Err(ParametersError::Read { path, message }),
        }
    };
    tracing::info!(%path, names = ?found.keys().collect::<Vec<_>>(), "settings from SSM parameters");
    let lookup = |name: &str| match name {
        // This config is AWS's, whether the environment or `--backend` said so.
        "IMGPIPE_BACKEND" => Some("aws".to_string()),
        _ => crate::config::raw_env_var(name).or_else(|| found.get(name).cloned().filter(|v| !v.is_empty())),
    };
    let mut merged = Config::from_lookup(lookup)?;
    // A default `main` gave (serve's own address) stays unless a parameter set one.
    if merged.public_base_url.is_empty() {
        merged.public_base_url = config.public_base_url;
    }
    Ok(merged)
}

/// Reads of the SSM parameters at start, the first included.
const PARAMETER_ATTEMPTS: u32 = 5;
/// The delay before the second read; it doubles for each one after.
const PARAMETER_BASE_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

/// A random duration up to `max` (never zero, so a retry always yields).
fn jittered(max: std::time::Duration) -> std::time::Duration {
    let mut bytes = [0u8; 4];
    let r = match getrandom::fill(&mut bytes) {
        Ok(()) => u32::from_le_bytes(bytes),
        Err(_) => u32::MAX / 2,
    };
    max.mul_f64(f64::from(r) / f64::from(u32::MAX)).max(std::time::Duration::from_millis(1))
}

/// The `PARAMETER_VARIABLES` under `path`, or whether the failure is worth
/// another try (throttling, a timeout, no connection) and what it was.
async fn read_parameters(clients: &Clients, path: &str) -> Result<HashMap<String, String>, (bool, String)> {
    let mut found = HashMap::new();
    let mut pages = clients.ssm.get_parameters_by_path().path(path).with_decryption(true).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| (is_transient(&e), aws_sdk_ssm::error::DisplayErrorContext(e).to_string()))?;
        for p in page.parameters() {
            let name = p.name().unwrap_or_default().strip_prefix(path).unwrap_or_default();
            if PARAMETER_VARIABLES.contains(&name) {
                found.insert(name.to_string(), p.value().unwrap_or_default().to_string());
            }
        }
    }
    Ok(found)
}

/// The names `IMGPIPE_BACKEND=aws` needs.
pub struct AwsNames<'a> {
    pub raw_bucket: &'a str,
    pub processed_bucket: &'a str,
    pub table: &'a str,
    pub queue_url: Option<&'a str>,
}

pub fn names(config: &Config) -> Result<AwsNames<'_>, ConfigError> {
    match &config.backend {
        Backend::Aws { raw_bucket, processed_bucket, table, queue_url } => {
            Ok(AwsNames { raw_bucket, processed_bucket, table, queue_url: queue_url.as_deref() })
        }
        Backend::Local { .. } => {
            Err(ConfigError::Invalid { name: "IMGPIPE_BACKEND", what: "aws for this mode", value: "local".into() })
        }
    }
}

/// `AppState` on S3 and DynamoDB: no local upload route and no local queue
/// (S3 events drive ingest).
pub fn state(config: Config, clients: &Clients) -> Result<AppState, ConfigError> {
    let n = names(&config)?;
    let raw = Arc::new(S3Store::new(clients.s3.clone(), n.raw_bucket));
    let processed = Arc::new(S3Store::new(clients.s3.clone(), n.processed_bucket));
    let meta = Arc::new(DynamoMeta::new(clients.dynamodb.clone(), n.table));
    let cdn = config
        .distribution_id
        .as_deref()
        .map(|id| Arc::new(cloudfront::CloudFront::new(clients.cloudfront.clone(), id)) as Arc<dyn crate::cdn::Cdn>)
        .map(|cf| Arc::new(crate::cdn::Batched::new(cf, crate::cdn::BATCH_LINGER)) as Arc<dyn crate::cdn::Cdn>);
    let mut state = AppState::new(raw, processed, meta, Arc::new(config));
    state.cdn = cdn;
    Ok(state)
}

/// Throttling, timeouts, dropped connections and 5xx: worth retrying later.
/// Everything else (access denied, bad request) is a real fault.
pub(crate) fn is_transient<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            status == 429
                || status >= 500
                || matches!(
                    s.err().code(),
                    Some(
                        "SlowDown"
                            | "Throttling"
                            | "ThrottlingException"
                            | "ProvisionedThroughputExceededException"
                            | "RequestLimitExceeded"
                            | "RequestTimeout"
                            | "InternalError"
                            | "ServiceUnavailable"
                    )
                )
        }
        _ => false,
    }
}

/// The HTTP status of a service error, if the service answered.
pub(crate) fn status_of<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}
