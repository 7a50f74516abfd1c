//! Terminal websocket control frames (text frames; binary frames carry raw bytes).

use serde::{Deserialize, Serialize};

pub const MAX_FRAME_BYTES: usize = 1 << 20;
pub const MAX_DIMENSION: u16 = 1000;

/// Client → server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ClientControl {
    Resize { cols: u16, rows: u16 },
}

impl ClientControl {
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Self::Resize { cols, rows } => {
                if (1..=MAX_DIMENSION).contains(&cols) && (1..=MAX_DIMENSION).contains(&rows) {
                    Ok(())
                } else {
                    Err(format!("resize to {cols}x{rows} is out of range 1..=1000"))
                }
            }
        }
    }
}

/// Server → client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerControl {
    Exit { code: i64 },
    Replayed { bytes: u64 },
}
