//! A Docker engine as a node, through bollard: on this host by its unix socket, or on another
//! over TCP with mutual TLS. Session containers are made here ([`DockerNode`]'s
//! `start_session`: limits, labels, the sessions' network, one container per session by name).

use super::network::{self, Firewall, SessionNetwork};
use super::{ContainerSpec, ContainerState, Node, NodeError, NodeEvent, NodeResult};
use api::images::{parse_service_ports, ImageInfo, MIN_RESOURCES_LABEL, SERVICE_PORTS_LABEL};
use api::session::SessionType;
use api::{Bytes, Millicores, Resources};
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerStatsResponse, HostConfig, HostConfigLogConfig, Mount, MountType,
    PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, EventsOptionsBuilder, ListContainersOptionsBuilder,
    ListImagesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StatsOptionsBuilder,
};
use bollard::Docker;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

pub const LABEL_INSTANCE: &str = "berth.instance";
pub const LABEL_SESSION: &str = "berth.session";
pub const LABEL_OWNER: &str = "berth.owner";

pub struct DockerNode {
    name: String,
    docker: Docker,
    /// How terminals reach the engine for the raw exec upgrade.
    transport: wsproxy::ExecTransport,
    instance: String,
    capacity: Resources,
    /// NVIDIA devices found by NVML (the local engine only): GPUs go in as device requests.
    nvidia: bool,
    /// The engine's own id (`docker info`), the same whatever path reaches it.
    engine_id: String,
    /// The sessions' network on this engine (see [`network`]); replaced if it vanishes.
    network: std::sync::Mutex<SessionNetwork>,
    /// What berth could verify of the network's isolation from this host.
    firewall: std::sync::Mutex<Firewall>,
}

/// A session container's log (`json-file`) is capped at this size per file, times
/// [`LOG_FILES`]: output past it rotates away instead of filling the node's disk.
pub const LOG_MAX_SIZE: &str = "10m";
/// How long berth waits for a command it runs in a session's container (`exec_as_work`).
const EXEC_PATIENCE: Duration = Duration::from_secs(10);
pub const LOG_FILES: &str = "3";

/// Where an engine is: its unix socket on this host, or `HOST:PORT` over TCP with mutual
/// TLS, the PEM files (`ca.pem`, `cert.pem`, `key.pem`) in `dir`.
#[derive(Debug, Clone)]
pub enum EngineEndpoint {
    Unix(PathBuf),
    Tls { addr: String, dir: PathBuf },
}

/// A failed first call over TLS as a sentence: a handshake refused (by either side: the
/// engine's certificate not signed by the CA, or the client's refused) or no answer.
fn tls_failure(url: &str, e: &DockerError) -> anyhow::Error {
    let mut chain = vec![e.to_string()];
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !chain.iter().any(|c| c.contains(&t)) {
            chain.push(t);
        }
        src = s.source();
    }
    let lower = chain.join(": ").to_ascii_lowercase();
    // The deepest cause says it best ("invalid peer certificate: UnknownIssuer"); the
    // layers above it are the HTTP client's.
    let detail = chain.last().cloned().unwrap_or_default();
    if ["certificate", "tls", "handshake", "alert", "peer"]
        .iter()
        .any(|k| lower.contains(k))
    {
        anyhow::anyhow!(
            "The Docker engine at {url} refused the TLS handshake: {detail}; check the CA, the client certificate and its key"
        )
    } else {
        anyhow::anyhow!("The Docker engine at {url} does not answer: {detail}")
    }
}

/// Where an NVIDIA MPS control daemon keeps its pipes (its default).
const MPS_PIPE_DIR: &str = "/tmp/nvidia-mps";

fn sentence(what: &str, e: DockerError) -> NodeError {
    match e {
        DockerError::DockerResponseServerError {
            status_code,
            message,
        } => NodeError(format!(
            "Docker could not {what} ({status_code}): {}",
            message.trim()
        )),
        other => NodeError(format!("Docker could not {what}: {other}")),
    }
}

impl DockerNode {
    /// Connects to the engine at `endpoint`, negotiating the API version, and reads capacity.
    pub async fn connect(
        name: &str,
        endpoint: EngineEndpoint,
        instance: &str,
    ) -> anyhow::Result<Self> {
        let (docker, transport, info) = match endpoint {
            EngineEndpoint::Unix(socket) => {
                let docker = Docker::connect_with_unix(
                    &socket.to_string_lossy(),
                    120,
                    bollard::API_DEFAULT_VERSION,
                )
                .map_err(|e| {
                    anyhow::anyhow!(
                        "Cannot reach the Docker engine at {}: {e}",
                        socket.display()
                    )
                })?
                .negotiate_version()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "The Docker engine at {} does not answer: {e}",
                        socket.display()
                    )
                })?;
                let info = docker.info().await.map_err(|e| {
                    anyhow::anyhow!(
                        "The Docker engine at {} does not answer: {e}",
                        socket.display()
                    )
                })?;
                (docker, wsproxy::ExecTransport::Unix(socket), info)
            }
            EngineEndpoint::Tls { addr, dir } => {
                let url = format!("tcp://{addr}");
                let read = |file: &str| {
                    std::fs::read(dir.join(file)).map_err(|e| {
                        anyhow::anyhow!(
                            "The TLS material for {url} cannot be read from {}: {e}",
                            dir.join(file).display()
                        )
                    })
                };
                // Checked here first (bollard reads the client key only at the handshake):
                // bad PEM text is named, not a handshake failure.
                let transport = wsproxy::ExecTransport::tls(
                    &addr,
                    &read("ca.pem")?,
                    &read("cert.pem")?,
                    &read("key.pem")?,
                )
                .map_err(|e| anyhow::anyhow!("{e}; {url} cannot be reached with it"))?;
                // bollard builds its TLS client with the process-wide provider: ring, as
                // its `ssl` feature selects (installing twice is a harmless no-op).
                let _ = rustls::crypto::ring::default_provider().install_default();
                let docker = Docker::connect_with_ssl(
                    &url,
                    &dir.join("key.pem"),
                    &dir.join("cert.pem"),
                    &dir.join("ca.pem"),
                    120,
                    bollard::API_DEFAULT_VERSION,
                )
                .map_err(|e| {
                    anyhow::anyhow!("Cannot set up TLS to the Docker engine at {url}: {e}")
                })?;
                let docker = docker
                    .negotiate_version()
                    .await
                    .map_err(|e| tls_failure(&url, &e))?;
                let info = docker.info().await.map_err(|e| tls_failure(&url, &e))?;
                (docker, transport, info)
            }
        };
        let version = docker
            .version()
            .await
            .ok()
            .and_then(|v| v.version)
            .unwrap_or_default();
        let net = network::ensure(&docker)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let bridge = net.bridge.clone();
        let firewall = tokio::task::spawn_blocking(move || network::secure_bridge(&bridge))
            .await
            .unwrap_or_else(|e| Firewall::Broken(format!("Checking the firewall failed: {e}.")));
        if let Firewall::Broken(why) = &firewall {
            tracing::warn!(node = name, "{why}");
        }
        let cpus = info.ncpu.unwrap_or(1).max(1) as u64;
        let mem = info.mem_total.unwrap_or(0).max(0) as u64;
        tracing::info!(engine = %version, cpus, mem, "node {name}: Docker engine connected");
        Ok(Self {
            name: name.to_string(),
            docker,
            transport,
            instance: instance.to_string(),
            capacity: Resources {
                cpu: Millicores(cpus * 1000),
                mem: Bytes(mem),
                gpu: 0,
                gpu_shares: Default::default(),
            },
            nvidia: false,
            // The id alone is shared by engines that share /etc/docker (two daemons on one
            // host); with the data root it names one engine.
            engine_id: format!(
                "{}@{}",
                info.id.clone().unwrap_or_default(),
                info.docker_root_dir.clone().unwrap_or_default()
            ),
            network: std::sync::Mutex::new(net),
            firewall: std::sync::Mutex::new(firewall),
        })
    }

    fn network_id(&self) -> String {
        self.network
            .lock()
            .map(|n| n.id.clone())
            .unwrap_or_default()
    }

    /// Finds or makes the sessions' network again (it was removed under us) and secures it.
    async fn renew_network(&self) -> NodeResult<()> {
        let net = network::ensure(&self.docker).await.map_err(NodeError)?;
        let bridge = net.bridge.clone();
        let firewall = tokio::task::spawn_blocking(move || network::secure_bridge(&bridge))
            .await
            .unwrap_or_else(|e| Firewall::Broken(format!("Checking the firewall failed: {e}.")));
        if let Ok(mut n) = self.network.lock() {
            *n = net;
        }
        if let Ok(mut f) = self.firewall.lock() {
            *f = firewall;
        }
        Ok(())
    }

    /// Marks the engine's host as having `n` NVIDIA devices (found by NVML).
    pub fn with_nvidia(mut self, n: u32) -> Self {
        self.nvidia = n > 0;
        self.capacity.gpu = n;
        self.capacity.gpu_shares = api::Shares(n * 100);
        self
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    fn instance_filter(&self) -> HashMap<String, Vec<String>> {
        HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_INSTANCE}={}", self.instance)],
        )])
    }
}

/// The container of a session is named after it, so it can be found before its id is known.
impl DockerNode {
    /// Creates a container named `name`, renewing the sessions' network once if it vanished
    /// (removed by hand, or as a duplicate of a concurrent instance's). The outer error is
    /// the renewal's; the inner one is Docker's answer to the create.
    async fn create(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> NodeResult<Result<String, DockerError>> {
        let opts = CreateContainerOptionsBuilder::default().name(name).build();
        match self
            .docker
            .create_container(Some(opts.clone()), body.clone())
            .await
        {
            Err(DockerError::DockerResponseServerError {
                status_code: 404,
                message,
            }) if message.contains("network") => {
                tracing::warn!(node = %self.name, "the sessions' network is gone ({message}); renewing it");
                self.renew_network().await?;
                let mut body = body;
                if let Some(hc) = body.host_config.as_mut() {
                    hc.network_mode = Some(self.network_id());
                }
                Ok(self
                    .docker
                    .create_container(Some(opts), body)
                    .await
                    .map(|c| c.id))
            }
            other => Ok(other.map(|c| c.id)),
        }
    }

    /// The id and state (`created`, `running`, `exited`, …) of the container named `name`,
    /// if there is one.
    async fn existing(&self, name: &str) -> NodeResult<Option<(String, String)>> {
        match self.docker.inspect_container(name, None).await {
            Ok(info) => Ok(info.id.map(|id| {
                let state = info
                    .state
                    .and_then(|s| s.status)
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                (id, state)
            })),
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(sentence("inspect the container", e)),
        }
    }
}

impl DockerNode {
    /// Writes `files` into the (created, not yet started) container `id` through the archive
    /// API; see [`super::archive`].
    async fn put_files(&self, id: &str, files: &[super::ContainerFile]) -> NodeResult<()> {
        let tar = super::archive::tar_of(files)
            .map_err(|e| NodeError(format!("Berth could not pack the session's files: {e}.")))?;
        let options = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
            .path("/")
            .no_overwrite_dir_non_dir("true")
            .build();
        self.docker
            .upload_to_container(id, Some(options), bollard::body_full(tar.into()))
            .await
            .map_err(|e| sentence("write the session's files into the container", e))
    }
}

fn container_name(session_id: &str) -> String {
    format!("berth-{session_id}")
}

fn image_info(name: String, id: String, labels: &HashMap<String, String>) -> ImageInfo {
    let mut info = ImageInfo {
        name,
        id,
        apps: Vec::new(),
        min_resources: None,
        error: None,
    };
    match labels
        .get(SERVICE_PORTS_LABEL)
        .map(|l| parse_service_ports(l))
    {
        Some(Ok(apps)) => info.apps = apps,
        Some(Err(e)) => {
            info.error = Some(format!("The label {SERVICE_PORTS_LABEL} is invalid: {e}."))
        }
        None => info.error = Some(format!("The image has no {SERVICE_PORTS_LABEL} label.")),
    }
    if let Some(min) = labels.get(MIN_RESOURCES_LABEL) {
        // The label is a request made by the image's author: the request rules apply.
        let checked = serde_json::from_str::<api::ResourcesRequest>(min)
            .map_err(|e| e.to_string())
            .and_then(|r| {
                r.validate().map_err(|errs| {
                    let m: Vec<String> = errs.into_iter().map(|e| e.message).collect();
                    m.join(" ")
                })
            });
        match checked {
            Ok(r) => info.min_resources = Some(r),
            Err(e) => {
                info.error = Some(format!("The label {MIN_RESOURCES_LABEL} is invalid: {e}."))
            }
        }
    }
    info
}

/// One Docker stats reading as berth's counters; `None` for the empty reading Docker sends
/// for a container that is not running. Memory is counted as `docker stats` does: usage less
/// the inactive page cache (cgroup v2 `inactive_file`, v1 `total_inactive_file`).
fn raw_stats(r: &ContainerStatsResponse) -> Option<super::RawStats> {
    let at = r.read.as_deref().and_then(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    })?;
    let at_ms = (at.unix_timestamp_nanos() / 1_000_000) as i64;
    if at_ms <= 0 {
        return None;
    }
    let mem = r.memory_stats.as_ref();
    let cache = mem
        .and_then(|m| m.stats.as_ref())
        .and_then(|s| {
            s.get("inactive_file")
                .or_else(|| s.get("total_inactive_file"))
        })
        .copied()
        .unwrap_or(0);
    let (mut net_rx, mut net_tx) = (0u64, 0u64);
    for n in r.networks.iter().flat_map(|n| n.values()) {
        net_rx += n.rx_bytes.unwrap_or(0);
        net_tx += n.tx_bytes.unwrap_or(0);
    }
    let (mut blk_read, mut blk_write) = (0u64, 0u64);
    let io = r
        .blkio_stats
        .as_ref()
        .and_then(|b| b.io_service_bytes_recursive.as_ref());
    for e in io.into_iter().flatten() {
        match e.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => blk_read += e.value.unwrap_or(0),
            Some("write") => blk_write += e.value.unwrap_or(0),
            _ => {}
        }
    }
    Some(super::RawStats {
        at_ms,
        cpu_ns: r
            .cpu_stats
            .as_ref()
            .and_then(|c| c.cpu_usage.as_ref())
            .and_then(|u| u.total_usage)
            .unwrap_or(0),
        mem_bytes: mem.and_then(|m| m.usage).unwrap_or(0).saturating_sub(cache),
        mem_limit_bytes: mem.and_then(|m| m.limit).unwrap_or(0),
        net_rx,
        net_tx,
        blk_read,
        blk_write,
        pids: r.pids_stats.as_ref().and_then(|p| p.current).unwrap_or(0),
    })
}

#[async_trait::async_trait]
impl Node for DockerNode {
    fn name(&self) -> &str {
        &self.name
    }

    fn capacity(&self) -> Resources {
        self.capacity
    }

    async fn ping(&self) -> NodeResult<()> {
        self.docker
            .ping()
            .await
            .map(|_| ())
            .map_err(|e| sentence("answer a ping", e))
    }

    async fn list_images(&self) -> NodeResult<Vec<ImageInfo>> {
        let filters = HashMap::from([("label".to_string(), vec![SERVICE_PORTS_LABEL.to_string()])]);
        let opts = ListImagesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let images = self
            .docker
            .list_images(Some(opts))
            .await
            .map_err(|e| sentence("list images", e))?;
        let mut out = Vec::new();
        for img in images {
            for tag in img.repo_tags.iter().filter(|t| !t.contains("<none>")) {
                let name = tag.strip_suffix(":latest").unwrap_or(tag).to_string();
                out.push(image_info(name, img.id.clone(), &img.labels));
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn start_session(&self, spec: &ContainerSpec) -> NodeResult<String> {
        let labels = HashMap::from([
            (LABEL_INSTANCE.to_string(), self.instance.clone()),
            (LABEL_SESSION.to_string(), spec.session_id.clone()),
            (LABEL_OWNER.to_string(), spec.owner_id.clone()),
        ]);
        let mut env: Vec<String> = vec![
            "HOME=/home/work".into(),
            "USER=work".into(),
            "PATH=/home/work/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            format!("BERTH_SESSION_ID={}", spec.session_id),
        ];
        env.extend(spec.env.iter().map(|(k, v)| format!("{k}={v}")));
        let mem = spec.resources.mem.0 as i64;
        env.push(format!("BERTH_JUPYTER_TOKEN={}", spec.app_secret));
        // A share of a real GPU is enforced by NVIDIA MPS where its daemon runs on the host:
        // the client is pointed at the daemon's pipes and limited to its share of the SMs.
        // Without MPS (or on declared devices) the share is advisory.
        let mps =
            self.nvidia && spec.gpu_share.is_some() && std::path::Path::new(MPS_PIPE_DIR).is_dir();
        if let (true, Some(pct)) = (mps, spec.gpu_share) {
            env.push(format!("CUDA_MPS_PIPE_DIRECTORY={MPS_PIPE_DIR}"));
            env.push(format!(
                "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE={}",
                pct.clamp(1, 100)
            ));
        }
        // Published on the node's loopback only; the authenticated proxy is the way in.
        // (Docker drops PortBindings silently unless ExposedPorts names the port.)
        let exposed: Vec<String> = spec.ports.iter().map(|p| format!("{p}/tcp")).collect();
        let bindings: HashMap<String, Option<Vec<PortBinding>>> = spec
            .ports
            .iter()
            .map(|p| {
                (
                    format!("{p}/tcp"),
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some(String::new()),
                    }]),
                )
            })
            .collect();
        let body = ContainerCreateBody {
            exposed_ports: Some(exposed),
            image: Some(spec.image.clone()),
            cmd: spec
                .command
                .as_ref()
                .map(|c| vec!["sh".to_string(), "-c".to_string(), c.clone()]),
            env: Some(env),
            user: Some("1000:1000".into()),
            working_dir: Some("/home/work".into()),
            labels: Some(labels),
            host_config: Some(HostConfig {
                nano_cpus: Some(spec.resources.cpu.nano_cpus()),
                memory: Some(mem),
                memory_swap: Some(mem),
                security_opt: Some(vec!["no-new-privileges".into()]),
                // Sessions run as uid 1000 and need no capability; none is kept, so neither
                // a set-uid binary in the image nor root in an exec can use one.
                cap_drop: Some(vec!["ALL".into()]),
                pids_limit: spec.max_processes.map(|n| n.min(i64::MAX as u64) as i64),
                log_config: Some(HostConfigLogConfig {
                    typ: Some("json-file".into()),
                    config: Some(HashMap::from([
                        ("max-size".to_string(), LOG_MAX_SIZE.to_string()),
                        ("max-file".to_string(), LOG_FILES.to_string()),
                    ])),
                }),
                network_mode: Some(self.network_id()),
                // The network has no IPv6, and none is wanted inside: link-local IPv6 would
                // pass beside the IPv4 rules that keep sessions apart and off the host.
                sysctls: Some(HashMap::from([(
                    "net.ipv6.conf.all.disable_ipv6".to_string(),
                    "1".to_string(),
                )])),
                init: Some(true),
                port_bindings: Some(bindings),
                device_requests: (self.nvidia && !spec.gpu_devices.is_empty()).then(|| {
                    vec![bollard::models::DeviceRequest {
                        driver: Some("nvidia".into()),
                        device_ids: Some(spec.gpu_devices.iter().map(|d| d.to_string()).collect()),
                        capabilities: Some(vec![vec!["gpu".into()]]),
                        ..Default::default()
                    }]
                }),
                ipc_mode: mps.then(|| "host".to_string()),
                mounts: Some(
                    spec.mounts
                        .iter()
                        .map(|m| Mount {
                            typ: Some(MountType::BIND),
                            source: Some(m.host.to_string_lossy().into_owned()),
                            target: Some(m.target.clone()),
                            read_only: Some(m.read_only),
                            ..Default::default()
                        })
                        .chain(mps.then(|| Mount {
                            typ: Some(MountType::BIND),
                            source: Some(MPS_PIPE_DIR.into()),
                            target: Some(MPS_PIPE_DIR.into()),
                            ..Default::default()
                        }))
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        let name = container_name(&spec.session_id);
        // The name taken means a container of this session exists already, made by a gateway
        // killed before it recorded it, or whose create is still landing in the engine (which
        // holds the name before the container can be inspected). Docker's unique name is what
        // keeps a session to one container.
        let mut conflicts = 0u64;
        let created = loop {
            let conflict = match self.create(&name, body.clone()).await? {
                Ok(id) => break id,
                Err(
                    e @ DockerError::DockerResponseServerError {
                        status_code: 409, ..
                    },
                ) => e,
                Err(e) => return Err(sentence("create the container", e)),
            };
            match self.existing(&name).await? {
                Some((id, state)) if state == "running" => {
                    tracing::info!(session = %spec.session_id, container = %id, "adopting the session's running container");
                    return Ok(id);
                }
                // Created, never started: nothing ran in it; it is started below.
                Some((id, state)) if state == "created" => break id,
                // A batch command that already ran is not run twice: its exit is recorded
                // by the next reconcile.
                Some((id, state)) if state == "exited" && spec.kind == SessionType::Batch => {
                    return Ok(id);
                }
                // Exited, dead or going: removed, then made again.
                Some((id, state)) => {
                    tracing::info!(session = %spec.session_id, container = %id, state, "removing the session's old container to make it again");
                    self.remove_session(&spec.session_id).await?;
                }
                // Still being created (or removed): asked again shortly.
                None => {}
            }
            conflicts += 1;
            if conflicts >= 20 {
                return Err(sentence("create the container", conflict));
            }
            tokio::time::sleep(Duration::from_millis(50 * conflicts.min(10))).await;
        };
        // The home is filled first, so files berth writes (dotfiles) win over the image's.
        if let Some(home) = &spec.seed_home {
            let seeded =
                super::seed::seed_home(&self.docker, &self.instance, &created, spec, home).await;
            if let Err(e) = seeded {
                let _ = self.remove_session(&spec.session_id).await;
                return Err(e);
            }
        }
        if !spec.files.is_empty() {
            if let Err(e) = self.put_files(&created, &spec.files).await {
                let _ = self.remove_session(&spec.session_id).await;
                return Err(e);
            }
        }
        match self.docker.start_container(&created, None).await {
            // 304: it was started meanwhile (by a start still landing from a killed gateway).
            Ok(())
            | Err(DockerError::DockerResponseServerError {
                status_code: 304, ..
            }) => {}
            Err(e) => {
                let _ = self.remove_session(&spec.session_id).await;
                return Err(sentence("start the container", e));
            }
        }
        if spec.kind == SessionType::Interactive {
            tracing::debug!(session = %spec.session_id, "interactive container started");
        }
        Ok(created)
    }

    async fn published_ports(
        &self,
        container_id: &str,
    ) -> NodeResult<Vec<(u16, std::net::SocketAddr)>> {
        // A remote engine (TCP) publishes on its own host's loopback, out of this gateway's
        // reach; 127.0.0.1 here is another port space (maybe another session's app). Its
        // apps get no address until a wsproxy runs beside that node.
        if matches!(self.transport, wsproxy::ExecTransport::Tls { .. }) {
            return Ok(Vec::new());
        }
        let info = self
            .docker
            .inspect_container(container_id, None)
            .await
            .map_err(|e| sentence("inspect the container", e))?;
        let mut out = Vec::new();
        let ports = info
            .network_settings
            .and_then(|n| n.ports)
            .unwrap_or_default();
        for (key, bindings) in ports {
            let Some(port) = key.strip_suffix("/tcp").and_then(|p| p.parse::<u16>().ok()) else {
                continue;
            };
            let host = bindings
                .unwrap_or_default()
                .into_iter()
                .filter(|b| b.host_ip.as_deref() == Some("127.0.0.1"))
                .find_map(|b| b.host_port.and_then(|p| p.parse::<u16>().ok()));
            if let Some(h) = host {
                out.push((port, std::net::SocketAddr::from(([127, 0, 0, 1], h))));
            }
        }
        Ok(out)
    }

    async fn remove_session(&self, session_id: &str) -> NodeResult<()> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("{LABEL_INSTANCE}={}", self.instance),
                format!("{LABEL_SESSION}={session_id}"),
            ],
        )]);
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| sentence("list containers", e))?;
        for c in list {
            let Some(id) = c.id else { continue };
            let opts = RemoveContainerOptionsBuilder::default()
                .force(true)
                .v(true)
                .build();
            match self.docker.remove_container(&id, Some(opts)).await {
                Ok(()) => {}
                Err(DockerError::DockerResponseServerError {
                    status_code: 404, ..
                }) => {}
                // 409: removal already in progress.
                Err(DockerError::DockerResponseServerError {
                    status_code: 409, ..
                }) => {}
                Err(e) => return Err(sentence("remove the container", e)),
            }
        }
        Ok(())
    }

    async fn list_containers(&self) -> NodeResult<Vec<ContainerState>> {
        let filters = self.instance_filter();
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| sentence("list containers", e))?;
        let mut out = Vec::new();
        for c in list {
            let (Some(id), Some(labels)) = (c.id, c.labels) else {
                continue;
            };
            let Some(session_id) = labels.get(LABEL_SESSION) else {
                continue;
            };
            // A home being seeded is left alone; an old one is a leftover, removed as a
            // container without a live session.
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            if labels.contains_key(super::seed::LABEL_SEED)
                && now - c.created.unwrap_or(0) < super::seed::SEED_GRACE_S
            {
                continue;
            }
            let state = c.state.map(|s| s.to_string()).unwrap_or_default();
            let running = state == "running";
            // Docker says `created` of a container that was never started.
            let started = state != "created";
            let exit_code = if running {
                None
            } else {
                self.docker
                    .inspect_container(&id, None)
                    .await
                    .ok()
                    .and_then(|i| i.state)
                    .and_then(|s| s.exit_code)
            };
            out.push(ContainerState {
                id,
                session_id: session_id.clone(),
                running,
                started,
                exit_code,
            });
        }
        Ok(out)
    }

    async fn logs(&self, session_id: &str, max_bytes: usize) -> NodeResult<String> {
        let container = container_name(session_id);
        let opts = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail("2000")
            .build();
        let mut stream = self.docker.logs(&container, Some(opts));
        let mut buf: Vec<u8> = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => {
                    buf.extend_from_slice(&chunk.into_bytes());
                    if buf.len() > 2 * max_bytes {
                        buf.drain(..buf.len() - max_bytes);
                    }
                }
                Err(DockerError::DockerResponseServerError {
                    status_code: 404, ..
                }) => return Err(NodeError("The container is gone.".into())),
                Err(e) => return Err(sentence("read the logs", e)),
            }
        }
        if buf.len() > max_bytes {
            buf.drain(..buf.len() - max_bytes);
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    fn follow_logs(
        &self,
        session_id: &str,
        tail_lines: u32,
    ) -> BoxStream<'static, NodeResult<axum::body::Bytes>> {
        let docker = self.docker.clone();
        let container = container_name(session_id);
        let stream = async_stream::stream! {
            let tail = tail_lines.to_string();
            let opts = LogsOptionsBuilder::default()
                .stdout(true)
                .stderr(true)
                .follow(true)
                .tail(&tail)
                .build();
            let mut chunks = docker.logs(&container, Some(opts));
            while let Some(item) = chunks.next().await {
                match item {
                    Ok(chunk) => yield Ok(chunk.into_bytes()),
                    Err(e) => {
                        yield Err(sentence("follow the logs", e));
                        break;
                    }
                }
            }
        };
        stream.boxed()
    }

    fn events(&self) -> BoxStream<'static, NodeEvent> {
        let docker = self.docker.clone();
        let instance = self.instance.clone();
        let stream = async_stream::stream! {
            let mut since: Option<i64> = None;
            loop {
                let filters = HashMap::from([
                    ("label".to_string(), vec![format!("{LABEL_INSTANCE}={instance}")]),
                    ("type".to_string(), vec!["container".to_string()]),
                    ("event".to_string(), vec!["die".to_string(), "oom".to_string()]),
                ]);
                let mut b = EventsOptionsBuilder::default().filters(&filters);
                let since_s = since.map(|s| s.to_string());
                if let Some(s) = &since_s {
                    b = b.since(s);
                }
                let mut events = docker.events(Some(b.build()));
                let mut oom: std::collections::HashSet<String> = Default::default();
                while let Some(ev) = events.next().await {
                    let Ok(ev) = ev else { break };
                    if let Some(t) = ev.time {
                        since = Some(t);
                    }
                    let attrs = ev.actor.and_then(|a| a.attributes).unwrap_or_default();
                    let Some(session_id) = attrs.get(LABEL_SESSION).cloned() else { continue };
                    match ev.action.as_deref() {
                        Some("oom") => {
                            oom.insert(session_id);
                        }
                        Some("die") => {
                            let exit_code = attrs.get("exitCode").and_then(|c| c.parse().ok());
                            let oom_killed = oom.remove(&session_id);
                            yield NodeEvent::Died { session_id, exit_code, oom_killed };
                        }
                        _ => {}
                    }
                }
                // The stream ended (engine restarted?): tell the caller, then resubscribe.
                yield NodeEvent::Resync;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        };
        stream.boxed()
    }

    fn stats(&self, container_id: &str) -> BoxStream<'static, super::RawStats> {
        let docker = self.docker.clone();
        let id = container_id.to_string();
        let stream = async_stream::stream! {
            let opts = StatsOptionsBuilder::default().stream(true).one_shot(false).build();
            let mut readings = docker.stats(&id, Some(opts));
            while let Some(Ok(r)) = readings.next().await {
                match raw_stats(&r) {
                    Some(raw) => yield raw,
                    // A stopped container reads as zeroes dated year 1: it is over.
                    None => break,
                }
            }
        };
        stream.boxed()
    }

    async fn exec_as_work(&self, container_id: &str, cmd: &[&str]) -> NodeResult<(i64, String)> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        let created = self
            .docker
            .create_exec(
                container_id,
                CreateExecOptions {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(cmd.iter().map(|c| c.to_string()).collect()),
                    user: Some("1000:1000".to_string()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| sentence("run a command in the container", e))?;
        let mut out = String::new();
        // Code in the session can make the command hang (say, a FIFO where it writes its
        // log): it gets EXEC_PATIENCE, then berth stops waiting for it.
        let run = async {
            if let StartExecResults::Attached { mut output, .. } = self
                .docker
                .start_exec(&created.id, None)
                .await
                .map_err(|e| sentence("run a command in the container", e))?
            {
                while let Some(Ok(chunk)) = output.next().await {
                    if out.len() < 4096 {
                        out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                    }
                }
            }
            Ok::<_, NodeError>(())
        };
        match tokio::time::timeout(EXEC_PATIENCE, run).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(NodeError(format!(
                    "A command berth ran in the container did not finish within {} s.",
                    EXEC_PATIENCE.as_secs()
                )))
            }
        }
        let info = self
            .docker
            .inspect_exec(&created.id)
            .await
            .map_err(|e| sentence("run a command in the container", e))?;
        Ok((info.exit_code.unwrap_or(-1), out))
    }

    async fn write_files(
        &self,
        container_id: &str,
        files: &[super::ContainerFile],
    ) -> NodeResult<()> {
        self.put_files(container_id, files).await
    }

    fn exec_endpoint(&self) -> wsproxy::ExecEndpoint {
        wsproxy::ExecEndpoint {
            docker: self.docker.clone(),
            transport: self.transport.clone(),
        }
    }

    fn real_gpus(&self) -> bool {
        self.nvidia
    }

    fn engine_id(&self) -> &str {
        &self.engine_id
    }

    fn isolation_warning(&self) -> Option<String> {
        match &*self.firewall.lock().ok()? {
            Firewall::Broken(why) => Some(why.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stats_reading_maps_to_berths_counters() {
        // Trimmed from Docker 20.10 on cgroup v2.
        let r: ContainerStatsResponse = serde_json::from_value(serde_json::json!({
            "read": "2026-12-05T02:40:01.123456789Z",
            "cpu_stats": {"cpu_usage": {"total_usage": 5_000_000_000u64}, "online_cpus": 2},
            "memory_stats": {"usage": 300_000_000u64, "limit": 536_870_912u64,
                             "stats": {"inactive_file": 100_000_000u64}},
            "networks": {"eth0": {"rx_bytes": 1000, "tx_bytes": 200},
                         "eth1": {"rx_bytes": 10, "tx_bytes": 2}},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "read", "value": 4096},
                {"major": 8, "minor": 0, "op": "write", "value": 8192},
                {"major": 8, "minor": 16, "op": "Write", "value": 1}]},
            "pids_stats": {"current": 7}
        }))
        .unwrap();
        let raw = raw_stats(&r).unwrap();
        assert_eq!(raw.at_ms, 1_796_438_401_123);
        assert_eq!(raw.cpu_ns, 5_000_000_000);
        assert_eq!(raw.mem_bytes, 200_000_000, "page cache is not counted");
        assert_eq!(raw.mem_limit_bytes, 536_870_912);
        assert_eq!((raw.net_rx, raw.net_tx), (1010, 202));
        assert_eq!((raw.blk_read, raw.blk_write), (4096, 8193));
        assert_eq!(raw.pids, 7);
    }

    #[test]
    fn a_stopped_containers_empty_reading_ends_the_stream() {
        let r: ContainerStatsResponse = serde_json::from_value(serde_json::json!({
            "read": "0001-01-01T00:00:00Z", "memory_stats": {}, "cpu_stats": {}
        }))
        .unwrap();
        assert!(raw_stats(&r).is_none());
    }
}
