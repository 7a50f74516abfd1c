//! `GET /api/v1/images`: local images carrying berth's labels.

use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::AppState;
use api::images::ImageInfo;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

pub fn router() -> Router<AppState> {
    Router::new().route("/images", get(list))
}

#[utoipa::path(
    get,
    path = "/images",
    operation_id = "list_images",
    tag = "images",
    summary = "Local images carrying berth labels",
    responses((status = 200, description = "OK", body = Vec<api::images::ImageInfo>))
)]
async fn list(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> AppResult<Json<Vec<ImageInfo>>> {
    let images = state
        .lifecycle
        .image_node()
        .ok_or_else(|| {
            AppError::new(
                api::ProblemType::Unavailable,
                "No Docker engine is connected; check that the local engine runs.",
            )
        })?
        .list_images()
        .await
        .map_err(|e| AppError::new(api::ProblemType::Unavailable, e.0))?;
    Ok(Json(images))
}
