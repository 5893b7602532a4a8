//! TCP connections as the node's peers.
//!
//! Every accepted connection is a new peer; every address the node resolves is a peer
//! too, dialled on its first send and again on the first send after its connection
//! broke (as the simulator's links do). Each open connection has a reader task, which
//! cuts frames and sends them to the loop, and a writer task, which writes what the
//! loop encoded, coalescing frames queued together into one write. Both tasks report
//! the connection's end; the loop tells the node once per connection.
//!
//! A connection id (`conn`) tells one connection of a peer from the next, so a frame or
//! a close notice from a connection already replaced is ignored.
//!
//! A connection speaks remoting or, on the HA port, RocketMQ's HA stream ([`Codec`]): a
//! master's HA listener reads slaves' reports, and a connection dialled to send a report
//! reads the master's transfers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use rmq_model::node::NodeId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use rmq_model::protocol::Request;

use super::HostOptions;
use crate::ha::{self, HaReads};
use crate::remoting::{self, RemotingCommand};

/// Bytes asked of the socket per read; a frame larger than this takes several reads.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// What a connection's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Codec {
    Remoting,
    /// RocketMQ's HA stream, reading the frames given.
    Ha(HaReads),
}

/// A frame read from a connection.
pub(super) enum Incoming {
    Remoting(RemotingCommand),
    /// An HA report or transfer, already the model's request.
    Ha(Request),
}

/// What the connection tasks tell the loop.
pub(super) enum ConnEvent {
    Accepted {
        stream: TcpStream,
        peer_addr: SocketAddr,
        codec: Codec,
    },
    Dialled {
        peer: NodeId,
        conn: u64,
        stream: TcpStream,
    },
    Frame {
        peer: NodeId,
        conn: u64,
        frame: Incoming,
    },
    /// The connection ended (or its dial failed), with the reason for the log.
    Closed {
        peer: NodeId,
        conn: u64,
        reason: String,
    },
}

enum Link {
    /// Dialling; frames sent meanwhile wait here.
    Dialling {
        conn: u64,
        codec: Codec,
        queued: Vec<Vec<u8>>,
    },
    Open {
        conn: u64,
        writer: UnboundedSender<Vec<u8>>,
    },
}

impl Link {
    fn conn(&self) -> u64 {
        match self {
            Link::Dialling { conn, .. } | Link::Open { conn, .. } => *conn,
        }
    }
}

struct Peer {
    /// Where to dial this peer; None for a peer that connected to us.
    addr: Option<String>,
    /// The far end of a peer that connected to us.
    remote: Option<SocketAddr>,
    link: Option<Link>,
}

pub(super) struct Connections {
    events: UnboundedSender<ConnEvent>,
    options: HostOptions,
    peers: BTreeMap<NodeId, Peer>,
    by_addr: BTreeMap<String, NodeId>,
    /// NodeId(0) is the node itself.
    next_peer: u32,
    next_conn: u64,
}

impl Connections {
    pub(super) fn new(events: UnboundedSender<ConnEvent>, options: HostOptions) -> Connections {
        Connections {
            events,
            options,
            peers: BTreeMap::new(),
            by_addr: BTreeMap::new(),
            next_peer: 1,
            next_conn: 1,
        }
    }

    fn new_peer(&mut self, addr: Option<String>) -> NodeId {
        let id = NodeId(self.next_peer);
        self.next_peer = self
            .next_peer
            .checked_add(1)
            .expect("fewer than 2^32 peers");
        self.peers.insert(
            id,
            Peer {
                addr,
                remote: None,
                link: None,
            },
        );
        id
    }

    fn new_conn(&mut self) -> u64 {
        let conn = self.next_conn;
        self.next_conn += 1;
        conn
    }

    /// The peer at `addr` (`ip:port`), made on first use. Nothing is dialled until the
    /// node sends to it; an address nobody listens at shows as a broken connection.
    pub(super) fn resolve(&mut self, addr: &str) -> Option<NodeId> {
        if addr.parse::<SocketAddr>().is_err() {
            tracing::warn!(addr, "not an ip:port address");
            return None;
        }
        if let Some(&id) = self.by_addr.get(addr) {
            return Some(id);
        }
        let id = self.new_peer(Some(addr.to_string()));
        self.by_addr.insert(addr.to_string(), id);
        Some(id)
    }

    pub(super) fn adopt_inbound(&mut self, stream: TcpStream, peer_addr: SocketAddr, codec: Codec) {
        let peer = self.new_peer(None);
        let conn = self.new_conn();
        tracing::debug!(%peer, %peer_addr, ?codec, "accepted");
        let writer = self.start_io(stream, peer, conn, codec);
        if let Some(p) = self.peers.get_mut(&peer) {
            p.remote = Some(peer_addr);
            p.link = Some(Link::Open { conn, writer });
        }
    }

    /// The far end of a peer that connected to us.
    pub(super) fn remote_addr(&self, peer: NodeId) -> Option<SocketAddr> {
        self.peers.get(&peer).and_then(|p| p.remote)
    }

    /// Whether `conn` is the peer's live connection (or dial).
    pub(super) fn is_current(&self, peer: NodeId, conn: u64) -> bool {
        self.peers
            .get(&peer)
            .and_then(|p| p.link.as_ref())
            .is_some_and(|l| l.conn() == conn)
    }

    /// A dial finished; false when it is no longer wanted.
    pub(super) fn on_dialled(&mut self, peer: NodeId, conn: u64, stream: TcpStream) -> bool {
        let Some(p) = self.peers.get_mut(&peer) else {
            return false;
        };
        let Some(Link::Dialling { conn: dialling, .. }) = &p.link else {
            return false;
        };
        if *dialling != conn {
            return false;
        }
        let Some(Link::Dialling { queued, codec, .. }) = p.link.take() else {
            unreachable!("matched above");
        };
        let writer = self.start_io(stream, peer, conn, codec);
        for frame in queued {
            // The writer task is new: it cannot have gone yet.
            let _ = writer.send(frame);
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            p.link = Some(Link::Open { conn, writer });
        }
        true
    }

    /// Starts the reader and writer of connection `conn` to `peer`.
    fn start_io(
        &self,
        stream: TcpStream,
        peer: NodeId,
        conn: u64,
        codec: Codec,
    ) -> UnboundedSender<Vec<u8>> {
        spawn_io(
            stream,
            peer,
            conn,
            codec,
            self.events.clone(),
            self.options.max_frame_bytes,
        )
    }

    /// The connection `conn` ended; true when it was the peer's live one (then the
    /// node must hear of it).
    pub(super) fn on_closed(&mut self, peer: NodeId, conn: u64) -> bool {
        let Some(p) = self.peers.get_mut(&peer) else {
            return false;
        };
        if p.link.as_ref().is_none_or(|l| l.conn() != conn) {
            return false;
        }
        p.link = None;
        if p.addr.is_none() {
            // A peer that connected to us is gone for good: a new connection from the
            // same client is a new peer.
            self.peers.remove(&peer);
        }
        true
    }

    /// Encodes `cmd` and sends it to `peer`, dialling when the peer has no connection.
    pub(super) fn send_frame(&mut self, peer: NodeId, cmd: &RemotingCommand) {
        let mut frame = Vec::new();
        remoting::encode_frame(cmd, &mut frame);
        self.send_bytes(peer, frame, Codec::Remoting, || {
            format!("code {}", cmd.code)
        });
    }

    /// Sends an HA report or transfer to `peer`; a connection dialled for it reads the
    /// master's transfers. False when `request` is not an HA message.
    pub(super) fn send_ha(&mut self, peer: NodeId, request: &Request) -> bool {
        let mut frame = Vec::new();
        if !ha::encode_ha(request, &mut frame) {
            return false;
        }
        self.send_bytes(peer, frame, Codec::Ha(HaReads::Transfers), || {
            "an HA frame".to_string()
        });
        true
    }

    /// Queues `frame` on the peer's connection, dialling one that reads `codec` when the
    /// peer has none. `what` names the frame in the log when it is dropped.
    fn send_bytes(
        &mut self,
        peer: NodeId,
        frame: Vec<u8>,
        codec: Codec,
        what: impl FnOnce() -> String,
    ) {
        let conn = self.next_conn;
        let Some(p) = self.peers.get_mut(&peer) else {
            tracing::debug!(%peer, what = what(), "send to a peer that is gone: dropped");
            return;
        };
        match &mut p.link {
            Some(Link::Open { writer, .. }) => {
                // A failed send means the writer ended: its close notice is on the way.
                let _ = writer.send(frame);
            }
            Some(Link::Dialling { queued, .. }) => queued.push(frame),
            None => {
                let Some(addr) = p.addr.clone() else {
                    tracing::debug!(%peer, what = what(), "send to a closed inbound connection: dropped");
                    return;
                };
                self.next_conn += 1;
                p.link = Some(Link::Dialling {
                    conn,
                    codec,
                    queued: vec![frame],
                });
                spawn_dial(
                    addr,
                    peer,
                    conn,
                    self.events.clone(),
                    self.options.connect_timeout_ms,
                );
            }
        }
    }
}

/// Accepts connections on `listener`; each reads `codec`.
pub(super) fn spawn_acceptor(
    listener: TcpListener,
    codec: Codec,
    events: UnboundedSender<ConnEvent>,
) {
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer_addr)) => {
                    let _ = stream.set_nodelay(true);
                    if events
                        .send(ConnEvent::Accepted {
                            stream,
                            peer_addr,
                            codec,
                        })
                        .is_err()
                    {
                        return; // The loop ended.
                    }
                }
                Err(e) => {
                    // Out of descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
}

fn spawn_dial(
    addr: String,
    peer: NodeId,
    conn: u64,
    events: UnboundedSender<ConnEvent>,
    timeout_ms: u64,
) {
    tokio::spawn(async move {
        let dial = tokio::time::timeout(
            Duration::from_millis(timeout_ms),
            TcpStream::connect(addr.as_str()),
        )
        .await;
        let event = match dial {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                ConnEvent::Dialled { peer, conn, stream }
            }
            Ok(Err(e)) => ConnEvent::Closed {
                peer,
                conn,
                reason: format!("connect to {addr} failed: {e}"),
            },
            Err(_) => ConnEvent::Closed {
                peer,
                conn,
                reason: format!("connect to {addr} timed out after {timeout_ms} ms"),
            },
        };
        let _ = events.send(event);
    });
}

/// Starts the reader and writer of one connection; returns the writer's queue.
fn spawn_io(
    stream: TcpStream,
    peer: NodeId,
    conn: u64,
    codec: Codec,
    events: UnboundedSender<ConnEvent>,
    max_frame_bytes: usize,
) -> UnboundedSender<Vec<u8>> {
    let (mut read_half, write_half) = stream.into_split();
    let (writer_tx, writer_rx) = mpsc::unbounded_channel();
    let reader_events = events.clone();
    tokio::spawn(async move {
        let reason = read_frames(
            &mut read_half,
            peer,
            conn,
            codec,
            &reader_events,
            max_frame_bytes,
        )
        .await;
        let _ = reader_events.send(ConnEvent::Closed { peer, conn, reason });
    });
    tokio::spawn(async move {
        if let Err(reason) = write_frames(write_half, writer_rx).await {
            let _ = events.send(ConnEvent::Closed { peer, conn, reason });
        }
    });
    writer_tx
}

/// Reads until the connection ends; returns why it ended.
async fn read_frames(
    read_half: &mut tokio::net::tcp::OwnedReadHalf,
    peer: NodeId,
    conn: u64,
    codec: Codec,
    events: &UnboundedSender<ConnEvent>,
    max_frame_bytes: usize,
) -> String {
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK_BYTES);
    let mut start = 0;
    loop {
        // Cut every complete frame in the buffer.
        loop {
            match cut_frame(codec, &buf[start..], max_frame_bytes) {
                Ok(Some((frame, used))) => {
                    start += used;
                    if events.send(ConnEvent::Frame { peer, conn, frame }).is_err() {
                        return "the node's loop ended".to_string();
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "bad frame: closing the connection");
                    return format!("bad frame: {e}");
                }
            }
        }
        // Keep only the unread tail, then read more behind it.
        buf.drain(..start);
        start = 0;
        let filled = buf.len();
        buf.resize(filled + READ_CHUNK_BYTES, 0);
        match read_half.read(&mut buf[filled..]).await {
            Ok(0) => return "closed by the peer".to_string(),
            Ok(n) => buf.truncate(filled + n),
            Err(e) => return format!("read failed: {e}"),
        }
    }
}

/// One frame of `codec` from the front of `buf`, or None while it is incomplete.
fn cut_frame(
    codec: Codec,
    buf: &[u8],
    max_frame_bytes: usize,
) -> Result<Option<(Incoming, usize)>, String> {
    match codec {
        Codec::Remoting => remoting::decode_frame(buf, max_frame_bytes)
            .map(|cut| cut.map(|(cmd, used)| (Incoming::Remoting(cmd), used)))
            .map_err(|e| e.to_string()),
        Codec::Ha(reads) => ha::decode_ha(reads, buf, max_frame_bytes)
            .map(|cut| cut.map(|(request, used)| (Incoming::Ha(request), used)))
            .map_err(|e| e.to_string()),
    }
}

/// Writes frames as they come, several per write when they queue up; ends quietly
/// when the loop drops the queue (the connection is closed or replaced).
async fn write_frames(
    mut write_half: tokio::net::tcp::OwnedWriteHalf,
    mut frames: UnboundedReceiver<Vec<u8>>,
) -> Result<(), String> {
    let mut batch = Vec::new();
    while let Some(first) = frames.recv().await {
        batch.clear();
        batch.extend_from_slice(&first);
        while let Ok(more) = frames.try_recv() {
            batch.extend_from_slice(&more);
            if batch.len() >= READ_CHUNK_BYTES {
                break;
            }
        }
        if let Err(e) = write_half.write_all(&batch).await {
            return Err(format!("write failed: {e}"));
        }
    }
    let _ = write_half.shutdown().await;
    Ok(())
}
