//! berth's scheduling pass: which pending sessions start now, on which node, with which
//! GPU devices — and, for every session that keeps waiting, a sentence saying why.
//!
//! The pass is pure and in memory: the gateway hands it the nodes ([`NodeView`]), the
//! pending sessions ([`Request`]), each owner's policy and holdings ([`OwnerState`]) and the
//! [`Config`]; it answers an [`Outcome`]. It changes nothing: the gateway records each
//! [`Placement`] with the session's status change and keeps its node views in step with
//! [`apply`] and [`release`], which are exact inverses and refuse to over-allocate.
//!
//! # Rules
//!
//! 1. **Queue order.** `fifo` (default) serves the oldest session first (`seq` ascending);
//!    `lifo` the newest first; `drf` (dominant resource fairness) repeatedly serves the
//!    owner whose *dominant share* is smallest — the largest of their CPU, memory and GPU
//!    holdings as a fraction of the schedulable cluster's capacity (whole GPUs count as 100
//!    shares), compared exactly as fractions — taking that owner's oldest session. Holdings
//!    include what the owner already runs and what this pass has placed for them, so an
//!    owner's share grows as they are served. Ties go to the owner whose next session is
//!    older.
//! 2. **Admission.** Each session is first checked against its owner's policy
//!    ([`api::policy::Policy::admits`]: concurrent sessions, total resources), counting
//!    what the pass has already placed for that owner. A policy wait holds only that
//!    owner's session, with the policy's sentence as the reason.
//! 3. **Where it may go.** Only schedulable nodes (up, not draining). A session with
//!    `allowed_groups` goes only to nodes whose group is listed (ungrouped nodes are out); a
//!    session with vfolder mounts only to nodes that see the folder storage. The node
//!    must hold the whole request at once: CPU, memory and the GPU part.
//! 4. **GPUs.** `gpu: n` takes `n` entirely free devices ([`api::gpu::place_whole`]);
//!    `gpu_shares` goes on one device when one can hold it (best fit), else is split
//!    **evenly** over the fewest devices that can ([`api::gpu::place_shares`]: 0.3 over two
//!    devices with 0.2 free is 0.15 + 0.15). A session without GPUs goes to a node without
//!    GPUs when one fits, so GPU nodes keep their CPU and memory for GPU sessions.
//! 5. **Node choice.** `concentrated` (default, best fit): among the nodes that fit, the one
//!    with the least CPU free, then the least memory free — busy nodes fill first and empty
//!    nodes stay whole for large sessions. `dispersed` (worst fit): the one with the most CPU
//!    free, then the most memory free. Remaining ties go to the node listed first.
//! 6. **No head-of-line blocking.** A session that cannot be placed waits with its reason and
//!    the pass goes on to the sessions behind it; smaller sessions may start past it.
//! 7. **Starvation.** Rule 6 alone could starve a large session forever behind a stream of
//!    small ones. So each pass, among the sessions that have waited at least
//!    [`Config::starvation_after_s`] (default ten minutes), the one that has waited longest
//!    (ties: the older `seq`) — provided its owner's policy admits it now and some node it
//!    may use is large enough when idle — is served **first**, before the queue order.
//!    If it fits, it starts. If not, it **reserves** the node that would hold it soonest:
//!    among the nodes it may use that could hold it when idle, the one where the largest
//!    shortfall (the fraction of the request still missing in any one slot: CPU, memory,
//!    whole GPUs, GPU shares) is smallest, then the one with the most CPU and memory free
//!    (a session without GPUs prefers nodes without GPUs, as in rule 4). No other session is
//!    placed on that node for the rest of the pass, so as sessions there end, the node
//!    drains towards the starving one; everything else keeps being placed on other nodes.
//!    At most one reservation exists per pass. The pass keeps no state: the next pass
//!    chooses again, so the reservation follows whichever node is nearest, and it ends
//!    when the session starts (or leaves the queue). Serving the starving session first is
//!    what makes the rule hold under `lifo` and `drf` too, where it is not at the head of
//!    the queue; under `fifo` it usually is already. `u64::MAX` turns the rule off.
//! 8. **Reasons.** Every waiting session gets a 1-based position (in serving order) and a
//!    sentence measured against the cluster as the pass leaves it, e.g. "Waiting: no node
//!    has 4 CPU free — the most free is 2 on node-a.", "Waiting: no node in your allowed
//!    groups (gpu) is up.", "Waiting: sessions with vfolder mounts or a persistent home run only on nodes that
//!    see the folder storage (on the gateway's host, or added with --storage); none has room.", or the policy's own sentence.
//!
//! # Exactness
//!
//! All amounts are integers (millicores, bytes, hundredths of a device). The pass never
//! places more on a node than it has free, counting every device separately; [`apply`]
//! and [`release`] check the same and change nothing on error.
//!
//! # Cost
//!
//! Nodes are grouped into classes (group, storage reach, GPUs or not) and each class keeps
//! its nodes in a `BTreeSet` ordered by free capacity, so a best or worst fit starts at the
//! first node with enough CPU instead of scanning all nodes. Free capacity only shrinks
//! during a pass, so a shape that found no node is remembered per constraint set, and any
//! later request at least as large in every slot fails at once. Reasons are built once per
//! constraint set and shape. A pass costs O(n log n) in pending sessions for a fixed
//! cluster; `examples/bench.rs` measures it against the naive session × node scan.

mod alloc;
mod index;
mod model;
mod order;
mod pass;
mod reason;

#[cfg(test)]
mod tests;

pub use alloc::{apply, release, AllocError};
pub use model::{
    Config, Gpu, GpuAlloc, NodeChoice, NodeView, Order, Outcome, OwnerState, Placement, Request,
    Reservation, Waiting, DEFAULT_STARVATION_AFTER_S, DEVICE_SHARES,
};
pub use pass::{pass, pass_naive};
