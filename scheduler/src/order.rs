//! The order a pass serves the queue in: `fifo`, `lifo`, or `drf` (dominant resource
//! fairness by owner, recomputed as the pass places sessions).

use crate::model::{Order, DEVICE_SHARES};
use api::Resources;
use std::cmp::Ordering;
use std::collections::{BTreeSet, VecDeque};

/// Cluster totals DRF measures shares against: `[cpu, mem, gpu shares]` of schedulable nodes.
pub(crate) type Totals = [u64; 3];

/// A GPU amount in shares: whole devices count 100 each.
pub(crate) fn gpu_units(r: &Resources) -> u64 {
    u64::from(r.gpu) * u64::from(DEVICE_SHARES) + u64::from(r.gpu_shares.0)
}

/// An exact non-negative fraction `num / den` with `den > 0`, ordered by value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ratio {
    num: u64,
    den: u64,
}

impl Ratio {
    pub const ZERO: Ratio = Ratio { num: 0, den: 1 };

    /// `num / den`; `None` when `den` is zero (a dimension that does not count).
    pub fn new(num: u64, den: u64) -> Option<Self> {
        (den > 0).then_some(Self { num, den })
    }
}

impl Ord for Ratio {
    fn cmp(&self, o: &Self) -> Ordering {
        (u128::from(self.num) * u128::from(o.den)).cmp(&(u128::from(o.num) * u128::from(self.den)))
    }
}

impl PartialOrd for Ratio {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl PartialEq for Ratio {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}

impl Eq for Ratio {}

/// The largest of `held`'s shares of the cluster over CPU, memory and GPU.
pub(crate) fn dominant_share(held: &Resources, totals: &Totals) -> Ratio {
    let held = [held.cpu.0, held.mem.0, gpu_units(held)];
    held.iter()
        .zip(totals)
        .filter_map(|(&h, &t)| Ratio::new(h, t))
        .max()
        .unwrap_or(Ratio::ZERO)
}

/// Hands out request indices in queue order. DRF needs to hear what each owner now holds.
pub(crate) enum Queue {
    Fixed(std::vec::IntoIter<usize>),
    Drf(Drf),
}

impl Queue {
    /// `reqs` are `(seq, owner index)` per request; `skip` is served before the queue (the
    /// starving request) and left out of it.
    pub fn new(
        order: Order,
        reqs: &[(u64, usize)],
        skip: Option<usize>,
        held: &[Resources],
        totals: Totals,
    ) -> Self {
        let mut idx: Vec<usize> = (0..reqs.len()).filter(|&i| Some(i) != skip).collect();
        match order {
            Order::Fifo => {
                idx.sort_by_key(|&i| (reqs[i].0, i));
                Queue::Fixed(idx.into_iter())
            }
            Order::Lifo => {
                idx.sort_by_key(|&i| (std::cmp::Reverse(reqs[i].0), i));
                Queue::Fixed(idx.into_iter())
            }
            Order::Drf => Queue::Drf(Drf::new(reqs, idx, held, totals)),
        }
    }

    pub fn next(&mut self) -> Option<usize> {
        match self {
            Queue::Fixed(it) => it.next(),
            Queue::Drf(d) => d.next(),
        }
    }

    /// The request just handed out is done; its owner now holds `held`.
    pub fn served(&mut self, held: &Resources) {
        if let Queue::Drf(d) = self {
            d.served(held);
        }
    }

    /// `owner`'s holdings changed outside the queue (the starving request served first).
    pub fn holds(&mut self, owner: usize, held: &Resources) {
        if let Queue::Drf(d) = self {
            d.requeue(owner, held);
        }
    }
}

/// Dominant resource fairness: the owner with the smallest dominant share goes next (ties:
/// the owner whose next session is older, then the owner seen first), with their oldest
/// session. An owner's share grows as the pass places their sessions.
pub(crate) struct Drf {
    /// Per owner, their requests oldest first.
    queues: Vec<VecDeque<usize>>,
    seqs: Vec<u64>,
    /// Owners with requests left, by (dominant share, next request's seq, owner).
    ready: BTreeSet<(Ratio, u64, usize)>,
    /// Each owner's entry in `ready`, if any.
    entry: Vec<Option<(Ratio, u64, usize)>>,
    totals: Totals,
    /// The owner whose request was handed out last.
    current: Option<usize>,
}

impl Drf {
    fn new(reqs: &[(u64, usize)], mut idx: Vec<usize>, held: &[Resources], totals: Totals) -> Self {
        idx.sort_by_key(|&i| (reqs[i].0, i));
        let mut queues = vec![VecDeque::new(); held.len()];
        for i in idx {
            queues[reqs[i].1].push_back(i);
        }
        let seqs: Vec<u64> = reqs.iter().map(|r| r.0).collect();
        let mut d = Self {
            entry: vec![None; queues.len()],
            queues,
            seqs,
            ready: BTreeSet::new(),
            totals,
            current: None,
        };
        for (o, h) in held.iter().enumerate() {
            d.requeue(o, h);
        }
        d
    }

    fn next(&mut self) -> Option<usize> {
        let (_, _, owner) = self.ready.pop_first()?;
        self.entry[owner] = None;
        self.current = Some(owner);
        self.queues[owner].pop_front()
    }

    fn served(&mut self, held: &Resources) {
        if let Some(o) = self.current.take() {
            self.requeue(o, held);
        }
    }

    /// (Re)files `owner` under their share of `held`, if they have requests left.
    fn requeue(&mut self, owner: usize, held: &Resources) {
        if let Some(old) = self.entry[owner].take() {
            self.ready.remove(&old);
        }
        if let Some(&i) = self.queues[owner].front() {
            let key = (dominant_share(held, &self.totals), self.seqs[i], owner);
            self.ready.insert(key);
            self.entry[owner] = Some(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::{Bytes, Millicores, Shares};

    fn r(cpu: u64, mem: u64, gpu: u32) -> Resources {
        Resources {
            cpu: Millicores(cpu),
            mem: Bytes(mem),
            gpu,
            gpu_shares: Shares(0),
        }
    }

    #[test]
    fn ratios_compare_exactly() {
        let third = Ratio::new(1, 3).unwrap();
        assert_eq!(third, Ratio::new(3, 9).unwrap());
        assert!(Ratio::new(u64::MAX - 1, u64::MAX).unwrap() < Ratio::new(1, 1).unwrap());
        assert!(Ratio::new(1, 0).is_none());
    }

    #[test]
    fn dominant_share_is_the_largest_share() {
        let totals = [10_000, 100, 0];
        assert_eq!(
            dominant_share(&r(1000, 50, 0), &totals),
            Ratio::new(1, 2).unwrap()
        );
        assert_eq!(
            dominant_share(&r(6000, 50, 0), &totals),
            Ratio::new(3, 5).unwrap()
        );
        // A dimension the cluster lacks (no GPUs) does not count.
        assert_eq!(dominant_share(&r(0, 0, 3), &totals), Ratio::ZERO);
    }

    #[test]
    fn fifo_and_lifo_sort_by_seq() {
        let reqs = [(5, 0), (1, 0), (3, 0)];
        let order = |o| {
            let mut q = Queue::new(o, &reqs, None, &[Resources::default()], [1, 1, 1]);
            std::iter::from_fn(move || q.next()).collect::<Vec<_>>()
        };
        assert_eq!(order(Order::Fifo), vec![1, 2, 0]);
        assert_eq!(order(Order::Lifo), vec![0, 2, 1]);
    }

    #[test]
    fn drf_serves_the_poorest_owner_and_updates_as_it_goes() {
        // Owner 0 already holds half the CPU; owner 1 holds nothing.
        let reqs = [(1, 0), (2, 0), (3, 1), (4, 1), (5, 1)];
        let mut held = vec![r(5000, 0, 0), r(0, 0, 0)];
        let totals = [10_000, 1000, 0];
        let mut q = Queue::new(Order::Drf, &reqs, None, &held, totals);
        let mut seen = Vec::new();
        while let Some(i) = q.next() {
            seen.push(i);
            let o = reqs[i].1;
            held[o] = held[o].add(&r(2000, 0, 0));
            q.served(&held[o]);
        }
        // Owner 1 goes at 0%, 20% and 40% (all below owner 0's 50%), then owner 0.
        assert_eq!(seen, vec![2, 3, 4, 0, 1]);
    }
}
