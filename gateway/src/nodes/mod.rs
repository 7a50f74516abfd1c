//! Nodes: the Docker engines session containers run on. This module holds the seam, the
//! [`Node`] trait and its types; [`docker::DockerNode`] implements it (with [`network`]: the
//! sessions' ICC-off network and the host firewall rule, [`archive`]: files written into a
//! container before it starts, [`seed`]: a persistent home filled from the image, and
//! [`gpu`]: NVIDIA discovery);
//! [`registry`] holds the connected nodes by name; [`store`] their records; [`proxy`] the
//! proxies beside nodes (`berth wsproxy`) and the tokens signed for them; [`health`]
//! connects them at start and checks them; [`routes`] is `/api/v1/nodes`. The local engine
//! is the built-in node [`LOCAL`].
//!
//! A node's state is derived from two facts: whether its engine answers (`DOWN` after
//! [`FAILURES_FOR_DOWN`] failed checks in a row, with the reason) and whether an admin drains
//! it. Allocation is never stored: it is the sum of the live sessions placed on the node.

pub mod archive;
pub mod docker;
pub mod gpu;
pub mod health;
pub mod network;
pub mod proxy;
pub mod registry;
pub mod routes;
pub mod seed;
pub mod store;

pub use health::{bootstrap, run_health, FAILURES_FOR_DOWN};
pub use routes::router;
pub use store::{capacities, rows, NodeRow};

/// The built-in node of the local engine.
pub const LOCAL: &str = "local";

use api::images::ImageInfo;
use api::session::SessionType;
use api::Resources;
use futures_util::stream::BoxStream;
use std::collections::BTreeMap;

/// What a node needs to start a session's container.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub session_id: String,
    pub owner_id: String,
    pub image: String,
    pub kind: SessionType,
    pub resources: Resources,
    pub env: BTreeMap<String, String>,
    pub command: Option<String>,
    /// Container ports to publish on the node's loopback (apps and preopened ports).
    pub ports: Vec<u16>,
    /// The secret the session's apps start with (`BERTH_JUPYTER_TOKEN`); the proxy sends it.
    pub app_secret: String,
    /// Folders to bind-mount: host directory, mount point, read-only.
    pub mounts: Vec<BindMount>,
    /// Host GPU devices the session holds (given to the container on NVIDIA nodes).
    pub gpu_devices: Vec<usize>,
    /// The largest fraction of one device the session holds, in hundredths, when it holds
    /// parts of devices (not whole ones): the MPS thread limit on NVIDIA nodes.
    pub gpu_share: Option<u32>,
    /// The owner's `max_processes`: the container's pids limit (`None`: unlimited).
    pub max_processes: Option<u64>,
    /// Files berth writes into the container after creating it and before starting it
    /// (through the engine's archive API, so ownership and mode are exact whatever the
    /// container's own rights), in order: a later file at the same path wins.
    pub files: Vec<ContainerFile>,
    /// Fill the home bind-mounted at `/home/work` from the image's own `/home/work` before
    /// `files` are written (its first use; see [`seed`]): the home folder as the gateway
    /// sees it, so that what is already there is left alone.
    pub seed_home: Option<std::sync::Arc<crate::vfolders::fs::Folder>>,
}

/// A file berth writes into a session's container: before it starts
/// ([`ContainerSpec::files`]: dotfiles, links into the home) or while it runs
/// (`Node::write_files`: SSH's files and keys).
#[derive(Clone, PartialEq, Eq)]
pub struct ContainerFile {
    /// Absolute, normalized path in the container (validated where it comes from).
    pub path: String,
    pub content: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (at most `0o7777`; set-id bits are dropped when the archive is made).
    pub mode: u32,
    /// A symbolic link to this target instead of a file (`content` and `mode` unused).
    pub link_to: Option<String>,
}

impl ContainerFile {
    /// A symbolic link at `path` to `target`, owned by `work`.
    pub fn link(path: String, target: String) -> Self {
        Self {
            path,
            content: Vec::new(),
            uid: 1000,
            gid: 1000,
            mode: 0o777,
            link_to: Some(target),
        }
    }
}

/// Contents stay out of logs: they hold dotfiles, and the SSH host key.
impl std::fmt::Debug for ContainerFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerFile")
            .field("path", &self.path)
            .field("bytes", &self.content.len())
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("link_to", &self.link_to)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct BindMount {
    pub host: std::path::PathBuf,
    pub target: String,
    pub read_only: bool,
}

/// A container of this berth instance as the node sees it.
#[derive(Debug, Clone)]
pub struct ContainerState {
    pub id: String,
    pub session_id: String,
    pub running: bool,
    /// False while the container was created but never started (a gateway killed between
    /// the two): nothing ran in it, so it did not die.
    pub started: bool,
    pub exit_code: Option<i64>,
}

/// Something that happened to a container of this instance.
#[derive(Debug, Clone)]
pub enum NodeEvent {
    /// The container's main process ended.
    Died {
        session_id: String,
        exit_code: Option<i64>,
        oom_killed: bool,
    },
    /// The event stream broke and was re-established; state may have been missed.
    Resync,
}

/// One reading of a container's counters as its engine reports them; `stats::derive` turns
/// two readings into a [`api::stats::StatsSample`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawStats {
    /// When the engine read them, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// CPU time used since the container started, in nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use, without reclaimable page cache.
    pub mem_bytes: u64,
    pub mem_limit_bytes: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub blk_read: u64,
    pub blk_write: u64,
    pub pids: u64,
}

/// A failure a node reports, with a sentence fit for a session's status reason.
#[derive(Debug)]
pub struct NodeError(pub String);

impl std::fmt::Display for NodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NodeError {}

pub type NodeResult<T> = Result<T, NodeError>;

#[async_trait::async_trait]
pub trait Node: Send + Sync {
    /// The node's name, shown as a session's `node`.
    fn name(&self) -> &str;
    /// Everything the node can give to sessions.
    fn capacity(&self) -> Resources;
    /// Answers when the node is reachable.
    async fn ping(&self) -> NodeResult<()>;
    /// Local images that carry berth's labels.
    async fn list_images(&self) -> NodeResult<Vec<ImageInfo>>;
    /// Creates and starts a session's container; returns its id. Idempotent, for a gateway
    /// killed mid-way: a container of the session that runs is adopted, one only created is
    /// started, any other is removed and made again; a session never has two.
    async fn start_session(&self, spec: &ContainerSpec) -> NodeResult<String>;
    /// Where the container's published ports are reachable: `(container port, address)`.
    async fn published_ports(
        &self,
        container_id: &str,
    ) -> NodeResult<Vec<(u16, std::net::SocketAddr)>>;
    /// Stops and removes every container of a session (none is fine).
    async fn remove_session(&self, session_id: &str) -> NodeResult<()>;
    /// All containers of this instance, running or not.
    async fn list_containers(&self) -> NodeResult<Vec<ContainerState>>;
    /// The tail of a session container's output (stdout and stderr), at most `max_bytes`.
    async fn logs(&self, session_id: &str, max_bytes: usize) -> NodeResult<String>;
    /// A session container's output from its last `tail_lines` lines on, followed live until
    /// the container stops.
    fn follow_logs(
        &self,
        session_id: &str,
        tail_lines: u32,
    ) -> BoxStream<'static, NodeResult<axum::body::Bytes>>;
    /// Container events of this instance, for as long as the node lives.
    fn events(&self) -> BoxStream<'static, NodeEvent>;
    /// A running container's counters, about once a second, until it stops (one streaming
    /// subscription: a one-off read takes about a second on Docker 20.10).
    fn stats(&self, container_id: &str) -> BoxStream<'static, RawStats>;
    /// Where the websocket proxy attaches terminals.
    fn exec_endpoint(&self) -> wsproxy::ExecEndpoint;
    /// Runs `cmd` in a running container as uid/gid 1000, without a TTY, waits for it to end
    /// and returns its exit code (127: no such program) and the tail of its output.
    async fn exec_as_work(&self, container_id: &str, cmd: &[&str]) -> NodeResult<(i64, String)>;
    /// Writes `files` into a container, running or not (the archive API, as
    /// [`ContainerSpec::files`]).
    async fn write_files(&self, container_id: &str, files: &[ContainerFile]) -> NodeResult<()>;
    /// Whether the node's GPUs are real NVIDIA devices (passed as Docker device requests)
    /// rather than devices declared in configuration (passed as environment only).
    fn real_gpus(&self) -> bool {
        false
    }
    /// The engine's own identity, to refuse adding one engine twice under two paths.
    fn engine_id(&self) -> &str {
        ""
    }
    /// A sentence when berth found that sessions on this node are not isolated from each
    /// other or from the node's host (shown in the node's state reason).
    fn isolation_warning(&self) -> Option<String> {
        None
    }
}
