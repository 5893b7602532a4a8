//! `consumerProgress -g group [-t topic]` (`ConsumerProgressSubCommand`): the group's
//! progress on every queue, asked of the master of every broker group of every
//! cluster, with RocketMQ's columns and totals.

use std::io::Write;

use rmq_model::protocol::{ConsumeStats, Request, Response};

use super::cluster::masters_of;
use super::command_line::Invocation;
use super::remoting_client::{call, cluster_info};
use super::time_format::human_seconds;
use super::AdminError;

pub fn consumer_progress(inv: &Invocation, out: &mut dyn Write) -> Result<(), AdminError> {
    let group = inv.value('g').unwrap_or_default().to_string();
    let topic = inv.value('t').map(str::to_string);
    let info = cluster_info(&inv.namesrv_addrs()?)?;
    let mut stats = ConsumeStats::default();
    for addr in masters_of(&info, None) {
        let request = Request::GetConsumeStats {
            consumer_group: group.clone(),
            topic: topic.clone(),
        };
        match call(&addr, &request)? {
            Response::ConsumeStats(s) => stats.offset_table.extend(s.offset_table),
            other => return Err(AdminError::Failed(format!("unexpected answer: {other:?}"))),
        }
    }
    if stats.offset_table.is_empty() {
        return Err(AdminError::Failed(format!(
            "Not found the consumer group consume stats, because return offset table is empty, maybe the consumer not consume any message (group {group})"
        )));
    }
    let io = |e: std::io::Error| AdminError::Failed(format!("cannot write the output: {e}"));
    writeln!(
        out,
        "{:<64}  {:<32}  {:<4}  {:<20}  {:<20}  {:<20} {:<20}#LastTime",
        "#Topic",
        "#Broker Name",
        "#QID",
        "#Broker Offset",
        "#Consumer Offset",
        "#Diff",
        "#Inflight",
    )
    .map_err(io)?;
    let mut diff_total = 0i64;
    for (mq, o) in &stats.offset_table {
        let diff = o.broker_offset as i64 - o.consumer_offset as i64;
        diff_total += diff;
        // Pulled but not committed: the model's broker does not track pull offsets.
        let inflight = 0;
        let last_time = if o.last_timestamp_ms == 0 {
            "N/A".to_string()
        } else {
            human_seconds(o.last_timestamp_ms)
        };
        writeln!(
            out,
            "{:<64}  {:<32}  {:<4}  {:<20}  {:<20}  {:<20} {:<20} {last_time}",
            mq.topic,
            mq.broker_name,
            mq.queue_id,
            o.broker_offset,
            o.consumer_offset,
            diff,
            inflight
        )
        .map_err(io)?;
    }
    writeln!(out).map_err(io)?;
    writeln!(out, "Consume TPS: {:.2}", 0.0).map_err(io)?;
    writeln!(out, "Consume Diff Total: {diff_total}").map_err(io)?;
    writeln!(out, "Consume Inflight Total: 0").map_err(io)
}
