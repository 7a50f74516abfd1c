//! What a pass reads (nodes, the queue, owners, the configuration) and what it answers
//! (placements, waiting sessions with their reasons, the starvation reservation).

use api::gpu::Part;
use api::policy::Policy;
use api::{Bytes, Millicores, Resources, Shares};

/// Shares in one whole device.
pub const DEVICE_SHARES: u32 = 100;

/// One GPU device of a node, as the scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Gpu {
    /// Shares of this device nobody holds, `0..=100`. A whole-device placement needs `100`.
    pub free: Shares,
}

impl Gpu {
    /// A device nobody uses.
    pub const IDLE: Gpu = Gpu {
        free: Shares(DEVICE_SHARES),
    };
}

/// A node as the scheduler sees it: its capacity and what is already allocated there.
///
/// CPU and memory are accounted in `capacity`/`allocated`. GPUs are accounted per device in
/// `gpus` (the truth for placement); `allocated.gpu` counts whole devices held and
/// `allocated.gpu_shares` the fractional shares held, so the totals stay readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    pub id: String,
    pub name: String,
    /// The node group, if any; sessions restricted to groups go only to nodes in them.
    pub group: Option<String>,
    /// `UP` and not draining: new sessions may be placed here.
    pub schedulable: bool,
    pub capacity: Resources,
    pub allocated: Resources,
    pub gpus: Vec<Gpu>,
    /// The node reaches the gateway host's storage, so sessions with vfolder mounts may run here.
    pub accepts_mounts: bool,
}

impl NodeView {
    /// CPU free now (capacity minus allocation; never negative).
    pub fn free_cpu(&self) -> Millicores {
        Millicores(self.capacity.cpu.0.saturating_sub(self.allocated.cpu.0))
    }

    /// Memory free now (capacity minus allocation; never negative).
    pub fn free_mem(&self) -> Bytes {
        Bytes(self.capacity.mem.0.saturating_sub(self.allocated.mem.0))
    }

    /// Free shares of every device, in device order.
    pub fn gpu_free(&self) -> Vec<Shares> {
        self.gpus.iter().map(|g| g.free).collect()
    }
}

/// A pending session waiting for a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub session_id: String,
    /// The owner's id: the key into the owners map and the unit of DRF fairness.
    pub owner: String,
    /// Creation order: smaller is older.
    pub seq: u64,
    pub resources: Resources,
    /// The session mounts vfolders, which live on the gateway host: only nodes that
    /// [`accept mounts`](NodeView::accepts_mounts) can run it.
    pub needs_local_storage: bool,
    /// `Some(groups)`: only nodes whose group is listed (ungrouped nodes excluded).
    pub allowed_groups: Option<Vec<String>>,
    /// Seconds since the session was created (for the starvation rule).
    pub waited_s: u64,
}

/// What an owner already holds, for admission by their policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OwnerState {
    pub policy: Policy,
    /// Live sessions past the queue (scheduled, preparing, running, terminating).
    pub running: u64,
    /// The resources those sessions hold.
    pub held: Resources,
}

/// The order the queue is served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first (`seq` ascending).
    #[default]
    Fifo,
    /// Newest first (`seq` descending).
    Lifo,
    /// Dominant resource fairness: the owner holding the smallest dominant share of the
    /// cluster goes next, their own sessions oldest first.
    Drf,
}

impl Order {
    /// Parses a configuration value (`fifo`, `lifo`, `drf`, any case).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fifo" => Ok(Self::Fifo),
            "lifo" => Ok(Self::Lifo),
            "drf" => Ok(Self::Drf),
            _ => Err(format!(
                "Queue order \"{}\" is unknown: use fifo, lifo or drf.",
                s.escape_default()
            )),
        }
    }
}

/// How a node is chosen among those that fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NodeChoice {
    /// Best fit: the fitting node with the least CPU free (then the least memory free), so
    /// busy nodes fill first and whole nodes stay free for large sessions.
    #[default]
    Concentrated,
    /// Worst fit: the fitting node with the most CPU free (then the most memory free), to
    /// spread load.
    Dispersed,
}

impl NodeChoice {
    /// Parses a configuration value (`concentrated`, `dispersed`, any case).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "concentrated" => Ok(Self::Concentrated),
            "dispersed" => Ok(Self::Dispersed),
            _ => Err(format!(
                "Node choice \"{}\" is unknown: use concentrated or dispersed.",
                s.escape_default()
            )),
        }
    }
}

/// Scheduler settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub order: Order,
    pub placement: NodeChoice,
    /// After this many seconds in the queue a session that cannot be placed reserves a node
    /// (see the crate docs). `u64::MAX` turns the rule off.
    pub starvation_after_s: u64,
}

/// Ten minutes: long enough that ordinary churn places large sessions by itself.
pub const DEFAULT_STARVATION_AFTER_S: u64 = 600;

impl Default for Config {
    fn default() -> Self {
        Self {
            order: Order::Fifo,
            placement: NodeChoice::Concentrated,
            starvation_after_s: DEFAULT_STARVATION_AFTER_S,
        }
    }
}

/// The GPUs a placement takes on its node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GpuAlloc {
    /// Whole devices (indices into [`NodeView::gpus`]), each taken entirely.
    pub whole: Vec<usize>,
    /// Fractional parts: one device, or an even split over the fewest devices that hold it.
    pub shares: Vec<Part>,
}

impl GpuAlloc {
    pub fn is_empty(&self) -> bool {
        self.whole.is_empty() && self.shares.is_empty()
    }
}

/// One session placed on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub session_id: String,
    pub node_id: String,
    /// What the session holds there (its request).
    pub resources: Resources,
    pub gpu: GpuAlloc,
}

/// A session that stays pending, with its place in the queue and why it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub session_id: String,
    /// 1-based position among the sessions still waiting, in the order the pass served them.
    pub position: usize,
    /// A sentence for people: "Waiting: no node has 4 CPU free — the most free is 2 on node-a."
    pub reason: String,
}

/// The node held back for a starving session during this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub session_id: String,
    pub node_id: String,
}

/// The result of one pass.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Sessions to start, in the order they were placed.
    pub placed: Vec<Placement>,
    /// Sessions that stay pending, in queue order (positions 1, 2, …).
    pub waiting: Vec<Waiting>,
    pub reservation: Option<Reservation>,
}
