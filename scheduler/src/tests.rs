//! One test (or a few) per rule of the crate docs.

use crate::*;
use api::policy::Policy;
use api::{Bytes, Millicores, Resources, Shares};
use std::collections::HashMap;

const GIB: u64 = 1 << 30;

fn node(name: &str, cores: u64, mem_gib: u64) -> NodeView {
    NodeView {
        id: format!("id-{name}"),
        name: name.into(),
        group: None,
        schedulable: true,
        capacity: Resources {
            cpu: Millicores(cores * 1000),
            mem: Bytes(mem_gib * GIB),
            gpu: 0,
            gpu_shares: Shares(0),
        },
        allocated: Resources::default(),
        gpus: Vec::new(),
        accepts_mounts: true,
    }
}

fn with_gpus(mut n: NodeView, free: &[u32]) -> NodeView {
    n.gpus = free.iter().map(|&f| Gpu { free: Shares(f) }).collect();
    n.capacity.gpu = free.len() as u32;
    n.capacity.gpu_shares = Shares(100 * free.len() as u32);
    n
}

/// A node with `used` cores and GiB already allocated.
fn busy(mut n: NodeView, cores: u64, mem_gib: u64) -> NodeView {
    n.allocated.cpu = Millicores(cores * 1000);
    n.allocated.mem = Bytes(mem_gib * GIB);
    n
}

fn req(id: &str, seq: u64, cores: u64, mem_gib: u64) -> Request {
    Request {
        session_id: id.into(),
        owner: "alice".into(),
        seq,
        resources: Resources {
            cpu: Millicores(cores * 1000),
            mem: Bytes(mem_gib * GIB),
            gpu: 0,
            gpu_shares: Shares(0),
        },
        needs_local_storage: false,
        allowed_groups: None,
        waited_s: 0,
    }
}

fn owned(mut r: Request, owner: &str) -> Request {
    r.owner = owner.into();
    r
}

fn run(nodes: &[NodeView], queue: &[Request], config: Config) -> Outcome {
    run_with(nodes, queue, &HashMap::new(), config)
}

/// Runs both the indexed and the naive pass and checks they agree.
fn run_with(
    nodes: &[NodeView],
    queue: &[Request],
    owners: &HashMap<String, OwnerState>,
    config: Config,
) -> Outcome {
    let out = pass(nodes, queue, owners, &config);
    assert_eq!(
        out,
        pass_naive(nodes, queue, owners, &config),
        "index and scan disagree"
    );
    // Every placement applies to its node without over-allocating.
    let mut nodes = nodes.to_vec();
    for p in &out.placed {
        let n = nodes.iter_mut().find(|n| n.id == p.node_id).unwrap();
        apply(n, p).unwrap();
    }
    out
}

fn placed(out: &Outcome) -> Vec<(&str, &str)> {
    out.placed
        .iter()
        .map(|p| (p.session_id.as_str(), p.node_id.as_str()))
        .collect()
}

fn reason<'a>(out: &'a Outcome, id: &str) -> &'a str {
    &out.waiting
        .iter()
        .find(|w| w.session_id == id)
        .unwrap_or_else(|| panic!("{id} is not waiting: {out:?}"))
        .reason
}

fn cfg(order: Order, placement: NodeChoice) -> Config {
    Config {
        order,
        placement,
        ..Config::default()
    }
}

#[test]
fn fifo_serves_the_oldest_first() {
    let nodes = [node("node-a", 2, 8)];
    let queue = [req("new", 2, 2, 1), req("old", 1, 2, 1)];
    let out = run(&nodes, &queue, Config::default());
    assert_eq!(placed(&out), vec![("old", "id-node-a")]);
    assert_eq!(out.waiting.len(), 1);
    assert_eq!(out.waiting[0].session_id, "new");
    assert_eq!(out.waiting[0].position, 1);
}

#[test]
fn lifo_serves_the_newest_first() {
    let nodes = [node("node-a", 2, 8)];
    let queue = [req("old", 1, 2, 1), req("new", 2, 2, 1)];
    let out = run(&nodes, &queue, cfg(Order::Lifo, NodeChoice::Concentrated));
    assert_eq!(placed(&out), vec![("new", "id-node-a")]);
}

#[test]
fn positions_follow_serving_order() {
    let nodes = [node("node-a", 1, 8)];
    let queue = [
        req("c", 3, 1, 1),
        req("a", 1, 1, 1),
        req("b", 2, 1, 1),
        req("d", 4, 1, 1),
    ];
    let out = run(&nodes, &queue, Config::default());
    let order: Vec<(&str, usize)> = out
        .waiting
        .iter()
        .map(|w| (w.session_id.as_str(), w.position))
        .collect();
    assert_eq!(order, vec![("b", 1), ("c", 2), ("d", 3)]);
}

#[test]
fn drf_serves_the_owner_with_the_smallest_dominant_share() {
    // Bob already holds half the memory; alice holds nothing. Alice's sessions are newer,
    // yet she goes first until her dominant share passes bob's.
    let nodes = [node("node-a", 8, 16)];
    let owners = HashMap::from([(
        "bob".to_string(),
        OwnerState {
            held: Resources {
                cpu: Millicores(1000),
                mem: Bytes(8 * GIB),
                ..Default::default()
            },
            running: 1,
            ..Default::default()
        },
    )]);
    let mut nodes = nodes.to_vec();
    nodes[0] = busy(nodes[0].clone(), 1, 8);
    let queue = [
        owned(req("bob-1", 1, 1, 1), "bob"),
        owned(req("alice-1", 2, 2, 1), "alice"),
        owned(req("alice-2", 3, 2, 1), "alice"),
        owned(req("alice-3", 4, 3, 1), "alice"),
    ];
    // 7 cores free. Alice goes at 0 and at 2/8 of the CPU; at 4/8 she ties with bob's 8/16
    // of the memory and bob's next session is older, so bob goes; then only 2 cores are
    // left for alice-3's 3.
    let out = run_with(
        &nodes,
        &queue,
        &owners,
        cfg(Order::Drf, NodeChoice::Concentrated),
    );
    let ids: Vec<&str> = out.placed.iter().map(|p| p.session_id.as_str()).collect();
    assert_eq!(ids, vec!["alice-1", "alice-2", "bob-1"]);
    assert_eq!(out.waiting[0].session_id, "alice-3");
    // The same queue in fifo order serves bob first.
    let out = run_with(&nodes, &queue, &owners, Config::default());
    assert_eq!(out.placed[0].session_id, "bob-1");
}

#[test]
fn drf_alternates_between_equal_owners() {
    let nodes = [node("node-a", 4, 64)];
    let queue = [
        owned(req("a1", 1, 1, 1), "a"),
        owned(req("a2", 2, 1, 1), "a"),
        owned(req("a3", 3, 1, 1), "a"),
        owned(req("a4", 4, 1, 1), "a"),
        owned(req("b1", 5, 1, 1), "b"),
        owned(req("b2", 6, 1, 1), "b"),
    ];
    let out = run(&nodes, &queue, cfg(Order::Drf, NodeChoice::Concentrated));
    let ids: Vec<&str> = out.placed.iter().map(|p| p.session_id.as_str()).collect();
    assert_eq!(ids, vec!["a1", "b1", "a2", "b2"]);
}

#[test]
fn concentrated_fills_the_busiest_node_and_dispersed_the_emptiest() {
    let nodes = [
        node("node-a", 8, 32),
        busy(node("node-b", 8, 32), 4, 4),
        node("node-c", 2, 32),
    ];
    let queue = [req("s", 1, 2, 1)];
    let out = run(&nodes, &queue, cfg(Order::Fifo, NodeChoice::Concentrated));
    assert_eq!(
        placed(&out),
        vec![("s", "id-node-c")],
        "best fit: least CPU free"
    );
    let out = run(&nodes, &queue, cfg(Order::Fifo, NodeChoice::Dispersed));
    assert_eq!(
        placed(&out),
        vec![("s", "id-node-a")],
        "worst fit: most CPU free"
    );
    // Concentrated keeps filling one node; dispersed spreads.
    let queue: Vec<Request> = (0..3).map(|i| req(&format!("s{i}"), i, 1, 1)).collect();
    let nodes = [
        node("node-a", 8, 32),
        node("node-b", 8, 32),
        node("node-c", 8, 32),
    ];
    let out = run(&nodes, &queue, cfg(Order::Fifo, NodeChoice::Concentrated));
    assert!(
        out.placed.iter().all(|p| p.node_id == "id-node-a"),
        "{out:?}"
    );
    let out = run(&nodes, &queue, cfg(Order::Fifo, NodeChoice::Dispersed));
    let mut used: Vec<&str> = out.placed.iter().map(|p| p.node_id.as_str()).collect();
    used.sort();
    assert_eq!(used, vec!["id-node-a", "id-node-b", "id-node-c"]);
}

#[test]
fn unschedulable_nodes_take_nothing() {
    let mut down = node("node-a", 64, 64);
    down.schedulable = false;
    let out = run(
        &[down, busy(node("node-b", 4, 8), 3, 0)],
        &[req("s", 1, 2, 1)],
        Config::default(),
    );
    assert!(out.placed.is_empty());
    assert_eq!(
        reason(&out, "s"),
        "Waiting: no node has 2 CPU free — the most free is 1 on node-b."
    );
    let mut down = node("node-a", 64, 64);
    down.schedulable = false;
    let out = run(&[down], &[req("s", 1, 2, 1)], Config::default());
    assert_eq!(
        reason(&out, "s"),
        "Waiting: no node is up and taking sessions (not drained)."
    );
}

#[test]
fn groups_restrict_nodes() {
    let mut gpu = node("node-g", 16, 64);
    gpu.group = Some("gpu".into());
    let nodes = [node("node-a", 4, 8), gpu.clone()];
    let mut r = req("s", 1, 1, 1);
    r.allowed_groups = Some(vec!["gpu".into()]);
    let out = run(&nodes, &[r.clone()], Config::default());
    assert_eq!(
        placed(&out),
        vec![("s", "id-node-g")],
        "the ungrouped node is out"
    );
    gpu.schedulable = false;
    let out = run(
        &[node("node-a", 4, 8), gpu],
        &[r.clone()],
        Config::default(),
    );
    assert_eq!(
        reason(&out, "s"),
        "Waiting: no node in your allowed groups (gpu) is up and taking sessions (not drained)."
    );
    r.allowed_groups = Some(Vec::new());
    let out = run(&nodes, &[r], Config::default());
    assert_eq!(
        reason(&out, "s"),
        "Waiting: your policy allows no node group, so no node can run it."
    );
}

#[test]
fn mounts_need_nodes_that_reach_storage() {
    let mut remote = node("node-r", 16, 64);
    remote.accepts_mounts = false;
    let local = busy(node("node-l", 4, 16), 3, 0);
    let mut r = req("s", 1, 2, 1);
    r.needs_local_storage = true;
    let out = run(
        &[remote.clone(), local.clone()],
        &[r.clone()],
        Config::default(),
    );
    assert_eq!(
        reason(&out, "s"),
        "Waiting: sessions with vfolder mounts or a persistent home run only on nodes that see the folder storage (on the gateway's host, or added with --storage); none has room."
    );
    // Without mounts the same session runs on the remote node.
    r.needs_local_storage = false;
    let out = run(&[remote.clone(), local], &[r.clone()], Config::default());
    assert_eq!(placed(&out), vec![("s", "id-node-r")]);
    r.needs_local_storage = true;
    let out = run(&[remote], &[r], Config::default());
    assert_eq!(
        reason(&out, "s"),
        "Waiting: sessions with vfolder mounts or a persistent home run only on nodes that see the folder storage (on the gateway's host, or added with --storage); none is up."
    );
}

#[test]
fn a_policy_wait_holds_only_that_owner() {
    let nodes = [node("node-a", 16, 64)];
    let owners = HashMap::from([(
        "alice".to_string(),
        OwnerState {
            policy: Policy {
                max_concurrent_sessions: Some(1),
                ..Default::default()
            },
            running: 0,
            held: Resources::default(),
        },
    )]);
    let queue = [
        req("alice-1", 1, 1, 1),
        req("alice-2", 2, 1, 1),
        owned(req("bob-1", 3, 1, 1), "bob"),
    ];
    let out = run_with(&nodes, &queue, &owners, Config::default());
    let ids: Vec<&str> = out.placed.iter().map(|p| p.session_id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["alice-1", "bob-1"],
        "the pass counts its own placements"
    );
    assert_eq!(
        reason(&out, "alice-2"),
        "Waiting: your policy allows 1 concurrent session and 1 is running."
    );
}

#[test]
fn total_resource_policy_counts_this_pass() {
    let nodes = [node("node-a", 16, 64)];
    let owners = HashMap::from([(
        "alice".to_string(),
        OwnerState {
            policy: Policy {
                max_total_resources: Some(Resources {
                    cpu: Millicores(3000),
                    mem: Bytes(64 * GIB),
                    ..Default::default()
                }),
                ..Default::default()
            },
            running: 1,
            held: Resources {
                cpu: Millicores(1000),
                mem: Bytes(GIB),
                ..Default::default()
            },
        },
    )]);
    let queue = [req("a", 1, 2, 1), req("b", 2, 1, 1)];
    let out = run_with(&nodes, &queue, &owners, Config::default());
    assert_eq!(placed(&out), vec![("a", "id-node-a")]);
    assert!(
        reason(&out, "b").contains("your running sessions hold 3 CPU"),
        "{out:?}"
    );
}

#[test]
fn a_session_that_cannot_be_placed_never_blocks_those_behind_it() {
    let nodes = [node("node-a", 4, 16)];
    let queue = [
        req("big", 1, 8, 1),
        req("small", 2, 2, 1),
        req("small-2", 3, 2, 1),
    ];
    let out = run(&nodes, &queue, Config::default());
    let ids: Vec<&str> = out.placed.iter().map(|p| p.session_id.as_str()).collect();
    assert_eq!(ids, vec!["small", "small-2"]);
    assert_eq!(out.waiting[0].session_id, "big");
    assert_eq!(out.waiting[0].position, 1);
    assert!(out.reservation.is_none(), "it has not waited long enough");
}

/// node-a has 2 of 8 cores free, node-b 4 of 8. A 6-core session that has waited past the
/// limit reserves node-b (a third of the request missing there, two thirds on node-a).
fn starving_cluster() -> Vec<NodeView> {
    vec![
        busy(node("node-a", 8, 32), 6, 0),
        busy(node("node-b", 8, 32), 4, 0),
    ]
}

#[test]
fn a_starving_session_reserves_the_nearest_node() {
    let mut big = req("big", 1, 6, 1);
    big.waited_s = 3600;
    let queue = [
        big,
        req("s1", 2, 1, 1),
        req("s2", 3, 1, 1),
        req("s3", 4, 1, 1),
    ];
    let out = run(&starving_cluster(), &queue, Config::default());
    assert_eq!(
        out.reservation,
        Some(Reservation {
            session_id: "big".into(),
            node_id: "id-node-b".into()
        })
    );
    // The small ones go to node-a only: two fit there, the third waits.
    assert_eq!(placed(&out), vec![("s1", "id-node-a"), ("s2", "id-node-a")]);
    assert_eq!(
        reason(&out, "big"),
        "Waiting: no node has 6 CPU free — the most free is 4 on node-b. \
         Node node-b is reserved for it: nothing else starts there until it fits."
    );
    assert_eq!(
        reason(&out, "s3"),
        "Waiting: node node-b has room but is reserved for a session that has waited longer; \
         no other node has room."
    );
}

#[test]
fn without_starvation_small_sessions_take_everything() {
    let mut big = req("big", 1, 6, 1);
    big.waited_s = 599;
    let queue = [
        big,
        req("s1", 2, 1, 1),
        req("s2", 3, 1, 1),
        req("s3", 4, 1, 1),
    ];
    let out = run(&starving_cluster(), &queue, Config::default());
    assert!(out.reservation.is_none());
    assert_eq!(out.placed.len(), 3);
    let off = Config {
        starvation_after_s: u64::MAX,
        ..Config::default()
    };
    let mut big = req("big", 1, 6, 1);
    big.waited_s = u64::MAX;
    let out = run(&starving_cluster(), &[big, req("s1", 2, 1, 1)], off);
    assert!(out.reservation.is_none());
}

#[test]
fn the_starving_session_goes_first_under_lifo_too() {
    let mut big = req("big", 1, 4, 1);
    big.waited_s = 3600;
    // Under lifo the new small sessions come first and would take node-b's 4 cores.
    let queue = [big, req("s1", 2, 1, 1), req("s2", 3, 1, 1)];
    let out = run(
        &starving_cluster(),
        &queue,
        cfg(Order::Lifo, NodeChoice::Concentrated),
    );
    assert_eq!(out.placed[0].session_id, "big", "{out:?}");
    assert_eq!(out.placed[0].node_id, "id-node-b");
    assert!(out.reservation.is_none(), "it fit, so nothing is reserved");
}

#[test]
fn a_starving_session_the_policy_holds_reserves_nothing() {
    let owners = HashMap::from([(
        "alice".to_string(),
        OwnerState {
            policy: Policy {
                max_concurrent_sessions: Some(0),
                ..Default::default()
            },
            ..Default::default()
        },
    )]);
    let mut big = req("big", 1, 6, 1);
    big.waited_s = 3600;
    let queue = [big, owned(req("s1", 2, 1, 1), "bob")];
    let out = run_with(&starving_cluster(), &queue, &owners, Config::default());
    assert!(out.reservation.is_none());
    assert_eq!(placed(&out), vec![("s1", "id-node-a")]);
}

#[test]
fn whole_gpus_take_entirely_free_devices() {
    let nodes = [with_gpus(node("node-g", 16, 64), &[50, 100, 100, 100])];
    let mut r = req("s", 1, 1, 1);
    r.resources.gpu = 2;
    let out = run(&nodes, &[r.clone()], Config::default());
    assert_eq!(out.placed[0].gpu.whole, vec![1, 2]);
    assert!(out.placed[0].gpu.shares.is_empty());
    r.resources.gpu = 4;
    let out = run(&nodes, &[r], Config::default());
    assert_eq!(
        reason(&out, "s"),
        "Waiting: no node has 4 GPUs free — the most free is 3 on node-g."
    );
}

#[test]
fn shares_split_evenly_when_one_device_cannot_hold_them() {
    let nodes = [with_gpus(node("node-g", 16, 64), &[20, 20])];
    let mut r = req("s", 1, 1, 1);
    r.resources.gpu_shares = Shares(30);
    let out = run(&nodes, &[r.clone()], Config::default());
    let parts: Vec<(usize, u32)> = out.placed[0]
        .gpu
        .shares
        .iter()
        .map(|p| (p.device, p.shares.0))
        .collect();
    assert_eq!(parts, vec![(0, 15), (1, 15)], "0.15 + 0.15, not 0.2 + 0.1");
    r.resources.gpu_shares = Shares(41);
    let out = run(&nodes, &[r], Config::default());
    assert_eq!(
        reason(&out, "s"),
        "Waiting: no node has 0.41 GPU shares free — the most free is 0.4 on node-g."
    );
}

#[test]
fn sessions_without_gpus_stay_off_gpu_nodes_when_they_can() {
    let nodes = [
        with_gpus(node("node-g", 4, 16), &[100]),
        node("node-a", 16, 64),
    ];
    // Best fit alone would pick node-g (less free); the GPU node is kept for GPU sessions.
    let out = run(&nodes, &[req("s", 1, 2, 1)], Config::default());
    assert_eq!(placed(&out), vec![("s", "id-node-a")]);
    // When nothing else fits, a GPU node takes it.
    let out = run(
        &nodes,
        &[req("a", 1, 16, 1), req("b", 2, 2, 1)],
        Config::default(),
    );
    assert_eq!(placed(&out), vec![("a", "id-node-a"), ("b", "id-node-g")]);
}

#[test]
fn reasons_name_the_short_slot_and_the_best_node() {
    let nodes = [
        busy(node("node-a", 8, 16), 6, 2),
        busy(node("node-b", 8, 16), 7, 4),
    ];
    let out = run(&nodes, &[req("cpu", 1, 4, 1)], Config::default());
    assert_eq!(
        reason(&out, "cpu"),
        "Waiting: no node has 4 CPU free — the most free is 2 on node-a."
    );
    let out = run(&nodes, &[req("mem", 1, 1, 20)], Config::default());
    assert_eq!(
        reason(&out, "mem"),
        "Waiting: no node that is up could ever hold it: it needs 20 GiB of memory and the largest has 16 GiB of memory."
    );
    let out = run(&nodes, &[req("both", 1, 4, 15)], Config::default());
    assert_eq!(
        reason(&out, "both"),
        "Waiting: no node has 4 CPU free — the most free is 2 on node-a; \
         no node has 15 GiB of memory free — the most free is 14 GiB on node-a."
    );
    // Enough of each slot somewhere, but not together.
    let nodes = [
        busy(node("node-a", 8, 16), 0, 15),
        busy(node("node-b", 8, 16), 7, 0),
    ];
    let out = run(&nodes, &[req("apart", 1, 2, 2)], Config::default());
    assert_eq!(
        reason(&out, "apart"),
        "Waiting: no node has 2 CPU, 2 GiB free at once — the most CPU free is 8 on node-a, \
         the most memory free is 16 GiB on node-b."
    );
}

#[test]
fn shapes_that_failed_are_remembered_with_the_right_sentence() {
    let nodes = [busy(node("node-a", 8, 16), 6, 0)];
    let queue = [req("a", 1, 4, 1), req("b", 2, 5, 2), req("c", 3, 4, 1)];
    let out = run(&nodes, &queue, Config::default());
    assert_eq!(reason(&out, "a"), reason(&out, "c"));
    assert_eq!(
        reason(&out, "b"),
        "Waiting: no node has 5 CPU free — the most free is 2 on node-a."
    );
}

#[test]
fn the_config_values_parse() {
    assert_eq!(Order::parse("DRF"), Ok(Order::Drf));
    assert_eq!(NodeChoice::parse(" dispersed "), Ok(NodeChoice::Dispersed));
    assert!(Order::parse("random")
        .unwrap_err()
        .contains("fifo, lifo or drf"));
}

#[test]
fn drf_counts_what_the_starving_session_took() {
    let nodes = [node("node-a", 4, 64)];
    let mut starving = req("a-old", 10, 2, 1);
    starving.waited_s = 3600;
    let queue = [
        starving,
        req("a-1", 1, 1, 1),
        owned(req("b-1", 2, 1, 1), "bob"),
        owned(req("b-2", 3, 1, 1), "bob"),
    ];
    let out = run(&nodes, &queue, cfg(Order::Drf, NodeChoice::Concentrated));
    let ids: Vec<&str> = out.placed.iter().map(|p| p.session_id.as_str()).collect();
    // Served first, a-old gives alice half the CPU, so bob goes until he has as much.
    assert_eq!(ids, vec!["a-old", "b-1", "b-2"]);
    assert_eq!(out.waiting[0].session_id, "a-1");
}

#[test]
fn gpu_requests_are_explained_by_gpu_nodes() {
    let nodes = [
        node("node-a", 64, 256),
        busy(with_gpus(node("node-g", 4, 16), &[100]), 3, 0),
    ];
    let mut r = req("s", 1, 2, 1);
    r.resources.gpu = 1;
    let out = run(&nodes, &[r.clone()], Config::default());
    assert_eq!(
        reason(&out, "s"),
        "Waiting: no node has 2 CPU free — the most free is 1 on node-g."
    );
    let out = run(&nodes[..1], &[r], Config::default());
    assert_eq!(reason(&out, "s"), "Waiting: no node that is up has GPUs.");
}

#[test]
fn a_reserved_only_node_is_explained() {
    let nodes = [busy(node("node-a", 8, 32), 4, 0)];
    let mut big = req("big", 1, 6, 1);
    big.waited_s = 3600;
    let out = run(
        &nodes,
        &[big, req("mid", 2, 5, 1), req("small", 3, 1, 1)],
        Config::default(),
    );
    assert_eq!(out.reservation.as_ref().unwrap().node_id, "id-node-a");
    assert!(out.placed.is_empty());
    assert_eq!(
        reason(&out, "mid"),
        "Waiting: the only node that could hold it is reserved for a session that has waited longer."
    );
    assert_eq!(
        reason(&out, "small"),
        "Waiting: node node-a has room but is reserved for a session that has waited longer; \
         no other node has room."
    );
}
