//! The console's one API client: every call goes through [`decode`], which turns a 2xx into
//! `T` and anything else into the server's problem sentence.

use api::{FieldError, Problem};
use gloo_net::http::{Request, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A failed call, as people should read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

impl ApiError {
    fn network(e: impl std::fmt::Display) -> Self {
        Self {
            status: 0,
            detail: format!(
                "berth could not be reached ({e}). Check your connection and try again."
            ),
            errors: vec![],
        }
    }

    /// The message for one field, if the server named it.
    pub fn field(&self, name: &str) -> Option<String> {
        self.errors
            .iter()
            .find(|e| e.field == name)
            .map(|e| e.message.clone())
    }
}

async fn decode<T: DeserializeOwned>(resp: Response) -> Result<T, ApiError> {
    if resp.ok() {
        return resp.json::<T>().await.map_err(|e| ApiError {
            status: resp.status(),
            detail: format!("berth sent an answer the console does not understand ({e})."),
            errors: vec![],
        });
    }
    let status = resp.status();
    match resp.json::<Problem>().await {
        Ok(p) => Err(ApiError {
            status,
            detail: p.detail,
            errors: p.errors,
        }),
        Err(_) => Err(ApiError {
            status,
            detail: format!("berth answered with HTTP {status}; try again in a moment."),
            errors: vec![],
        }),
    }
}

pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    let resp = Request::get(path).send().await.map_err(ApiError::network)?;
    decode(resp).await
}

pub async fn get_text(path: &str) -> Result<String, ApiError> {
    let resp = Request::get(path).send().await.map_err(ApiError::network)?;
    if resp.ok() {
        resp.text().await.map_err(ApiError::network)
    } else {
        decode::<String>(resp).await
    }
}

pub async fn post<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, ApiError> {
    let req = Request::post(path).json(body).map_err(ApiError::network)?;
    let resp = req.send().await.map_err(ApiError::network)?;
    decode(resp).await
}

/// A POST whose answer has no body worth reading.
pub async fn post_empty(path: &str) -> Result<(), ApiError> {
    let resp = Request::post(path)
        .send()
        .await
        .map_err(ApiError::network)?;
    if resp.ok() {
        Ok(())
    } else {
        decode::<()>(resp).await
    }
}

pub async fn delete<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    let resp = Request::delete(path)
        .send()
        .await
        .map_err(ApiError::network)?;
    decode(resp).await
}
