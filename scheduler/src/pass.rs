//! One scheduling pass: serve the queue in order, admit by policy, place, reserve for the
//! starving session, and explain every wait.

use crate::index::{shape, wants_gpu, Cluster, Finder, Index, Linear, Shape, Sig};
use crate::model::{
    Config, NodeView, Outcome, OwnerState, Placement, Request, Reservation, Waiting, DEVICE_SHARES,
};
use crate::order::{Queue, Ratio, Totals};
use crate::reason::{self, Filter, Reserved, Scope, Summary};
use api::{Bytes, Millicores, Resources, Shares};
use std::cmp::Reverse;
use std::collections::HashMap;

/// Runs one scheduling pass over `queue` (pending sessions, any order) on `nodes`.
///
/// `owners` gives each owner's policy and what they already hold; an owner missing from it
/// has the default (unlimited) policy and holds nothing. The nodes are not changed: the
/// caller records each [`Placement`] (e.g. with [`apply`](crate::apply)) once the session is
/// really scheduled. See the crate docs for the rules.
pub fn pass(
    nodes: &[NodeView],
    queue: &[Request],
    owners: &HashMap<String, OwnerState>,
    config: &Config,
) -> Outcome {
    let cluster = Cluster::new(nodes, config.placement);
    let index = Index::new(&cluster);
    run(nodes, queue, owners, config, cluster, index)
}

/// [`pass`] with a plain scan of every node for every request instead of the index and the
/// failure cache: the same answers, slower. For the benchmark baseline and the property
/// tests that check the index against it.
#[doc(hidden)]
pub fn pass_naive(
    nodes: &[NodeView],
    queue: &[Request],
    owners: &HashMap<String, OwnerState>,
    config: &Config,
) -> Outcome {
    let cluster = Cluster::new(nodes, config.placement);
    run(nodes, queue, owners, config, cluster, Linear)
}

/// How a served request ended, in serving order.
enum Served {
    Placed,
    /// The owner's policy holds it: the sentence from `Policy::admits`.
    Policy(String),
    /// No node has room.
    NoRoom,
}

fn saturating_add(a: &Resources, b: &Resources) -> Resources {
    Resources {
        cpu: Millicores(a.cpu.0.saturating_add(b.cpu.0)),
        mem: Bytes(a.mem.0.saturating_add(b.mem.0)),
        gpu: a.gpu.saturating_add(b.gpu),
        gpu_shares: Shares(a.gpu_shares.0.saturating_add(b.gpu_shares.0)),
    }
}

/// Interned request constraints: requests with the same groups list and storage need share
/// a signature (and its failure cache and reason summary).
struct Sigs<'q> {
    ids: HashMap<(Option<&'q [String]>, bool), usize>,
    list: Vec<(Option<&'q [String]>, bool, Sig)>,
}

impl<'q> Sigs<'q> {
    fn id(&mut self, cl: &Cluster, groups: Option<&'q [String]>, mounts: bool) -> usize {
        *self.ids.entry((groups, mounts)).or_insert_with(|| {
            self.list.push((groups, mounts, cl.sig(groups, mounts)));
            self.list.len() - 1
        })
    }
}

/// The state of one pass while it serves the queue.
struct Pass<'q, F> {
    views: &'q [NodeView],
    queue: &'q [Request],
    cl: Cluster,
    finder: F,
    sigs: Sigs<'q>,
    /// Per request: its owner's index and its signature.
    req_owner: Vec<usize>,
    req_sig: Vec<usize>,
    /// Per owner: their state as given, and what they run and hold as the pass goes.
    owner_state: Vec<&'q OwnerState>,
    running: Vec<u64>,
    held: Vec<Resources>,
    placed: Vec<Placement>,
    /// The starving request served first, and the node it reserved: (request, node).
    promoted: Option<usize>,
    reservation: Option<(usize, usize)>,
}

fn run<F: Finder>(
    views: &[NodeView],
    queue: &[Request],
    owners: &HashMap<String, OwnerState>,
    config: &Config,
    cl: Cluster,
    finder: F,
) -> Outcome {
    // Owners and constraints, interned once.
    let unlimited = OwnerState::default();
    let mut owner_ids: HashMap<&str, usize> = HashMap::new();
    let mut owner_state: Vec<&OwnerState> = Vec::new();
    let mut sigs = Sigs {
        ids: HashMap::new(),
        list: Vec::new(),
    };
    let mut req_owner = Vec::with_capacity(queue.len());
    let mut req_sig = Vec::with_capacity(queue.len());
    for r in queue {
        let o = *owner_ids.entry(r.owner.as_str()).or_insert_with(|| {
            owner_state.push(owners.get(&r.owner).unwrap_or(&unlimited));
            owner_state.len() - 1
        });
        req_owner.push(o);
        req_sig.push(sigs.id(&cl, r.allowed_groups.as_deref(), r.needs_local_storage));
    }
    let mut p = Pass {
        views,
        queue,
        finder,
        running: owner_state.iter().map(|o| o.running).collect(),
        held: owner_state.iter().map(|o| o.held).collect(),
        cl,
        sigs,
        req_owner,
        req_sig,
        owner_state,
        placed: Vec::new(),
        promoted: None,
        reservation: None,
    };
    p.promoted = p.starving(config);

    let reqs: Vec<(u64, usize)> = queue
        .iter()
        .zip(&p.req_owner)
        .map(|(r, &o)| (r.seq, o))
        .collect();
    let mut order = Queue::new(config.order, &reqs, p.promoted, &p.held, totals(views));
    let mut served: Vec<(usize, Served)> = Vec::with_capacity(queue.len());
    // The starving request first, then the queue in order.
    if let Some(i) = p.promoted {
        served.push((i, p.serve(i)));
        let o = p.req_owner[i];
        order.holds(o, &p.held[o]);
    }
    while let Some(i) = order.next() {
        served.push((i, p.serve(i)));
        order.served(&p.held[p.req_owner[i]]);
    }

    let waiting = p.explain(served);
    Outcome {
        placed: p.placed,
        waiting,
        reservation: p.reservation.map(|(i, n)| Reservation {
            session_id: queue[i].session_id.clone(),
            node_id: views[n].id.clone(),
        }),
    }
}

impl<F: Finder> Pass<'_, F> {
    /// Admits, places or reserves for request `i`.
    fn serve(&mut self, i: usize) -> Served {
        let r = &self.queue[i];
        let o = self.req_owner[i];
        let want = &r.resources;
        if let Err(why) = self.owner_state[o]
            .policy
            .admits(self.running[o], &self.held[o], want)
        {
            return Served::Policy(why);
        }
        let sig_id = self.req_sig[i];
        let sig = &self.sigs.list[sig_id].2;
        let found = self.finder.find(&self.cl, sig_id, sig, want);
        let taken = found.and_then(|n| {
            let old = self.cl.key(n);
            let gpu = self.cl.nodes[n].take(want)?;
            self.finder.moved(&self.cl, n, old);
            Some((n, gpu))
        });
        // A node the finder picks always fits; were it not so, the session would only wait
        // a pass longer, never over-allocate.
        debug_assert!(
            found.is_none() || taken.is_some(),
            "found a node that does not fit"
        );
        if let Some((n, gpu)) = taken {
            self.placed.push(Placement {
                session_id: r.session_id.clone(),
                node_id: self.views[n].id.clone(),
                resources: *want,
                gpu,
            });
            self.running[o] += 1;
            self.held[o] = saturating_add(&self.held[o], want);
            return Served::Placed;
        }
        if self.promoted == Some(i) {
            if let Some(n) = reserve_for(self.views, &self.cl, sig, want) {
                let key = self.cl.key(n);
                self.cl.nodes[n].reserved = true;
                self.finder.reserved(&self.cl, n, key);
                self.reservation = Some((i, n));
            }
        }
        Served::NoRoom
    }
}

/// DRF's denominators: the capacity of the schedulable nodes.
fn totals(views: &[NodeView]) -> Totals {
    let mut t = [0u64; 3];
    for v in views.iter().filter(|v| v.schedulable) {
        t[0] = t[0].saturating_add(v.capacity.cpu.0);
        t[1] = t[1].saturating_add(v.capacity.mem.0);
        t[2] = t[2].saturating_add(v.gpus.len() as u64 * u64::from(DEVICE_SHARES));
    }
    t
}

/// Whether a node, idle, could hold `want`.
fn could_hold(v: &NodeView, want: &Resources) -> bool {
    let devices = v.gpus.len() as u64;
    v.capacity.cpu >= want.cpu
        && v.capacity.mem >= want.mem
        && devices >= u64::from(want.gpu)
        && (devices - u64::from(want.gpu)) * u64::from(DEVICE_SHARES)
            >= u64::from(want.gpu_shares.0)
}

/// Caches for the reasons: per signature, GPU need and storage condition, the summary of
/// the nodes as the pass leaves them; per signature and shape, the sentence (equal shapes
/// read the same).
#[derive(Default)]
struct ReasonCache {
    summaries: HashMap<(usize, bool, bool), Summary>,
    sentences: HashMap<(usize, Shape), String>,
}

impl<F> Pass<'_, F> {
    /// The starving request served first this pass, if any: among requests that have
    /// waited at least `starvation_after_s`, the one that has waited longest (then the
    /// oldest) whose owner's policy admits it now and for which some node it may use is
    /// large enough in every slot.
    fn starving(&self, config: &Config) -> Option<usize> {
        if config.starvation_after_s == u64::MAX {
            return None;
        }
        let queue = self.queue;
        let mut candidates: Vec<usize> = (0..queue.len())
            .filter(|&i| queue[i].waited_s >= config.starvation_after_s)
            .collect();
        candidates.sort_by_key(|&i| (Reverse(queue[i].waited_s), queue[i].seq, i));
        // Largest capacity per slot for each signature (GPU nodes only for GPU requests),
        // computed when first needed.
        let mut caps: HashMap<(usize, bool), Shape> = HashMap::new();
        candidates.into_iter().find(|&i| {
            let want = &queue[i].resources;
            let o = self.owner_state[self.req_owner[i]];
            if o.policy.admits(o.running, &o.held, want).is_err() {
                return false;
            }
            let gpu_only = wants_gpu(want);
            let cap = caps.entry((self.req_sig[i], gpu_only)).or_insert_with(|| {
                let (groups, mounts, _) = self.sigs.list[self.req_sig[i]];
                let f = Filter {
                    groups,
                    mounts,
                    gpu_only,
                    skip_reserved: false,
                };
                Summary::of(&self.cl, self.views, f).cap
            });
            shape(want).iter().zip(cap.iter()).all(|(w, c)| w <= c)
        })
    }

    /// Positions and reasons for everything that waits, in serving order.
    fn explain(&self, served: Vec<(usize, Served)>) -> Vec<Waiting> {
        let mut cache = ReasonCache::default();
        let mut out = Vec::new();
        for (i, how) in served {
            let reason = match how {
                Served::Placed => continue,
                Served::Policy(why) => why,
                Served::NoRoom => self.no_room(i, &mut cache),
            };
            out.push(Waiting {
                session_id: self.queue[i].session_id.clone(),
                position: out.len() + 1,
                reason,
            });
        }
        out
    }

    /// Why request `i`, admitted by its policy, found no node.
    fn no_room(&self, i: usize, cache: &mut ReasonCache) -> String {
        let (cl, views) = (&self.cl, self.views);
        let sig_id = self.req_sig[i];
        let (groups, mounts, ref sig) = self.sigs.list[sig_id];
        let want = &self.queue[i].resources;
        let scope = Scope { groups, mounts };
        let gpu_only = wants_gpu(want);
        let filter = |mounts, skip_reserved| Filter {
            groups,
            mounts,
            gpu_only,
            skip_reserved,
        };
        match self.reservation {
            // The holder sees its reserved node; its sentence says so.
            Some((holder, node)) if holder == i => {
                let own = Summary::of(cl, views, filter(mounts, false));
                let no_mounts = || Summary::of(cl, views, filter(false, false));
                let why = reason::no_room(want, &scope, &own, no_mounts, views, None);
                format!(
                    "{why} Node {} is reserved for it: nothing else starts there until it fits.",
                    views[node].name
                )
            }
            reservation => {
                let key = (sig_id, shape(want));
                if let Some(s) = cache.sentences.get(&key) {
                    return s.clone();
                }
                let mut summary = |skip_mounts: bool| {
                    *cache
                        .summaries
                        .entry((sig_id, gpu_only, skip_mounts))
                        .or_insert_with(|| {
                            Summary::of(cl, views, filter(mounts && !skip_mounts, true))
                        })
                };
                let reserved = reservation.map(|(_, n)| Reserved {
                    name: &views[n].name,
                    would_fit: cl.nodes[n].class.is_some_and(|c| sig.allowed[c])
                        && cl.nodes[n].fits(want),
                });
                let own = summary(false);
                let why = reason::no_room(want, &scope, &own, || summary(true), views, reserved);
                cache.sentences.insert(key, why.clone());
                why
            }
        }
    }
}

/// The node a starving request reserves: among the nodes it may use that could hold it when
/// idle, the one nearest to holding it now — the smallest largest shortfall, each slot's
/// shortfall measured as the fraction of the request still missing there — then the most CPU
/// free, the most memory free, the node listed first. A request without GPUs looks at nodes
/// without GPUs first, as placement does.
fn reserve_for(views: &[NodeView], cl: &Cluster, sig: &Sig, want: &Resources) -> Option<usize> {
    let w = shape(want);
    let no_gpu = w[2] == 0 && w[3] == 0;
    let groups: [&[usize]; 2] = if no_gpu {
        [&sig.plain, &sig.gpu]
    } else {
        [&sig.gpu, &[]]
    };
    groups.into_iter().find_map(|classes| {
        classes
            .iter()
            .flat_map(|&c| cl.classes[c].members.iter().copied())
            .filter(|&n| !cl.nodes[n].reserved && could_hold(&views[n], want))
            .min_by_key(|&n| {
                let s = &cl.nodes[n];
                let free = [
                    s.cpu_free,
                    s.mem_free,
                    u64::from(s.whole_free),
                    u64::from(s.max_shares),
                ];
                let shortfall = (0..4)
                    .filter_map(|d| Ratio::new(w[d].saturating_sub(free[d]), w[d]))
                    .max()
                    .unwrap_or(Ratio::ZERO);
                (shortfall, Reverse(s.cpu_free), Reverse(s.mem_free), n)
            })
    })
}
