//! Adding a placement to a node and taking it away again, exactly.
//!
//! [`apply`] refuses anything that would over-allocate (CPU, memory, any device past 100
//! shares) or that does not add up (a whole device counted twice, shares that do not sum to
//! the request); [`release`] refuses to free what is not allocated. Both check everything
//! before changing anything, so an error leaves the node as it was, and `release` after
//! `apply` restores the node exactly.

use crate::model::{NodeView, Placement, DEVICE_SHARES};
use std::fmt;

/// Why a placement cannot be added to, or removed from, a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocError {
    /// The placement names another node.
    WrongNode { placement: String, node: String },
    /// Adding it would allocate more of `what` than the node has.
    OverCapacity { what: &'static str, node: String },
    /// Releasing it would free more of `what` than is allocated.
    NotAllocated { what: &'static str, node: String },
    /// The GPU part names a device the node does not have.
    NoSuchDevice { device: usize, node: String },
    /// A device has too few shares free (apply) or too many (release) for this part.
    Device { device: usize, node: String },
    /// The GPU part does not match the resources (count of whole devices, sum of shares),
    /// or names a whole device twice.
    Inconsistent { session: String },
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongNode { placement, node } => {
                write!(f, "The placement is for node {placement}, not {node}.")
            }
            Self::OverCapacity { what, node } => {
                write!(f, "Node {node} does not have that much {what} free.")
            }
            Self::NotAllocated { what, node } => {
                write!(f, "Node {node} does not have that much {what} allocated.")
            }
            Self::NoSuchDevice { device, node } => {
                write!(f, "Node {node} has no GPU device {device}.")
            }
            Self::Device { device, node } => write!(
                f,
                "GPU device {device} of node {node} does not have those shares to give or take back."
            ),
            Self::Inconsistent { session } => write!(
                f,
                "The GPU part of session {session} does not match its requested resources."
            ),
        }
    }
}

impl std::error::Error for AllocError {}

/// Shares each device of a node gives to `p` (100 for a whole device), checked against the
/// request: whole devices distinct and as many as asked, parts summing to the shares asked.
fn device_demand(node: &NodeView, p: &Placement) -> Result<Vec<u32>, AllocError> {
    let inconsistent = || AllocError::Inconsistent {
        session: p.session_id.clone(),
    };
    if p.gpu.whole.len() != p.resources.gpu as usize {
        return Err(inconsistent());
    }
    let mut demand = vec![0u32; node.gpus.len()];
    let mut slot = |device: usize, shares: u32| -> Result<(), AllocError> {
        let d = demand
            .get_mut(device)
            .ok_or_else(|| AllocError::NoSuchDevice {
                device,
                node: node.name.clone(),
            })?;
        *d = d.checked_add(shares).ok_or_else(inconsistent)?;
        Ok(())
    };
    for &device in &p.gpu.whole {
        slot(device, DEVICE_SHARES)?;
    }
    let mut sum = 0u32;
    for part in &p.gpu.shares {
        slot(part.device, part.shares.0)?;
        sum = sum.checked_add(part.shares.0).ok_or_else(inconsistent)?;
    }
    if sum != p.resources.gpu_shares.0 {
        return Err(inconsistent());
    }
    // A whole device named twice shows up as a demand above one device.
    if p.gpu.whole.iter().any(|&d| demand[d] > DEVICE_SHARES) {
        return Err(inconsistent());
    }
    Ok(demand)
}

fn check_node(node: &NodeView, p: &Placement) -> Result<(), AllocError> {
    if p.node_id != node.id {
        return Err(AllocError::WrongNode {
            placement: p.node_id.clone(),
            node: node.id.clone(),
        });
    }
    Ok(())
}

/// Adds `p` to `node`: its CPU, memory and GPU devices become allocated. Nothing changes on
/// error.
pub fn apply(node: &mut NodeView, p: &Placement) -> Result<(), AllocError> {
    check_node(node, p)?;
    let over = |what| AllocError::OverCapacity {
        what,
        node: node.name.clone(),
    };
    let cpu = (node.allocated.cpu.0)
        .checked_add(p.resources.cpu.0)
        .filter(|&c| c <= node.capacity.cpu.0)
        .ok_or_else(|| over("CPU"))?;
    let mem = (node.allocated.mem.0)
        .checked_add(p.resources.mem.0)
        .filter(|&m| m <= node.capacity.mem.0)
        .ok_or_else(|| over("memory"))?;
    let gpu = (node.allocated.gpu)
        .checked_add(p.resources.gpu)
        .ok_or_else(|| over("GPU"))?;
    let gpu_shares = (node.allocated.gpu_shares.0)
        .checked_add(p.resources.gpu_shares.0)
        .ok_or_else(|| over("GPU shares"))?;
    let demand = device_demand(node, p)?;
    for (device, (&want, g)) in demand.iter().zip(&node.gpus).enumerate() {
        if want > g.free.0 {
            return Err(AllocError::Device {
                device,
                node: node.name.clone(),
            });
        }
    }
    node.allocated.cpu.0 = cpu;
    node.allocated.mem.0 = mem;
    node.allocated.gpu = gpu;
    node.allocated.gpu_shares.0 = gpu_shares;
    for (g, want) in node.gpus.iter_mut().zip(demand) {
        g.free.0 -= want;
    }
    Ok(())
}

/// Takes `p` off `node`, the exact inverse of [`apply`]. Nothing changes on error.
pub fn release(node: &mut NodeView, p: &Placement) -> Result<(), AllocError> {
    check_node(node, p)?;
    let missing = |what| AllocError::NotAllocated {
        what,
        node: node.name.clone(),
    };
    let cpu = (node.allocated.cpu.0)
        .checked_sub(p.resources.cpu.0)
        .ok_or_else(|| missing("CPU"))?;
    let mem = (node.allocated.mem.0)
        .checked_sub(p.resources.mem.0)
        .ok_or_else(|| missing("memory"))?;
    let gpu = (node.allocated.gpu)
        .checked_sub(p.resources.gpu)
        .ok_or_else(|| missing("GPU"))?;
    let gpu_shares = (node.allocated.gpu_shares.0)
        .checked_sub(p.resources.gpu_shares.0)
        .ok_or_else(|| missing("GPU shares"))?;
    let demand = device_demand(node, p)?;
    for (device, (&back, g)) in demand.iter().zip(&node.gpus).enumerate() {
        if g.free.0.saturating_add(back) > DEVICE_SHARES {
            return Err(AllocError::Device {
                device,
                node: node.name.clone(),
            });
        }
    }
    node.allocated.cpu.0 = cpu;
    node.allocated.mem.0 = mem;
    node.allocated.gpu = gpu;
    node.allocated.gpu_shares.0 = gpu_shares;
    for (g, back) in node.gpus.iter_mut().zip(demand) {
        g.free.0 += back;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Gpu, GpuAlloc};
    use api::gpu::Part;
    use api::{Bytes, Millicores, Resources, Shares};

    fn node() -> NodeView {
        NodeView {
            id: "n1".into(),
            name: "node-a".into(),
            group: None,
            schedulable: true,
            capacity: Resources {
                cpu: Millicores(4000),
                mem: Bytes(8 << 30),
                gpu: 2,
                gpu_shares: Shares(200),
            },
            allocated: Resources::default(),
            gpus: vec![Gpu::IDLE, Gpu::IDLE],
            accepts_mounts: true,
        }
    }

    fn placement(cpu: u64, whole: Vec<usize>, parts: Vec<(usize, u32)>) -> Placement {
        let shares: u32 = parts.iter().map(|p| p.1).sum();
        Placement {
            session_id: "s".into(),
            node_id: "n1".into(),
            resources: Resources {
                cpu: Millicores(cpu),
                mem: Bytes(1 << 30),
                gpu: whole.len() as u32,
                gpu_shares: Shares(shares),
            },
            gpu: GpuAlloc {
                whole,
                shares: parts
                    .into_iter()
                    .map(|(device, s)| Part {
                        device,
                        shares: Shares(s),
                    })
                    .collect(),
            },
        }
    }

    #[test]
    fn apply_then_release_restores_exactly() {
        let mut n = node();
        let before = n.clone();
        let p = placement(1500, vec![1], vec![(0, 15)]);
        apply(&mut n, &p).unwrap();
        assert_eq!(n.allocated.cpu, Millicores(1500));
        assert_eq!(n.allocated.gpu, 1);
        assert_eq!(n.allocated.gpu_shares, Shares(15));
        assert_eq!(n.gpus[0].free, Shares(85));
        assert_eq!(n.gpus[1].free, Shares(0));
        release(&mut n, &p).unwrap();
        assert_eq!(n, before);
    }

    #[test]
    fn refuses_to_over_allocate_and_changes_nothing() {
        let mut n = node();
        apply(&mut n, &placement(3000, vec![], vec![(0, 90)])).unwrap();
        let before = n.clone();
        let e = apply(&mut n, &placement(1001, vec![], vec![])).unwrap_err();
        assert!(
            matches!(e, AllocError::OverCapacity { what: "CPU", .. }),
            "{e}"
        );
        let e = apply(&mut n, &placement(10, vec![], vec![(0, 11)])).unwrap_err();
        assert!(matches!(e, AllocError::Device { device: 0, .. }), "{e}");
        let e = apply(&mut n, &placement(10, vec![0], vec![])).unwrap_err();
        assert!(matches!(e, AllocError::Device { device: 0, .. }), "{e}");
        let e = apply(&mut n, &placement(10, vec![5], vec![])).unwrap_err();
        assert!(
            matches!(e, AllocError::NoSuchDevice { device: 5, .. }),
            "{e}"
        );
        assert_eq!(n, before);
    }

    #[test]
    fn refuses_inconsistent_or_foreign_placements() {
        let mut n = node();
        let mut p = placement(10, vec![1, 1], vec![]);
        assert!(matches!(
            apply(&mut n, &p),
            Err(AllocError::Inconsistent { .. })
        ));
        p = placement(10, vec![], vec![(0, 10)]);
        p.resources.gpu_shares = Shares(11);
        assert!(matches!(
            apply(&mut n, &p),
            Err(AllocError::Inconsistent { .. })
        ));
        p = placement(10, vec![], vec![]);
        p.node_id = "n2".into();
        assert!(matches!(
            apply(&mut n, &p),
            Err(AllocError::WrongNode { .. })
        ));
        assert_eq!(n, node());
    }

    #[test]
    fn refuses_to_release_what_is_not_held() {
        let mut n = node();
        let e = release(&mut n, &placement(10, vec![], vec![])).unwrap_err();
        assert!(
            matches!(e, AllocError::NotAllocated { what: "CPU", .. }),
            "{e}"
        );
        apply(&mut n, &placement(1000, vec![], vec![(0, 30)])).unwrap();
        let e = release(&mut n, &placement(10, vec![0], vec![])).unwrap_err();
        assert!(
            matches!(e, AllocError::NotAllocated { what: "GPU", .. }),
            "{e}"
        );
        n.allocated.gpu = 1; // pretend a whole device is counted, but device 1 is idle
        let e = release(&mut n, &placement(10, vec![1], vec![])).unwrap_err();
        assert!(matches!(e, AllocError::Device { device: 1, .. }), "{e}");
    }
}
