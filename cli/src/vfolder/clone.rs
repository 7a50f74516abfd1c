//! Cloning a folder: a job whose progress is shown until it ends.

use super::progress::Progress;
use super::resolve::resolve;
use crate::client::{api_path, Client};
use crate::table;
use crate::{Error, Result};
use api::vfolders::{self as vf, Job};
use std::time::Duration;

/// The progress of a job in percent (100 when there is nothing to copy).
pub fn percent(job: &Job) -> u64 {
    (job.done_bytes.min(job.total_bytes) * 100)
        .checked_div(job.total_bytes)
        .unwrap_or(if job.state == "RUNNING" { 0 } else { 100 })
}

/// `vfolder clone`: starts the job and, unless `no_wait`, shows its progress until it ends.
pub(super) async fn clone(
    c: &Client,
    arg: &str,
    name: &str,
    no_wait: bool,
    json: bool,
) -> Result<()> {
    vf::validate_name(name).map_err(Error::Usage)?;
    let f = resolve(c, arg).await?;
    let req = vf::CloneRequest {
        name: name.to_string(),
    };
    let mut job: Job = c
        .post(&api_path(&["vfolders", &f.id, "clone"]), &req)
        .await?;
    if no_wait {
        if json {
            table::print_json(&job);
        } else {
            println!(
                "Cloning folder {} into {name}: job {} (`berth vfolder list` shows it as cloning until it is done).",
                f.name, job.id
            );
        }
        return Ok(());
    }
    let mut progress = Progress::new(format!("Cloning {} into {name}", f.name), None);
    let path = api_path(&["jobs", &job.id]);
    while job.state == "RUNNING" {
        progress.show_text(&format!(
            "{:>3}% ({} of {})",
            percent(&job),
            api::Bytes(job.done_bytes).human(),
            api::Bytes(job.total_bytes).human()
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        job = c.get(&path).await?;
    }
    progress.done();
    if json {
        table::print_json(&job);
    }
    if job.state == "DONE" {
        if !json {
            println!(
                "Cloned folder {} into {name} ({}).",
                f.name,
                api::Bytes(job.total_bytes).human()
            );
        }
        Ok(())
    } else {
        let why = job
            .error
            .as_deref()
            .map(|e| e.trim().trim_end_matches('.').to_string())
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| format!("the job ended {}", job.state));
        Err(Error::Other(format!(
            "Cloning folder {} into {name} failed: {why}.",
            f.name
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_progress_in_percent() {
        let mut j = Job {
            id: "j".into(),
            kind: "clone".into(),
            state: "RUNNING".into(),
            done_bytes: 50,
            total_bytes: 200,
            vfolder: None,
            error: None,
            created_at: String::new(),
            finished_at: None,
        };
        assert_eq!(percent(&j), 25);
        j.total_bytes = 0;
        assert_eq!(percent(&j), 0);
        j.state = "DONE".into();
        assert_eq!(percent(&j), 100);
    }
}
