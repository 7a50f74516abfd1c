//! The pass's working copy of the cluster, and the two ways of finding a node for a request:
//! the [`Index`] (nodes ordered by free capacity, plus a cache of shapes that already failed)
//! and the [`Linear`] scan it replaces (kept as the benchmark baseline and as the oracle the
//! property tests compare the index with).
//!
//! Both answer the same question with the same answer: among the schedulable, unreserved
//! nodes a request may use, the one with the smallest [`Key`] that fits it. Free capacity
//! only shrinks during a pass (placements add, reservations remove, nothing is released),
//! so a shape that failed once fails for the rest of the pass, and so does every shape at
//! least as large in every dimension with the same constraints.

use crate::model::{GpuAlloc, NodeChoice, NodeView, DEVICE_SHARES};
use api::gpu::{max_shares, place_shares, place_whole};
use api::{Resources, Shares};
use std::collections::{BTreeSet, HashMap};

/// A request's size in the four slots, as plain integers: `[cpu, mem, gpu, gpu_shares]`.
pub(crate) type Shape = [u64; 4];

pub(crate) fn shape(r: &Resources) -> Shape {
    [
        r.cpu.0,
        r.mem.0,
        u64::from(r.gpu),
        u64::from(r.gpu_shares.0),
    ]
}

pub(crate) fn wants_gpu(r: &Resources) -> bool {
    r.gpu > 0 || r.gpu_shares.0 > 0
}

/// Where a node sorts among the candidates: smaller is preferred. For concentrated
/// placement the key is `(cpu free, mem free, node)`; for dispersed it is
/// `(!cpu free, !mem free, node)`, so in both cases the preferred node comes first and ties
/// go to the node listed first.
pub(crate) type Key = (u64, u64, u32);

/// One node during a pass.
#[derive(Debug, Clone)]
pub(crate) struct NodeState {
    pub cpu_free: u64,
    pub mem_free: u64,
    pub gpu_free: Vec<Shares>,
    /// Devices entirely free.
    pub whole_free: u32,
    /// The largest fractional request the devices can take ([`max_shares`]).
    pub max_shares: u32,
    /// The node's class, `None` when it is not schedulable.
    pub class: Option<usize>,
    /// Held for a starving session: nothing else is placed here for the rest of the pass.
    pub reserved: bool,
}

impl NodeState {
    fn new(v: &NodeView, class: Option<usize>) -> Self {
        let gpu_free: Vec<Shares> = v
            .gpus
            .iter()
            .map(|g| Shares(g.free.0.min(DEVICE_SHARES)))
            .collect();
        let mut s = Self {
            cpu_free: v.free_cpu().0,
            mem_free: v.free_mem().0,
            gpu_free,
            whole_free: 0,
            max_shares: 0,
            class,
            reserved: false,
        };
        s.refresh_gpu();
        s
    }

    fn refresh_gpu(&mut self) {
        self.whole_free = self
            .gpu_free
            .iter()
            .filter(|f| f.0 >= DEVICE_SHARES)
            .count() as u32;
        self.max_shares = max_shares(&self.gpu_free).0;
    }

    /// Whether `want` fits here now (exact, including the GPU split).
    pub fn fits(&self, want: &Resources) -> bool {
        self.cpu_free >= want.cpu.0 && self.mem_free >= want.mem.0 && self.gpu_fits(want)
    }

    fn gpu_fits(&self, want: &Resources) -> bool {
        match (want.gpu, want.gpu_shares.0) {
            (0, 0) => true,
            (n, 0) => self.whole_free >= n,
            (0, s) => self.max_shares >= s,
            // Both at once (the API refuses it, the scheduler still places it exactly).
            _ => self.place_gpu(want).is_some(),
        }
    }

    /// The devices `want` would take here: whole devices first, then the shares on what is
    /// left.
    pub fn place_gpu(&self, want: &Resources) -> Option<GpuAlloc> {
        if !wants_gpu(want) {
            return Some(GpuAlloc::default());
        }
        let whole = place_whole(&self.gpu_free, want.gpu)?;
        let shares = if want.gpu_shares.0 == 0 {
            Vec::new()
        } else if whole.is_empty() {
            place_shares(&self.gpu_free, want.gpu_shares)?
        } else {
            let mut rest = self.gpu_free.clone();
            for &d in &whole {
                rest[d] = Shares(0);
            }
            place_shares(&rest, want.gpu_shares)?
        };
        Some(GpuAlloc { whole, shares })
    }

    /// Takes `want` (which must fit) and answers the devices it took.
    pub fn take(&mut self, want: &Resources) -> Option<GpuAlloc> {
        if self.cpu_free < want.cpu.0 || self.mem_free < want.mem.0 {
            return None;
        }
        let gpu = self.place_gpu(want)?;
        self.cpu_free -= want.cpu.0;
        self.mem_free -= want.mem.0;
        if !gpu.is_empty() {
            for &d in &gpu.whole {
                self.gpu_free[d] = Shares(0);
            }
            for p in &gpu.shares {
                self.gpu_free[p.device].0 -= p.shares.0;
            }
            self.refresh_gpu();
        }
        Some(gpu)
    }

    pub fn key(&self, node: usize, choice: NodeChoice) -> Key {
        match choice {
            NodeChoice::Concentrated => (self.cpu_free, self.mem_free, node as u32),
            NodeChoice::Dispersed => (!self.cpu_free, !self.mem_free, node as u32),
        }
    }
}

/// Nodes that look alike to the constraints: the same group, storage reach and GPU presence.
#[derive(Debug, Clone)]
pub(crate) struct Class {
    pub group: Option<String>,
    pub accepts_mounts: bool,
    pub has_gpus: bool,
    pub members: Vec<usize>,
}

/// The constraints of a request: which classes it may use. Non-GPU classes come first, and
/// a request without GPUs tries them before GPU nodes.
#[derive(Debug, Clone)]
pub(crate) struct Sig {
    pub plain: Vec<usize>,
    pub gpu: Vec<usize>,
    /// `allowed[class]`, for per-node checks.
    pub allowed: Vec<bool>,
}

/// The cluster during one pass.
#[derive(Debug, Clone)]
pub(crate) struct Cluster {
    pub nodes: Vec<NodeState>,
    pub classes: Vec<Class>,
    pub choice: NodeChoice,
}

impl Cluster {
    pub fn new(views: &[NodeView], choice: NodeChoice) -> Self {
        let mut classes: Vec<Class> = Vec::new();
        let mut class_of: HashMap<(Option<&str>, bool, bool), usize> = HashMap::new();
        let mut nodes = Vec::with_capacity(views.len());
        for (i, v) in views.iter().enumerate() {
            let class = v.schedulable.then(|| {
                let has_gpus = !v.gpus.is_empty();
                let c = *class_of
                    .entry((v.group.as_deref(), v.accepts_mounts, has_gpus))
                    .or_insert_with(|| {
                        classes.push(Class {
                            group: v.group.clone(),
                            accepts_mounts: v.accepts_mounts,
                            has_gpus,
                            members: Vec::new(),
                        });
                        classes.len() - 1
                    });
                classes[c].members.push(i);
                c
            });
            nodes.push(NodeState::new(v, class));
        }
        Self {
            nodes,
            classes,
            choice,
        }
    }

    /// Which classes a request with these constraints may use.
    pub fn sig(&self, groups: Option<&[String]>, mounts: bool) -> Sig {
        let allowed: Vec<bool> = self
            .classes
            .iter()
            .map(|c| {
                let in_group = match groups {
                    None => true,
                    Some(list) => c.group.as_ref().is_some_and(|g| list.contains(g)),
                };
                in_group && (!mounts || c.accepts_mounts)
            })
            .collect();
        let (gpu, plain) = (0..self.classes.len())
            .filter(|&c| allowed[c])
            .partition(|&c| self.classes[c].has_gpus);
        Sig {
            plain,
            gpu,
            allowed,
        }
    }

    pub fn key(&self, node: usize) -> Key {
        self.nodes[node].key(node, self.choice)
    }
}

/// Finds the node for a request and keeps up with changes to the cluster.
pub(crate) trait Finder {
    /// The preferred node among those `sig` allows that fit `want`: for a request without
    /// GPUs the smallest-key node without GPUs if any fits, else the smallest-key GPU node;
    /// for a GPU request the smallest-key GPU node.
    fn find(&mut self, cl: &Cluster, sig_id: usize, sig: &Sig, want: &Resources) -> Option<usize>;
    /// `node`'s free capacity changed; `old` is its key before the change.
    fn moved(&mut self, cl: &Cluster, node: usize, old: Key);
    /// `node` is reserved: it takes no more placements.
    fn reserved(&mut self, cl: &Cluster, node: usize, key: Key);
}

/// The naive scan: every node, every request.
#[derive(Debug, Default)]
pub(crate) struct Linear;

impl Finder for Linear {
    fn find(&mut self, cl: &Cluster, _: usize, sig: &Sig, want: &Resources) -> Option<usize> {
        let gpu_request = wants_gpu(want);
        let mut best: [Option<(Key, usize)>; 2] = [None, None];
        for (i, n) in cl.nodes.iter().enumerate() {
            let Some(class) = n.class else { continue };
            if n.reserved || !sig.allowed[class] || !n.fits(want) {
                continue;
            }
            let has_gpus = cl.classes[class].has_gpus;
            if gpu_request && !has_gpus {
                continue;
            }
            let slot = &mut best[usize::from(has_gpus)];
            let key = n.key(i, cl.choice);
            if slot.is_none_or(|(k, _)| key < k) {
                *slot = Some((key, i));
            }
        }
        best[0].or(best[1]).map(|(_, i)| i)
    }

    fn moved(&mut self, _: &Cluster, _: usize, _: Key) {}

    fn reserved(&mut self, _: &Cluster, _: usize, _: Key) {}
}

/// Nodes ordered by free capacity per class, and the shapes that already failed.
#[derive(Debug)]
pub(crate) struct Index {
    /// Per class, its schedulable unreserved nodes by [`Key`].
    by_key: Vec<BTreeSet<Key>>,
    /// Per signature, the minimal shapes that found no node: a request at least as large in
    /// every slot cannot fit either. Kept as an antichain (no entry dominates another).
    failed: Vec<Vec<Shape>>,
}

impl Index {
    pub fn new(cl: &Cluster) -> Self {
        let by_key = cl
            .classes
            .iter()
            .map(|c| c.members.iter().map(|&i| cl.key(i)).collect())
            .collect();
        Self {
            by_key,
            failed: Vec::new(),
        }
    }

    /// The first node of `class` in key order that fits `want`.
    fn first_fit(&self, cl: &Cluster, class: usize, want: &Resources) -> Option<(Key, usize)> {
        let set = &self.by_key[class];
        let fits = |k: &Key| cl.nodes[k.2 as usize].fits(want);
        let found = match cl.choice {
            // Nodes with less CPU free than asked cannot fit: start at the first with enough.
            NodeChoice::Concentrated => set.range((want.cpu.0, 0, 0)..).find(|k| fits(k)),
            // Keys hold !cpu_free: those past !want.cpu have too little CPU.
            NodeChoice::Dispersed => set
                .range(..=(!want.cpu.0, u64::MAX, u32::MAX))
                .find(|k| fits(k)),
        };
        found.map(|k| (*k, k.2 as usize))
    }

    fn best_of(&self, cl: &Cluster, classes: &[usize], want: &Resources) -> Option<usize> {
        classes
            .iter()
            .filter_map(|&c| self.first_fit(cl, c, want))
            .min()
            .map(|(_, i)| i)
    }

    fn known_to_fail(&self, sig_id: usize, s: &Shape) -> bool {
        self.failed
            .get(sig_id)
            .is_some_and(|list| list.iter().any(|f| f.iter().zip(s).all(|(a, b)| b >= a)))
    }

    fn remember_failure(&mut self, sig_id: usize, s: Shape) {
        if self.failed.len() <= sig_id {
            self.failed.resize_with(sig_id + 1, Vec::new);
        }
        let list = &mut self.failed[sig_id];
        list.retain(|f| !f.iter().zip(&s).all(|(a, b)| a >= b));
        list.push(s);
    }
}

impl Finder for Index {
    fn find(&mut self, cl: &Cluster, sig_id: usize, sig: &Sig, want: &Resources) -> Option<usize> {
        let s = shape(want);
        if self.known_to_fail(sig_id, &s) {
            return None;
        }
        let found = if wants_gpu(want) {
            self.best_of(cl, &sig.gpu, want)
        } else {
            self.best_of(cl, &sig.plain, want)
                .or_else(|| self.best_of(cl, &sig.gpu, want))
        };
        if found.is_none() {
            self.remember_failure(sig_id, s);
        }
        found
    }

    fn moved(&mut self, cl: &Cluster, node: usize, old: Key) {
        if let Some(class) = cl.nodes[node].class {
            let set = &mut self.by_key[class];
            set.remove(&old);
            set.insert(cl.key(node));
        }
    }

    fn reserved(&mut self, cl: &Cluster, node: usize, key: Key) {
        if let Some(class) = cl.nodes[node].class {
            self.by_key[class].remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Gpu;
    use api::{Bytes, Millicores};

    fn view(cpu: u64, mem_gib: u64, gpus: &[u32]) -> NodeView {
        NodeView {
            id: String::new(),
            name: String::new(),
            group: None,
            schedulable: true,
            capacity: Resources {
                cpu: Millicores(cpu * 1000),
                mem: Bytes(mem_gib << 30),
                gpu: gpus.len() as u32,
                gpu_shares: Shares(100 * gpus.len() as u32),
            },
            allocated: Resources::default(),
            gpus: gpus.iter().map(|&f| Gpu { free: Shares(f) }).collect(),
            accepts_mounts: true,
        }
    }

    fn want(cpu: u64, mem_gib: u64, gpu: u32, shares: u32) -> Resources {
        Resources {
            cpu: Millicores(cpu * 1000),
            mem: Bytes(mem_gib << 30),
            gpu,
            gpu_shares: Shares(shares),
        }
    }

    #[test]
    fn gpu_fit_matches_placement() {
        let n = NodeState::new(&view(8, 8, &[20, 20, 100]), Some(0));
        assert_eq!(n.whole_free, 1);
        assert!(n.fits(&want(1, 1, 1, 0)));
        assert!(!n.fits(&want(1, 1, 2, 0)));
        assert!(n.fits(&want(1, 1, 0, 100)));
        // Whole device 2 taken, then 0.3 split evenly over the two 0.2 devices.
        let g = n.place_gpu(&want(1, 1, 1, 30)).unwrap();
        assert_eq!(g.whole, vec![2]);
        let parts: Vec<u32> = g.shares.iter().map(|p| p.shares.0).collect();
        assert_eq!(parts, vec![15, 15]);
        assert!(!n.fits(&want(1, 1, 1, 41)));
    }

    #[test]
    fn index_and_scan_agree_and_failures_are_remembered() {
        let views = vec![view(4, 16, &[]), view(8, 2, &[]), view(16, 64, &[100])];
        for choice in [NodeChoice::Concentrated, NodeChoice::Dispersed] {
            let cl = Cluster::new(&views, choice);
            let sig = cl.sig(None, false);
            let mut idx = Index::new(&cl);
            for w in [
                want(2, 1, 0, 0),
                want(6, 4, 0, 0),
                want(1, 1, 0, 50),
                want(32, 1, 0, 0),
            ] {
                assert_eq!(
                    idx.find(&cl, 0, &sig, &w),
                    Linear.find(&cl, 0, &sig, &w),
                    "{choice:?} {w:?}"
                );
            }
            assert!(idx.known_to_fail(0, &shape(&want(64, 1, 0, 0))));
            assert!(!idx.known_to_fail(0, &shape(&want(16, 1, 0, 0))));
        }
    }

    #[test]
    fn failed_shapes_stay_minimal() {
        let cl = Cluster::new(&[], NodeChoice::Concentrated);
        let mut idx = Index::new(&cl);
        idx.remember_failure(0, [4, 4, 0, 0]);
        idx.remember_failure(0, [2, 8, 0, 0]);
        idx.remember_failure(0, [2, 4, 0, 0]);
        assert_eq!(idx.failed[0], vec![[2, 4, 0, 0]]);
    }
}
