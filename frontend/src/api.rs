//! The console's one API client: every call goes through [`decode`], which turns a 2xx into
//! `T` and anything else into the server's problem sentence.

use api::{FieldError, Problem};
use gloo_net::http::{Request, RequestBuilder, Response};
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

/// A 2xx whose body does not matter (204s, or an answer the page reloads anyway); anything
/// else goes through [`decode`] for the problem sentence.
async fn decode_empty(resp: Response) -> Result<(), ApiError> {
    if resp.ok() {
        Ok(())
    } else {
        decode::<()>(resp).await
    }
}

async fn send(req: RequestBuilder) -> Result<Response, ApiError> {
    req.send().await.map_err(ApiError::network)
}

async fn send_json<B: Serialize>(req: RequestBuilder, body: &B) -> Result<Response, ApiError> {
    let req = req.json(body).map_err(ApiError::network)?;
    req.send().await.map_err(ApiError::network)
}

pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    decode(send(Request::get(path)).await?).await
}

pub async fn get_text(path: &str) -> Result<String, ApiError> {
    let resp = send(Request::get(path)).await?;
    if resp.ok() {
        resp.text().await.map_err(ApiError::network)
    } else {
        decode::<String>(resp).await
    }
}

pub async fn post<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, ApiError> {
    decode(send_json(Request::post(path), body).await?).await
}

/// A POST without a body whose answer has no body worth reading.
pub async fn post_empty(path: &str) -> Result<(), ApiError> {
    decode_empty(send(Request::post(path)).await?).await
}

/// A POST with a body and an empty answer (`204 No Content`).
pub async fn post_no_content<B: Serialize>(path: &str, body: &B) -> Result<(), ApiError> {
    decode_empty(send_json(Request::post(path), body).await?).await
}

pub async fn patch<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, ApiError> {
    decode(send_json(Request::patch(path), body).await?).await
}

/// A PUT whose answer the caller does not need (it reloads what it shows).
pub async fn put_no_content<B: Serialize>(path: &str, body: &B) -> Result<(), ApiError> {
    decode_empty(send_json(Request::put(path), body).await?).await
}

pub async fn delete<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    decode(send(Request::delete(path)).await?).await
}

/// A DELETE answered with `204 No Content`.
pub async fn delete_empty(path: &str) -> Result<(), ApiError> {
    decode_empty(send(Request::delete(path)).await?).await
}
