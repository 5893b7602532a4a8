//! The client's table of requests awaiting an answer, as RocketMQ's remoting keeps its
//! `responseTable` of `ResponseFuture`s by opaque: each request gets an opaque and a
//! timeout timer, and an answer, the timeout or a broken connection decides it.

use crate::hasher::FastMap;
use crate::node::{Ctx, Input, NodeId, TimerId};
use crate::protocol::{Message, Request, Response};

use super::{timer_kind, CLIENT_OPAQUE_BASE, MAX_PENDING_REQUESTS};

/// How a tracked request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RpcOutcome {
    Response(Response),
    /// No answer within the timeout: the request may or may not have been executed.
    TimedOut,
    /// The connection to the peer broke while the request was pending: likewise.
    Broken,
}

impl RpcOutcome {
    /// A short reason for logs and failure outcomes.
    pub(crate) fn describe(&self) -> String {
        match self {
            RpcOutcome::Response(Response::Error { code, remark }) => {
                format!("code {code}: {remark}")
            }
            RpcOutcome::Response(other) => format!("unexpected answer {other:?}"),
            RpcOutcome::TimedOut => "timed out".to_string(),
            RpcOutcome::Broken => "connection broken".to_string(),
        }
    }
}

/// Why a request could not even be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SendRefused {
    /// No node listens at the address.
    Unresolvable(String),
    TooManyPending,
}

impl std::fmt::Display for SendRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendRefused::Unresolvable(addr) => write!(f, "no node at {addr}"),
            SendRefused::TooManyPending => {
                write!(f, "more than {MAX_PENDING_REQUESTS} requests pending")
            }
        }
    }
}

struct Pending<T> {
    peer: NodeId,
    timer: TimerId,
    tag: T,
}

/// Request tracking: numbers requests with opaques, arms one timeout timer per request
/// and turns responses, timeouts and broken connections into [`RpcOutcome`]s for the
/// caller's tag `T`. A response to an unknown opaque (already timed out, or oneway) is
/// dropped here.
pub(crate) struct Rpc<T> {
    next_opaque: u32,
    /// Hashed: every request, answer and timeout looks one up; the one walk (a broken
    /// connection) sorts what it finds.
    pending: FastMap<u32, Pending<T>>,
    timeouts: FastMap<TimerId, u32>,
}

impl<T> Rpc<T> {
    pub(crate) fn new() -> Rpc<T> {
        Rpc {
            next_opaque: CLIENT_OPAQUE_BASE,
            pending: FastMap::default(),
            timeouts: FastMap::default(),
        }
    }

    /// The next opaque in `[CLIENT_OPAQUE_BASE, u32::MAX]`, skipping pending ones (the
    /// pending table is far smaller than the range, so this terminates quickly).
    fn take_opaque(&mut self) -> u32 {
        loop {
            let opaque = self.next_opaque;
            self.next_opaque = if opaque == u32::MAX {
                CLIENT_OPAQUE_BASE
            } else {
                opaque + 1
            };
            if !self.pending.contains_key(&opaque) {
                return opaque;
            }
        }
    }

    /// Sends `request` to the node at `addr` and tracks its answer for `timeout_ms`.
    pub(crate) fn call(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        addr: &str,
        request: Request,
        timeout_ms: u64,
        tag: T,
    ) -> Result<u32, SendRefused> {
        self.call_keeping_tag(ctx, addr, request, timeout_ms, tag)
            .map_err(|(_, refused)| refused)
    }

    /// [`call`](Self::call), handing the tag back when the request could not be sent.
    pub(crate) fn call_keeping_tag(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        addr: &str,
        request: Request,
        timeout_ms: u64,
        tag: T,
    ) -> Result<u32, (T, SendRefused)> {
        let Some(peer) = ctx.resolve(addr) else {
            return Err((tag, SendRefused::Unresolvable(addr.to_string())));
        };
        if self.pending.len() >= MAX_PENDING_REQUESTS {
            return Err((tag, SendRefused::TooManyPending));
        }
        let opaque = self.take_opaque();
        let timer = ctx.set_timer(timeout_ms, timer_kind::RPC_TIMEOUT);
        self.pending.insert(opaque, Pending { peer, timer, tag });
        self.timeouts.insert(timer, opaque);
        ctx.send(peer, Message::Request { opaque, request });
        Ok(opaque)
    }

    /// The node a pending request went to (tests read where a send was routed).
    #[cfg(test)]
    pub(crate) fn peer_of(&self, opaque: u32) -> Option<NodeId> {
        self.pending.get(&opaque).map(|p| p.peer)
    }

    /// Sends `request` without waiting for an answer: oneway requests
    /// (UPDATE_CONSUMER_OFFSET) and requests whose answer changes nothing (heartbeats).
    pub(crate) fn send_untracked(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        addr: &str,
        request: Request,
    ) -> Result<(), SendRefused> {
        let peer = ctx
            .resolve(addr)
            .ok_or_else(|| SendRefused::Unresolvable(addr.to_string()))?;
        let opaque = self.take_opaque();
        ctx.send(peer, Message::Request { opaque, request });
        Ok(())
    }

    /// The outcomes `input` decides, oldest request first; empty if it is not ours.
    /// Takes the input by value so that an answer moves into its outcome uncopied.
    pub(crate) fn on_input(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        input: Input<Message>,
    ) -> Outcomes<T> {
        match input {
            Input::Packet {
                msg: Message::Response { opaque, response },
                ..
            } if opaque >= CLIENT_OPAQUE_BASE => match self.pending.remove(&opaque) {
                Some(p) => {
                    self.timeouts.remove(&p.timer);
                    ctx.cancel_timer(p.timer);
                    Outcomes::one(p.tag, RpcOutcome::Response(response))
                }
                None => Outcomes::none(),
            },
            Input::Timer { id, kind } if kind == timer_kind::RPC_TIMEOUT => {
                match self.timeouts.remove(&id) {
                    Some(opaque) => {
                        let p = self
                            .pending
                            .remove(&opaque)
                            .expect("timer of a pending call");
                        Outcomes::one(p.tag, RpcOutcome::TimedOut)
                    }
                    None => Outcomes::none(),
                }
            }
            Input::ConnectionBroken { peer } => {
                let mut lost: Vec<u32> = self
                    .pending
                    .iter()
                    .filter(|(_, p)| p.peer == peer)
                    .map(|(&opaque, _)| opaque)
                    .collect();
                // In opaque order, whatever the table's.
                lost.sort_unstable();
                let many = lost
                    .into_iter()
                    .map(|opaque| {
                        let p = self.pending.remove(&opaque).expect("listed above");
                        self.timeouts.remove(&p.timer);
                        ctx.cancel_timer(p.timer);
                        (p.tag, RpcOutcome::Broken)
                    })
                    .collect();
                Outcomes { one: None, many }
            }
            _ => Outcomes::none(),
        }
    }
}

/// The outcomes one input decides, in order: nearly always none or one (an answer, a
/// timeout), which need no vector; a broken connection may decide many.
#[derive(Debug)]
pub(crate) struct Outcomes<T> {
    one: Option<(T, RpcOutcome)>,
    /// After `one`.
    many: Vec<(T, RpcOutcome)>,
}

impl<T> Outcomes<T> {
    fn none() -> Outcomes<T> {
        Outcomes {
            one: None,
            many: Vec::new(),
        }
    }

    fn one(tag: T, outcome: RpcOutcome) -> Outcomes<T> {
        Outcomes {
            one: Some((tag, outcome)),
            many: Vec::new(),
        }
    }
}

impl<T> IntoIterator for Outcomes<T> {
    type Item = (T, RpcOutcome);
    type IntoIter = std::iter::Chain<
        std::option::IntoIter<(T, RpcOutcome)>,
        std::vec::IntoIter<(T, RpcOutcome)>,
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.one.into_iter().chain(self.many)
    }
}
