//! `resetOffsetByTime -g group -t topic -s timestamp [-f force]`
//! (`ResetOffsetByTimeCommand`): every master serving the topic moves the group to the
//! first message stored at or after the timestamp (`now`, milliseconds, or
//! `yyyy-MM-dd#HH:mm:ss:SSS` in UTC) and tells the group's online consumers, which
//! continue from there; prints each queue's new offset.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use rmq_model::protocol::{Request, ResetOffset, Response};

use super::command_line::Invocation;
use super::remoting_client::{call, topic_route};
use super::time_format::parse_millis;
use super::AdminError;

fn timestamp_ms(text: &str) -> Result<i64, AdminError> {
    if text == "now" {
        return Ok(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64));
    }
    text.parse()
        .ok()
        .or_else(|| parse_millis(text))
        .ok_or_else(|| {
            AdminError::Usage(format!(
                "timestamp {text:?} is none of now, milliseconds, yyyy-MM-dd#HH:mm:ss:SSS"
            ))
        })
}

pub fn reset_offset_by_time(inv: &Invocation, out: &mut dyn Write) -> Result<(), AdminError> {
    let group = inv.value('g').unwrap_or_default();
    let topic = inv.value('t').unwrap_or_default();
    let text = inv.value('s').unwrap_or_default();
    let timestamp_ms = timestamp_ms(text)?;
    // Deprecated in RocketMQ and true unless told otherwise.
    let force = inv
        .value('f')
        .is_none_or(|f| f.eq_ignore_ascii_case("true"));
    let route = topic_route(&inv.namesrv_addrs()?, topic)?;
    let mut table = BTreeMap::new();
    for broker in &route.broker_datas {
        let Some(addr) = broker.master_addr() else {
            continue;
        };
        let request = Request::InvokeBrokerToResetOffset(ResetOffset {
            topic: topic.to_string(),
            consumer_group: group.to_string(),
            timestamp_ms,
            force,
            offset_table: BTreeMap::new(),
        });
        match call(addr, &request)? {
            Response::ResetOffset(offsets) => table.extend(offsets),
            other => return Err(AdminError::Failed(format!("unexpected answer: {other:?}"))),
        }
    }
    let io = |e: std::io::Error| AdminError::Failed(format!("cannot write the output: {e}"));
    writeln!(
        out,
        "start reset consumer offset by specified, group[{group}], topic[{topic}], force[{force}], timestamp(string)[{text}], timestamp(long)[{timestamp_ms}]"
    )
    .map_err(io)?;
    writeln!(
        out,
        "{:<40}  {:<40}  {:<40}",
        "#brokerName", "#queueId", "#offset"
    )
    .map_err(io)?;
    for (mq, offset) in &table {
        writeln!(
            out,
            "{:<40}  {:<40}  {:<40}",
            mq.broker_name, mq.queue_id, offset
        )
        .map_err(io)?;
    }
    Ok(())
}
