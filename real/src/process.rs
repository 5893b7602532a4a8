//! What the binaries share: logging, signals, and hosting one node as the process.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;
use std::sync::Mutex;

use rmq_model::node::Node;
use rmq_model::protocol::Message;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

use crate::fs_disk::FsDisk;
use crate::runtime::{host, Ended, HostOptions, Listeners};

/// A node hosted on its own thread with its own current-thread tokio runtime: how
/// tests and tools run several nodes in one process.
pub struct Hosted {
    /// Where it listens (port 0 when it does not).
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<io::Result<Ended>>>,
}

impl Hosted {
    /// Starts the node `build` makes from its disk at `dir` (boot is recovery); with
    /// `listen`, it accepts peers on a free loopback port.
    pub fn start(
        dir: std::path::PathBuf,
        listen: bool,
        build: impl FnOnce(&str, &mut FsDisk) -> Box<dyn Node<Message>> + Send + 'static,
    ) -> io::Result<Hosted> {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || -> io::Result<Ended> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let listener = if listen {
                    Some(tokio::net::TcpListener::bind("127.0.0.1:0").await?)
                } else {
                    None
                };
                let addr = match &listener {
                    Some(l) => l.local_addr()?,
                    None => std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                };
                let mut disk = FsDisk::open_threaded(dir)?;
                let _ = addr_tx.send(addr);
                let node = build(&addr.to_string(), &mut disk);
                let stop = async {
                    let _ = stop_rx.await;
                };
                host(
                    node,
                    disk,
                    Listeners {
                        remoting: listener,
                        ha: None,
                    },
                    HostOptions::new(addr.to_string()),
                    stop,
                )
                .await
            })
        });
        match addr_rx.recv() {
            Ok(addr) => Ok(Hosted {
                addr,
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            // The thread ended before it could listen: its error says why.
            Err(_) => Err(match thread.join() {
                Ok(Err(e)) => e,
                Ok(Ok(_)) => io::Error::other("the node ended at once"),
                Err(_) => io::Error::other("the node's thread panicked"),
            }),
        }
    }

    /// Asks the node to shut down cleanly and waits for it.
    pub fn stop(&mut self) -> io::Result<Ended> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| io::Error::other("the node's thread panicked"))?,
            None => Err(io::Error::other("already stopped")),
        }
    }
}

impl Drop for Hosted {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.stop();
        }
    }
}

/// Logs to stderr and, when `log_file` is given, to that file too (appending; its
/// directory is made). `RUST_LOG` filters, default `info`.
pub fn init_logging(log_file: Option<&Path>) -> io::Result<()> {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a terminal: a redirected log must stay greppable.
    let stderr = fmt::layer()
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .with_writer(io::stderr)
        .with_filter(filter());
    let file = match log_file {
        Some(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            Some(
                fmt::layer()
                    .with_ansi(false)
                    .with_writer(Mutex::new(file))
                    .with_filter(filter()),
            )
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init()
        .map_err(|e| io::Error::other(format!("logging already set up: {e}")))
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn termination() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for SIGTERM/SIGINT: stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
    }
}

/// Pending connections a listener holds (RocketMQ's server backlog is 1024).
const LISTEN_BACKLOG: u32 = 1024;

/// A socket bound to `addr` with SO_REUSEADDR (as std's listeners and RocketMQ's
/// server set it, so a restart binds while old connections linger in TIME_WAIT), not
/// yet listening.
fn bind_socket(addr: std::net::SocketAddr) -> io::Result<tokio::net::TcpSocket> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

/// Runs `node` as this process: listens at `listen` (and, for a broker, its HA port at
/// `ha_listen`), advertises `advertised_addr`, stops cleanly on SIGTERM/SIGINT. Returns
/// the process's exit code.
pub fn run_process(
    listen: std::net::SocketAddr,
    ha_listen: Option<std::net::SocketAddr>,
    advertised_addr: String,
    build: impl FnOnce(&mut FsDisk) -> Box<dyn Node<Message>>,
    mut disk: FsDisk,
) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        // Bound now, so a taken port fails before a long recovery; listening only once
        // the node is built (recovered), as RocketMQ starts its remoting server after
        // loading the store: until then a client's connect is refused rather than
        // accepted and left unanswered.
        let socket = match bind_socket(listen) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(%listen, error = %e, "cannot listen");
                return std::process::ExitCode::FAILURE;
            }
        };
        let ha_socket = match ha_listen.map(|a| (a, bind_socket(a))) {
            Some((_, Ok(s))) => Some(s),
            Some((ha_listen, Err(e))) => {
                tracing::error!(%ha_listen, error = %e, "cannot listen on the HA port");
                return std::process::ExitCode::FAILURE;
            }
            None => None,
        };
        let node = build(&mut disk);
        let (listener, ha) = match (
            socket.listen(LISTEN_BACKLOG),
            ha_socket.map(|s| s.listen(LISTEN_BACKLOG)).transpose(),
        ) {
            (Ok(l), Ok(ha)) => (l, ha),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(%listen, error = %e, "cannot listen");
                return std::process::ExitCode::FAILURE;
            }
        };
        if let Some(ha_listen) = ha_listen {
            tracing::info!(%ha_listen, "listening for slaves (HA)");
        }
        tracing::info!(%listen, advertised = %advertised_addr, "listening");
        match host(
            node,
            disk,
            Listeners {
                remoting: Some(listener),
                ha,
            },
            HostOptions::new(advertised_addr),
            termination(),
        )
        .await
        {
            Ok(Ended::Stopped) => {
                tracing::info!("stopped cleanly");
                std::process::ExitCode::SUCCESS
            }
            Ok(Ended::ShutdownTimedOut) => std::process::ExitCode::FAILURE,
            Err(e) => {
                tracing::error!(error = %e, "runtime failed");
                std::process::ExitCode::FAILURE
            }
        }
    })
}
