//! S3 ObjectCreated notifications → ingest, for the Lambda `events` handler
//! and `imgpipe worker` alike. A notification arrives as an SQS message body
//! (or as a direct S3 invocation); keys are URL-encoded (`+` is a space).
//! On the raw bucket, `uploads/<id>` is an upload through the API and any
//! other key a drop-in (see `dropin`); other buckets and events are logged
//! and skipped, and `s3:TestEvent` is ignored.

use percent_encoding::percent_decode_str;
use serde::Deserialize;

use crate::app::AppState;
use crate::dropin;
use crate::ingest::{ingest, IngestError, Outcome};
use crate::keys::{ImageId, Key};

/// What one notification record asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Upload(ImageId),
    /// An object under a name of its own (the key, decoded).
    Dropped(String),
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
        _ if key.ends_with('/') => Notice::Skip(format!("key {key:?} is a folder marker")),
        _ if Key::dropped(&key).is_none() => Notice::Skip(format!("key {key:?} cannot name an image")),
        _ => Notice::Dropped(key),
    }
}

/// A drop-in: the object now at `key` gets an id (the same one on a
/// duplicate event) and its bytes become that id's upload. It is not
/// ingested here: writing `uploads/<id>` is an object created in the raw
/// bucket, and that event's `Notice::Upload` ingests it, once, whichever
/// invocation sees which event (ingesting here too ran the whole set twice
/// while the item was still pending). `Outcome::Taken` then, or
/// `AlreadyDone` for a duplicate event of an image already final; `None`
/// when the object is gone again.
pub async fn take_dropped(state: &AppState, key: &str) -> Result<Option<(ImageId, Outcome)>, IngestError> {
    let Some(at) = Key::dropped(key) else { return Ok(None) };
    // One GET: its headers say whether the body is worth reading at all.
    let Some((info, body)) = state.raw.open(&at).await? else { return Ok(None) };
    if info.len > state.config.limits.max_upload_bytes {
        drop(body);
        return Ok(Some(dropin::refuse_too_large(state, key, &info.etag, info.len).await?));
    }
    let body = crate::store::read_exactly(body, info.len).await?;
    let id = dropin::take(state, key, &info.etag, body).await?;
    let done = state.meta.get(&id).await?.is_some_and(|m| m.status.is_terminal());
    Ok(Some((id, if done { Outcome::AlreadyDone } else { Outcome::Taken })))
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
        let (what, done) = match n {
            Notice::Skip(why) => {
                tracing::info!(%why, "skipped a notification record");
                continue;
            }
            Notice::Upload(id) => (id.to_string(), ingest(state, id).await.map(|o| Some((id, o)))),
            Notice::Dropped(key) => (key.clone(), take_dropped(state, &key).await),
        };
        match done {
            Ok(Some((id, Outcome::Ready))) => tracing::info!(%id, %what, "ready"),
            Ok(Some((id, Outcome::Failed(code)))) => tracing::info!(%id, %what, %code, "failed"),
            Ok(Some((id, Outcome::Taken))) => {
                tracing::info!(%id, %what, "stored as the id's upload; its event ingests it")
            }
            Ok(Some((id, other))) => tracing::info!(%id, %what, ?other, "nothing to do"),
            Ok(None) => tracing::info!(%what, "the object is gone; nothing to do"),
            Err(e) => {
                tracing::warn!(%what, error = %e, retryable = e.is_retryable(), "ingest error; the record will be retried");
                return Err(e);
            }
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
    fn uploads_and_drop_ins_are_taken_and_the_rest_skipped() {
        let id = ImageId::new();
        let key = format!("uploads/{id}");
        assert_eq!(notices(&doc("raw", &key, "ObjectCreated:Put"), "raw").unwrap(), vec![Notice::Upload(id)]);
        // Any other key on the raw bucket is a drop-in, decoded.
        for (encoded, key) in [
            ("cat.jpg", "cat.jpg"),
            ("holiday/my+cat%C3%A9.jpg", "holiday/my caté.jpg"),
            ("img/x/webp", "img/x/webp"),
            ("uploads/not-an-id", "uploads/not-an-id"),
        ] {
            assert_eq!(
                notices(&doc("raw", encoded, "ObjectCreated:Put"), "raw").unwrap(),
                vec![Notice::Dropped(key.into())]
            );
        }
        let upper = key.to_uppercase().replace("UPLOADS", "uploads");
        assert_eq!(notices(&doc("raw", &upper, "ObjectCreated:Copy"), "raw").unwrap(), vec![Notice::Dropped(upper)]);
        for (bucket, key, event) in [
            ("other", key.as_str(), "ObjectCreated:Put"),
            ("raw", key.as_str(), "ObjectRemoved:Delete"),
            ("raw", "holiday/", "ObjectCreated:Put"),
            ("raw", &format!("{key}/../x"), "ObjectCreated:Put"),
            ("raw", "uploads/%FF", "ObjectCreated:Put"),
            ("raw", "a%0Ab", "ObjectCreated:Put"),
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
