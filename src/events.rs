//! S3 ObjectCreated notifications → ingest, for the Lambda `events` handler
//! and `imgpipe worker` alike. A notification arrives as an SQS message body
//! (or as a direct S3 invocation); keys are URL-encoded (`+` is a space).
//! Only `uploads/<id>` on the raw bucket is taken; everything else is
//! logged and skipped, and `s3:TestEvent` is ignored.

use percent_encoding::percent_decode_str;
use serde::Deserialize;

use crate::app::AppState;
use crate::ingest::{ingest, IngestError, Outcome};
use crate::keys::{ImageId, Key};

/// What one notification record asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Upload(ImageId),
    Skip(String),
}

#[derive(Deserialize)]
struct Notification {
    #[serde(rename = "Records", default)]
    records: Vec<S3Record>,
    #[serde(rename = "Event", default)]
    event: Option<String>,
}

#[derive(Deserialize)]
struct S3Record {
    #[serde(rename = "eventSource", default)]
    event_source: String,
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: Option<S3Entity>,
}

#[derive(Deserialize)]
struct S3Entity {
    bucket: S3Bucket,
    object: S3Object,
}

#[derive(Deserialize)]
struct S3Bucket {
    name: String,
}

#[derive(Deserialize)]
struct S3Object {
    key: String,
}

/// The key as S3 sends it in a notification: form-encoded.
pub fn decode_key(encoded: &str) -> Option<String> {
    let spaced = encoded.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8().ok().map(|k| k.into_owned())
}

/// Read an S3 notification document. `Err` means it is not one at all.
pub fn notices(doc: &str, raw_bucket: &str) -> Result<Vec<Notice>, serde_json::Error> {
    let n: Notification = serde_json::from_str(doc)?;
    if n.event.as_deref() == Some("s3:TestEvent") {
        return Ok(vec![Notice::Skip("s3:TestEvent".into())]);
    }
    Ok(n.records.into_iter().map(|r| notice(r, raw_bucket)).collect())
}

fn notice(r: S3Record, raw_bucket: &str) -> Notice {
    let Some(s3) = r.s3.filter(|_| r.event_source == "aws:s3") else {
        return Notice::Skip(format!("not an S3 record ({})", r.event_source));
    };
    if !r.event_name.starts_with("ObjectCreated:") {
        return Notice::Skip(format!("event {}", r.event_name));
    }
    if s3.bucket.name != raw_bucket {
        return Notice::Skip(format!("bucket {} is not the raw bucket", s3.bucket.name));
    }
    let Some(key) = decode_key(&s3.object.key) else {
        return Notice::Skip(format!("key {:?} is not UTF-8", s3.object.key));
    };
    match key.strip_prefix("uploads/").and_then(|id| ImageId::parse(id).ok()) {
        // Only the exact key we mint: `uploads/<lowercase id>`.
        Some(id) if Key::raw(&id).as_str() == key => Notice::Upload(id),
        _ => Notice::Skip(format!("key {key:?} is not an upload")),
    }
}

/// Ingest every upload a notification names. `Err` only when the record
/// should be delivered again: storage faults. A bad image is not one: its
/// item becomes `failed` and the record is done.
pub async fn handle(state: &AppState, raw_bucket: &str, doc: &str) -> Result<(), IngestError> {
    let notices = match notices(doc, raw_bucket) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "skipping a message that is not an S3 notification");
            return Ok(());
        }
    };
    for n in notices {
        match n {
            Notice::Skip(why) => tracing::info!(%why, "skipped a notification record"),
            Notice::Upload(id) => match ingest(state, id).await {
                Ok(Outcome::Ready) => tracing::info!(%id, "ready"),
                Ok(Outcome::Failed(code)) => tracing::info!(%id, %code, "failed"),
                Ok(other) => tracing::info!(%id, ?other, "nothing to do"),
                Err(e) => {
                    tracing::warn!(%id, error = %e, retryable = e.is_retryable(), "ingest error; the record will be retried");
                    return Err(e);
                }
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(bucket: &str, key: &str, event: &str) -> String {
        serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": event,
            "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1}}
        }]})
        .to_string()
    }

    #[test]
    fn uploads_are_taken_and_the_rest_skipped() {
        let id = ImageId::new();
        let key = format!("uploads/{id}");
        assert_eq!(notices(&doc("raw", &key, "ObjectCreated:Put"), "raw").unwrap(), vec![Notice::Upload(id)]);
        for (bucket, key, event) in [
            ("other", key.as_str(), "ObjectCreated:Put"),
            ("raw", key.as_str(), "ObjectRemoved:Delete"),
            ("raw", "img/x/webp", "ObjectCreated:Put"),
            ("raw", "uploads/not-an-id", "ObjectCreated:Put"),
            ("raw", &key.to_uppercase().replace("UPLOADS", "uploads"), "ObjectCreated:Put"),
            ("raw", &format!("{key}/../x"), "ObjectCreated:Put"),
            ("raw", "uploads/%FF", "ObjectCreated:Put"),
        ] {
            let got = notices(&doc(bucket, key, event), "raw").unwrap();
            assert!(matches!(got.as_slice(), [Notice::Skip(_)]), "{bucket} {key} {event}: {got:?}");
        }
        let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"raw"}"#;
        assert!(matches!(notices(test_event, "raw").unwrap().as_slice(), [Notice::Skip(_)]));
        assert!(notices("not json", "raw").is_err());
    }

    #[test]
    fn keys_are_form_decoded() {
        assert_eq!(decode_key("uploads/a+b%2Bc%20d").as_deref(), Some("uploads/a b+c d"));
        assert_eq!(decode_key("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(decode_key("%FF"), None);
    }
}
