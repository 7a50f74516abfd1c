//! The `api` crate owns berth's wire contract: the JSON types the gateway sends and accepts,
//! the resource arithmetic (millicores, bytes, GPU share quanta) and every validation rule
//! a request must pass. It is compiled twice — into the gateway and into the WASM console —
//! so a form in the browser shows exactly the sentence the server would answer with.
//!
//! Invariant: this crate depends on serde only; nothing here knows about axum, sqlx, bollard
//! or the browser.

pub mod auth;
pub mod gpu;
pub mod images;
pub mod nodes;
pub mod policy;
pub mod problem;
pub mod projects;
pub mod resources;
pub mod session;
pub mod terminal;
pub mod vfolders;

pub use problem::{FieldError, Problem, ProblemType};
pub use resources::{Bytes, Millicores, Resources, ResourcesRequest, Shares};
