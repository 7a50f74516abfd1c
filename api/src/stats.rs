//! Live resource use of a running session: the SSE event `stats` carries one
//! [`StatsSample`]; `GET /api/v1/sessions/{id}/stats` answers [`SessionStats`].

use serde::{Deserialize, Serialize};

/// How often a running session is sampled, in milliseconds.
pub const SAMPLE_INTERVAL_MS: u64 = 2_000;
/// How much history the gateway keeps per running session, in milliseconds (15 minutes).
pub const HISTORY_MS: u64 = 15 * 60 * 1000;

/// One sample of a session's container. Counters (`net_*`, `blk_*`) are bytes since the
/// container started; the `*_rate` fields are bytes per second over the last interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatsSample {
    /// The session's id.
    pub session: String,
    /// When the engine took the sample, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// CPU used, in percent of the CPUs the session was given (100 = all of its allocation).
    pub cpu_pct: f64,
    /// Memory in use (without reclaimable page cache), in bytes.
    pub mem_bytes: u64,
    /// The session's memory limit, in bytes.
    pub mem_limit_bytes: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub blk_read: u64,
    pub blk_write: u64,
    pub net_rx_rate: f64,
    pub net_tx_rate: f64,
    pub blk_read_rate: f64,
    pub blk_write_rate: f64,
    /// Processes (and threads) in the container.
    pub pids: u64,
    /// Each GPU the session holds, on nodes with real NVIDIA devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<Vec<GpuSample>>,
}

/// One GPU's use, as NVML reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GpuSample {
    /// The device index on its node.
    pub index: u32,
    /// Percent of time a kernel ran over the last sample period.
    pub util_pct: f64,
    pub mem_bytes: u64,
    pub mem_total_bytes: u64,
}

/// `GET /api/v1/sessions/{id}/stats`: the newest sample and up to [`HISTORY_MS`] of them,
/// oldest first. Empty when the session does not run (nothing is kept after it ends).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionStats {
    pub latest: Option<StatsSample>,
    pub history: Vec<StatsSample>,
    /// Milliseconds between samples.
    pub interval_ms: u64,
}
