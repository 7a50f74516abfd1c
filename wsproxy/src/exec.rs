//! TTY execs done by hand: bollard creates and resizes them, but its TTY decoder mistakes
//! output bytes 0x00–0x02 for multiplex headers, so the start/attach upgrade is done here
//! on the raw connection (`POST /exec/{id}/start` with `Upgrade: tcp`, then raw bytes): a
//! unix socket for an engine on this host, TCP with mutual TLS for a remote one.

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::Docker;
use futures_util::StreamExt;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;

/// How to reach a node's Docker engine for execs: bollard's client for the API calls, and
/// the transport the raw exec upgrade is made over.
#[derive(Clone)]
pub struct ExecEndpoint {
    pub docker: Docker,
    pub transport: ExecTransport,
}

/// The connection a raw exec upgrade goes over.
#[derive(Clone)]
pub enum ExecTransport {
    /// The engine's unix socket (an engine on this host).
    Unix(PathBuf),
    /// `HOST:PORT` over TCP with mutual TLS (the client certificate is in `config`).
    Tls {
        addr: String,
        config: Arc<rustls::ClientConfig>,
        server_name: ServerName<'static>,
    },
}

impl ExecTransport {
    /// TLS to `addr` (`HOST:PORT`) from PEM text: the CA that signed the engine's
    /// certificate, and this client's certificate and private key. Only that CA is trusted.
    pub fn tls(addr: &str, ca: &[u8], cert: &[u8], key: &[u8]) -> anyhow::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        let cas = CertificateDer::pem_slice_iter(ca)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("The CA certificate is not valid PEM ({e})"))?;
        let (added, _) = roots.add_parsable_certificates(cas);
        if added == 0 {
            anyhow::bail!("The CA PEM holds no usable certificate");
        }
        let chain = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("The client certificate is not valid PEM ({e})"))?;
        if chain.is_empty() {
            anyhow::bail!("The client certificate PEM holds no certificate");
        }
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| anyhow::anyhow!("The client key is not a PEM private key ({e})"))?;
        // The ring provider, as bollard's `ssl` feature uses: explicit, so the process-wide
        // default provider does not matter here.
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| anyhow::anyhow!("The client certificate and key do not fit ({e})"))?;
        let host = addr
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(addr)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let server_name = ServerName::try_from(host.to_string())
            .map_err(|e| anyhow::anyhow!("{host} is not a host name for TLS ({e})"))?;
        Ok(Self::Tls {
            addr: addr.to_string(),
            config: Arc::new(config),
            server_name,
        })
    }

    async fn connect(&self) -> io::Result<ExecStream> {
        match self {
            Self::Unix(socket) => Ok(ExecStream::Unix(UnixStream::connect(socket).await?)),
            Self::Tls {
                addr,
                config,
                server_name,
            } => {
                let tcp = TcpStream::connect(addr.as_str()).await?;
                tcp.set_nodelay(true)?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(server_name.clone(), tcp)
                    .await?;
                Ok(ExecStream::Tls(Box::new(tls)))
            }
        }
    }
}

/// The raw byte stream of an upgraded exec, over either transport.
pub enum ExecStream {
    Unix(UnixStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl ExecStream {
    /// Output and input halves, usable from two tasks.
    pub fn into_split(self) -> (ReadHalf<ExecStream>, WriteHalf<ExecStream>) {
        tokio::io::split(self)
    }
}

impl AsyncRead for ExecStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ExecStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Unix(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Unix(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// A sequence nobody types; Docker's default (Ctrl-P Ctrl-Q) holds back every Ctrl-P.
const DETACH_KEYS: &str = "ctrl-^,ctrl-],ctrl-^,ctrl-]";

/// A started TTY exec: its id and the raw byte stream (output in, input out).
pub struct TtyExec {
    pub exec_id: String,
    pub stream: ExecStream,
    /// Output bytes that arrived with the upgrade response.
    pub initial: Vec<u8>,
}

fn pid_file(tag: &str) -> String {
    format!("/tmp/.berth-term-{tag}.pid")
}

impl ExecEndpoint {
    /// Starts a login shell (bash, else sh) as `work` on a TTY in `container`. The shell's
    /// PID is recorded so [`ExecEndpoint::hangup`] can end it: Docker cannot kill an exec.
    pub async fn start_shell(&self, container: &str, tag: &str) -> anyhow::Result<TtyExec> {
        let script = format!(
            "echo $$ > {pid}; if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi",
            pid = pid_file(tag)
        );
        let created = self
            .docker
            .create_exec(
                container,
                CreateExecOptions {
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(true),
                    detach_keys: Some(DETACH_KEYS.to_string()),
                    env: Some(vec![
                        "TERM=xterm-256color".to_string(),
                        "LANG=C.UTF-8".to_string(),
                    ]),
                    cmd: Some(vec!["sh".to_string(), "-c".to_string(), script]),
                    user: Some("1000:1000".to_string()),
                    working_dir: Some("/home/work".to_string()),
                    ..Default::default()
                },
            )
            .await?;
        let mut stream = self.transport.connect().await?;
        let body = r#"{"Detach":false,"Tty":true}"#;
        let req = format!(
            "POST /exec/{id}/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
             Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {len}\r\n\r\n{body}",
            id = created.id,
            len = body.len()
        );
        stream.write_all(req.as_bytes()).await?;
        // Read the response head; anything after it is already terminal output.
        let mut head = Vec::with_capacity(1024);
        let mut buf = [0u8; 1024];
        let end = loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                anyhow::bail!("Docker closed the exec connection before answering");
            }
            head.extend_from_slice(&buf[..n]);
            if let Some(pos) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            if head.len() > 16 * 1024 {
                anyhow::bail!("Docker sent an oversized response head");
            }
        };
        let status_line =
            String::from_utf8_lossy(&head[..head.iter().position(|&b| b == b'\r').unwrap_or(0)])
                .to_string();
        if !status_line.contains(" 101 ") {
            anyhow::bail!("Docker refused to attach the exec: {status_line}");
        }
        let initial = head[end..].to_vec();
        Ok(TtyExec {
            exec_id: created.id,
            stream,
            initial,
        })
    }

    pub async fn resize(&self, exec_id: &str, cols: u16, rows: u16) -> anyhow::Result<()> {
        self.docker
            .resize_exec(
                exec_id,
                bollard::exec::ResizeExecOptions {
                    height: rows,
                    width: cols,
                },
            )
            .await?;
        Ok(())
    }

    /// The exit code of an ended exec, if Docker knows it.
    pub async fn exit_code(&self, exec_id: &str) -> Option<i64> {
        for _ in 0..20 {
            match self.docker.inspect_exec(exec_id).await {
                Ok(i) if i.running == Some(false) => return i.exit_code,
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                Err(_) => return None,
            }
        }
        None
    }

    /// Hangs up the shell started with `tag` (SIGHUP, as a closing terminal would), by a
    /// side exec; the container's init reaps what is left.
    pub async fn hangup(&self, container: &str, tag: &str) {
        let pid = pid_file(tag);
        let cmd = format!("p=$(cat {pid} 2>/dev/null) && kill -HUP -$p 2>/dev/null; kill -HUP $p 2>/dev/null; rm -f {pid}");
        let res = self
            .docker
            .create_exec(
                container,
                CreateExecOptions {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(vec!["sh".to_string(), "-c".to_string(), cmd]),
                    user: Some("1000:1000".to_string()),
                    ..Default::default()
                },
            )
            .await;
        let Ok(created) = res else { return };
        if let Ok(StartExecResults::Attached { mut output, .. }) =
            self.docker.start_exec(&created.id, None).await
        {
            while output.next().await.is_some() {}
        }
    }
}
