//! `GET /health`: both stores answer, or 503.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::app::AppState;
use crate::http::problem::ApiError;

pub async fn health(State(state): State<AppState>) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    state.raw.ping().await.map_err(ApiError::unavailable)?;
    state.processed.ping().await.map_err(ApiError::unavailable)?;
    state.meta.ping().await.map_err(ApiError::unavailable)?;
    Ok((StatusCode::OK, Json(serde_json::json!({"status": "ok"}))))
}
