//! The `api` crate owns berth's wire contract: the JSON types the gateway sends and accepts,
//! the resource arithmetic (millicores, bytes, GPU share quanta) and every validation rule
//! a request must pass. It is compiled twice — into the gateway and into the WASM console —
//! so a form in the browser shows exactly the sentence the server would answer with.
//!
//! Requests and reports are kept apart: a request type (`ResourcesRequest`, `CreateSession`,
//! …) is checked by its `validate` before the server uses it; a report (`Resources`, `Node`,
//! `Session`, …) decodes in its exact wire form without those rules, so whatever the server
//! sends decodes here (an idle node's zero allocation included).
//!
//! Invariant: this crate depends on serde, serde_json and base64 only (plus `utoipa` behind the
//! server-only `openapi` feature, for the gateway's OpenAPI document, and `ssh-key` behind the
//! server-only `ssh-key` feature, to parse SSH public keys); nothing here knows
//! about axum, sqlx, bollard or the browser.

pub mod auth;
pub mod dotfiles;
pub mod events;
pub mod gpu;
pub mod images;
pub mod nodes;
#[cfg(feature = "openapi")]
mod openapi;
pub mod policy;
pub mod problem;
pub mod projects;
pub mod resources;
pub mod session;
pub mod ssh;
pub mod stats;
pub mod terminal;
pub mod usage;
pub mod vfolders;

pub use problem::{FieldError, Problem, ProblemType};
pub use resources::{Bytes, Millicores, Resources, ResourcesRequest, Shares};
