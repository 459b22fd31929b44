//! `imgpipe worker`: the `events` handler outside Lambda (ECS, EC2, a
//! laptop). Long-polls the SQS queue, runs each message through the same
//! code as the Lambda `events` handler, and deletes a message only once it
//! is handled; a storage fault leaves it to come back after its visibility
//! timeout (and, after the queue's redrive count, to land in the DLQ).

use std::future::Future;

use crate::app::AppState;
use crate::aws::Clients;

/// Long-poll wait per receive (SQS's maximum).
pub const WAIT_SECS: i32 = 20;
/// Messages per receive (SQS's maximum).
pub const BATCH: i32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("receiving from {queue_url}: {message}")]
    Receive { queue_url: String, message: String },
}

/// Work until `stop` resolves; a batch in hand is finished first.
pub async fn run(
    state: AppState,
    clients: &Clients,
    queue_url: &str,
    raw_bucket: &str,
    stop: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    tokio::pin!(stop);
    let mut failures_in_a_row = 0u32;
    loop {
        let receive = clients
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(BATCH)
            .wait_time_seconds(WAIT_SECS)
            .send();
        let res = tokio::select! {
            _ = &mut stop => return Ok(()),
            res = receive => res,
        };
        let messages = match res {
            Ok(out) => {
                failures_in_a_row = 0;
                out.messages.unwrap_or_default()
            }
            Err(e) => {
                let transient = crate::aws::is_transient(&e);
                let message = aws_sdk_sqs::error::DisplayErrorContext(e).to_string();
                failures_in_a_row += 1;
                if !transient || failures_in_a_row > 10 {
                    return Err(WorkerError::Receive { queue_url: queue_url.to_string(), message });
                }
                tracing::warn!(error = %message, "receive failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(u64::from(failures_in_a_row.min(5)))).await;
                continue;
            }
        };
        let runs = messages.into_iter().map(|m| {
            let state = &state;
            async move {
                let body = m.body.unwrap_or_default();
                match crate::events::handle(state, raw_bucket, &body).await {
                    Ok(()) => m.receipt_handle,
                    Err(_) => None,
                }
            }
        });
        for receipt in futures_util::future::join_all(runs).await.into_iter().flatten() {
            if let Err(e) = clients.sqs.delete_message().queue_url(queue_url).receipt_handle(receipt).send().await {
                // Not fatal: the message comes back and ingest sees the item is final.
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "could not delete a handled message");
            }
        }
    }
}
