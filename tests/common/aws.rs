//! The AWS emulators the AWS suites talk to, started by `scripts/test.sh`:
//! moto (`IMGPIPE_TEST_MOTO_URL`) and s3s-fs (`IMGPIPE_TEST_S3S_URL`). When
//! one is missing a test prints SKIP, or fails if
//! `IMGPIPE_REQUIRE_EMULATORS` is set (as `scripts/test.sh` does).
#![allow(dead_code)]

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use aws_sdk_s3::config::Credentials;
use imgpipe::aws::Clients;

pub const REGION: &str = "us-east-1";

/// The endpoint in `var`, or `None` (SKIP) when it is unset.
pub fn emulator(var: &str) -> Option<String> {
    match std::env::var(var).ok().filter(|v| !v.is_empty()) {
        Some(url) => Some(url),
        None if std::env::var_os("IMGPIPE_REQUIRE_EMULATORS").is_some() => {
            panic!("{var} is unset but IMGPIPE_REQUIRE_EMULATORS is: the emulators did not start")
        }
        None => {
            eprintln!("SKIP: {var} is unset (scripts/test.sh starts the AWS emulators)");
            None
        }
    }
}

pub fn moto() -> Option<String> {
    emulator("IMGPIPE_TEST_MOTO_URL")
}

/// An SDK configuration on `endpoint`, as the binary would build it from
/// `AWS_ENDPOINT_URL` and friends.
pub fn sdk(endpoint: &str, access_key: &str, secret: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(Credentials::new(
            access_key, secret, None, None, "test",
        )))
        .http_client(imgpipe::aws::http_client())
        .build()
}

pub fn clients(endpoint: &str) -> Clients {
    Clients::from_sdk(&sdk(endpoint, "test", "test"), true)
}

/// The environment a child `imgpipe` needs to reach `endpoint`.
pub fn child_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("IMGPIPE_S3_PATH_STYLE", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A name no other test uses (buckets: lowercase, ≤ 63 characters).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", imgpipe::keys::ImageId::new()).to_ascii_lowercase()
}

pub async fn create_bucket(c: &Clients, name: &str) {
    c.s3.create_bucket().bucket(name).send().await.unwrap_or_else(|e| panic!("create bucket {name}: {e:?}"));
}

pub async fn create_table(c: &Clients, name: &str) {
    c.dynamodb
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("id").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().unwrap())
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create table {name}: {e:?}"));
}

/// Everything the AWS backend needs, freshly named: buckets, table, queue,
/// and the S3 → SQS notification of every object created in the raw bucket.
pub struct Stack {
    pub endpoint: String,
    pub clients: Clients,
    pub raw: String,
    pub processed: String,
    pub table: String,
    pub queue_url: String,
}

impl Stack {
    pub async fn create(endpoint: &str) -> Stack {
        use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
        let clients = clients(endpoint);
        let (raw, processed, table) = (unique("raw"), unique("out"), unique("meta"));
        create_bucket(&clients, &raw).await;
        create_bucket(&clients, &processed).await;
        create_table(&clients, &table).await;
        let queue_url =
            clients.sqs.create_queue().queue_name(unique("events")).send().await.unwrap().queue_url.unwrap();
        let arn = clients
            .sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        // The whole bucket, as infra/ has it: uploads and drop-ins.
        let queue =
            QueueConfiguration::builder().queue_arn(arn).events(Event::from("s3:ObjectCreated:*")).build().unwrap();
        clients
            .s3
            .put_bucket_notification_configuration()
            .bucket(&raw)
            .notification_configuration(NotificationConfiguration::builder().queue_configurations(queue).build())
            .send()
            .await
            .unwrap();
        Stack { endpoint: endpoint.to_string(), clients, raw, processed, table, queue_url }
    }

    /// `IMGPIPE_*` for the AWS backend on this stack.
    pub fn env(&self, public_base_url: &str) -> Vec<(String, String)> {
        let mut env = child_env(&self.endpoint);
        for (k, v) in [
            ("IMGPIPE_BACKEND", "aws"),
            ("IMGPIPE_RAW_BUCKET", self.raw.as_str()),
            ("IMGPIPE_PROCESSED_BUCKET", self.processed.as_str()),
            ("IMGPIPE_TABLE", self.table.as_str()),
            ("IMGPIPE_QUEUE_URL", self.queue_url.as_str()),
            ("IMGPIPE_PUBLIC_BASE_URL", public_base_url),
        ] {
            env.push((k.to_string(), v.to_string()));
        }
        env
    }

    /// The `Config` the binary would read from `env`.
    pub fn config(&self, public_base_url: &str) -> imgpipe::config::Config {
        let env: std::collections::HashMap<String, String> = self.env(public_base_url).into_iter().collect();
        imgpipe::config::Config::from_lookup(|k| env.get(k).cloned()).unwrap()
    }

    /// Receive what is in the queue now (short waits until `want` arrive).
    pub async fn receive(&self, want: usize) -> Vec<aws_sdk_sqs::types::Message> {
        let mut got = Vec::new();
        for _ in 0..20 {
            let out = self
                .clients
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            got.extend(out.messages.unwrap_or_default());
            if got.len() >= want {
                break;
            }
        }
        got
    }

    pub async fn object(&self, bucket: &str, key: &str) -> Option<(bytes::Bytes, String, String)> {
        let res = self.clients.s3.get_object().bucket(bucket).key(key).send().await.ok()?;
        let ct = res.content_type().unwrap_or_default().to_string();
        let cc = res.cache_control().unwrap_or_default().to_string();
        Some((res.body.collect().await.unwrap().into_bytes(), ct, cc))
    }
}
