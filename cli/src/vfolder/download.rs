//! Downloads: a file streamed to `OUT.part` then renamed, a directory or folder as a zip,
//! or standard output.

use super::progress::{lock, Progress, SharedProgress};
use super::resolve::{resolve, shown, split_target};
use super::READ_IDLE;
use crate::client::{api_path, causes, segment, Client};
use crate::{Error, Result};
use futures_util::StreamExt;
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// `OUT.part` next to `OUT`.
pub(super) fn part_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    out.with_file_name(name)
}

/// Copies the body to `w`, never waiting more than [`READ_IDLE`] for a byte; returns the
/// bytes written.
pub(super) async fn copy_body<W: tokio::io::AsyncWrite + Unpin>(
    c: &Client,
    resp: reqwest::Response,
    w: &mut W,
    progress: &SharedProgress,
) -> Result<u64> {
    let mut stream = resp.bytes_stream();
    let mut n = 0u64;
    loop {
        let next = tokio::time::timeout(READ_IDLE, stream.next())
            .await
            .map_err(|_| {
                Error::Other(format!(
                    "the download stalled: nothing arrived from {} for {} s.",
                    c.base(),
                    READ_IDLE.as_secs()
                ))
            })?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| {
            Error::Other(format!(
                "the download broke off after {n} bytes: {}",
                causes(&e)
            ))
        })?;
        w.write_all(&chunk)
            .await
            .map_err(|e| Error::Other(format!("cannot write the download: {e}")))?;
        n += chunk.len() as u64;
        lock(progress).show(n, false);
    }
    w.flush()
        .await
        .map_err(|e| Error::Other(format!("cannot write the download: {e}")))?;
    Ok(n)
}

/// `vfolder download`: a file, or a directory or folder as a zip, to OUT (or standard output).
pub(super) async fn download(
    c: &Client,
    target: &str,
    output: Option<PathBuf>,
    force: bool,
) -> Result<()> {
    let t = split_target(target, None)?;
    let f = resolve(c, &t.folder).await?;
    let q = format!(
        "{}?path={}",
        api_path(&["vfolders", &f.id, "download"]),
        segment(&t.path)
    );
    let resp = tokio::time::timeout(READ_IDLE, c.request(Method::GET, &q)?.send())
        .await
        .map_err(|_| {
            Error::Other(format!(
                "{} did not answer within {} s.",
                c.base(),
                READ_IDLE.as_secs()
            ))
        })?
        .map_err(|e| c.unreachable(&e))?;
    if !resp.status().is_success() {
        return Err(c.refused(resp).await);
    }
    let zip = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/zip"));
    let base = if t.path.is_empty() {
        f.name.clone()
    } else {
        t.path.rsplit('/').next().unwrap_or(&t.path).to_string()
    };
    let name = if zip { format!("{base}.zip") } else { base };
    let expected = resp.content_length().filter(|_| !zip);
    let progress = Progress::new(name.clone(), expected).shared();

    if output.as_deref() == Some(Path::new("-")) {
        let mut out = tokio::io::stdout();
        let n = copy_body(c, resp, &mut out, &progress).await;
        lock(&progress).done();
        let n = n?;
        return check_length(n, expected);
    }
    let out = match output {
        None => PathBuf::from(&name),
        Some(o) if o.is_dir() => o.join(&name),
        Some(o) => o,
    };
    if !force && std::fs::symlink_metadata(&out).is_ok() {
        return Err(Error::Other(format!(
            "{} already exists; pass --force to replace it, or -o to save elsewhere.",
            out.display()
        )));
    }
    let part = part_path(&out);
    let mut file = tokio::fs::File::create(&part)
        .await
        .map_err(|e| Error::Other(format!("cannot write {}: {e}", part.display())))?;
    let copied = copy_body(c, resp, &mut file, &progress).await;
    lock(&progress).done();
    let finished = match copied.and_then(|n| check_length(n, expected).map(|_| n)) {
        Ok(n) => file
            .sync_all()
            .await
            .map_err(|e| Error::Other(format!("cannot write {}: {e}", part.display())))
            .map(|_| n),
        Err(e) => Err(e),
    };
    drop(file);
    let n = match finished {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    std::fs::rename(&part, &out).map_err(|e| {
        let _ = std::fs::remove_file(&part);
        Error::Other(format!("cannot write {}: {e}", out.display()))
    })?;
    println!(
        "Saved {}{} to {} ({}).",
        shown(&f, &t.path),
        if zip { " as a zip" } else { "" },
        out.display(),
        api::Bytes(n).human()
    );
    Ok(())
}

/// Fails when `n` bytes arrived but the answer announced another length.
pub(super) fn check_length(n: u64, expected: Option<u64>) -> Result<()> {
    match expected {
        Some(e) if e != n => Err(Error::Other(format!(
            "the download broke off: {n} of {e} bytes arrived."
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_go_to_a_part_file_first() {
        assert_eq!(part_path(Path::new("x/y.zip")), Path::new("x/y.zip.part"));
    }
}
