//! Live events (`GET /api/v1/events`, server-sent events): what one event of the stream
//! holds, as a client parses it.

use serde::{Deserialize, Serialize};

/// The kinds of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A session changed: `data` is the Session JSON.
    Session,
    /// A running session's live stats: `data` is a StatsSample.
    Stats,
    /// A session's policy will end it soon (or no longer will): `data` is a SessionEnding.
    Ending,
}

/// Why a policy ends a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum EndingCause {
    /// No terminal, app or tunnel traffic for the idle timeout.
    Idle,
    /// CPU (and GPUs) below the policy's threshold for the idle timeout.
    Cpu,
    /// The maximum lifetime.
    Lifetime,
}

/// The `ending` event: sent to the owner while a policy's end is near (from five minutes
/// before, or half the limit when that is shorter), again every 30 s, and once with
/// `ends_at: null` when the end moved away (the session was used).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionEnding {
    pub session: String,
    /// When the session will be ended (RFC 3339, UTC), or `null`: no longer.
    pub ends_at: Option<String>,
    pub cause: Option<EndingCause>,
    /// What will happen and what keeps it, in a sentence; empty when `ends_at` is null.
    pub detail: String,
}

/// One event of the stream. Ids increase; a `stats` event carries the id of the newest
/// `session` event before it, and `Last-Event-ID` resumes after the last one seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SseEvent {
    pub event: EventKind,
    pub id: String,
    /// JSON: a Session for `session`, a StatsSample for `stats`, a SessionEnding for `ending`.
    pub data: String,
}
