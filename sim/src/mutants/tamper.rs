//! The Node boundary a mutant plants its bug at: a reference node (broker, name server,
//! producer or consumer host) wrapped so that what it sends, what it receives and what
//! it reads from or writes to its disk pass through a [`Tamper`] first.
//!
//! A wrapped node behaves exactly like a buggy implementation would on the wire and on
//! disk; the reference code itself is untouched, and a run without mutants never goes
//! through this module (the reference factories build the bare nodes).
//!
//! Disk tampering applies to the running node (`Ctx::disk`); recovery at boot reads the
//! disk untampered, as the factories hand the boot disk straight to the reference.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use rmq_model::broker::{Broker, BrokerConfig};
use rmq_model::client::ConsumerConfig;
use rmq_model::namesrv::NameServer;
use rmq_model::node::{Ctx, Input, Node, NodeId, TimerId};
use rmq_model::protocol::{Message, PullResponse, Response};
use rmq_model::store::disk::{DirEntry, DiskError, SyncTarget, SyncTicket};
use rmq_model::store::record::{parse, CrcCheck, Host, NewRecord, RecordView, Slot};
use rmq_model::store::Disk;

use crate::cluster::runner::Nodes;
use crate::history::workload::{ConsumerHost, ProducerHost};

/// What a mutant does at its node's boundary. Every hook defaults to passing through.
pub trait Tamper: 'static {
    /// Rewrites or drops (`None`) a packet the node sends to `to`; `ctx` is the
    /// driver's (to hold a packet back on a timer, say).
    fn outgoing(
        &mut self,
        _ctx: &mut dyn Ctx<Message>,
        _to: NodeId,
        msg: Message,
    ) -> Option<Message> {
        Some(msg)
    }
    /// Rewrites or swallows (`None`) an input before the node sees it; may answer
    /// through `ctx` in the node's place.
    fn incoming(
        &mut self,
        _ctx: &mut dyn Ctx<Message>,
        input: Input<Message>,
    ) -> Option<Input<Message>> {
        Some(input)
    }
    /// An input the node is to handle right after the one it was just given (as if
    /// it had arrived at once): asked again until `None`.
    fn follow_up(&mut self) -> Option<Input<Message>> {
        None
    }
    /// Whether the disk hooks below are used (false: the node gets its disk untouched).
    fn tampers_disk(&self) -> bool {
        false
    }
    /// Rewrites the bytes a write puts at `offset` of `path` (`None`: as asked).
    fn write(&mut self, _path: &str, _offset: u64, _data: &[u8]) -> Option<Vec<u8>> {
        None
    }
    /// Rewrites the bytes a read of `path` at `offset` returns.
    fn read(&self, _path: &str, _offset: u64, _data: &mut Vec<u8>) {}
    /// The file a sync of `path` really syncs (`None`: `path` itself).
    fn sync_instead(&mut self, _path: &str) -> Option<&'static str> {
        None
    }
}

/// A stateless rewrite of outgoing packets: the common case.
pub struct Rewrite(pub fn(NodeId, Message) -> Option<Message>);

impl Tamper for Rewrite {
    fn outgoing(&mut self, _: &mut dyn Ctx<Message>, to: NodeId, msg: Message) -> Option<Message> {
        (self.0)(to, msg)
    }
}

/// The `Ctx` a wrapped node sees: the driver's, with sends (and, when asked, the disk)
/// going through the tamper.
struct TamperCtx<'a, T: Tamper> {
    inner: RefCell<&'a mut dyn Ctx<Message>>,
    tamper: &'a mut T,
}

impl<T: Tamper> Ctx<Message> for TamperCtx<'_, T> {
    fn me(&self) -> NodeId {
        self.inner.borrow().me()
    }
    fn my_addr(&self) -> String {
        self.inner.borrow().my_addr()
    }
    fn resolve(&mut self, addr: &str) -> Option<NodeId> {
        self.inner.get_mut().resolve(addr)
    }
    fn now_ms(&self) -> u64 {
        self.inner.borrow().now_ms()
    }
    fn monotonic_ms(&self) -> u64 {
        self.inner.borrow().monotonic_ms()
    }
    fn random_u64(&mut self) -> u64 {
        self.inner.get_mut().random_u64()
    }
    fn send(&mut self, to: NodeId, msg: Message) {
        let inner = self.inner.get_mut();
        if let Some(msg) = self.tamper.outgoing(&mut **inner, to, msg) {
            inner.send(to, msg);
        }
    }
    fn set_timer(&mut self, after_ms: u64, kind: u64) -> TimerId {
        self.inner.get_mut().set_timer(after_ms, kind)
    }
    fn cancel_timer(&mut self, id: TimerId) {
        self.inner.get_mut().cancel_timer(id)
    }
    fn disk(&mut self) -> &mut dyn Disk {
        if self.tamper.tampers_disk() {
            self
        } else {
            self.inner.get_mut().disk()
        }
    }
}

impl<T: Tamper> Disk for TamperCtx<'_, T> {
    fn create(&mut self, path: &str) -> Result<(), DiskError> {
        self.inner.get_mut().disk().create(path)
    }
    fn exists(&self, path: &str) -> bool {
        self.inner.borrow_mut().disk().exists(path)
    }
    fn len(&self, path: &str) -> Result<u64, DiskError> {
        self.inner.borrow_mut().disk().len(path)
    }
    fn set_len(&mut self, path: &str, len: u64) -> Result<(), DiskError> {
        self.inner.get_mut().disk().set_len(path, len)
    }
    fn read(&self, path: &str, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, DiskError> {
        let mut data = self
            .inner
            .borrow_mut()
            .disk()
            .read(path, offset, len)?
            .into_owned();
        self.tamper.read(path, offset, &mut data);
        Ok(Cow::Owned(data))
    }
    fn write(&mut self, path: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        match self.tamper.write(path, offset, data) {
            Some(changed) => self.inner.get_mut().disk().write(path, offset, &changed),
            None => self.inner.get_mut().disk().write(path, offset, data),
        }
    }
    fn delete(&mut self, path: &str) -> Result<(), DiskError> {
        self.inner.get_mut().disk().delete(path)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        self.inner.get_mut().disk().rename(from, to)
    }
    fn list(&self, dir: &str) -> Result<Vec<DirEntry>, DiskError> {
        self.inner.borrow_mut().disk().list(dir)
    }
    fn request_sync(&mut self, target: SyncTarget<'_>) -> Result<SyncTicket, DiskError> {
        let target = match target {
            SyncTarget::File(path) => match self.tamper.sync_instead(path) {
                Some(other) => SyncTarget::File(other),
                None => target,
            },
            dir => dir,
        };
        self.inner.get_mut().disk().request_sync(target)
    }
}

/// A reference node with a tamper at its boundary.
pub struct Wrapped<T: Tamper> {
    inner: Box<dyn Node<Message>>,
    tamper: T,
}

impl<T: Tamper> Wrapped<T> {
    pub fn new(inner: Box<dyn Node<Message>>, tamper: T) -> Self {
        Wrapped { inner, tamper }
    }
}

impl<T: Tamper> Node<Message> for Wrapped<T> {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Message>) {
        let mut ctx = TamperCtx {
            inner: RefCell::new(ctx),
            tamper: &mut self.tamper,
        };
        self.inner.on_start(&mut ctx);
    }
    fn handle(&mut self, ctx: &mut dyn Ctx<Message>, input: Input<Message>) {
        let Some(input) = self.tamper.incoming(ctx, input) else {
            return;
        };
        let mut ctx = TamperCtx {
            inner: RefCell::new(ctx),
            tamper: &mut self.tamper,
        };
        self.inner.handle(&mut ctx, input);
        while let Some(extra) = ctx.tamper.follow_up() {
            self.inner.handle(&mut ctx, extra);
        }
    }
    fn shutdown(&mut self, ctx: &mut dyn Ctx<Message>) {
        let mut ctx = TamperCtx {
            inner: RefCell::new(ctx),
            tamper: &mut self.tamper,
        };
        self.inner.shutdown(&mut ctx);
    }
    fn is_stopped(&self) -> bool {
        self.inner.is_stopped()
    }
}

/// Reference nodes, with every broker whose config `pick` accepts (returning its
/// tamper) wrapped.
pub fn tamper_brokers<T: Tamper>(pick: fn(&BrokerConfig) -> Option<T>) -> Nodes {
    Nodes::with_broker(Rc::new(move |config, disk: &mut dyn Disk| {
        let tamper = pick(&config);
        let inner: Box<dyn Node<Message>> = Box::new(Broker::boot(config, disk));
        match tamper {
            Some(t) => Box::new(Wrapped::new(inner, t)),
            None => inner,
        }
    }))
}

/// Reference nodes, the brokers booted from a config `change` edits: a broker whose
/// behaviour does not match what the scenario declares (and the history's Meta says).
pub fn broker_config(change: fn(&mut BrokerConfig)) -> Nodes {
    Nodes::with_broker(Rc::new(move |mut config, disk: &mut dyn Disk| {
        change(&mut config);
        Box::new(Broker::boot(config, disk))
    }))
}

/// Reference nodes, every name server wrapped in the tamper `make` builds.
pub fn tamper_name_servers<T: Tamper>(make: fn() -> T) -> Nodes {
    Nodes {
        name_server: Rc::new(move |config| {
            Box::new(Wrapped::new(Box::new(NameServer::new(config)), make()))
        }),
        ..Nodes::default()
    }
}

/// Reference nodes, every consumer whose config `pick` accepts wrapped (the consumer
/// host inside still records what the application saw).
pub fn tamper_consumers<T: Tamper>(pick: fn(&ConsumerConfig) -> Option<T>) -> Nodes {
    Nodes {
        consumer: Rc::new(move |config, plan, recorder| {
            let tamper = pick(&config);
            let inner: Box<dyn Node<Message>> = Box::new(ConsumerHost::new(config, plan, recorder));
            match tamper {
                Some(t) => Box::new(Wrapped::new(inner, t)),
                None => inner,
            }
        }),
        ..Nodes::default()
    }
}

/// Reference nodes, every producer wrapped in the tamper `make` builds (the producer
/// host inside still records what the application sent and was told).
pub fn tamper_producers<T: Tamper>(make: fn() -> T) -> Nodes {
    Nodes {
        producer: Rc::new(move |config, plan, recorder| {
            Box::new(Wrapped::new(
                Box::new(ProducerHost::new(config, plan, recorder)),
                make(),
            ))
        }),
        ..Nodes::default()
    }
}

/// Reference nodes, the consumers built from a config `change` edits.
pub fn consumer_config(change: fn(&mut ConsumerConfig)) -> Nodes {
    Nodes {
        consumer: Rc::new(move |mut config, plan, recorder| {
            change(&mut config);
            Box::new(ConsumerHost::new(config, plan, recorder))
        }),
        ..Nodes::default()
    }
}

/// The FOUND pull response in `msg`, if it carries records.
pub fn found_pull(msg: &mut Message) -> Option<&mut PullResponse> {
    match msg {
        Message::Response {
            response: Response::Pull(p),
            ..
        } if !p.records.is_empty() => Some(p),
        _ => None,
    }
}

/// The records of a pull response's concatenated bytes, as (start, length) pairs.
pub fn record_spans(records: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut at = 0;
    while at + 4 <= records.len() {
        let total = i32::from_be_bytes(records[at..at + 4].try_into().expect("4 bytes"));
        let Ok(total) = usize::try_from(total) else {
            break;
        };
        if total == 0 || at + total > records.len() {
            break;
        }
        spans.push((at, total));
        at += total;
    }
    spans
}

/// Parses one record (no CRC check: a mutant looks, it does not judge).
pub fn view(record: &[u8]) -> Option<RecordView<'_>> {
    match parse(record, CrcCheck::Skip) {
        Ok(Slot::Record(v)) => Some(v),
        _ => None,
    }
}

/// Where `part` (a slice of `whole`) starts in `whole`.
pub fn position_in(whole: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

/// The fields of a served record a pull mutant may rewrite.
pub struct Served {
    /// The encoded properties (`name\u{1}value\u{2}`…).
    pub properties: String,
    pub born_host: Host,
    pub reconsume_times: i32,
}

/// Re-encodes the records of a FOUND pull answer whose queue offset `pick` accepts,
/// after `rewrite` changed them (with a fresh length and CRC, as a broker that built
/// them this way would); other records pass unchanged.
pub fn rewrite_served(msg: &mut Message, pick: fn(i64) -> bool, rewrite: fn(&mut Served)) {
    reencode_served(msg, &|v| pick(v.queue_offset), rewrite, false);
}

/// [`rewrite_served`] for the records `pick` accepts by any field (their topic, say).
pub fn rewrite_served_records(
    msg: &mut Message,
    pick: fn(&RecordView) -> bool,
    rewrite: fn(&mut Served),
) {
    reencode_served(msg, &pick, rewrite, false);
}

/// Serves, before each record of a FOUND pull answer whose queue offset `pick`
/// accepts, a forged copy of it that `forge` changed (same position, fresh CRC).
pub fn forge_served(msg: &mut Message, pick: fn(i64) -> bool, forge: fn(&mut Served)) {
    reencode_served(msg, &|v| pick(v.queue_offset), forge, true);
}

fn reencode_served(
    msg: &mut Message,
    pick: &dyn Fn(&RecordView) -> bool,
    rewrite: fn(&mut Served),
    keep_original: bool,
) {
    let Some(p) = found_pull(msg) else {
        return;
    };
    let mut out = Vec::with_capacity(p.records.len() + 64);
    let mut at = 0;
    while at < p.records.len() {
        let Ok(Slot::Record(v)) = parse(&p.records[at..], CrcCheck::Skip) else {
            out.extend_from_slice(&p.records[at..]);
            break;
        };
        at += v.total_size;
        if !pick(&v) {
            out.extend_from_slice(v.bytes);
            continue;
        }
        let mut served = Served {
            properties: v.user_properties().to_string(),
            born_host: v.born_host,
            reconsume_times: v.reconsume_times,
        };
        rewrite(&mut served);
        NewRecord {
            topic: v.topic,
            queue_id: v.queue_id,
            flag: v.flag,
            sys_flag: v.sys_flag,
            born_timestamp_ms: v.born_timestamp_ms,
            born_host: served.born_host,
            store_host: v.store_host,
            reconsume_times: served.reconsume_times,
            prepared_transaction_offset: v.prepared_transaction_offset,
            body: v.body,
            properties: &served.properties,
        }
        .encode(
            v.queue_offset,
            v.physical_offset,
            v.store_timestamp_ms,
            &mut out,
        );
        if keep_original {
            out.extend_from_slice(v.bytes);
        }
    }
    p.records = out;
}
