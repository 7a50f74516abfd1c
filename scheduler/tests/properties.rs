//! Property tests of the allocator over random node sets and request streams: the pass never
//! over-allocates, node allocations always equal the sum of what is placed on them, even
//! splits hold, release restores exactly, and the index answers exactly as the naive scan.

use api::policy::Policy;
use api::{Bytes, Millicores, Resources, Shares};
use proptest::prelude::*;
use scheduler::{
    apply, pass, pass_naive, release, Config, Gpu, NodeChoice, NodeView, Order, Outcome,
    OwnerState, Placement, Request, DEVICE_SHARES,
};
use std::collections::HashMap;

const MIB: u64 = 1 << 20;
const OWNERS: [&str; 3] = ["ann", "bo", "cy"];

fn groups() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("a".to_string())),
        Just(Some("b".to_string()))
    ]
}

prop_compose! {
    fn arb_node()(
        cores in 1u64..=16,
        mem_gib in 1u64..=64,
        used in (0u64..=100, 0u64..=100),
        gpus in prop::collection::vec(
            prop_oneof![Just(100u32), Just(0u32), Just(20u32), 0u32..=100],
            0..=4,
        ),
        group in groups(),
        schedulable in prop::bool::weighted(0.9),
        accepts_mounts in prop::bool::weighted(0.6),
    ) -> NodeView {
        let capacity = Resources {
            cpu: Millicores(cores * 1000),
            mem: Bytes(mem_gib << 30),
            gpu: gpus.len() as u32,
            gpu_shares: Shares(DEVICE_SHARES * gpus.len() as u32),
        };
        // Some allocation already there: a percentage of CPU and memory, and the GPU
        // devices' used shares counted as fractional allocations.
        let allocated = Resources {
            cpu: Millicores(capacity.cpu.0 * used.0 / 100),
            mem: Bytes(capacity.mem.0 * used.1 / 100),
            gpu: 0,
            gpu_shares: Shares(gpus.iter().map(|f| DEVICE_SHARES - f).sum()),
        };
        NodeView {
            id: String::new(),
            name: String::new(),
            group,
            schedulable,
            capacity,
            allocated,
            gpus: gpus.into_iter().map(|f| Gpu { free: Shares(f) }).collect(),
            accepts_mounts,
        }
    }
}

fn arb_nodes() -> impl Strategy<Value = Vec<NodeView>> {
    prop::collection::vec(arb_node(), 1..10).prop_map(|mut v| {
        for (i, n) in v.iter_mut().enumerate() {
            n.id = format!("n{i}");
            n.name = format!("node-{i}");
        }
        v
    })
}

fn arb_gpu() -> impl Strategy<Value = (u32, u32)> {
    prop_oneof![
        6 => Just((0u32, 0u32)),
        2 => (1u32..=3).prop_map(|n| (n, 0)),
        3 => (1u32..=250).prop_map(|s| (0, s)),
        1 => (1u32..=2, 1u32..=150),
    ]
}

fn arb_allowed() -> impl Strategy<Value = Option<Vec<String>>> {
    prop_oneof![
        6 => Just(None),
        2 => Just(Some(vec!["a".to_string()])),
        1 => Just(Some(vec!["b".to_string(), "a".to_string()])),
        1 => Just(Some(Vec::new())),
    ]
}

prop_compose! {
    fn arb_request()(
        milli in 1u64..=80,
        mem_mib in 1u64..=64,
        gpu in arb_gpu(),
        mounts in prop::bool::weighted(0.25),
        allowed in arb_allowed(),
        owner in 0usize..OWNERS.len(),
        waited_s in prop_oneof![0u64..600, 600u64..5000],
    ) -> Request {
        Request {
            session_id: String::new(),
            owner: OWNERS[owner].to_string(),
            seq: 0,
            resources: Resources {
                cpu: Millicores(milli * 100),
                mem: Bytes(mem_mib * 256 * MIB),
                gpu: gpu.0,
                gpu_shares: Shares(gpu.1),
            },
            needs_local_storage: mounts,
            allowed_groups: allowed,
            waited_s,
        }
    }
}

/// Requests with unique ids and a shuffled creation order.
fn arb_queue(max: usize) -> impl Strategy<Value = Vec<Request>> {
    prop::collection::vec((arb_request(), any::<u16>()), 0..max).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (mut r, salt))| {
                r.session_id = format!("s{i}");
                r.seq = u64::from(salt) * 1000 + i as u64;
                r
            })
            .collect()
    })
}

fn arb_policy() -> impl Strategy<Value = Policy> {
    (
        prop::option::of(0u64..4),
        prop::option::of((1u64..=40, 1u64..=64)),
    )
        .prop_map(|(max, total)| Policy {
            max_concurrent_sessions: max,
            max_total_resources: total.map(|(c, g)| Resources {
                cpu: Millicores(c * 500),
                mem: Bytes(g << 30),
                ..Default::default()
            }),
            ..Default::default()
        })
}

fn arb_config() -> impl Strategy<Value = Config> {
    (
        prop_oneof![Just(Order::Fifo), Just(Order::Lifo), Just(Order::Drf)],
        prop_oneof![Just(NodeChoice::Concentrated), Just(NodeChoice::Dispersed)],
        prop_oneof![Just(0u64), Just(600u64), Just(u64::MAX)],
    )
        .prop_map(|(order, placement, starvation_after_s)| Config {
            order,
            placement,
            starvation_after_s,
        })
}

fn owners_from(
    policies: &[Policy],
    running: &HashMap<String, (u64, Resources)>,
) -> HashMap<String, OwnerState> {
    OWNERS
        .iter()
        .zip(policies)
        .map(|(o, p)| {
            let (running, held) = running.get(*o).copied().unwrap_or_default();
            (
                o.to_string(),
                OwnerState {
                    policy: p.clone(),
                    running,
                    held,
                },
            )
        })
        .collect()
}

/// Shares each device gives to a placement.
fn demand(p: &Placement, devices: usize) -> Vec<u32> {
    let mut d = vec![0; devices];
    for &w in &p.gpu.whole {
        d[w] += DEVICE_SHARES;
    }
    for part in &p.gpu.shares {
        d[part.device] += part.shares.0;
    }
    d
}

/// Checks one pass's outcome against its input: every request accounted for once, the
/// constraints of each placement, GPU parts exact and even, policies and the reservation
/// respected, and the index agreeing with the naive scan.
fn check_outcome(
    nodes: &[NodeView],
    queue: &[Request],
    owners: &HashMap<String, OwnerState>,
    config: &Config,
    out: &Outcome,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(out, &pass_naive(nodes, queue, owners, config));
    let mut ids: Vec<&str> = out
        .placed
        .iter()
        .map(|p| p.session_id.as_str())
        .chain(out.waiting.iter().map(|w| w.session_id.as_str()))
        .collect();
    ids.sort_unstable();
    let mut want: Vec<&str> = queue.iter().map(|r| r.session_id.as_str()).collect();
    want.sort_unstable();
    prop_assert_eq!(ids, want, "every request placed or waiting, once");
    for (k, w) in out.waiting.iter().enumerate() {
        prop_assert_eq!(w.position, k + 1);
        prop_assert!(w.reason.starts_with("Waiting: "), "{}", w.reason);
        prop_assert!(w.reason.ends_with('.'), "{}", w.reason);
    }
    // A session waiting for room fits on no node it may use, even as the pass leaves them
    // (free capacity only shrank during the pass): checked independently of the index.
    let mut after = nodes.to_vec();
    apply_all(&mut after, &out.placed)?;
    for w in &out.waiting {
        if w.reason.starts_with("Waiting: your policy allows ")
            && !w.reason.contains("no node group")
        {
            continue;
        }
        let r = queue.iter().find(|r| r.session_id == w.session_id).unwrap();
        for n in &after {
            let reserved = out
                .reservation
                .as_ref()
                .is_some_and(|res| res.node_id == n.id);
            if may_use(n, r) && !reserved {
                prop_assert!(
                    !fits_now(n, &r.resources),
                    "{} waits but fits {}: {}",
                    r.session_id,
                    n.id,
                    w.reason
                );
            }
        }
    }
    let mut placed_by: HashMap<&str, u64> = HashMap::new();
    for p in &out.placed {
        let r = queue.iter().find(|r| r.session_id == p.session_id).unwrap();
        let n = nodes.iter().find(|n| n.id == p.node_id).unwrap();
        prop_assert_eq!(p.resources, r.resources);
        prop_assert!(n.schedulable);
        prop_assert!(!r.needs_local_storage || n.accepts_mounts);
        if let Some(g) = &r.allowed_groups {
            prop_assert!(n.group.as_ref().is_some_and(|ng| g.contains(ng)));
        }
        if let Some(res) = &out.reservation {
            prop_assert!(
                res.node_id != p.node_id,
                "nothing placed on the reserved node"
            );
        }
        // Whole devices distinct; shares as even as the quantum allows, summing exactly.
        let mut whole = p.gpu.whole.clone();
        whole.sort_unstable();
        whole.dedup();
        prop_assert_eq!(whole.len(), r.resources.gpu as usize);
        let parts: Vec<u32> = p.gpu.shares.iter().map(|s| s.shares.0).collect();
        prop_assert_eq!(parts.iter().sum::<u32>(), r.resources.gpu_shares.0);
        if let (Some(lo), Some(hi)) = (parts.iter().min(), parts.iter().max()) {
            prop_assert!(hi - lo <= 1, "uneven split {:?}", parts);
        }
        let mut devs: Vec<usize> = p.gpu.shares.iter().map(|s| s.device).collect();
        devs.sort_unstable();
        devs.dedup();
        prop_assert_eq!(devs.len(), parts.len(), "one part per device");
        *placed_by.entry(r.owner.as_str()).or_default() += 1;
    }
    for (owner, &count) in &placed_by {
        let o = &owners[*owner];
        if let Some(max) = o.policy.max_concurrent_sessions {
            prop_assert!(o.running + count <= max, "{owner} over max concurrent");
        }
    }
    Ok(())
}

fn may_use(n: &NodeView, r: &Request) -> bool {
    n.schedulable
        && (!r.needs_local_storage || n.accepts_mounts)
        && r.allowed_groups
            .as_ref()
            .is_none_or(|g| n.group.as_ref().is_some_and(|ng| g.contains(ng)))
}

/// An exact fit check written straight from `api`'s placement functions.
fn fits_now(n: &NodeView, want: &Resources) -> bool {
    if n.free_cpu() < want.cpu || n.free_mem() < want.mem {
        return false;
    }
    let mut free = n.gpu_free();
    let Some(whole) = api::gpu::place_whole(&free, want.gpu) else {
        return false;
    };
    for d in whole {
        free[d] = Shares(0);
    }
    want.gpu_shares.0 == 0 || api::gpu::place_shares(&free, want.gpu_shares).is_some()
}

/// A node's allocation equals its starting allocation plus everything on it, and never
/// exceeds capacity; each device never goes past 100 shares used.
fn check_ledger(
    start: &[NodeView],
    now: &[NodeView],
    ledger: &[Placement],
) -> Result<(), TestCaseError> {
    for (s, n) in start.iter().zip(now) {
        let mine: Vec<&Placement> = ledger.iter().filter(|p| p.node_id == n.id).collect();
        let sum = mine
            .iter()
            .fold(s.allocated, |acc, p| acc.add(&p.resources));
        prop_assert_eq!(n.allocated, sum, "allocation equals the sum placed");
        prop_assert!(n.allocated.cpu <= n.capacity.cpu);
        prop_assert!(n.allocated.mem <= n.capacity.mem);
        let mut used: Vec<u32> = s.gpus.iter().map(|g| DEVICE_SHARES - g.free.0).collect();
        for p in &mine {
            for (u, d) in used.iter_mut().zip(demand(p, s.gpus.len())) {
                *u += d;
            }
        }
        for (u, g) in used.iter().zip(&n.gpus) {
            prop_assert!(*u <= DEVICE_SHARES, "device over 100 shares");
            prop_assert_eq!(DEVICE_SHARES - g.free.0, *u);
        }
    }
    Ok(())
}

fn apply_all(nodes: &mut [NodeView], placed: &[Placement]) -> Result<(), TestCaseError> {
    for p in placed {
        let n = nodes.iter_mut().find(|n| n.id == p.node_id).unwrap();
        let before = n.clone();
        prop_assert!(apply(n, p).is_ok(), "the pass over-allocated {:?}", p);
        // Release restores exactly; then apply again for real.
        let mut undo = n.clone();
        prop_assert!(release(&mut undo, p).is_ok());
        prop_assert_eq!(&undo, &before);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn one_pass_is_exact_and_matches_the_scan(
        nodes in arb_nodes(),
        queue in arb_queue(40),
        policies in prop::collection::vec(arb_policy(), OWNERS.len()),
        config in arb_config(),
    ) {
        let owners = owners_from(&policies, &HashMap::new());
        let out = pass(&nodes, &queue, &owners, &config);
        check_outcome(&nodes, &queue, &owners, &config, &out)?;
        let mut after = nodes.clone();
        apply_all(&mut after, &out.placed)?;
        check_ledger(&nodes, &after, &out.placed)?;
    }

    #[test]
    fn request_streams_never_over_allocate_and_release_restores(
        nodes in arb_nodes(),
        batches in prop::collection::vec((arb_queue(16), any::<u64>()), 1..6),
        policies in prop::collection::vec(arb_policy(), OWNERS.len()),
        config in arb_config(),
    ) {
        let start = nodes.clone();
        let mut nodes = nodes;
        let mut pending: Vec<Request> = Vec::new();
        let mut ledger: Vec<Placement> = Vec::new();
        for (round, (batch, release_mask)) in batches.into_iter().enumerate() {
            // New sessions arrive (ids unique per round, naming their owner).
            pending.extend(batch.into_iter().map(|mut r| {
                r.session_id = format!("r{round}-{}@{}", r.session_id, r.owner);
                r.seq += round as u64 * 1_000_000_000;
                r
            }));
            // What each owner runs now, for admission.
            let mut running: HashMap<String, (u64, Resources)> = HashMap::new();
            for p in &ledger {
                let owner = owner_of(&p.session_id);
                let e = running.entry(owner).or_default();
                e.0 += 1;
                e.1 = e.1.add(&p.resources);
            }
            let owners = owners_from(&policies, &running);
            let out = pass(&nodes, &pending, &owners, &config);
            check_outcome(&nodes, &pending, &owners, &config, &out)?;
            apply_all(&mut nodes, &out.placed)?;
            pending.retain(|r| !out.placed.iter().any(|p| p.session_id == r.session_id));
            ledger.extend(out.placed);
            check_ledger(&start, &nodes, &ledger)?;
            // Some sessions end.
            let mut kept = Vec::new();
            for (k, p) in ledger.drain(..).enumerate() {
                if release_mask >> (k % 64) & 1 == 1 {
                    let n = nodes.iter_mut().find(|n| n.id == p.node_id).unwrap();
                    prop_assert!(release(n, &p).is_ok());
                } else {
                    kept.push(p);
                }
            }
            ledger = kept;
            check_ledger(&start, &nodes, &ledger)?;
        }
        // Everything ends: the nodes are exactly as they started.
        for p in ledger.iter().rev() {
            let n = nodes.iter_mut().find(|n| n.id == p.node_id).unwrap();
            prop_assert!(release(n, p).is_ok());
        }
        prop_assert_eq!(nodes, start);
    }
}

/// Streams name sessions `r{round}-s{i}@{owner}`.
fn owner_of(session_id: &str) -> String {
    session_id
        .rsplit_once('@')
        .map(|(_, o)| o.to_string())
        .unwrap_or_default()
}
