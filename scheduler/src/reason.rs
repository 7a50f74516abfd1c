//! The sentences a waiting session shows: why no node takes it, measured against the
//! cluster as the pass leaves it.

use crate::index::{Cluster, Shape};
use crate::model::{NodeView, DEVICE_SHARES};
use api::{Bytes, Millicores, Resources, Shares};

/// Which nodes a [`Summary`] looks at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Filter<'a> {
    pub groups: Option<&'a [String]>,
    /// Only nodes that see the folder storage.
    pub mounts: bool,
    /// Only nodes with GPUs in the capacity and free amounts (for GPU requests, which no
    /// other node can hold).
    pub gpu_only: bool,
    /// Leave the reserved node out of the free amounts (it is not available to anyone but
    /// its session).
    pub skip_reserved: bool,
}

/// What the nodes a request may use look like at the end of a pass.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Summary {
    /// Some schedulable node is in the request's groups (storage reach not considered).
    pub up_in_groups: bool,
    /// Some schedulable node is in scope (groups and storage reach).
    pub up: bool,
    /// Per slot, the largest capacity among nodes in scope: `[cpu, mem, devices, shares]`
    /// (all zero when a GPU request has no node with GPUs in scope).
    pub cap: Shape,
    /// Per slot, the most free among unreserved nodes in scope and the first node with it:
    /// `[cpu, mem, whole devices, placeable shares]`.
    pub free: [Option<(u64, usize)>; 4],
}

impl Summary {
    /// Scans the nodes in scope once.
    pub fn of(cl: &Cluster, views: &[NodeView], f: Filter<'_>) -> Self {
        let in_groups: Vec<bool> = cl
            .classes
            .iter()
            .map(|c| match f.groups {
                None => true,
                Some(list) => c.group.as_ref().is_some_and(|g| list.contains(g)),
            })
            .collect();
        let mut s = Summary {
            up_in_groups: false,
            up: false,
            cap: [0; 4],
            free: [None; 4],
        };
        for (i, n) in cl.nodes.iter().enumerate() {
            let Some(c) = n.class else { continue };
            if !in_groups[c] {
                continue;
            }
            s.up_in_groups = true;
            if f.mounts && !cl.classes[c].accepts_mounts {
                continue;
            }
            s.up = true;
            if f.gpu_only && !cl.classes[c].has_gpus {
                continue;
            }
            let v = &views[i];
            let devices = v.gpus.len() as u64;
            let cap = [
                v.capacity.cpu.0,
                v.capacity.mem.0,
                devices,
                devices * u64::from(DEVICE_SHARES),
            ];
            for (m, c) in s.cap.iter_mut().zip(cap) {
                *m = (*m).max(c);
            }
            if f.skip_reserved && n.reserved {
                continue;
            }
            let free = [
                n.cpu_free,
                n.mem_free,
                u64::from(n.whole_free),
                u64::from(n.max_shares),
            ];
            for (best, f) in s.free.iter_mut().zip(free) {
                if best.is_none_or(|(b, _)| f > b) {
                    *best = Some((f, i));
                }
            }
        }
        s
    }

    /// Every slot of `want` is at most the most free of that slot on some node (not
    /// necessarily the same node).
    fn covers(&self, want: &Shape) -> bool {
        self.free
            .iter()
            .zip(want)
            .all(|(f, &w)| w == 0 || f.is_some_and(|(v, _)| v >= w))
    }
}

/// One slot's amount, for sentences: `4 CPU`, `8 GiB of memory`, `2 GPUs`, `0.3 GPU shares`.
fn amount(slot: usize, v: u64) -> String {
    match slot {
        0 => format!("{} CPU", Millicores(v)),
        1 => format!("{} of memory", Bytes(v).human()),
        2 => format!("{v} GPU{}", if v == 1 { "" } else { "s" }),
        _ => format!("{} GPU shares", shares(v)),
    }
}

/// One slot's amount without its unit, after "the most free is": `2`, `2 GiB`, `1`, `0.2`.
fn bare(slot: usize, v: u64) -> String {
    match slot {
        0 => Millicores(v).to_string(),
        1 => Bytes(v).human(),
        2 => v.to_string(),
        _ => shares(v).to_string(),
    }
}

fn shares(v: u64) -> Shares {
    Shares(u32::try_from(v).unwrap_or(u32::MAX))
}

/// The request's constraints, for sentences.
pub(crate) struct Scope<'a> {
    pub groups: Option<&'a [String]>,
    pub mounts: bool,
}

impl Scope<'_> {
    /// "no node", "no node in your allowed groups (gpu)", "no node that reaches the
    /// folder storage", or both.
    fn no_node(&self) -> String {
        let mut s = String::from("no node");
        if let Some(g) = self.groups {
            s.push_str(&format!(" in your allowed groups ({})", g.join(", ")));
        }
        if self.mounts {
            s.push_str(" that sees the folder storage");
        }
        s
    }

    fn in_groups(&self) -> String {
        match self.groups {
            Some(g) => format!(" in your allowed groups ({})", g.join(", ")),
            None => String::new(),
        }
    }
}

/// A reserved node as another request sees it.
pub(crate) struct Reserved<'a> {
    pub name: &'a str,
    /// The request may use the node and would fit there now.
    pub would_fit: bool,
}

/// Why a request the policy admits found no node. `summary` describes its scope (the
/// reserved node left out unless the request holds the reservation); `no_mounts`, asked only
/// for requests with mounts, describes the same groups without the storage condition.
pub(crate) fn no_room(
    want: &Resources,
    scope: &Scope<'_>,
    summary: &Summary,
    no_mounts: impl FnOnce() -> Summary,
    views: &[NodeView],
    reserved: Option<Reserved<'_>>,
) -> String {
    if !summary.up_in_groups {
        return match scope.groups {
            Some([]) => "Waiting: your policy allows no node group, so no node can run it.".into(),
            Some(g) => format!(
                "Waiting: no node in your allowed groups ({}) is up and taking sessions (not drained).",
                g.join(", ")
            ),
            None => "Waiting: no node is up and taking sessions (not drained).".into(),
        };
    }
    if !summary.up {
        return format!(
            "Waiting: sessions with vfolder mounts or a persistent home run only on nodes that see the folder storage (on the gateway's host, or added with --storage); none{} is up.",
            scope.in_groups()
        );
    }
    let w = crate::index::shape(want);
    if (w[2] > 0 || w[3] > 0) && summary.cap[2] == 0 {
        return format!("Waiting: {} that is up has GPUs.", scope.no_node());
    }
    if let Some(slot) = (0..4).find(|&d| w[d] > summary.cap[d]) {
        return format!(
            "Waiting: {} that is up could ever hold it: it needs {} and the largest has {}.",
            scope.no_node(),
            amount(slot, w[slot]),
            amount(slot, summary.cap[slot])
        );
    }
    if let Some(r) = reserved.filter(|r| r.would_fit) {
        return format!(
            "Waiting: node {} has room but is reserved for a session that has waited longer; {} has room.",
            r.name,
            scope.no_node().replacen("no node", "no other node", 1)
        );
    }
    if scope.mounts && no_mounts().covers(&w) {
        return format!(
            "Waiting: sessions with vfolder mounts or a persistent home run only on nodes that see the folder storage (on the gateway's host, or added with --storage); none{} has room.",
            scope.in_groups()
        );
    }
    if summary.free[0].is_none() {
        return format!(
            "Waiting: the only node{} that could hold it is reserved for a session that has waited longer.",
            scope.no_node().trim_start_matches("no node")
        );
    }
    let no_node = scope.no_node();
    let name = |i: usize| views[i].name.as_str();
    let clauses: Vec<String> = (0..4)
        .filter_map(|d| {
            let (most, at) = summary.free[d]?;
            (w[d] > most).then(|| {
                format!(
                    "{no_node} has {} free — the most free is {} on {}",
                    amount(d, w[d]),
                    bare(d, most),
                    name(at)
                )
            })
        })
        .collect();
    if !clauses.is_empty() {
        return format!("Waiting: {}.", clauses.join("; "));
    }
    // Each slot is free somewhere, but no node has them all at once.
    let mut most: Vec<String> = Vec::new();
    let labels = ["CPU", "memory", "GPUs", "GPU shares"];
    for d in 0..4 {
        if let (true, Some((v, at))) = (w[d] > 0, summary.free[d]) {
            most.push(format!(
                "the most {} free is {} on {}",
                labels[d],
                bare(d, v),
                name(at)
            ));
        }
    }
    format!(
        "Waiting: {no_node} has {} free at once — {}.",
        want.summary(),
        most.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_well() {
        assert_eq!(amount(0, 4000), "4 CPU");
        assert_eq!(amount(0, 1500), "1.5 CPU");
        assert_eq!(amount(1, 8 << 30), "8 GiB of memory");
        assert_eq!(amount(2, 1), "1 GPU");
        assert_eq!(amount(2, 2), "2 GPUs");
        assert_eq!(amount(3, 30), "0.3 GPU shares");
        assert_eq!(bare(3, 20), "0.2");
        let s = Scope {
            groups: Some(&["gpu".to_string(), "a100".to_string()]),
            mounts: true,
        };
        assert_eq!(
            s.no_node(),
            "no node in your allowed groups (gpu, a100) that sees the folder storage"
        );
    }
}
