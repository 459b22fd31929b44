//! `DynamoMeta`: one DynamoDB item per id (partition key `id`, a string),
//! the metadata document as native attributes. Writes are conditional, so a
//! late or duplicate event never moves `ready`/`failed` back to `pending`
//! and never replaces a newer final item with an older one.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{MetaError, MetaStore, Metadata, Status};
use crate::aws::is_transient;
use crate::keys::ImageId;

pub struct DynamoMeta {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoMeta {
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

    async fn put(&self, meta: &Metadata) -> Result<(), MetaError> {
        let item: std::collections::HashMap<String, AttributeValue> =
            serde_dynamo::to_item(meta).map_err(|e| MetaError::Corrupt(e.to_string()))?;
        // New, or replacing a pending item; a final item only by a final one
        // at least as new.
        let (condition, newer) = match meta.status {
            Status::Pending => ("attribute_not_exists(#id) OR #status = :pending", None),
            Status::Ready | Status::Failed => (
                "attribute_not_exists(#id) OR #status = :pending OR #updated_at <= :updated_at",
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
                .expression_attribute_values(":updated_at", updated_at);
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                tracing::debug!(id = %meta.id, status = meta.status.as_str(), "kept the stored item: it is final or newer");
                Ok(())
            }
            Err(e) => Err(failure(e)),
        }
    }

    /// A scan: only the local work queue's resume pass calls this; in AWS
    /// the S3 → SQS events drive ingest.
    async fn pending(&self, created_before: Option<&str>) -> Result<Vec<ImageId>, MetaError> {
        let mut found: Vec<(String, ImageId)> = Vec::new();
        let mut start = None;
        loop {
            let res = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("#status = :pending AND created_at < :before")
                .projection_expression("#id, created_at")
                .expression_attribute_names("#id", "id")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":pending", s(Status::Pending.as_str()))
                .expression_attribute_values(":before", s(created_before.unwrap_or("~")))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(failure)?;
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

    async fn ping(&self) -> Result<(), MetaError> {
        self.client.describe_table().table_name(&self.table).send().await.map_err(failure)?;
        Ok(())
    }
}
