//! Fractional GPU placement, in exact quanta of 0.01 device ([`Shares`]).
//!
//! Rule: a request goes on one device when one can hold it, choosing the device it fills
//! best (least left over, so no unusable fragment is left when avoidable). Otherwise it is
//! split **evenly** over the fewest devices that can hold it: `k` parts that differ by at
//! most one quantum (0.3 over two devices → 0.15 + 0.15; 0.31 → 0.16 + 0.15), on the `k`
//! devices with the most free shares (which can hold an even split whenever any `k` can).

use crate::Shares;

/// One device's part of a placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// Index into the `free` slice given to [`place_shares`].
    pub device: usize,
    pub shares: Shares,
}

/// Places `want` over devices with `free[i]` shares free each; `None` when no split fits.
pub fn place_shares(free: &[Shares], want: Shares) -> Option<Vec<Part>> {
    if want.0 == 0 {
        return Some(Vec::new());
    }
    // Best fit on one device.
    if let Some((device, _)) = free
        .iter()
        .enumerate()
        .filter(|(_, f)| f.0 >= want.0)
        .min_by_key(|(i, f)| (f.0 - want.0, *i))
    {
        return Some(vec![Part {
            device,
            shares: want,
        }]);
    }
    // Even splits over the k devices with the most free shares, smallest k first.
    let mut order: Vec<usize> = (0..free.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(free[i].0), i));
    for k in 2..=free.len().min(want.0 as usize) {
        let base = want.0 / k as u32;
        let extra = (want.0 % k as u32) as usize;
        // The devices with the most room take the parts one quantum larger.
        let parts: Vec<Part> = order[..k]
            .iter()
            .enumerate()
            .map(|(j, &device)| Part {
                device,
                shares: Shares(base + u32::from(j < extra)),
            })
            .collect();
        if parts.iter().all(|p| free[p.device].0 >= p.shares.0) {
            return Some(parts);
        }
    }
    None
}

/// The largest request [`place_shares`] can place on devices with `free[i]` shares free each.
///
/// Every request up to this amount fits and none above it does, so a scheduler can test a
/// node in O(1) once this is known. With the free amounts sorted largest first
/// (`f1 ≥ f2 ≥ …`), an even split over the top `k` devices holds at most `k × fk` plus one
/// extra quantum for each of those devices with strictly more than `fk` free.
pub fn max_shares(free: &[Shares]) -> Shares {
    let mut sorted: Vec<u32> = free.iter().map(|s| s.0).collect();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let mut best = 0u32;
    let mut larger = 0u32; // devices among the top k with more than the k-th one free
    for (j, &fk) in sorted.iter().enumerate() {
        if j > 0 && sorted[j - 1] > fk {
            larger = j as u32;
        }
        let k = j as u32 + 1;
        best = best.max(k.saturating_mul(fk).saturating_add(larger));
    }
    Shares(best)
}

/// Whole-device requests: `n` devices that are entirely free (100 shares), lowest index first.
pub fn place_whole(free: &[Shares], n: u32) -> Option<Vec<usize>> {
    let devices: Vec<usize> = free
        .iter()
        .enumerate()
        .filter(|(_, f)| f.0 >= 100)
        .map(|(i, _)| i)
        .take(n as usize)
        .collect();
    (devices.len() == n as usize).then_some(devices)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[u32]) -> Vec<Shares> {
        v.iter().map(|&x| Shares(x)).collect()
    }

    fn amounts(p: &[Part]) -> Vec<u32> {
        p.iter().map(|p| p.shares.0).collect()
    }

    #[test]
    fn one_device_when_one_can_hold_it_best_fit() {
        let p = place_shares(&s(&[100, 40, 30]), Shares(30)).unwrap();
        assert_eq!(
            p,
            vec![Part {
                device: 2,
                shares: Shares(30)
            }],
            "fills the tightest device"
        );
    }

    #[test]
    fn even_split_when_none_can() {
        let p = place_shares(&s(&[20, 20]), Shares(30)).unwrap();
        assert_eq!(amounts(&p), vec![15, 15]);
        let p = place_shares(&s(&[20, 20]), Shares(31)).unwrap();
        assert_eq!(amounts(&p), vec![16, 15]);
        let total: u32 = amounts(&place_shares(&s(&[10, 10, 10, 10]), Shares(37)).unwrap())
            .iter()
            .sum();
        assert_eq!(total, 37, "exact: nothing lost to rounding");
    }

    #[test]
    fn fewest_devices_and_impossible_requests() {
        let p = place_shares(&s(&[5, 50, 45, 10]), Shares(90)).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(amounts(&p), vec![45, 45]);
        assert!(place_shares(&s(&[20, 20]), Shares(41)).is_none());
        assert!(place_shares(&s(&[]), Shares(1)).is_none());
    }

    #[test]
    fn arithmetic_is_exact() {
        let third = crate::Shares::parse("0.3").unwrap();
        assert_eq!(Shares(third.0 * 3).to_string(), "0.9");
        assert_eq!(place_whole(&s(&[100, 50, 100, 100]), 2), Some(vec![0, 2]));
        assert_eq!(place_whole(&s(&[100, 50]), 2), None);
    }

    #[test]
    fn max_shares_is_the_exact_limit_of_place_shares() {
        assert_eq!(max_shares(&s(&[])), Shares(0));
        assert_eq!(max_shares(&s(&[20, 20])), Shares(40));
        assert_eq!(max_shares(&s(&[50, 5])), Shares(50));
        assert_eq!(max_shares(&s(&[21, 20])), Shares(41));
        // Exhaustive over small device sets: every amount up to the limit places, none above.
        let vals = [0u32, 1, 2, 3, 7, 20, 33, 50, 99, 100];
        for &a in &vals {
            for &b in &vals {
                for &c in &vals {
                    let free = s(&[a, b, c]);
                    let max = max_shares(&free).0;
                    for want in 1..=max {
                        assert!(
                            place_shares(&free, Shares(want)).is_some(),
                            "{free:?} {want}"
                        );
                    }
                    assert!(
                        place_shares(&free, Shares(max + 1)).is_none(),
                        "{free:?} {max}"
                    );
                }
            }
        }
    }
}
