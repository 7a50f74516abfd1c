//! berth's websocket proxy: terminal handles and the byte pumps between a browser's
//! websocket and a TTY `docker exec` inside a session's container. The gateway embeds it
//! today; `berth wsproxy` will run it beside remote nodes later, so it knows nothing of the
//! database — only Docker endpoints, handles and sockets.
//!
//! A **handle** is not a connection: it names one shell (an exec) in one container and is
//! authorised by its secret. Connections attach to it; the shell's lifetime is the handle's:
//! it outlives a dropped connection for the grace period, and a replay buffer gives a
//! reconnect what it missed.
//!
//! What the proxy serves for a user (terminal handles and their connections, app logins and
//! app websockets, tunnels) ends when that user's access is revoked: see [`revoke`].

pub mod apps;
mod exec;
pub mod listen;
pub mod revoke;
mod terminal;

pub use apps::{AppProxy, AppResolver, AppTarget, PortMode};
pub use exec::{ExecEndpoint, ExecStream, ExecTransport};
pub use revoke::{Revocations, Watch};
pub use terminal::{HandleInfo, TerminalConfig, TerminalHub};
