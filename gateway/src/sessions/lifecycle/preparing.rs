//! Preparing: SCHEDULED → PREPARING → RUNNING. The owner and their mounts are checked again,
//! then the node creates and starts the container.

use super::Lifecycle;
use crate::nodes::ContainerSpec;
use crate::sessions::store::{self, Patch, SessionRow};
use api::session::SessionStatus;
use std::collections::BTreeMap;
use std::sync::Arc;

impl Lifecycle {
    /// `Err(sentence)` when the session's owner is disabled or may no longer mount one of
    /// its folders as asked.
    pub(super) async fn owner_may_start(
        &self,
        s: &SessionRow,
    ) -> anyhow::Result<Result<(), String>> {
        let owner: Option<crate::auth::UserRow> =
            sqlx::query_as("SELECT * FROM users WHERE id = $1")
                .bind(&s.owner_id)
                .fetch_optional(&self.db)
                .await?;
        let Some(owner) = owner.filter(|o| !o.disabled) else {
            return Ok(Err(
                "The owner's account is disabled, so no container was created.".into(),
            ));
        };
        let owner = crate::auth::CurrentUser {
            role: owner.role(),
            id: owner.id,
            username: owner.username,
            via_key: false,
            since: 0,
        };
        let checked = match &s.home_vfolder {
            Some(home) => crate::vfolders::home::recheck(&self.db, &owner.id, home).await,
            None => Ok(Ok(())),
        };
        let checked = match checked {
            Ok(Ok(())) => crate::vfolders::mounts::recheck(&self.db, &owner, &s.mounts()).await,
            other => other,
        };
        checked.map_err(|e| {
            // The cause goes to the log; the session's reason stays a sentence.
            tracing::warn!(session = %s.id, "rechecking mounts failed: {e:?}");
            anyhow::anyhow!("the folders could not be looked up")
        })
    }

    /// SCHEDULED → PREPARING → RUNNING: creates and starts the container.
    pub(super) async fn prepare(self: Arc<Self>, s: SessionRow) {
        let reason = format!("Creating the container from {}.", s.image);
        if !self
            .transition(&s.id, SessionStatus::Preparing, &reason, Patch::default())
            .await
        {
            return;
        }
        self.make_container(s).await;
    }

    /// PREPARING → RUNNING: checks the owner and their folders again, then has the node
    /// create and start the container. Also what a session caught in PREPARING by a restart
    /// goes through again: the node adopts or starts a half-made container, or makes it anew.
    pub(super) async fn make_container(self: Arc<Self>, s: SessionRow) {
        // The owner and their folders are checked again now: access may have gone while
        // the session waited in the queue.
        let refused = match self.owner_may_start(&s).await {
            Ok(r) => r,
            Err(e) => Err(format!("The owner's access could not be checked: {e}.")),
        };
        if let Err(reason) = refused {
            self.transition(&s.id, SessionStatus::Error, &reason, Patch::default())
                .await;
            return;
        }
        // The owner's process limit as it is now (a policy change applies to the next launch).
        // Unreadable, the built-in limit applies: a container is never created unbounded
        // by accident.
        let max_processes = match crate::policy::effective(&self.db, &s.owner_id).await {
            Ok(p) => p.policy.max_processes,
            Err(e) => {
                tracing::warn!(session = %s.id, "reading the owner's policy failed: {e:?}");
                Some(api::policy::DEFAULT_MAX_PROCESSES)
            }
        };
        // Folders (and the persistent home) are bind-mounted from where this node sees the
        // storage (declared when it was added), else from the gateway's own path (a node on
        // its host).
        let needs_storage = !s.mounts().is_empty() || s.home_vfolder.is_some();
        let node_row = match &s.node {
            Some(n) if needs_storage => match crate::nodes::store::row(&self.db, n).await {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(session = %s.id, "reading node {n} failed: {e:?}");
                    None
                }
            },
            _ => None,
        };
        if needs_storage && !node_row.as_ref().is_some_and(|r| r.reaches_storage()) {
            let reason = format!(
                "Node {} does not see the folder storage, so the session's {} cannot be mounted there.",
                s.node.as_deref().unwrap_or("(none)"),
                if s.mounts().is_empty() { "home folder" } else { "folders" }
            );
            self.transition(&s.id, SessionStatus::Error, &reason, Patch::default())
                .await;
            return;
        }
        // A home used for the first time is filled from the image's own /home/work, around
        // what its owner put there already (the gateway's handle on it tells what that is).
        let seed_home = match &s.home_vfolder {
            Some(h) => match crate::vfolders::home::needs_seeding(&self.db, h).await {
                Ok(true) => match self.storage.folder(h) {
                    Ok(dir) => Some((h.clone(), Arc::new(dir))),
                    Err(e) => {
                        tracing::warn!(session = %s.id, "opening the home folder failed: {e:?}");
                        let reason = "The home folder's directory could not be opened, so it was not filled from the image.";
                        self.transition(&s.id, SessionStatus::Error, reason, Patch::default())
                            .await;
                        return;
                    }
                },
                Ok(false) => None,
                Err(e) => {
                    let reason = format!("The home folder could not be looked up: {e}.");
                    self.transition(&s.id, SessionStatus::Error, &reason, Patch::default())
                        .await;
                    return;
                }
            },
            None => None,
        };
        // Dotfiles: the domain's, the project's, then the owner's (which win).
        let files = match crate::dotfiles::for_session(
            &self.db,
            &s.id,
            s.project_id.as_deref(),
            &s.owner_id,
        )
        .await
        {
            Ok(files) => files,
            Err(reason) => {
                self.transition(&s.id, SessionStatus::Error, &reason, Patch::default())
                    .await;
                return;
            }
        };
        // With a persistent home no mount point may lie inside it (see `outside_home`); the
        // links come first among the files, so dotfiles can still write through them.
        let (folder_mounts, links) = if s.home_vfolder.is_some() {
            crate::vfolders::home::outside_home(s.mounts())
        } else {
            (s.mounts(), Vec::new())
        };
        let files = links.into_iter().chain(files).collect();
        let spec = ContainerSpec {
            max_processes,
            session_id: s.id.clone(),
            owner_id: s.owner_id.clone(),
            image: s.image.clone(),
            kind: s.kind(),
            resources: s.resources(),
            env: self.container_env(&s),
            gpu_devices: s.gpu_hold().devices(),
            gpu_share: s.gpu_hold().shares.iter().map(|(_, p)| *p).max(),
            command: s.command.clone(),
            ports: s.apps().iter().map(|a| a.port).collect(),
            app_secret: s.app_secret.clone().unwrap_or_default(),
            // The home first, at /home/work; folders meant for inside it are mounted beside
            // it and linked into it (`home::outside_home`).
            mounts: crate::vfolders::home::as_mount(s.home_vfolder.as_deref())
                .into_iter()
                .chain(folder_mounts)
                .map(|m| crate::nodes::BindMount {
                    host: match &node_row {
                        Some(r) => r.folder_source(self.storage.folders_dir(), &m.vfolder),
                        None => self.storage.folder_dir(&m.vfolder),
                    },
                    read_only: m.mode == "ro",
                    target: m.path,
                })
                .collect(),
            files,
            seed_home: seed_home.as_ref().map(|(_, dir)| dir.clone()),
        };
        // SSH's files are written after start, off the launch path (`ssh::session::start`);
        // its host key is made now, so the session's JSON names it from RUNNING on.
        if crate::ssh::session::has_ssh(&s) {
            crate::ssh::session::make_host_key(&self.db, &s).await;
        }
        let Some(node) = self.node_of(&s) else {
            let reason = format!(
                "Node {} is not connected, so the container could not be created.",
                s.node.as_deref().unwrap_or("(none)")
            );
            self.transition(&s.id, SessionStatus::Error, &reason, Patch::default())
                .await;
            return;
        };
        match node.start_session(&spec).await {
            Ok(cid) => {
                // The container was made and started, so the home was filled.
                if let Some((h, _)) = &seed_home {
                    crate::vfolders::home::mark_seeded_logged(&self.db, h).await;
                    // Its size is walked again at the next look, not 15 s later.
                    self.storage.usage.forget(h);
                }
                let cid_started = cid.clone();
                let patch = Patch {
                    ports: self.published(&s, &cid).await,
                    container_id: Some(cid),
                    ..Default::default()
                };
                if !self
                    .transition(
                        &s.id,
                        SessionStatus::Running,
                        "The container is running.",
                        patch,
                    )
                    .await
                {
                    // Terminated while we were creating it: the container must not outlive it.
                    // Only then: a database that did not answer says nothing about the
                    // session, whose running container the next reconcile adopts.
                    let ended = match store::get(&self.db, &s.id).await {
                        Ok(Some(row)) => {
                            row.status() == SessionStatus::Terminating || row.status().is_final()
                        }
                        Ok(None) => true,
                        Err(_) => false,
                    };
                    if ended {
                        let _ = node.remove_session(&s.id).await;
                    }
                } else {
                    self.metrics.session_launched(&s.created_at);
                    if crate::ssh::session::has_ssh(&s) {
                        // Off the launch path: the session is RUNNING already.
                        let (lc, node, row) = (self.clone(), node.clone(), s.clone());
                        self.background(crate::ssh::session::start(lc, node, row, cid_started));
                    }
                    if s.kind() == api::session::SessionType::Batch {
                        // A batch container adopted after a restart may have ended already,
                        // and no event comes for that: its exit is recorded now rather than at
                        // the next sweep.
                        self.record_if_exited(&node, &s.id).await;
                    }
                }
            }
            Err(e) => {
                let _ = node.remove_session(&s.id).await;
                // A termination requested meanwhile removes the container being started,
                // which is why starting it failed: that is no error, and finish_terminate
                // records the end (TERMINATING was committed before that removal began).
                let terminating = matches!(
                    store::get(&self.db, &s.id).await,
                    Ok(Some(row)) if row.status() == SessionStatus::Terminating
                );
                if !terminating {
                    self.transition(&s.id, SessionStatus::Error, &e.0, Patch::default())
                        .await;
                }
            }
        }
    }

    /// Records the end of session `id`'s container if it is no longer running (a batch
    /// command that ran to its end before berth looked).
    async fn record_if_exited(&self, node: &Arc<dyn crate::nodes::Node>, id: &str) {
        let Ok(containers) = node.list_containers().await else {
            return; // The sweep and the event watcher see it later.
        };
        let Some(c) = containers.iter().find(|c| c.session_id == id) else {
            return;
        };
        if c.running {
            return;
        }
        if let Ok(Some(row)) = store::get(&self.db, id).await {
            self.container_died(&row, c.exit_code, false).await;
        }
    }

    /// The environment of session `s`'s container beside what every container gets: its own
    /// variables and its GPUs'. Devices a node declares in configuration reach the container
    /// as environment only; real NVIDIA devices also as device requests, renumbered from 0
    /// inside.
    pub(crate) fn container_env(&self, s: &SessionRow) -> BTreeMap<String, String> {
        let gpus = if self.node_of(s).is_some_and(|n| n.real_gpus()) {
            s.gpu_hold().env_in_container()
        } else {
            s.gpu_hold().env()
        };
        s.env().into_iter().chain(gpus).collect()
    }

    /// The session's apps with the addresses their ports were published at.
    pub(super) async fn published(
        &self,
        s: &SessionRow,
        container_id: &str,
    ) -> Option<crate::db::Json<Vec<store::AppPort>>> {
        let apps = s.apps();
        // Nothing published: no need to ask the engine (one round trip off every launch).
        if apps.is_empty() {
            return Some(crate::db::Json(apps));
        }
        let published = self.node_of(s)?.published_ports(container_id).await.ok()?;
        let apps: Vec<store::AppPort> = apps
            .into_iter()
            .map(|mut a| {
                a.host = published
                    .iter()
                    .find(|(p, _)| *p == a.port)
                    .map(|(_, h)| *h);
                a
            })
            .collect();
        Some(crate::db::Json(apps))
    }
}
