//! `application/problem+json` bodies: one envelope for every error the API returns.

use serde::{Deserialize, Serialize};

/// The stable `type` of a problem; clients switch on it, people read `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemType {
    Validation,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    Quota,
    Unschedulable,
    TooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    Internal,
    Unavailable,
}

impl ProblemType {
    pub fn uri(self) -> &'static str {
        match self {
            Self::Validation => "/problems/validation",
            Self::Unauthenticated => "/problems/unauthenticated",
            Self::Forbidden => "/problems/forbidden",
            Self::NotFound => "/problems/not-found",
            Self::Conflict => "/problems/conflict",
            Self::Quota => "/problems/quota",
            Self::Unschedulable => "/problems/unschedulable",
            Self::TooLarge => "/problems/too-large",
            Self::UnsupportedMediaType => "/problems/unsupported-media-type",
            Self::TooManyRequests => "/problems/too-many-requests",
            Self::Internal => "/problems/internal",
            Self::Unavailable => "/problems/unavailable",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Self::Validation | Self::Unschedulable => 400,
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict | Self::Quota => 409,
            Self::TooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::TooManyRequests => 429,
            Self::Internal => 500,
            Self::Unavailable => 503,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::Validation => "Invalid request",
            Self::Unauthenticated => "Not logged in",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "Not found",
            Self::Conflict => "Conflict",
            Self::Quota => "Policy limit reached",
            Self::Unschedulable => "Unschedulable",
            Self::TooLarge => "Request too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::TooManyRequests => "Too many requests",
            Self::Internal => "Internal error",
            Self::Unavailable => "Service unavailable",
        }
    }
}

/// One field's complaint inside a validation problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The problem+json envelope of the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl Problem {
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            kind: kind.uri().to_string(),
            title: kind.title().to_string(),
            status: kind.status(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// A validation problem whose detail joins the field messages into one sentence list.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            errors,
            ..Self::new(ProblemType::Validation, detail)
        }
    }
}
