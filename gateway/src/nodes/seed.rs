//! Seeding a persistent home: the first time a user's home folder is mounted at `/home/work`,
//! it is filled with what the session's image keeps there (`.bashrc`, `.profile`, Jupyter
//! settings) — the files the image would have shown with a clean home.
//!
//! How: a throwaway container of the same image is created (never started, no network,
//! labelled with the instance and `berth.seed`, named `berth-seed-SESSION`), its
//! `/home/work` is read through the engine's archive API (a tar whose top entry is `work/`)
//! and streamed into the session's created container at `/home`, which lands in the
//! bind-mounted home; then the throwaway goes. The engine unpacks inside the container's own
//! file system view, so nothing in the home (a symlink a session left there) is followed on
//! the host; an entry already at a path is replaced. A leftover throwaway (a gateway killed
//! mid-way) is removed when the session is prepared again, or by reconciling once it is older
//! than [`SEED_GRACE_S`].

use super::docker::{LABEL_INSTANCE, LABEL_SESSION};
use super::{ContainerSpec, NodeError, NodeResult};
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::{StreamExt, TryStreamExt};
use std::collections::HashMap;

/// Marks a throwaway seeding container (its value: the session it seeds for).
pub const LABEL_SEED: &str = "berth.seed";

/// How long a seeding container is left alone by reconciling: seeding takes seconds, so one
/// older than this is a leftover.
pub const SEED_GRACE_S: i64 = 600;

fn seed_name(session_id: &str) -> String {
    format!("berth-seed-{session_id}")
}

fn failed(what: &str, e: DockerError) -> NodeError {
    let detail = match e {
        DockerError::DockerResponseServerError { message, .. } => message.trim().to_string(),
        other => other.to_string(),
    };
    NodeError(format!(
        "The home folder could not be filled from the image's /home/work: Docker could not {what}: {detail}."
    ))
}

async fn remove(docker: &Docker, name: &str) {
    let opts = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(name, Some(opts)).await {
        Ok(())
        | Err(DockerError::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        }) => {}
        Err(e) => tracing::warn!(container = name, "removing a seeding container failed: {e}"),
    }
}

/// Fills the home mounted at `/home/work` in the created container `target` from `spec`'s
/// image. An image without `/home/work` leaves the home as it is.
pub(super) async fn seed_home(
    docker: &Docker,
    instance: &str,
    target: &str,
    spec: &ContainerSpec,
) -> NodeResult<()> {
    let name = seed_name(&spec.session_id);
    remove(docker, &name).await;
    let labels = HashMap::from([
        (LABEL_INSTANCE.to_string(), instance.to_string()),
        // Never a live session's id: a leftover is removed like any container of none.
        (
            LABEL_SESSION.to_string(),
            format!("seed-{}", spec.session_id),
        ),
        (LABEL_SEED.to_string(), spec.session_id.clone()),
    ]);
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: Some(vec!["true".into()]),
        user: Some("1000:1000".into()),
        network_disabled: Some(true),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let opts = CreateContainerOptionsBuilder::default().name(&name).build();
    let seed = docker
        .create_container(Some(opts), body)
        .await
        .map_err(|e| failed("create a container of the image to copy from", e))?
        .id;
    let copied = copy_home(docker, &seed, target).await;
    remove(docker, &seed).await;
    copied
}

async fn copy_home(docker: &Docker, seed: &str, target: &str) -> NodeResult<()> {
    let opts = DownloadFromContainerOptionsBuilder::default()
        .path("/home/work")
        .build();
    let mut tar = docker.download_from_container(seed, Some(opts));
    let first = match tar.next().await {
        None => return Ok(()),
        // The image has no /home/work: nothing to copy.
        Some(Err(DockerError::DockerResponseServerError {
            status_code: 404, ..
        })) => return Ok(()),
        Some(Err(e)) => return Err(failed("read the image's /home/work", e)),
        Some(Ok(b)) => b,
    };
    let rest = tar.map_err(std::io::Error::other);
    let stream = futures_util::stream::once(async move { Ok(first) }).chain(rest);
    let opts = UploadToContainerOptionsBuilder::default()
        .path("/home")
        .build();
    docker
        .upload_to_container(target, Some(opts), bollard::body_try_stream(stream))
        .await
        .map_err(|e| failed("write it into the session's home", e))
}
