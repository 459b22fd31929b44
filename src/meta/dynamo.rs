//! `DynamoMeta`: one DynamoDB item per id (partition key `id`, a string),
//! the metadata document as native attributes. Writes are conditional, so a
//! late or duplicate event never moves `ready`/`failed` back to `pending`
//! and never replaces a newer final item with an older one.
//!
//! A drop-in's name is found through an alias item in the same table:
//! `id = "source#<key>"`, holding the newest image id from that key and its
//! ETag. No index: the table keeps its one string partition key, and the
//! alias can never be mistaken for an image (an image id has no `#`).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use super::{MetaError, MetaStore, Metadata, Status, Stored};
use crate::aws::is_transient;
use crate::keys::ImageId;
use crate::recipe::Recipe;

pub struct DynamoMeta {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// A scan's filter expression and its values.
struct Filter {
    expression: &'static str,
    names: &'static [(&'static str, &'static str)],
    values: Vec<(&'static str, AttributeValue)>,
}

impl DynamoMeta {
    /// The ids of the items `filter` keeps (`#status` and `#id` are named
    /// for it), oldest first, over every page of a consistent scan.
    async fn scan_ids(&self, filter: Filter) -> Result<Vec<ImageId>, MetaError> {
        let mut found: Vec<(String, ImageId)> = Vec::new();
        let mut start = None;
        loop {
            let mut req = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(filter.expression)
                .projection_expression("#id, created_at")
                .expression_attribute_names("#id", "id")
                .expression_attribute_names("#status", "status")
                .consistent_read(true)
                .set_exclusive_start_key(start);
            for (placeholder, name) in filter.names {
                req = req.expression_attribute_names(*placeholder, *name);
            }
            for (placeholder, value) in &filter.values {
                req = req.expression_attribute_values(*placeholder, value.clone());
            }
            let res = req.send().await.map_err(failure)?;
            for item in res.items() {
                let id = item.get("id").and_then(|v| v.as_s().ok()).and_then(|v| ImageId::parse(v).ok());
                let created = item.get("created_at").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                if let Some(id) = id {
                    found.push((created, id));
                }
            }
            match res.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        found.sort();
        Ok(found.into_iter().map(|(_, id)| id).collect())
    }

    pub fn new(client: aws_sdk_dynamodb::Client, table: &str) -> Self {
        DynamoMeta { client, table: table.to_string() }
    }
}

fn failure<E>(e: aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>) -> MetaError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let transient = is_transient(&e);
    let message = aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string();
    if transient {
        MetaError::Unavailable(message.into())
    } else {
        MetaError::Backend(message.into())
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

/// The alias item's key for a drop-in's name.
fn alias_key(source_key: &str) -> String {
    format!("source#{source_key}")
}

/// An alias item: (image id, ETag).
fn read_alias(item: &std::collections::HashMap<String, AttributeValue>) -> Option<(ImageId, String)> {
    let id = item.get("image").and_then(|v| v.as_s().ok()).and_then(|v| ImageId::parse(v).ok())?;
    let etag = item.get("etag").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
    Some((id, etag))
}

impl DynamoMeta {
    async fn alias(&self, source_key: &str) -> Result<Option<(ImageId, String)>, MetaError> {
        let res = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(&alias_key(source_key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(failure)?;
        Ok(res.item.as_ref().and_then(read_alias))
    }
}

#[async_trait]
impl MetaStore for DynamoMeta {
    async fn get(&self, id: &ImageId) -> Result<Option<Metadata>, MetaError> {
        let res = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(&id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(failure)?;
        res.item.map(|item| serde_dynamo::from_item(item).map_err(|e| MetaError::Corrupt(e.to_string()))).transpose()
    }

    async fn put(&self, meta: &Metadata) -> Result<Stored, MetaError> {
        let item: std::collections::HashMap<String, AttributeValue> =
            serde_dynamo::to_item(meta).map_err(|e| MetaError::Corrupt(e.to_string()))?;
        // New, or replacing a pending item; a final item only by a final one
        // at least as new.
        let (condition, newer) = match meta.status {
            Status::Pending => ("attribute_not_exists(#id) OR #status = :pending", None),
            Status::Ready | Status::Failed => (
                "attribute_not_exists(#id) OR (#status <> :deleted AND (#status = :pending OR #updated_at <= :updated_at))",
                Some(s(&meta.updated_at)),
            ),
            // A tombstone replaces anything as new, a tombstone included
            // (the same one, once everything is purged).
            Status::Deleted => (
                "attribute_not_exists(#id) OR #status = :pending OR #status = :deleted OR #updated_at <= :updated_at",
                Some(s(&meta.updated_at)),
            ),
        };
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s(Status::Pending.as_str()));
        if let Some(updated_at) = newer {
            req = req
                .expression_attribute_names("#updated_at", "updated_at")
                .expression_attribute_values(":updated_at", updated_at)
                .expression_attribute_values(":deleted", s(Status::Deleted.as_str()));
        }
        match req.send().await {
            Ok(_) => Ok(Stored::Written),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                tracing::debug!(id = %meta.id, status = meta.status.as_str(), "kept the stored item: it is final or newer");
                Ok(Stored::Kept)
            }
            Err(e) => Err(failure(e)),
        }
    }

    /// A scan: only the local work queue's resume pass calls this; in AWS
    /// the S3 → SQS events drive ingest.
    async fn pending(&self, created_before: Option<&str>) -> Result<Vec<ImageId>, MetaError> {
        let filter = Filter {
            expression: "#status = :status AND created_at < :before",
            names: &[],
            values: vec![(":status", s(Status::Pending.as_str())), (":before", s(created_before.unwrap_or("~")))],
        };
        self.scan_ids(filter).await
    }

    /// A scan, for `imgpipe reprocess --all`, an operator's command.
    async fn outdated(&self, recipe: Recipe) -> Result<Vec<ImageId>, MetaError> {
        let filter = Filter {
            expression: "#status = :status AND (attribute_not_exists(#recipe) OR #recipe <> :recipe)",
            names: &[("#recipe", "recipe")],
            values: vec![(":status", s(Status::Ready.as_str())), (":recipe", s(&recipe.to_string()))],
        };
        self.scan_ids(filter).await
    }

    async fn delete_pending(&self, id: &ImageId) -> Result<bool, MetaError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("id", s(&id.to_string()))
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s(Status::Pending.as_str()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(failure(e)),
        }
    }

    async fn claim_source(&self, dropped: &Metadata) -> Result<ImageId, MetaError> {
        let (Some(key), Some(etag)) = (dropped.source_key.as_deref(), dropped.source_etag.as_deref()) else {
            return Err(MetaError::Corrupt("a drop-in claim without a source key and ETag".into()));
        };
        let built = |e: aws_sdk_dynamodb::error::BuildError| MetaError::Corrupt(e.to_string());
        // Two tries: a claim that loses a race to a different ETag (a newer
        // object at the same key) reads the winner and goes again.
        for _ in 0..2 {
            // A deleted image is not brought back: the same bytes dropped
            // again are a new image, and may replace its alias.
            let mut stale = String::new();
            if let Some((id, known)) = self.alias(key).await? {
                if known == etag {
                    match self.get(&id).await? {
                        Some(m) if m.status == Status::Deleted => stale = id.to_string(),
                        _ => return Ok(id),
                    }
                }
            }
            let item: std::collections::HashMap<String, AttributeValue> =
                serde_dynamo::to_item(dropped).map_err(|e| MetaError::Corrupt(e.to_string()))?;
            let image = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#id)")
                .expression_attribute_names("#id", "id")
                .build()
                .map_err(built)?;
            let alias = Put::builder()
                .table_name(&self.table)
                .item("id", s(&alias_key(key)))
                .item("image", s(&dropped.id.to_string()))
                .item("etag", s(etag))
                .item("updated_at", s(&dropped.updated_at))
                .condition_expression("attribute_not_exists(#id) OR #etag <> :etag OR #image = :stale")
                .expression_attribute_names("#id", "id")
                .expression_attribute_names("#etag", "etag")
                .expression_attribute_names("#image", "image")
                .expression_attribute_values(":etag", s(etag))
                .expression_attribute_values(":stale", s(&stale))
                .build()
                .map_err(built)?;
            let res = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(image).build())
                .transact_items(TransactWriteItem::builder().put(alias).build())
                .send()
                .await;
            match res {
                Ok(_) => return Ok(dropped.id),
                // Someone claimed this object first: take theirs (next turn).
                Err(e) if e.as_service_error().is_some_and(|e| e.is_transaction_canceled_exception()) => continue,
                Err(e) => return Err(failure(e)),
            }
        }
        match self.alias(key).await? {
            Some((id, known)) if known == etag && self.get(&id).await?.is_some_and(|m| m.status != Status::Deleted) => {
                Ok(id)
            }
            _ => Err(MetaError::Unavailable(format!("the claim on {key:?} keeps losing to newer objects").into())),
        }
    }

    async fn by_source(&self, source_key: &str) -> Result<Option<ImageId>, MetaError> {
        Ok(self.alias(source_key).await?.map(|(id, _)| id))
    }

    async fn ping(&self) -> Result<(), MetaError> {
        self.client.describe_table().table_name(&self.table).send().await.map_err(failure)?;
        Ok(())
    }
}
