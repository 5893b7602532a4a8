//! Planted bugs in the broker's SEND_MESSAGE handling (`broker/send.rs`): what a
//! producer is told about where its message went, or whether it went anywhere.

use rmq_model::broker::BrokerRole;
use rmq_model::node::{Ctx, Input, NodeId};
use rmq_model::protocol::{response_code, Message, Request, Response, SendResponse};

use super::tamper::{tamper_brokers, Rewrite, Tamper};
use super::{Component, Mutant};
use crate::check::Rule;

pub(super) fn mutants() -> Vec<Mutant> {
    let m = |name, description, seeds, expected, nodes| Mutant {
        name,
        component: Component::BrokerSend,
        description,
        scenario: "case1_kill",
        variant: "",
        seeds,
        expected,
        nodes,
    };
    vec![
        m(
            "send-offset-shifted",
            "answers SEND_OK with a queue offset one past the one the message was stored at",
            4,
            Rule::Offsets,
            || tamper_brokers(|_| Some(Rewrite(shift_offset))),
        ),
        m(
            "send-queue-id-shifted",
            "answers SEND_OK naming the next queue of the topic instead of the one it stored into",
            4,
            Rule::Offsets,
            || tamper_brokers(|_| Some(Rewrite(shift_queue))),
        ),
        m(
            "send-body-mangled",
            "stores the body with its last byte changed (a reused buffer), its CRC computed over the damage",
            4,
            Rule::Corrupt,
            || tamper_brokers(|_| Some(MangleBody)),
        ),
        m(
            "send-refused-but-stored",
            "stores every message but answers MESSAGE_ILLEGAL (never retried): definitely refused sends reach consumers",
            4,
            Rule::Refused,
            || tamper_brokers(|_| Some(Rewrite(refuse_stored))),
        ),
        m(
            "send-status-downgraded",
            "answers SLAVE_NOT_AVAILABLE instead of SEND_OK with no slave configured and no fault",
            4,
            Rule::Acks,
            || tamper_brokers(|_| Some(Rewrite(downgrade_status))),
        ),
        m(
            "send-ok-not-stored",
            "answers one send in ten with SEND_OK without storing the message",
            4,
            Rule::Lost,
            || {
                tamper_brokers(|c| {
                    (c.role != BrokerRole::Slave).then_some(OkNotStored { sends: 0 })
                })
            },
        ),
    ]
}

fn map_send(msg: Message, f: fn(&mut SendResponse)) -> Option<Message> {
    match msg {
        Message::Response {
            opaque,
            response: Response::Send(mut s),
        } => {
            f(&mut s);
            Some(Message::Response {
                opaque,
                response: Response::Send(s),
            })
        }
        m => Some(m),
    }
}

fn refuse_stored(_: NodeId, msg: Message) -> Option<Message> {
    match msg {
        Message::Response {
            opaque,
            response: Response::Send(_),
        } => Some(Message::Response {
            opaque,
            response: Response::Error {
                code: response_code::MESSAGE_ILLEGAL,
                remark: "planted refusal".into(),
            },
        }),
        m => Some(m),
    }
}

fn downgrade_status(_: NodeId, msg: Message) -> Option<Message> {
    map_send(msg, |s| {
        if s.code == response_code::SUCCESS {
            s.code = response_code::SLAVE_NOT_AVAILABLE;
        }
    })
}

fn shift_offset(_: NodeId, msg: Message) -> Option<Message> {
    map_send(msg, |s| s.queue_offset += 1)
}

fn shift_queue(_: NodeId, msg: Message) -> Option<Message> {
    // The scenarios' topics have four queues.
    map_send(msg, |s| s.queue_id = (s.queue_id + 1) % 4)
}

struct OkNotStored {
    sends: u64,
}

impl Tamper for OkNotStored {
    fn incoming(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        input: Input<Message>,
    ) -> Option<Input<Message>> {
        let Input::Packet {
            from,
            msg:
                Message::Request {
                    opaque,
                    request: Request::SendMessage(send),
                },
        } = &input
        else {
            return Some(input);
        };
        self.sends += 1;
        if !self.sends.is_multiple_of(10) {
            return Some(input);
        }
        // An offset far past anything stored, so that it names no other message.
        let response = Response::Send(SendResponse {
            code: response_code::SUCCESS,
            msg_id: format!("FAKE{:016X}", self.sends),
            queue_id: send.queue_id.max(0),
            queue_offset: (1 << 40) + self.sends,
        });
        ctx.send(
            *from,
            Message::Response {
                opaque: *opaque,
                response,
            },
        );
        None
    }
}

struct MangleBody;

impl Tamper for MangleBody {
    fn incoming(
        &mut self,
        _: &mut dyn Ctx<Message>,
        input: Input<Message>,
    ) -> Option<Input<Message>> {
        Some(match input {
            Input::Packet {
                from,
                msg:
                    Message::Request {
                        opaque,
                        request: Request::SendMessage(mut send),
                    },
            } => {
                if let Some(last) = send.body.last_mut() {
                    *last ^= 0x01;
                }
                Input::Packet {
                    from,
                    msg: Message::Request {
                        opaque,
                        request: Request::SendMessage(send),
                    },
                }
            }
            input => input,
        })
    }
}
