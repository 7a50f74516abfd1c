//! berth's proxy: terminal handles and the byte pumps between a browser's websocket and a
//! TTY `docker exec` inside a session's container ([`TerminalHub`], with `exec`'s raw
//! upgrade), the app proxy and TCP tunnels ([`apps`]), the bounded accept loop of every
//! listener ([`listen`]), the revocation signal ([`revoke`]) and every random secret berth
//! hands out ([`secret`]). The gateway embeds it for the nodes that have no proxy of their own;
//! `berth wsproxy` ([`remote`]) runs it beside a node, on tokens the gateway signs
//! ([`token`]). It knows nothing of the database — only Docker endpoints, handles and sockets
//! (apps are found through an [`AppResolver`]).
//!
//! A **handle** is not a connection: it names one shell (an exec) in one container and is
//! authorised by its secret. Connections attach to it; the shell's lifetime is the handle's:
//! it outlives a dropped connection for the grace period, and a replay buffer gives a
//! reconnect what it missed.
//!
//! Every byte the proxy moves for a session (terminal input and output, app requests, app
//! websockets, tunnels) counts as that session's activity for the idle timeout: see
//! [`activity`].
//!
//! What the proxy does (app requests, open websockets, terminal bytes) is reported to an
//! [`Observer`] when the embedding gateway gives one: see [`observe`].
//!
//! What the proxy serves for a user (terminal handles and their connections, app logins and
//! app websockets, tunnels) ends when that user's access is revoked: see [`revoke`].

pub mod activity;
pub mod apps;
mod exec;
pub mod listen;
pub mod observe;
pub mod remote;
pub mod revoke;
pub mod secret;
mod terminal;
pub mod token;

pub use activity::{Activity, Toucher};
pub use apps::{AppProxy, AppResolver, AppTarget, PortMode};
pub use exec::{ExecEndpoint, ExecStream, ExecTransport};
pub use observe::{Observe, Observer};
pub use revoke::{Revocations, Watch};
pub use terminal::{HandleInfo, TerminalConfig, TerminalHub};
