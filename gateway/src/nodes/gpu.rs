//! NVIDIA GPU discovery on the gateway's host through NVML. Where the NVIDIA library does not
//! load (no driver, no GPUs — like these build machines) the host simply has no GPUs: the
//! answer is a sentence for the log, never a crash.

/// How many NVIDIA devices this host has, or why none were found.
pub fn discover() -> Result<u32, String> {
    let nvml = nvml_wrapper::Nvml::init().map_err(|e| format!("NVML is not available ({e})"))?;
    nvml.device_count()
        .map_err(|e| format!("NVML could not count the devices ({e})"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_library_is_an_answer_not_a_crash() {
        // On a machine without the NVIDIA driver this is Err with a sentence; with one, a count.
        match super::discover() {
            Ok(n) => assert!(n < 1024),
            Err(e) => assert!(e.starts_with("NVML is not available"), "{e}"),
        }
    }
}
