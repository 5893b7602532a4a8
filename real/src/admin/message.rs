//! Message commands (`command/message/*`): sendMessage, consumeMessage, queryMsgById.
//!
//! Sends carry the properties the model's producer builds (TAGS, KEYS, UNIQ_KEY,
//! WAIT); records are decoded by the model's record parser, as its consumer does.

use std::io::Write;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use rmq_model::client::producer::{
    message_properties, publish_queues, route_from_default_topic, select_queue, uniq_key,
    DEFAULT_TOPIC,
};
use rmq_model::client::{broker_addr, MessageQueue};
use rmq_model::message::{
    decode_offset_msg_id, offset_msg_id, properties, property, PROPERTY_KEYS, PROPERTY_TAGS,
    PROPERTY_UNIQ_KEY,
};
use rmq_model::protocol::{
    perm, pull_sys_flag, response_code, PullMessage, Request, Response, SendMessage, TopicRouteData,
};
use rmq_model::store::record::{self, CrcCheck, Host, RecordView, Slot};

use super::command_line::Invocation;
use super::remoting_client::{call, offset, topic_route, RemotingClient, CALL_TIMEOUT};
use super::time_format::human_millis;
use super::AdminError;

/// `MixAll.TOOLS_CONSUMER_GROUP`: consumeMessage's group unless `-g` names one.
const TOOLS_CONSUMER_GROUP: &str = "TOOLS_CONSUMER";
/// consumeMessage's message count unless `-c` says.
const DEFAULT_MESSAGE_COUNT: u64 = 128;
/// Messages asked for per pull (the broker's `maxTransferCountOnMessageInMemory`).
const PULL_BATCH: u64 = 32;
/// The producer's `defaultTopicQueueNums` for a topic created by its first send.
const DEFAULT_TOPIC_QUEUE_NUMS: u32 = 4;

fn io(e: std::io::Error) -> AdminError {
    AdminError::Failed(format!("cannot write the output: {e}"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn unexpected(response: Response) -> AdminError {
    AdminError::Failed(format!("unexpected answer: {response:?}"))
}

/// `SendStatus` by response code.
fn send_status(code: i32) -> &'static str {
    match code {
        response_code::FLUSH_DISK_TIMEOUT => "FLUSH_DISK_TIMEOUT",
        response_code::FLUSH_SLAVE_TIMEOUT => "FLUSH_SLAVE_TIMEOUT",
        response_code::SLAVE_NOT_AVAILABLE => "SLAVE_NOT_AVAILABLE",
        _ => "SEND_OK",
    }
}

/// The route to send `topic` on: its own, or TBW102's shaped for it when the topic
/// does not exist yet (the broker then creates it), as the producer does.
fn publish_route(namesrv: &[String], topic: &str) -> Result<TopicRouteData, AdminError> {
    match topic_route(namesrv, topic) {
        Err(AdminError::Refused {
            code: response_code::TOPIC_NOT_EXIST,
            ..
        }) => {
            let default_route = topic_route(namesrv, DEFAULT_TOPIC)?;
            Ok(route_from_default_topic(
                default_route,
                DEFAULT_TOPIC_QUEUE_NUMS,
            ))
        }
        other => other,
    }
}

/// `sendMessage -t topic -p body [-k keys] [-c tags] [-b brokerName -i queueId]`.
pub fn send_message(inv: &Invocation, out: &mut dyn Write) -> Result<(), AdminError> {
    let topic = inv.value('t').unwrap_or_default();
    let body = inv.value('p').unwrap_or_default();
    if inv.has('i') && !inv.has('b') {
        return Err(AdminError::Usage(
            "Broker name must be set if the queue is chosen!".into(),
        ));
    }
    let route = publish_route(&inv.namesrv_addrs()?, topic)?;
    let queue = match (inv.value('b'), inv.has('i')) {
        (Some(broker_name), true) => MessageQueue {
            topic: topic.to_string(),
            broker_name: broker_name.to_string(),
            queue_id: inv.num('i', -1)?,
        },
        _ => {
            let queues = publish_queues(topic, &route);
            // The producer's round-robin starts at a random queue.
            let mut start = now_ms() as u64;
            select_queue(&queues, &mut start, None)
                .cloned()
                .ok_or_else(|| {
                    AdminError::Failed(format!("no writable queue of {topic} has a master"))
                })?
        }
    };
    let addr = broker_addr(&route, &queue.broker_name, 0).ok_or_else(|| {
        AdminError::Failed(format!(
            "The broker[{}] not exist, or has no master",
            queue.broker_name
        ))
    })?;
    let mut client = RemotingClient::connect(addr, CALL_TIMEOUT)?;
    let ip = match client.local_addr().map(|a| a.ip()) {
        Some(IpAddr::V4(v4)) => v4.octets(),
        _ => [127, 0, 0, 1],
    };
    // One send per process: the pid tells this tool from others running now, and the
    // clock in ns (as the counter) from earlier runs that had the same pid. (A pid
    // XORed with the clock collides whenever two runs' pids and times differ in the
    // same bits.)
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let msg_id = uniq_key(ip, std::process::id(), now_ns);
    let born_timestamp_ms = now_ms();
    let request = Request::SendMessage(SendMessage {
        // RocketMQ's tool names its producer group by the current time.
        producer_group: born_timestamp_ms.to_string(),
        topic: topic.to_string(),
        default_topic: DEFAULT_TOPIC.to_string(),
        default_topic_queue_nums: DEFAULT_TOPIC_QUEUE_NUMS,
        queue_id: queue.queue_id,
        sys_flag: 0,
        born_timestamp_ms,
        born_host: String::new(),
        flag: 0,
        properties: message_properties(inv.value('c'), inv.value('k'), &msg_id, &[]),
        reconsume_times: 0,
        max_reconsume_times: None,
        body: body.as_bytes().to_vec(),
    });
    let sent = match client.call(&request)? {
        Response::Send(s) => s,
        other => return Err(unexpected(other)),
    };
    let line = |a: &str, b: &str, c: &str, d: &str| format!("{a:<32}  {b:<4}  {c:<20}    {d}");
    writeln!(
        out,
        "{}",
        line("#Broker Name", "#QID", "#Send Result", "#MsgId")
    )
    .map_err(io)?;
    let qid = sent.queue_id.to_string();
    writeln!(
        out,
        "{}",
        line(&queue.broker_name, &qid, send_status(sent.code), &msg_id)
    )
    .map_err(io)
}

/// `InetSocketAddress.toString` of a record's host: `/ip:port`.
fn socket_string(h: &Host) -> String {
    format!("/{}:{}", h.ip, h.port)
}

/// The record's properties as Java's `HashMap.toString` shows them: `{K=v, K2=v2}`.
fn properties_string(view: &RecordView) -> String {
    let pairs: Vec<String> = properties(view.user_properties())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

fn record_offset_msg_id(view: &RecordView) -> String {
    offset_msg_id(
        view.store_host.ip,
        view.store_host.port,
        view.physical_offset,
    )
}

/// `MessageExt.getMsgId` as a client sees it: the UNIQ_KEY, else the offset id.
fn client_msg_id(view: &RecordView) -> String {
    property(view.user_properties(), PROPERTY_UNIQ_KEY)
        .map_or_else(|| record_offset_msg_id(view), str::to_string)
}

/// One consumed message as `PrintMessageByQueueCommand.printMessage` prints it:
/// `MSGID: <id> <MessageExt.toString()> BODY: <body>`.
fn message_line(broker_name: &str, view: &RecordView) -> String {
    let body_bytes: Vec<String> = view.body.iter().map(|b| (*b as i8).to_string()).collect();
    format!(
        "MSGID: {} MessageExt [brokerName={broker_name}, queueId={}, storeSize={}, queueOffset={}, sysFlag={}, bornTimestamp={}, bornHost={}, storeTimestamp={}, storeHost={}, msgId={}, commitLogOffset={}, bodyCRC={}, reconsumeTimes={}, preparedTransactionOffset={}, toString()=Message{{topic='{}', flag={}, properties={}, body=[{}], transactionId='null'}}] BODY: {}",
        client_msg_id(view),
        view.queue_id,
        view.total_size,
        view.queue_offset,
        view.sys_flag,
        view.born_timestamp_ms,
        socket_string(&view.born_host),
        view.store_timestamp_ms,
        socket_string(&view.store_host),
        record_offset_msg_id(view),
        view.physical_offset,
        view.body_crc,
        view.reconsume_times,
        view.prepared_transaction_offset,
        view.topic,
        view.flag,
        properties_string(view),
        body_bytes.join(", "),
        String::from_utf8_lossy(view.body)
    )
}

/// The address to pull `broker_name`'s queues from: its master, else any member.
fn pull_addr<'a>(route: &'a TopicRouteData, broker_name: &str) -> Option<&'a str> {
    broker_addr(route, broker_name, 0).or_else(|| {
        route
            .broker_datas
            .iter()
            .find(|b| b.broker_name == broker_name)
            .and_then(|b| b.broker_addrs.values().next())
            .map(String::as_str)
    })
}

fn mq_string(mq: &MessageQueue) -> String {
    format!(
        "MessageQueue [topic={}, brokerName={}, queueId={}]",
        mq.topic, mq.broker_name, mq.queue_id
    )
}

/// `pullMessageByQueue`: pulls `mq` from `min` while below `max`, printing each batch.
fn print_queue(
    out: &mut dyn Write,
    addr: &str,
    group: &str,
    mq: &MessageQueue,
    min: u64,
    max: u64,
) -> Result<(), AdminError> {
    let mut at = min;
    while at <= max {
        let request = Request::PullMessage(PullMessage {
            consumer_group: group.to_string(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            queue_offset: at,
            max_msg_nums: (max - at + 1).min(PULL_BATCH) as u32,
            sys_flag: pull_sys_flag::SUBSCRIPTION,
            commit_offset: 0,
            suspend_timeout_ms: 0,
            subscription: Some("*".into()),
        });
        let pull = match call(addr, &request)? {
            Response::Pull(p) => p,
            other => return Err(unexpected(other)),
        };
        let next = pull.next_begin_offset;
        match pull.code {
            response_code::SUCCESS => {
                writeln!(out, "Consume ok").map_err(io)?;
                let mut pos = 0;
                while pos < pull.records.len() {
                    match record::parse(&pull.records[pos..], CrcCheck::Skip) {
                        Ok(Slot::Record(view)) => {
                            pos += view.total_size;
                            writeln!(out, "{}", message_line(&mq.broker_name, &view))
                                .map_err(io)?;
                        }
                        Ok(Slot::Blank) => break,
                        Err(e) => {
                            return Err(AdminError::Failed(format!(
                                "{}: undecodable record in a pull answer: {e}",
                                mq_string(mq)
                            )))
                        }
                    }
                }
            }
            response_code::PULL_RETRY_IMMEDIATELY => {
                writeln!(
                    out,
                    "{} no matched msg. status=NO_MATCHED_MSG, offset={next}",
                    mq_string(mq)
                )
                .map_err(io)?;
            }
            code => {
                let status = if code == response_code::PULL_NOT_FOUND {
                    "NO_NEW_MSG"
                } else {
                    "OFFSET_ILLEGAL"
                };
                writeln!(
                    out,
                    "{} print msg finished. status={status}, offset={next}",
                    mq_string(mq)
                )
                .map_err(io)?;
                return Ok(());
            }
        }
        if next <= at {
            // No progress: the broker would answer the same again.
            return Ok(());
        }
        at = next;
    }
    Ok(())
}

/// `consumeMessage -t topic [-b brokerName [-i queueId [-o offset]]] [-c count] [-g
/// group]`: pulls from the queues' min offsets (or `-o`), at most `-c` messages.
pub fn consume_message(inv: &Invocation, out: &mut dyn Write) -> Result<(), AdminError> {
    let topic = inv.value('t').unwrap_or_default();
    let group = inv.value('g').unwrap_or(TOOLS_CONSUMER_GROUP).to_string();
    let count: u64 = inv.num('c', DEFAULT_MESSAGE_COUNT)?;
    if count == 0 {
        return Err(AdminError::Usage(
            "Please input a positive messageNumber!".into(),
        ));
    }
    if inv.has('i') && !inv.has('b') {
        return Err(AdminError::Usage(
            "Please set the brokerName before queueId!".into(),
        ));
    }
    if inv.has('o') && !inv.has('i') {
        return Err(AdminError::Usage(
            "Please set queueId before offset!".into(),
        ));
    }
    let route = topic_route(&inv.namesrv_addrs()?, topic)?;
    let bounds = |mq: &MessageQueue| -> Result<(&str, u64, u64), AdminError> {
        let addr = pull_addr(&route, &mq.broker_name).ok_or_else(|| {
            AdminError::Failed(format!("The broker[{}] not exist", mq.broker_name))
        })?;
        let min = offset(
            addr,
            &Request::GetMinOffset {
                topic: mq.topic.clone(),
                queue_id: mq.queue_id,
            },
        )?;
        let max = offset(
            addr,
            &Request::GetMaxOffset {
                topic: mq.topic.clone(),
                queue_id: mq.queue_id,
            },
        )?;
        Ok((addr, min, max))
    };
    if let (Some(broker_name), true) = (inv.value('b'), inv.has('i')) {
        // BYQUEUE / BYOFFSET.
        let mq = MessageQueue {
            topic: topic.to_string(),
            broker_name: broker_name.to_string(),
            queue_id: inv.num('i', 0)?,
        };
        let from: u64 = inv.num('o', 0)?;
        let (addr, min, mut max) = bounds(&mq)?;
        if from > max {
            return writeln!(out, "{} no matched msg, offset={from}", mq_string(&mq)).map_err(io);
        }
        let min = min.max(from);
        if max.saturating_sub(min) > count {
            writeln!(out, "The oldler {count} message will be provided").map_err(io)?;
            max = min + count - 1;
        }
        return print_queue(out, addr, &group, &mq, min, max);
    }
    // DEFAULT: every readable queue of the topic, until the count is used up.
    let mut queues: Vec<MessageQueue> = route
        .queue_datas
        .iter()
        .filter(|q| q.perm & perm::READ != 0)
        .filter(|q| inv.value('b').is_none_or(|b| b == q.broker_name))
        .flat_map(|q| {
            (0..q.read_queue_nums).map(|queue_id| MessageQueue {
                topic: topic.to_string(),
                broker_name: q.broker_name.clone(),
                queue_id: queue_id as i32,
            })
        })
        .collect();
    queues.sort();
    let mut left = count;
    for mq in queues {
        if left == 0 {
            break;
        }
        let (addr, min, mut max) = bounds(&mq)?;
        if max.saturating_sub(min) > left {
            writeln!(
                out,
                "The older {left} message of the {} queue will be provided",
                mq.queue_id
            )
            .map_err(io)?;
            max = min + left - 1;
            left = 0;
        } else {
            left = left.saturating_sub(max.saturating_sub(min) + 1);
        }
        print_queue(out, addr, &group, &mq, min, max)?;
    }
    Ok(())
}

/// `queryMsgById -i offsetMsgId[,offsetMsgId…]`: each message's fields, its body
/// written to `<temp dir>/rocketmq/msgbodys/<msgId>` as RocketMQ writes it.
pub fn query_msg_by_id(inv: &Invocation, out: &mut dyn Write) -> Result<(), AdminError> {
    let ids = inv.value('i').unwrap_or_default();
    for id in ids.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((ip, port, commit_log_offset)) = decode_offset_msg_id(id) else {
            return Err(AdminError::Failed(format!(
                "{id:?} is not an offset message id (store host and commit-log offset as 32 or 56 hex digits); ids by UNIQ_KEY need a message index, which the model's broker does not keep"
            )));
        };
        let addr = match ip {
            IpAddr::V4(v4) => format!("{v4}:{port}"),
            IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        };
        let request = Request::ViewMessageById {
            commit_log_offset: u64::try_from(commit_log_offset).unwrap_or(u64::MAX),
        };
        let bytes = match call(&addr, &request)? {
            Response::StoredMessage(bytes) => bytes,
            other => return Err(unexpected(other)),
        };
        let view = match record::parse(&bytes, CrcCheck::Skip) {
            Ok(Slot::Record(view)) => view,
            Ok(Slot::Blank) => return Err(AdminError::Failed(format!("{id}: Message not found!"))),
            Err(e) => {
                return Err(AdminError::Failed(format!(
                    "{addr} answered a record that does not decode: {e}"
                )))
            }
        };
        let body_path = write_body(&client_msg_id(&view), view.body)?;
        let host = |h: &Host| format!("{}:{}", h.ip, h.port);
        let props = view.user_properties();
        let bracket = |name: &str| format!("[{}]", property(props, name).unwrap_or("null"));
        let fields: [(&str, String); 15] = [
            ("OffsetID:", id.to_string()),
            ("Topic:", view.topic.to_string()),
            ("Tags:", bracket(PROPERTY_TAGS)),
            ("Keys:", bracket(PROPERTY_KEYS)),
            ("Queue ID:", view.queue_id.to_string()),
            ("Queue Offset:", view.queue_offset.to_string()),
            ("CommitLog Offset:", view.physical_offset.to_string()),
            ("Reconsume Times:", view.reconsume_times.to_string()),
            ("Born Timestamp:", human_millis(view.born_timestamp_ms)),
            ("Store Timestamp:", human_millis(view.store_timestamp_ms)),
            ("Born Host:", host(&view.born_host)),
            ("Store Host:", host(&view.store_host)),
            ("System Flag:", view.sys_flag.to_string()),
            ("Properties:", properties_string(&view)),
            ("Message Body Path:", body_path),
        ];
        for (label, value) in fields {
            writeln!(out, "{label:<20} {value}").map_err(io)?;
        }
    }
    Ok(())
}

/// `createBodyFile`: the body in `<temp dir>/rocketmq/msgbodys/<msg_id>`.
fn write_body(msg_id: &str, body: &[u8]) -> Result<String, AdminError> {
    let dir = std::env::temp_dir().join("rocketmq").join("msgbodys");
    let path = dir.join(msg_id);
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, body))
        .map_err(|e| AdminError::Failed(format!("cannot write {}: {e}", path.display())))?;
    Ok(path.display().to_string())
}
