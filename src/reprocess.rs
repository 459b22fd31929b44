//! `imgpipe reprocess [--id ID]... | --all`: the standard variants again,
//! for the current recipe, after a setting that shapes bytes changed
//! (`IMGPIPE_MAX_DIMENSION`, `IMGPIPE_THUMB_SIZE`) or an upgrade changed
//! the engine's output. New variants get the new recipe's keys and the
//! item then points at them; the old keys are left as they were, so every
//! URL ever handed out keeps its bytes. Each image is one `ingest::reprocess`:
//! running it again does nothing, and a run cut short is finished by the
//! next.

use futures_util::StreamExt;
use serde::Serialize;

use crate::app::AppState;
use crate::ingest::{self, Outcome};
use crate::keys::ImageId;
use crate::recipe::Recipe;

/// What became of one image.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub id: ImageId,
    /// `ready` (made for the recipe now), `unchanged` (nothing to do:
    /// already current, pending, deleted or unknown), `refused` (the
    /// current settings refuse it: it keeps its variants, or stays failed),
    /// or `error` (not done this time: run again).
    pub status: &'static str,
    pub recipe: Recipe,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Totals for the closing line.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub ready: usize,
    pub unchanged: usize,
    pub refused: usize,
    pub errors: usize,
}

/// Reprocess `ids`, `jobs` at a time (the CPU pool holds the CPU work to
/// the cores), calling `each` as each one ends.
pub async fn run(state: &AppState, ids: Vec<ImageId>, jobs: usize, mut each: impl FnMut(&Report)) -> Summary {
    let recipe = state.engine.recipe();
    let mut summary = Summary::default();
    let mut done = futures_util::stream::iter(ids)
        .map(|id| async move {
            let (status, code, message) = match ingest::reprocess(state, id).await {
                Ok(Outcome::Ready) => ("ready", None, None),
                Ok(Outcome::AlreadyDone | Outcome::NoUpload | Outcome::Taken) => ("unchanged", None, None),
                Ok(Outcome::Failed(code)) => ("refused", Some(code), None),
                Err(e) => ("error", None, Some(e.to_string())),
            };
            Report { id, status, recipe, code, message }
        })
        .buffer_unordered(jobs.max(1));
    while let Some(report) = done.next().await {
        match report.status {
            "ready" => summary.ready += 1,
            "unchanged" => summary.unchanged += 1,
            "refused" => summary.refused += 1,
            _ => summary.errors += 1,
        }
        each(&report);
    }
    summary
}
