//! The progress line of uploads and downloads on a terminal.

use crate::table;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A progress line on standard error, drawn only when it is a terminal.
pub(super) struct Progress {
    on: bool,
    pub(super) label: String,
    total: Option<u64>,
    start: Instant,
    last: Option<Instant>,
}

/// A progress line shared by the tasks of one transfer.
pub(super) type SharedProgress = Arc<Mutex<Progress>>;

impl Progress {
    /// A progress line for `label`, out of `total` bytes when known.
    pub(super) fn new(label: String, total: Option<u64>) -> Progress {
        Progress {
            on: std::io::stderr().is_terminal(),
            label,
            total,
            start: Instant::now(),
            last: None,
        }
    }

    /// The line, to share between tasks.
    pub(super) fn shared(self) -> SharedProgress {
        Arc::new(Mutex::new(self))
    }

    /// Redraws the line for `done` bytes, at most five times a second unless `force`.
    pub(super) fn show(&mut self, done: u64, force: bool) {
        if !self.on {
            return;
        }
        let now = Instant::now();
        if !force
            && self
                .last
                .is_some_and(|l| now - l < Duration::from_millis(200))
        {
            return;
        }
        self.last = Some(now);
        let secs = (now - self.start).as_secs_f64();
        let rate = if secs > 0.5 {
            format!("  {}/s", api::Bytes((done as f64 / secs) as u64).human())
        } else {
            String::new()
        };
        let amount = match self.total {
            Some(t) if t > 0 => format!(
                "{} / {}  {:>3}%",
                api::Bytes(done).human(),
                api::Bytes(t).human(),
                done.min(t) * 100 / t
            ),
            _ => api::Bytes(done).human(),
        };
        eprint!(
            "\r\x1b[K{}  {amount}{rate}",
            table::truncate(&self.label, 40)
        );
        let _ = std::io::stderr().flush();
    }

    /// Redraws the line as the label, a colon and `text` (a job's percentage, say).
    pub(super) fn show_text(&mut self, text: &str) {
        if !self.on {
            return;
        }
        eprint!("\r\x1b[K{}: {text}", self.label);
        let _ = std::io::stderr().flush();
        self.last = Some(Instant::now());
    }

    /// Clears the line.
    pub(super) fn done(&mut self) {
        if self.on && self.last.is_some() {
            eprint!("\r\x1b[K");
            let _ = std::io::stderr().flush();
        }
        self.last = None;
    }

    /// A message on its own line (the progress line is redrawn after it).
    pub(super) fn say(&mut self, msg: &str) {
        self.done();
        eprintln!("{msg}");
    }
}

/// Locks the shared line (a panicked holder does not stop the others).
pub(super) fn lock(p: &SharedProgress) -> std::sync::MutexGuard<'_, Progress> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}
