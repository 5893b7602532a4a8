//! The simulated network: connection-oriented, like the TCP RocketMQ runs on.
//!
//! Between each unordered pair of nodes there is at most one connection, with an epoch.
//! A packet carries the epoch it was sent on and is dropped at delivery if the connection
//! broke meanwhile (partition, crash): that is how in-flight packets get lost, without
//! searching the event queue. While a connection lives each direction is FIFO: a packet
//! is delivered at `max(now + latency, last delivery on that link)`, so jitter delays but
//! never reorders. The next send after a break implicitly opens a new connection.
//!
//! This module only decides *when* and *whether*; the world owns the event queue and
//! tells nodes about broken connections.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rmq_model::node::NodeId;

use crate::cluster::seeds::{link_index, stream, Purpose};
use crate::hasher::FastMap;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// The least one-way latency of a packet.
    pub base_latency_ms: u64,
    /// Each packet adds a uniform draw from `0..=jitter_ms`.
    pub jitter_ms: u64,
    /// How long until a sender learns that its packet could not go out (a refused
    /// connect or a send on a cut link), and until both ends of a cut connection learn.
    pub break_notice_ms: u64,
}

impl Default for NetConfig {
    fn default() -> NetConfig {
        NetConfig {
            base_latency_ms: 1,
            jitter_ms: 5,
            break_notice_ms: 1,
        }
    }
}

/// When a sent packet arrives, and on which incarnation of the connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub at_ms: u64,
    pub conn_epoch: u64,
}

#[derive(Clone, Debug, Default)]
struct Conn {
    epoch: u64,
    /// A packet went out on this epoch: there is something to break and someone to tell.
    open: bool,
}

/// One direction between two nodes.
#[derive(Clone, Debug)]
struct Link {
    rng: ChaCha8Rng,
    /// FIFO: no packet on this link is delivered before this time.
    last_delivery_ms: u64,
    /// Partitioned in this direction: packets are dropped.
    blocked: bool,
    /// Clogged: packets take this much longer, none is lost.
    clog_ms: u64,
}

#[derive(Clone, Debug)]
pub struct Net {
    seed: u64,
    config: NetConfig,
    /// Keyed by (lower id, higher id). Hashed, like `links`: `break_all_of`, the one
    /// place where order shows, sorts what it finds.
    conns: FastMap<(NodeId, NodeId), Conn>,
    /// Keyed by (from, to); created on first use. Hashed: every send looks its
    /// link up, and nothing depends on the order of links (`heal_all` sets each alike).
    links: FastMap<(NodeId, NodeId), Link>,
}

fn pair(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    (a.min(b), a.max(b))
}

impl Net {
    pub fn new(seed: u64, config: NetConfig) -> Net {
        Net {
            seed,
            config,
            conns: FastMap::default(),
            links: FastMap::default(),
        }
    }

    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    fn link(&mut self, from: NodeId, to: NodeId) -> &mut Link {
        let seed = self.seed;
        self.links.entry((from, to)).or_insert_with(|| Link {
            rng: stream(seed, Purpose::NetLink, link_index(from.0, to.0)),
            last_delivery_ms: 0,
            blocked: false,
            clog_ms: 0,
        })
    }

    pub fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.links.get(&(from, to)).is_some_and(|l| l.blocked)
    }

    /// Puts a packet on the wire: `None` if the link is cut (the packet is lost; the
    /// caller breaks the connection and tells the sender).
    pub fn send(&mut self, now_ms: u64, from: NodeId, to: NodeId) -> Option<Delivery> {
        assert_ne!(from, to, "a node does not send to itself");
        let (base_ms, jitter_ms) = (self.config.base_latency_ms, self.config.jitter_ms);
        let link = self.link(from, to);
        if link.blocked {
            return None;
        }
        let latency_ms = base_ms + link.rng.random_range(0..=jitter_ms) + link.clog_ms;
        let at_ms = (now_ms + latency_ms).max(link.last_delivery_ms);
        link.last_delivery_ms = at_ms;
        let conn = self.conns.entry(pair(from, to)).or_default();
        conn.open = true;
        Some(Delivery {
            at_ms,
            conn_epoch: conn.epoch,
        })
    }

    /// Whether a packet sent on `conn_epoch` may still be delivered.
    pub fn is_current(&self, from: NodeId, to: NodeId, conn_epoch: u64) -> bool {
        let epoch = self.conns.get(&pair(from, to)).map_or(0, |c| c.epoch);
        epoch == conn_epoch
    }

    /// Breaks the connection between `a` and `b`: every packet in flight on it is lost.
    /// Returns whether one was open (then both ends must be told).
    pub fn break_conn(&mut self, a: NodeId, b: NodeId) -> bool {
        let conn = self.conns.entry(pair(a, b)).or_default();
        let was_open = conn.open;
        conn.epoch += 1;
        conn.open = false;
        was_open
    }

    /// Breaks every connection of `node` (it crashed); returns the peers that had one.
    pub fn break_all_of(&mut self, node: NodeId) -> Vec<NodeId> {
        let mut keys: Vec<(NodeId, NodeId)> = self
            .conns
            .keys()
            .filter(|&&(a, b)| a == node || b == node)
            .copied()
            .collect();
        // The peers come out in id order, whatever the table's.
        keys.sort_unstable();
        let mut peers = Vec::new();
        for (a, b) in keys {
            let conn = self.conns.get_mut(&(a, b)).expect("a key just listed");
            if conn.open {
                peers.push(if a == node { b } else { a });
            }
            conn.epoch += 1;
            conn.open = false;
        }
        peers
    }

    /// Cuts `a -> b` (and `b -> a` unless `one_way`) and breaks their connection; returns
    /// whether one was open.
    pub fn partition(&mut self, a: NodeId, b: NodeId, one_way: bool) -> bool {
        self.link(a, b).blocked = true;
        if !one_way {
            self.link(b, a).blocked = true;
        }
        self.break_conn(a, b)
    }

    /// Lifts partitions and clogs between `a` and `b`, both directions.
    pub fn heal(&mut self, a: NodeId, b: NodeId) {
        for key in [(a, b), (b, a)] {
            if let Some(link) = self.links.get_mut(&key) {
                link.blocked = false;
                link.clog_ms = 0;
            }
        }
    }

    pub fn heal_all(&mut self) {
        for link in self.links.values_mut() {
            link.blocked = false;
            link.clog_ms = 0;
        }
    }

    /// Packets `from -> to` take `extra_ms` longer until healed; none is lost.
    pub fn clog(&mut self, from: NodeId, to: NodeId, extra_ms: u64) {
        self.link(from, to).clog_ms = extra_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: NodeId = NodeId(0);
    const B: NodeId = NodeId(1);

    #[test]
    fn fifo_under_jitter() {
        let mut net = Net::new(
            3,
            NetConfig {
                base_latency_ms: 1,
                jitter_ms: 50,
                break_notice_ms: 1,
            },
        );
        let mut last_ms = 0;
        let mut jittered = false;
        for now_ms in 0..200 {
            let d = net.send(now_ms, A, B).unwrap();
            assert!(d.at_ms >= last_ms);
            assert!(d.at_ms > now_ms);
            jittered |= d.at_ms > now_ms + 1;
            last_ms = d.at_ms;
        }
        assert!(jittered);
    }

    #[test]
    fn partition_breaks_and_blocks_then_heals() {
        let mut net = Net::new(1, NetConfig::default());
        let d = net.send(0, A, B).unwrap();
        assert!(net.partition(A, B, true));
        assert!(!net.is_current(A, B, d.conn_epoch));
        assert_eq!(net.send(1, A, B), None);
        let back = net.send(1, B, A).expect("one-way leaves b -> a open");
        assert!(net.is_current(B, A, back.conn_epoch));
        net.heal(A, B);
        assert!(net.send(2, A, B).is_some());
    }

    #[test]
    fn break_all_of_tells_open_peers_in_id_order_and_breaks_every_connection() {
        let mut net = Net::new(1, NetConfig::default());
        let node = NodeId(5);
        let mut epochs = Vec::new();
        for peer in [9, 2, 7, 0, 3].map(NodeId) {
            epochs.push((peer, net.send(0, node, peer).unwrap().conn_epoch));
        }
        net.send(0, NodeId(2), NodeId(9)).unwrap();
        assert!(net.break_conn(node, NodeId(3)));
        assert_eq!(net.break_all_of(node), [0, 2, 7, 9].map(NodeId));
        for (peer, epoch) in epochs {
            assert!(!net.is_current(node, peer, epoch), "{peer:?}");
        }
        assert!(net.is_current(NodeId(2), NodeId(9), 0));
        assert_eq!(net.break_all_of(node), []);
    }

    #[test]
    fn clog_delays_without_loss() {
        let mut net = Net::new(1, NetConfig::default());
        net.clog(A, B, 1000);
        assert!(net.send(0, A, B).unwrap().at_ms >= 1000);
        net.heal_all();
        // FIFO holds across the unclog: the next packet cannot overtake.
        assert!(net.send(1, A, B).unwrap().at_ms >= 1000);
    }
}
