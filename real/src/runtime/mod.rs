//! The real runtime: one sans-I/O [`Node`] driven by tokio, real TCP and a real disk.
//!
//! The node is the very state machine the simulator drives; this module only plays the
//! world's part. It owns the node, its [`FsDisk`], its timers and its connections, and
//! turns each thing that happens — a frame read, a connection closed, a timer due, a
//! sync finished — into the same [`Input`] the simulator would deliver, one at a time
//! on one thread, so the node never sees concurrency.
//!
//! - Connections (`connection.rs`): each accepted or dialled TCP connection is a peer
//!   [`NodeId`]; a reader task cuts frames with [`remoting::decode_frame`] and a writer
//!   task writes encoded frames. A broken connection reaches the node as
//!   [`Input::ConnectionBroken`]; the next send to an address dials again.
//! - The HA port: a master's second listener, whose connections carry RocketMQ's HA
//!   stream ([`crate::ha`]) instead of remoting; a slave's report dials its master's HA
//!   address and its connection reads the transfers. HA frames are the model's
//!   `HaReport`/`HaTransfer` one to one, so they skip the wire's bookkeeping.
//! - The wire (`wire.rs`): frames ↔ the model's messages through [`remoting`]'s
//!   mapping, remembering which request each `opaque` was so that responses are encoded
//!   (and decoded) as that request's response, in the request's serialize type.
//! - Time (`ctx.rs`): `now_ms` is the wall clock in ms since the Unix epoch, as
//!   RocketMQ stamps messages, never going back within a run; timers are tokio sleeps
//!   with tokio's 1 ms resolution.
//! - The disk: [`FsDisk`] performs a sync when asked, or on its worker thread (opened
//!   with [`FsDisk::open_threaded`], which wakes the loop when one finishes); after
//!   every input the loop hands finished syncs back as [`Input::SyncComplete`], so a
//!   broker keeps serving while an fsync runs (group commit).
//! - Stopping: when `stop` resolves the node is asked to [`Node::shutdown`], and the
//!   loop runs until it reports [`Node::is_stopped`] (flushes landed, abort marker
//!   removed) or `shutdown_timeout_ms` passes.

mod connection;
mod ctx;
mod wire;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use rmq_model::node::{Input, Node, NodeId};
use rmq_model::protocol::{Message, Request};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::fs_disk::FsDisk;
use crate::remoting;

pub use ctx::wall_clock_ms;

use crate::ha::HaReads;
use connection::{Codec, ConnEvent, Connections, Incoming};
use ctx::{Clock, RealCtx, Timers};
use wire::Wire;

/// How a node is hosted.
#[derive(Clone, Debug)]
pub struct HostOptions {
    /// The address the node registers and is dialled at (`Ctx::my_addr`); for a node
    /// that listens, the listener's address.
    pub advertised_addr: String,
    /// Frames longer than this close the connection (RocketMQ: 16 MiB).
    pub max_frame_bytes: usize,
    /// A dial that takes longer than this fails (the node sees the connection break).
    pub connect_timeout_ms: u64,
    /// After the stop signal, how long the node may take to shut down cleanly.
    pub shutdown_timeout_ms: u64,
    /// Seeds the node's `Ctx::random_u64`.
    pub random_seed: u64,
}

impl HostOptions {
    pub fn new(advertised_addr: impl Into<String>) -> HostOptions {
        HostOptions {
            advertised_addr: advertised_addr.into(),
            max_frame_bytes: remoting::DEFAULT_MAX_FRAME_BYTES,
            connect_timeout_ms: 3_000,
            shutdown_timeout_ms: 30_000,
            random_seed: wall_clock_ms() ^ u64::from(std::process::id()).rotate_left(32),
        }
    }
}

/// Where a node accepts connections.
#[derive(Default)]
pub struct Listeners {
    /// Remoting: clients, name servers, brokers (None for a client that only dials out).
    pub remoting: Option<TcpListener>,
    /// A broker's `haListenPort`: its slaves' HA connections.
    pub ha: Option<TcpListener>,
}

impl Listeners {
    pub fn remoting(listener: TcpListener) -> Listeners {
        Listeners {
            remoting: Some(listener),
            ha: None,
        }
    }
}

/// Why the loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The node finished its clean shutdown.
    Stopped,
    /// The node did not finish shutting down within `shutdown_timeout_ms`.
    ShutdownTimedOut,
}

/// Runs `node` (already built from `disk`: boot is recovery) until `stop` resolves and
/// the node has shut down, accepting peers on `listeners`. Must run inside a tokio runtime with IO and time enabled; the node
/// need not be `Send` (use a current-thread runtime or a `LocalSet`).
pub async fn host(
    mut node: Box<dyn Node<Message>>,
    disk: FsDisk,
    listeners: Listeners,
    options: HostOptions,
    stop: impl Future<Output = ()>,
) -> io::Result<Ended> {
    let (events_tx, mut events) = mpsc::unbounded_channel::<ConnEvent>();
    // A disk opened with syncs on a worker thread wakes the loop when one finishes.
    let mut disk = disk;
    let sync_done = std::sync::Arc::new(tokio::sync::Notify::new());
    {
        let sync_done = sync_done.clone();
        disk.set_waker(Box::new(move || sync_done.notify_one()));
    }
    if let Some(listener) = listeners.remoting {
        connection::spawn_acceptor(listener, Codec::Remoting, events_tx.clone());
    }
    if let Some(listener) = listeners.ha {
        connection::spawn_acceptor(listener, Codec::Ha(HaReads::Reports), events_tx.clone());
    }
    let mut state = LoopState {
        me: NodeId(0),
        clock: Clock::default(),
        timers: Timers::default(),
        conns: Connections::new(events_tx, options.clone()),
        wire: Wire::default(),
        disk,
        rng: ctx::seeded_rng(options.random_seed),
        advertised_addr: options.advertised_addr.clone(),
    };
    state.with_ctx(|ctx| node.on_start(ctx));
    state.deliver_syncs(&mut node);

    tokio::pin!(stop);
    let mut stopping_since: Option<tokio::time::Instant> = None;
    loop {
        if stopping_since.is_some() && node.is_stopped() {
            return Ok(Ended::Stopped);
        }
        let next_timer = state.timers.next_deadline();
        let shutdown_deadline =
            stopping_since.map(|since| since + Duration::from_millis(options.shutdown_timeout_ms));
        tokio::select! {
            biased;
            _ = &mut stop, if stopping_since.is_none() => {
                tracing::info!("stop requested: shutting down cleanly");
                stopping_since = Some(tokio::time::Instant::now());
                state.with_ctx(|ctx| node.shutdown(ctx));
            }
            Some(event) = events.recv() => {
                state.on_conn_event(&mut node, event);
            }
            _ = sync_done.notified() => {
                // Delivered below, with any other finished syncs.
            }
            _ = sleep_until_opt(next_timer) => {
                while let Some((id, kind)) = state.timers.pop_due(tokio::time::Instant::now()) {
                    state.with_ctx(|ctx| node.handle(ctx, Input::Timer { id, kind }));
                    state.deliver_syncs(&mut node);
                }
            }
            _ = sleep_until_opt(shutdown_deadline) => {
                tracing::error!(
                    timeout_ms = options.shutdown_timeout_ms,
                    "the node did not finish shutting down in time"
                );
                return Ok(Ended::ShutdownTimedOut);
            }
        }
        state.deliver_syncs(&mut node);
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The loop's state besides the node: what a [`RealCtx`] borrows.
struct LoopState {
    me: NodeId,
    clock: Clock,
    timers: Timers,
    conns: Connections,
    wire: Wire,
    disk: FsDisk,
    rng: rand_chacha::ChaCha8Rng,
    advertised_addr: String,
}

impl LoopState {
    fn with_ctx<R>(&mut self, f: impl FnOnce(&mut RealCtx<'_>) -> R) -> R {
        let mut ctx = RealCtx {
            me: self.me,
            my_addr: &self.advertised_addr,
            clock: &mut self.clock,
            timers: &mut self.timers,
            conns: &mut self.conns,
            wire: &mut self.wire,
            disk: &mut self.disk,
            rng: &mut self.rng,
        };
        f(&mut ctx)
    }

    /// Hands every finished sync — and those its handling requests in turn — to the
    /// node.
    fn deliver_syncs(&mut self, node: &mut Box<dyn Node<Message>>) {
        loop {
            let done = self.disk.take_completed();
            if done.is_empty() {
                return;
            }
            for (ticket, result) in done {
                self.with_ctx(|ctx| node.handle(ctx, Input::SyncComplete { ticket, result }));
            }
        }
    }

    fn on_conn_event(&mut self, node: &mut Box<dyn Node<Message>>, event: ConnEvent) {
        match event {
            ConnEvent::Accepted {
                stream,
                peer_addr,
                codec,
            } => {
                self.conns.adopt_inbound(stream, peer_addr, codec);
            }
            ConnEvent::Dialled { peer, conn, stream } => {
                if !self.conns.on_dialled(peer, conn, stream) {
                    // The dial lost to a close already reported to the node.
                    tracing::debug!(%peer, "late dial dropped");
                }
            }
            ConnEvent::Frame { peer, conn, frame } => {
                if !self.conns.is_current(peer, conn) {
                    return;
                }
                let cmd = match frame {
                    Incoming::Remoting(cmd) => cmd,
                    Incoming::Ha(request) => {
                        let msg = Message::Request { opaque: 0, request };
                        self.with_ctx(|ctx| node.handle(ctx, Input::Packet { from: peer, msg }));
                        return;
                    }
                };
                let now_ms = self.clock.now_ms();
                let (msg, answer) = match self.wire.inbound(peer, cmd, now_ms) {
                    wire::Inbound::Deliver(msg) => (Some(msg), None),
                    wire::Inbound::Answer(answer) => (None, Some(answer)),
                    wire::Inbound::DeliverAndAnswer(msg, answer) => (Some(msg), Some(answer)),
                    wire::Inbound::Drop => (None, None),
                };
                if let Some(answer) = answer {
                    self.conns.send_frame(peer, &answer);
                }
                if let Some(mut msg) = msg {
                    self.fill_born_host(peer, &mut msg);
                    self.with_ctx(|ctx| {
                        node.handle(ctx, Input::Packet { from: peer, msg });
                    });
                }
            }
            ConnEvent::Closed { peer, conn, reason } => {
                if self.conns.on_closed(peer, conn) {
                    tracing::debug!(%peer, %reason, "connection closed");
                    self.wire.forget_peer(peer);
                    self.with_ctx(|ctx| {
                        node.handle(ctx, Input::ConnectionBroken { peer });
                    });
                }
            }
        }
    }
}

impl LoopState {
    /// RocketMQ's send header carries no born host: the broker takes it from the
    /// connection, and so does this runtime (the model's broker would otherwise stamp
    /// its own address).
    fn fill_born_host(&self, peer: NodeId, msg: &mut Message) {
        let send = match msg {
            Message::Request {
                request: Request::SendMessage(send),
                ..
            } => send,
            Message::Request {
                request: Request::SendBatchMessage(batch),
                ..
            } => &mut batch.header,
            _ => return,
        };
        if send.born_host.is_empty() {
            if let Some(addr) = self.conns.remote_addr(peer) {
                send.born_host = addr.to_string();
            }
        }
    }
}

/// The address a listener really got (port 0 asks the OS for a free one).
pub fn local_addr(listener: &TcpListener) -> io::Result<SocketAddr> {
    listener.local_addr()
}
