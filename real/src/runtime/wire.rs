//! Frames ↔ the node's messages, through [`remoting`]'s mapping.
//!
//! A response on the wire does not say which request it answers, only its `opaque`;
//! its header and body are read as that request's response. So the wire remembers, per
//! peer and opaque, the code (and, for requests it received, the serialize type the
//! answer must use) of every request in flight, and forgets them when the response
//! passes, when the connection ends, or after [`REQUEST_MEMORY_MS`] (a request whose
//! answer never came: the node gave up on it long before).

use std::collections::{BTreeMap, VecDeque};

use rmq_model::node::NodeId;
use rmq_model::protocol::{response_code, Message, Request};

use crate::remoting::{self, RemotingCommand, SerializeType};

/// How long a request without an answer is remembered.
pub(super) const REQUEST_MEMORY_MS: u64 = 120_000;

/// What a frame read from a peer comes to.
pub(super) enum Inbound {
    /// Hand this to the node.
    Deliver(Message),
    /// Answer the peer at once: a request the node cannot take (unknown code, a bad
    /// header), with the error response the mapping gave.
    Answer(RemotingCommand),
    /// Hand this to the node and answer the peer at once: a request the node never
    /// answers (RocketMQ's clients send it oneway) that came two-way.
    DeliverAndAnswer(Message, RemotingCommand),
    /// Nothing to do: logged.
    Drop,
}

#[derive(Default)]
pub(super) struct Wire {
    /// Requests peers sent us that await the node's answer.
    received: BTreeMap<(NodeId, u32), (i32, SerializeType)>,
    /// Requests the node sent that await the peer's answer.
    sent: BTreeMap<(NodeId, u32), i32>,
    /// When each remembered request was remembered, oldest first, to forget the ones
    /// never answered.
    remembered: VecDeque<(u64, Side, NodeId, u32)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Received,
    Sent,
}

impl Wire {
    pub(super) fn inbound(&mut self, peer: NodeId, cmd: RemotingCommand, now_ms: u64) -> Inbound {
        let opaque = cmd.opaque;
        if cmd.is_response() {
            let Some(code) = self.sent.remove(&(peer, opaque)) else {
                tracing::debug!(%peer, opaque, "response to no request in flight: dropped");
                return Inbound::Drop;
            };
            return match remoting::response_from_wire(code, &cmd) {
                Ok(response) => Inbound::Deliver(Message::Response { opaque, response }),
                Err(e) => {
                    tracing::warn!(%peer, opaque, code, error = %e, "unreadable response: dropped");
                    Inbound::Drop
                }
            };
        }
        match remoting::request_from_wire(&cmd) {
            Ok(request) => {
                if !cmd.is_oneway() && request.is_oneway() {
                    // The C++ client sends UPDATE_CONSUMER_OFFSET two-way; RocketMQ's
                    // broker answers it SUCCESS, the model answers nothing.
                    let answer = RemotingCommand::response(
                        response_code::SUCCESS,
                        opaque,
                        None,
                        cmd.serialize_type,
                    );
                    return Inbound::DeliverAndAnswer(Message::Request { opaque, request }, answer);
                }
                if !cmd.is_oneway() {
                    self.remember(now_ms, Side::Received, peer, opaque);
                    self.received
                        .insert((peer, opaque), (cmd.code, cmd.serialize_type));
                }
                Inbound::Deliver(Message::Request { opaque, request })
            }
            Err(_) if cmd.is_oneway() => {
                tracing::debug!(%peer, code = cmd.code, "oneway request not taken: dropped");
                Inbound::Drop
            }
            Err(answer) => Inbound::Answer(answer),
        }
    }

    /// The frame to send for `msg`, if it goes on the wire at all.
    pub(super) fn outbound(
        &mut self,
        peer: NodeId,
        msg: &Message,
        now_ms: u64,
    ) -> Option<RemotingCommand> {
        match msg {
            Message::Request {
                request: Request::HaReport { .. } | Request::HaTransfer { .. },
                ..
            } => {
                // The HA port carries these (`Connections::send_ha`), never remoting.
                tracing::error!("an HA message reached the remoting wire: dropped");
                None
            }
            Message::Request { opaque, request } => {
                let oneway = request.is_oneway();
                if !oneway {
                    self.remember(now_ms, Side::Sent, peer, *opaque);
                    self.sent.insert((peer, *opaque), request.code());
                }
                Some(remoting::request_to_wire(*opaque, request, oneway))
            }
            Message::Response { opaque, response } => {
                let Some((code, serialize_type)) = self.received.remove(&(peer, *opaque)) else {
                    tracing::debug!(%peer, opaque, "answer to no request in flight: dropped");
                    return None;
                };
                Some(remoting::response_to_wire(
                    code,
                    *opaque,
                    response,
                    serialize_type,
                ))
            }
        }
    }

    /// The peer's connection ended: nothing in flight on it will be answered.
    pub(super) fn forget_peer(&mut self, peer: NodeId) {
        self.received.retain(|(p, _), _| *p != peer);
        self.sent.retain(|(p, _), _| *p != peer);
    }

    fn remember(&mut self, now_ms: u64, side: Side, peer: NodeId, opaque: u32) {
        self.remembered.push_back((now_ms, side, peer, opaque));
        while let Some(&(at_ms, side, peer, opaque)) = self.remembered.front() {
            if now_ms.saturating_sub(at_ms) < REQUEST_MEMORY_MS {
                break;
            }
            self.remembered.pop_front();
            match side {
                Side::Received => self.received.remove(&(peer, opaque)),
                Side::Sent => self
                    .sent
                    .remove(&(peer, opaque))
                    .map(|c| (c, SerializeType::Json)),
            };
        }
    }
}
