//! NVIDIA GPUs on the gateway's host through NVML: discovery, and each device's use for live
//! stats. Where the NVIDIA library does not load (no driver, no GPUs — like these build
//! machines) the host simply has no GPUs: the answer is a sentence for the log, never a crash.
//! NVML is behind [`GpuReader`], so the mapping into [`GpuSample`] is tested without a device.

use api::stats::GpuSample;
use std::sync::OnceLock;

/// How many NVIDIA devices this host has, or why none were found.
pub fn discover() -> Result<u32, String> {
    let nvml = nvml()?;
    nvml.device_count()
        .map_err(|e| format!("NVML could not count the devices ({e})"))
}

/// NVML, initialised once for the process (initialising takes long on a real driver).
fn nvml() -> Result<&'static nvml_wrapper::Nvml, String> {
    static NVML: OnceLock<Result<nvml_wrapper::Nvml, String>> = OnceLock::new();
    NVML.get_or_init(|| {
        nvml_wrapper::Nvml::init().map_err(|e| format!("NVML is not available ({e})"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// One device's readings: utilisation percent, memory used and total, in bytes.
pub trait GpuReader {
    fn read(&self, index: u32) -> Result<(u32, u64, u64), String>;
}

/// The host's NVML.
pub struct Nvml;

impl GpuReader for Nvml {
    fn read(&self, index: u32) -> Result<(u32, u64, u64), String> {
        let nvml = nvml()?;
        let d = nvml
            .device_by_index(index)
            .map_err(|e| format!("NVML has no device {index} ({e})"))?;
        let util = d
            .utilization_rates()
            .map_err(|e| format!("NVML could not read device {index}'s use ({e})"))?;
        let mem = d
            .memory_info()
            .map_err(|e| format!("NVML could not read device {index}'s memory ({e})"))?;
        Ok((util.gpu, mem.used, mem.total))
    }
}

/// The use of the devices at `indices` (a session's), in that order; a device that cannot be
/// read is left out.
pub fn sample(reader: &dyn GpuReader, indices: &[usize]) -> Vec<GpuSample> {
    indices
        .iter()
        .filter_map(|&i| {
            let index = u32::try_from(i).ok()?;
            let (util, used, total) = reader.read(index).ok()?;
            Some(GpuSample {
                index,
                util_pct: f64::from(util.min(100)),
                mem_bytes: used,
                mem_total_bytes: total,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_an_answer_not_a_crash() {
        // On a machine without the NVIDIA driver this is Err with a sentence; with one, a count.
        match super::discover() {
            Ok(n) => assert!(n < 1024),
            Err(e) => assert!(e.starts_with("NVML is not available"), "{e}"),
        }
        // Sampling without the library gives nothing, not an error or a panic.
        if super::discover().is_err() {
            assert!(sample(&Nvml, &[0, 1]).is_empty());
        }
    }

    struct Fake;
    impl GpuReader for Fake {
        fn read(&self, index: u32) -> Result<(u32, u64, u64), String> {
            match index {
                0 => Ok((37, 1 << 30, 80 << 30)),
                1 => Ok((250, 0, 80 << 30)),
                _ => Err("no such device".into()),
            }
        }
    }

    #[test]
    fn readings_map_to_samples_in_the_sessions_order() {
        let got = sample(&Fake, &[1, 0, 7]);
        assert_eq!(got.len(), 2, "an unreadable device is left out");
        assert_eq!(
            (got[0].index, got[0].util_pct),
            (1, 100.0),
            "clamped to 100"
        );
        assert_eq!(
            (
                got[1].index,
                got[1].util_pct,
                got[1].mem_bytes,
                got[1].mem_total_bytes
            ),
            (0, 37.0, 1 << 30, 80 << 30)
        );
    }
}
