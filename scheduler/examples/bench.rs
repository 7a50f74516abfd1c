//! Times one scheduling pass over 1,000 nodes and 1k / 10k / 100k pending sessions, against
//! the naive session × node scan.
//!
//! Run: `cargo run --release -p scheduler --example bench`
//!
//! Inputs come from a fixed-seed generator, so every run schedules the same cluster and
//! queue. Each figure is the best of three passes over the same input.

use api::policy::Policy;
use api::{Bytes, Millicores, Resources, Shares};
use scheduler::{
    pass, pass_naive, Config, Gpu, NodeChoice, NodeView, Order, Outcome, OwnerState, Request,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const GIB: u64 = 1 << 30;
const NODES: usize = 1000;
const OWNERS: usize = 200;

/// SplitMix64: small, fast, and good enough to mix shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// True with probability `pct` percent.
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// 1,000 nodes: general CPU nodes of several sizes, a `highmem` group, GPU nodes (half in
/// the `gpu` group) with 4 or 8 devices some partly used, a quarter reaching the gateway's
/// storage, a few down, and every node already 0–50 % allocated.
fn nodes(rng: &mut Rng) -> Vec<NodeView> {
    (0..NODES)
        .map(|i| {
            let kind = rng.below(100);
            let (cores, mem_gib, gpus, group) = if kind < 60 {
                let cores = rng.pick(&[16u64, 32, 64, 96, 128]);
                (cores, cores * rng.pick(&[4u64, 8]), 0, None)
            } else if kind < 70 {
                (64, 1024, 0, Some("highmem"))
            } else {
                let group = if rng.chance(50) { Some("gpu") } else { None };
                (
                    rng.pick(&[32u64, 64]),
                    rng.pick(&[256u64, 512]),
                    rng.pick(&[4usize, 8]),
                    group,
                )
            };
            let gpus: Vec<Gpu> = (0..gpus)
                .map(|_| Gpu {
                    free: Shares(if rng.chance(70) {
                        100
                    } else {
                        rng.below(101) as u32
                    }),
                })
                .collect();
            let used_pct = rng.below(51);
            let capacity = Resources {
                cpu: Millicores(cores * 1000),
                mem: Bytes(mem_gib * GIB),
                gpu: gpus.len() as u32,
                gpu_shares: Shares(100 * gpus.len() as u32),
            };
            NodeView {
                id: format!("node-{i:04}"),
                name: format!("node-{i:04}"),
                group: group.map(str::to_string),
                schedulable: !rng.chance(2),
                allocated: Resources {
                    cpu: Millicores(capacity.cpu.0 * used_pct / 100),
                    mem: Bytes(capacity.mem.0 * used_pct / 100),
                    gpu: 0,
                    gpu_shares: Shares(gpus.iter().map(|g| 100 - g.free.0).sum()),
                },
                capacity,
                gpus,
                accepts_mounts: rng.chance(25),
            }
        })
        .collect()
}

/// `n` pending sessions of mixed shapes from 200 owners: mostly small CPU sessions, some
/// large, 10 % whole GPUs, 15 % GPU shares, 20 % with mounts, 15 % restricted to a group,
/// waiting up to an hour (some past the starvation limit).
fn queue(rng: &mut Rng, n: usize) -> Vec<Request> {
    (0..n)
        .map(|i| {
            let cpu = rng.pick(&[250u64, 500, 1000, 1000, 2000, 2000, 4000, 8000, 16000]);
            let mem = rng.pick(&[1u64, 2, 2, 4, 4, 8, 16, 32, 64]) * GIB;
            let kind = rng.below(100);
            let (gpu, gpu_shares) = if kind < 10 {
                (rng.pick(&[1u32, 1, 2, 4]), 0)
            } else if kind < 25 {
                (0, rng.pick(&[10u32, 25, 30, 50, 75, 120, 150]))
            } else {
                (0, 0)
            };
            let groups = match rng.below(100) {
                0..10 => Some(vec!["gpu".to_string()]),
                10..15 => Some(vec!["highmem".to_string()]),
                _ => None,
            };
            Request {
                session_id: format!("s{i}"),
                owner: format!("user{}", rng.below(OWNERS as u64)),
                seq: i as u64,
                resources: Resources {
                    cpu: Millicores(cpu),
                    mem: Bytes(mem),
                    gpu,
                    gpu_shares: Shares(gpu_shares),
                },
                needs_local_storage: rng.chance(20),
                allowed_groups: groups,
                waited_s: (n - i) as u64 * 3600 / n as u64,
            }
        })
        .collect()
}

/// A fifth of the owners are limited to 20 concurrent sessions, and they already run some.
fn owners(rng: &mut Rng) -> HashMap<String, OwnerState> {
    (0..OWNERS)
        .filter(|i| i % 5 == 0)
        .map(|i| {
            (
                format!("user{i}"),
                OwnerState {
                    policy: Policy {
                        max_concurrent_sessions: Some(20),
                        ..Default::default()
                    },
                    running: rng.below(10),
                    held: Resources::default(),
                },
            )
        })
        .collect()
}

type PassFn = fn(&[NodeView], &[Request], &HashMap<String, OwnerState>, &Config) -> Outcome;

/// The best of three runs, and the outcome.
fn time(
    f: PassFn,
    nodes: &[NodeView],
    queue: &[Request],
    owners: &HashMap<String, OwnerState>,
    config: &Config,
) -> (Duration, Outcome) {
    let mut best = Duration::MAX;
    let mut out = Outcome::default();
    for _ in 0..3 {
        let t = Instant::now();
        out = std::hint::black_box(f(nodes, queue, owners, config));
        best = best.min(t.elapsed());
    }
    (best, out)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn n_log_n(n: usize) -> f64 {
    n as f64 * (n as f64).log2()
}

fn main() {
    let mut rng = Rng(0xBE57_5C4E_D01E);
    let nodes = nodes(&mut rng);
    let owners = owners(&mut rng);
    let sizes = [1_000usize, 10_000, 100_000];
    let queues: Vec<Vec<Request>> = sizes.iter().map(|&n| queue(&mut rng, n)).collect();
    let config = Config::default();

    let up = nodes.iter().filter(|n| n.schedulable).count();
    let gpu_nodes = nodes.iter().filter(|n| !n.gpus.is_empty()).count();
    println!(
        "berth scheduler: one pass, {NODES} nodes ({up} up, {gpu_nodes} with GPUs), \
         {OWNERS} owners, fifo + concentrated, best of 3"
    );
    println!();
    println!(
        "{:>8} {:>6} {:>7} {:>8} {:>9} {:>12} {:>18}",
        "pending", "nodes", "placed", "waiting", "ms", "ns/pending", "growth / n·log n"
    );
    let mut indexed = Vec::new();
    for (n, q) in sizes.iter().zip(&queues) {
        let (t, out) = time(pass, &nodes, q, &owners, &config);
        let base = indexed.first().map(|(n0, t0): &(usize, Duration)| {
            (t.as_secs_f64() / t0.as_secs_f64()) / (n_log_n(*n) / n_log_n(*n0))
        });
        println!(
            "{:>8} {:>6} {:>7} {:>8} {:>9.2} {:>12.0} {:>18}",
            n,
            NODES,
            out.placed.len(),
            out.waiting.len(),
            ms(t),
            t.as_nanos() as f64 / *n as f64,
            base.map_or("1.00 (base)".to_string(), |r| format!("{r:.2}"))
        );
        indexed.push((*n, t));
    }
    println!();
    println!("growth / n·log n = (time / time at 1k) ÷ (n·log n / 1k·log 1k); at most 1 means no faster than n·log n.");
    println!();
    println!("naive session × node scan (same rules, every node checked for every session):");
    println!(
        "{:>8} {:>6} {:>12} {:>12} {:>16}",
        "pending", "nodes", "naive ms", "indexed ms", "naive / indexed"
    );
    for (i, n) in sizes.iter().enumerate().take(2) {
        let (t, out) = time(pass_naive, &nodes, &queues[i], &owners, &config);
        let same = out == pass(&nodes, &queues[i], &owners, &config);
        assert!(same, "the naive scan and the index disagree");
        println!(
            "{:>8} {:>6} {:>12.2} {:>12.2} {:>15.1}×",
            n,
            NODES,
            ms(t),
            ms(indexed[i].1),
            t.as_secs_f64() / indexed[i].1.as_secs_f64()
        );
    }
    println!();
    println!("other settings at 10k pending:");
    println!(
        "{:>6} {:>13} {:>7} {:>9}",
        "order", "placement", "placed", "ms"
    );
    for order in [Order::Fifo, Order::Lifo, Order::Drf] {
        for placement in [NodeChoice::Concentrated, NodeChoice::Dispersed] {
            let config = Config {
                order,
                placement,
                ..Config::default()
            };
            let (t, out) = time(pass, &nodes, &queues[1], &owners, &config);
            println!(
                "{:>6} {:>13} {:>7} {:>9.2}",
                format!("{order:?}").to_lowercase(),
                format!("{placement:?}").to_lowercase(),
                out.placed.len(),
                ms(t)
            );
        }
    }
}
