//! Network faults without privileges: a TCP proxy in front of each link of the
//! cluster, which passes, drops, holds or delays the bytes of each direction.
//!
//! The harness binds every node on 127.0.0.2 and puts a proxy on the same port of
//! 127.0.0.1, the address the node registers (`bindAddress` apart from `brokerIP1`), so
//! every connection a client or another node makes to it goes through the proxy.
//!
//! What each [`Flow`] does to a connection's direction:
//! - [`Flow::Pass`]: the bytes go on at once.
//! - [`Flow::Drop`]: the bytes are read and thrown away, as a partition loses packets.
//!   The connection stays open (no reset: the far end learns nothing, its requests
//!   time out); once the direction passes again the connection is closed, because a
//!   byte stream with a gap cannot go on. A connection made while either direction
//!   drops never reaches the node (a lost SYN or SYN-ACK): whatever the client sends
//!   on it is thrown away until the heal, then it is closed.
//! - [`Flow::Stall`]: nothing is read; the bytes wait in the kernel's buffers (and the
//!   sender's, once those are full) and go on, all of them, when the stall ends. New
//!   connections wait to be made.
//! - [`Flow::Delay`]: each read is written `ms` later, in order.
//!
//! The proxies run on one thread with a single-threaded tokio runtime; the harness
//! changes a link's [`Mode`] from its own thread.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// What one direction of a link does with its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Pass,
    Drop,
    Stall,
    Delay { ms: u64 },
}

/// Both directions of a link: `to_node` carries what is sent to the node behind the
/// proxy (requests), `from_node` what it sends back (responses, pushes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode {
    pub to_node: Flow,
    pub from_node: Flow,
}

impl Mode {
    pub const PASS: Mode = Mode {
        to_node: Flow::Pass,
        from_node: Flow::Pass,
    };

    fn any(self, flow: Flow) -> bool {
        self.to_node == flow || self.from_node == flow
    }
}

/// One proxied endpoint: connections to `listen` go on to `node`.
pub struct Link {
    /// The address the proxy accepts on (the one the node registers).
    pub listen: SocketAddr,
    /// The node's own address.
    pub node: SocketAddr,
    mode: watch::Sender<Mode>,
}

impl Link {
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    pub fn heal(&self) {
        self.set(Mode::PASS);
    }
}

/// The proxies' thread and runtime. Dropped, every proxy stops and its connections
/// close.
pub struct Proxies {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    handle: tokio::runtime::Handle,
}

impl Proxies {
    pub fn start() -> io::Result<Proxies> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // A single-threaded runtime drives its sockets and timers only inside its own
        // `block_on`: the thread runs it until the drop, then drops it with every task.
        let thread = std::thread::Builder::new()
            .name("mqchaos-proxies".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        Ok(Proxies {
            stop: Some(stop),
            thread: Some(thread),
            handle,
        })
    }

    /// A proxy on `listen` (port 0: the kernel picks one) in front of `node`.
    pub fn link(&self, listen: SocketAddr, node: SocketAddr) -> io::Result<Link> {
        let listener = std::net::TcpListener::bind(listen)?;
        self.serve(listener, node)
    }

    /// A proxy on a free port of `proxy_ip` in front of the same port of `node_ip`:
    /// the node binds `node_ip` and registers `proxy_ip`.
    pub fn front(&self, proxy_ip: IpAddr, node_ip: IpAddr) -> io::Result<Link> {
        let listener = std::net::TcpListener::bind(SocketAddr::new(proxy_ip, 0))?;
        let port = listener.local_addr()?.port();
        self.serve(listener, SocketAddr::new(node_ip, port))
    }

    fn serve(&self, std_listener: std::net::TcpListener, node: SocketAddr) -> io::Result<Link> {
        std_listener.set_nonblocking(true)?;
        let listen = std_listener.local_addr()?;
        let _entered = self.handle.enter();
        let listener = TcpListener::from_std(std_listener)?;
        let (mode, watch) = watch::channel(Mode::PASS);
        self.handle.spawn(accept(listener, node, watch));
        Ok(Link { listen, node, mode })
    }
}

impl Drop for Proxies {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // The thread drops the runtime: listeners and connections close.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept(listener: TcpListener, node: SocketAddr, mode: watch::Receiver<Mode>) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                tokio::spawn(connection(client, node, mode.clone()));
            }
            // Out of descriptors and the like: try again shortly rather than stop
            // proxying for the rest of the run.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Waits for the link's next change. A dropped [`Link`] never changes again: its
/// connections go on as they are.
async fn changed(mode: &mut watch::Receiver<Mode>) {
    if mode.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn connection(mut client: TcpStream, node: SocketAddr, mut mode: watch::Receiver<Mode>) {
    // The handshake crosses both directions: it waits out a stall, and a drop loses it.
    loop {
        let now = *mode.borrow_and_update();
        if now.any(Flow::Drop) {
            blackhole(&mut client, &mut mode).await;
            return;
        }
        if !now.any(Flow::Stall) {
            break;
        }
        changed(&mut mode).await;
    }
    let Ok(server) = TcpStream::connect(node).await else {
        // The node is down: the client's connection closes, as a refused one would.
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let to_node = pump(client_read, server_write, mode.clone(), |m| m.to_node);
    let from_node = pump(server_read, client_write, mode, |m| m.from_node);
    // Either direction ending ends the connection: both halves are dropped (closed).
    tokio::select! {
        _ = to_node => {}
        _ = from_node => {}
    }
}

/// A connection made during a drop: reads and discards until no direction drops,
/// then returns (closing it).
async fn blackhole(client: &mut TcpStream, mode: &mut watch::Receiver<Mode>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !mode.borrow_and_update().any(Flow::Drop) {
            return;
        }
        tokio::select! {
            r = client.read(&mut buf) => {
                if matches!(r, Ok(0) | Err(_)) {
                    return;
                }
            }
            _ = changed(mode) => {}
        }
    }
}

/// How a direction's reading ended.
enum End {
    /// The sender closed: what is queued still goes out.
    Closed,
    /// Bytes were dropped: the stream has a gap and must close now.
    Gap,
}

/// One direction: reads `from`, writes `to` as the link's `flow` says.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
    flow_of: fn(Mode) -> Flow,
) {
    let (queue, mut queued) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = async move {
        while let Some((due, bytes)) = queued.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
    };
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut dropped = false;
        loop {
            let flow = flow_of(*mode.borrow_and_update());
            if dropped && flow != Flow::Drop {
                return End::Gap;
            }
            if flow == Flow::Stall {
                changed(&mut mode).await;
                continue;
            }
            tokio::select! {
                r = from.read(&mut buf) => {
                    let n = match r {
                        Ok(0) | Err(_) => return End::Closed,
                        Ok(n) => n,
                    };
                    // The flow when the bytes arrived decides their fate.
                    let due = match flow_of(*mode.borrow()) {
                        Flow::Drop => {
                            dropped = true;
                            continue;
                        }
                        Flow::Delay { ms } => Instant::now() + Duration::from_millis(ms),
                        Flow::Pass | Flow::Stall => Instant::now(),
                    };
                    if queue.send((due, buf[..n].to_vec())).is_err() {
                        return End::Closed;
                    }
                }
                _ = changed(&mut mode) => {}
            }
        }
    };
    tokio::pin!(writer);
    tokio::pin!(reader);
    tokio::select! {
        end = &mut reader => {
            if matches!(end, End::Closed) {
                // The queue's sender is gone with the reader: the writer drains it.
                writer.await;
            }
        }
        _ = &mut writer => {}
    }
}

#[cfg(test)]
mod tests {
    use super::{Flow, Mode, Proxies};
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    /// An echo server on loopback: what a connection sends comes back.
    fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { return };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    fn connect(addr: SocketAddr) -> TcpStream {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(400)))
            .unwrap();
        s
    }

    /// Sends `msg` and reads its echo; `None` when nothing came back in time or the
    /// connection closed.
    fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Option<Vec<u8>> {
        s.write_all(msg).ok()?;
        let mut got = vec![0u8; msg.len()];
        s.read_exact(&mut got).ok()?;
        Some(got)
    }

    fn proxied() -> (Proxies, super::Link) {
        let proxies = Proxies::start().unwrap();
        let link = proxies
            .link("127.0.0.1:0".parse().unwrap(), echo())
            .unwrap();
        (proxies, link)
    }

    #[test]
    fn passes_then_drops_then_closes_the_gapped_connection_at_the_heal() {
        let (_proxies, link) = proxied();
        let mut s = connect(link.listen);
        assert_eq!(round_trip(&mut s, b"one").as_deref(), Some(&b"one"[..]));
        link.set(Mode {
            to_node: Flow::Drop,
            from_node: Flow::Drop,
        });
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(round_trip(&mut s, b"two"), None, "a partition passed bytes");
        // A connection made during the partition reaches nothing either.
        let mut late = connect(link.listen);
        assert_eq!(round_trip(&mut late, b"three"), None);
        link.heal();
        std::thread::sleep(Duration::from_millis(50));
        // Both had a gap: closed, not resumed with bytes missing.
        let mut buf = [0u8; 8];
        assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
        assert!(matches!(late.read(&mut buf), Ok(0) | Err(_)));
        let mut fresh = connect(link.listen);
        assert_eq!(
            round_trip(&mut fresh, b"four").as_deref(),
            Some(&b"four"[..])
        );
    }

    #[test]
    fn a_one_way_drop_lets_requests_in_and_loses_the_answers() {
        let (_proxies, link) = proxied();
        let mut s = connect(link.listen);
        assert!(round_trip(&mut s, b"x").is_some());
        link.set(Mode {
            to_node: Flow::Pass,
            from_node: Flow::Drop,
        });
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(round_trip(&mut s, b"lost answer"), None);
        link.set(Mode {
            to_node: Flow::Drop,
            from_node: Flow::Pass,
        });
        std::thread::sleep(Duration::from_millis(50));
        let mut other = connect(link.listen);
        assert_eq!(round_trip(&mut other, b"lost request"), None);
    }

    #[test]
    fn a_stall_holds_bytes_and_delivers_every_one_after() {
        let (_proxies, link) = proxied();
        let mut s = connect(link.listen);
        assert!(round_trip(&mut s, b"warm").is_some());
        link.set(Mode {
            to_node: Flow::Stall,
            from_node: Flow::Stall,
        });
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(round_trip(&mut s, b"held"), None, "a stall passed bytes");
        link.heal();
        // The held bytes arrive after all, on the same connection.
        let mut got = [0u8; 4];
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"held");
    }

    #[test]
    fn a_delay_adds_its_latency_in_order() {
        let (_proxies, link) = proxied();
        let mut s = connect(link.listen);
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        link.set(Mode {
            to_node: Flow::Delay { ms: 300 },
            from_node: Flow::Pass,
        });
        std::thread::sleep(Duration::from_millis(50));
        let sent = Instant::now();
        s.write_all(b"a").unwrap();
        s.write_all(b"b").unwrap();
        let mut got = [0u8; 2];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ab");
        assert!(sent.elapsed() >= Duration::from_millis(300));
    }

    #[test]
    fn a_node_that_is_down_closes_the_clients_connection() {
        let proxies = Proxies::start().unwrap();
        let gone = TcpListener::bind("127.0.0.1:0").unwrap();
        let node = gone.local_addr().unwrap();
        drop(gone);
        let link = proxies.link("127.0.0.1:0".parse().unwrap(), node).unwrap();
        let mut s = connect(link.listen);
        let mut buf = [0u8; 1];
        assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
    }
}
