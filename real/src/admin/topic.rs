//! Topic commands (`command/topic/*SubCommand`): updateTopic, topicList, topicRoute,
//! topicStatus.

use std::collections::BTreeMap;
use std::io::Write;

use rmq_model::protocol::{perm, Request, Response, TopicRouteData, TopicStatsTable};
use rmq_model::store::config_tables::TopicConfig;
use serde::Serialize;

use super::cluster::masters_of;
use super::command_line::Invocation;
use super::remoting_client::{self, call, call_namesrv, cluster_info};
use super::time_format::human_millis;
use super::AdminError;

/// The inherit bit (`PermName.PERM_INHERIT`).
const PERM_INHERIT: u32 = 1;

fn io(e: std::io::Error) -> AdminError {
    AdminError::Failed(format!("cannot write the output: {e}"))
}

/// `PermName.perm2String`: `RW-`, `R--`, …
fn perm_string(p: u32) -> String {
    let bit = |mask: u32, c: char| if p & mask != 0 { c } else { '-' };
    [
        bit(perm::READ, 'R'),
        bit(perm::WRITE, 'W'),
        bit(PERM_INHERIT, 'X'),
    ]
    .iter()
    .collect()
}

/// `TopicConfig.toString` (no attributes: the model keeps none).
fn topic_config_line(t: &TopicConfig) -> String {
    format!(
        "TopicConfig [topicName={}, readQueueNums={}, writeQueueNums={}, perm={}, topicFilterType={}, topicSysFlag={}, order={}, attributes={{}}]",
        t.topic_name,
        t.read_queue_nums,
        t.write_queue_nums,
        perm_string(t.perm),
        t.topic_filter_type,
        t.topic_sys_flag,
        t.order
    )
}

/// `updateTopic -b addr | -c cluster -t topic [-r -w -p -o]`: 8 read and 8 write
/// queues and perm 6 unless told. The order flag is stored in the topic config; the
/// name server's order configuration (a KV config) is not kept by the model.
pub fn update_topic(inv: &Invocation, out: &mut dyn Write) -> Result<(), AdminError> {
    let config = TopicConfig {
        topic_name: inv.value('t').unwrap_or_default().to_string(),
        read_queue_nums: inv.num('r', 8)?,
        write_queue_nums: inv.num('w', 8)?,
        perm: inv.num('p', perm::READ | perm::WRITE)?,
        order: inv.boolean('o'),
        ..TopicConfig::default()
    };
    let request = Request::UpdateAndCreateTopic(config.clone());
    if let Some(addr) = inv.value('b') {
        call(addr, &request)?;
        writeln!(out, "create topic to {addr} success.").map_err(io)?;
    } else {
        let cluster = inv.value('c').unwrap_or_default();
        let info = cluster_info(&inv.namesrv_addrs()?)?;
        let masters = masters_of(&info, Some(cluster));
        if masters.is_empty() {
            return Err(AdminError::Failed(format!(
                "cluster {cluster:?} has no master: make sure the specified clusterName exists or the name server connected to is correct"
            )));
        }
        for addr in masters {
            call(&addr, &request)?;
            writeln!(out, "create topic to {addr} success.").map_err(io)?;
        }
    }
    writeln!(out, "{}", topic_config_line(&config)).map_err(io)
}

/// `topicList`: every topic the name server knows, one a line.
pub fn topic_list(inv: &Invocation, out: &mut dyn Write) -> Result<(), AdminError> {
    let topics = match call_namesrv(
        &inv.namesrv_addrs()?,
        &Request::GetAllTopicListFromNameserver,
    )? {
        Response::TopicList(topics) => topics,
        other => return Err(AdminError::Failed(format!("unexpected answer: {other:?}"))),
    };
    for topic in topics {
        writeln!(out, "{topic}").map_err(io)?;
    }
    Ok(())
}

/// Drops null members, as fastjson leaves them out.
fn without_nulls(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => map
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k, without_nulls(v)))
            .collect(),
        serde_json::Value::Array(items) => items.into_iter().map(without_nulls).collect(),
        other => other,
    }
}

/// `TopicRouteData.toJson(true)`: keys in name order, nulls left out, tab-indented.
fn route_json(route: &TopicRouteData) -> String {
    let value = without_nulls(serde_json::to_value(route).expect("a route serializes"));
    let mut text = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut text, formatter);
    value.serialize(&mut ser).expect("a JSON value serializes");
    String::from_utf8(text).expect("JSON is UTF-8")
}

const ROUTE_LIST_WIDTHS: [usize; 6] = [45, 32, 50, 10, 11, 5];

fn route_list_line(fields: [String; 6]) -> String {
    let cells: Vec<String> = fields
        .iter()
        .zip(ROUTE_LIST_WIDTHS)
        .map(|(f, w)| format!("{f:<w$}"))
        .collect();
    cells.join(" ")
}

/// `topicRoute -t topic [-l]`: the route as JSON, or as a table with totals.
pub fn topic_route(inv: &Invocation, out: &mut dyn Write) -> Result<(), AdminError> {
    let topic = inv.value('t').unwrap_or_default();
    let route = remoting_client::topic_route(&inv.namesrv_addrs()?, topic)?;
    if !inv.has('l') {
        return writeln!(out, "{}", route_json(&route)).map_err(io);
    }
    let by_broker: BTreeMap<&str, _> = route
        .queue_datas
        .iter()
        .map(|q| (q.broker_name.as_str(), q))
        .collect();
    let mut brokers: Vec<_> = route.broker_datas.iter().collect();
    brokers.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
    let header = [
        "#ClusterName",
        "#BrokerName",
        "#BrokerAddrs",
        "#ReadQueue",
        "#WriteQueue",
        "#Perm",
    ];
    writeln!(out, "{}", route_list_line(header.map(str::to_string))).map_err(io)?;
    let (mut reads, mut writes) = (0, 0);
    for b in brokers {
        let Some(q) = by_broker.get(b.broker_name.as_str()) else {
            continue;
        };
        reads += q.read_queue_nums;
        writes += q.write_queue_nums;
        // Java's Map.toString: {0=addr, 1=addr}.
        let addrs: Vec<String> = b
            .broker_addrs
            .iter()
            .map(|(id, a)| format!("{id}={a}"))
            .collect();
        let line = route_list_line([
            b.cluster.clone(),
            b.broker_name.clone(),
            format!("{{{}}}", addrs.join(", ")),
            q.read_queue_nums.to_string(),
            q.write_queue_nums.to_string(),
            q.perm.to_string(),
        ]);
        writeln!(out, "{line}").map_err(io)?;
    }
    writeln!(out, "{}", "-".repeat(158)).map_err(io)?;
    let total = route_list_line([
        "Total:".into(),
        by_broker.len().to_string(),
        String::new(),
        reads.to_string(),
        writes.to_string(),
        String::new(),
    ]);
    writeln!(out, "{total}").map_err(io)
}

/// `topicStatus -t topic`: each queue's min and max offset and last store time, from
/// the master (else any broker) of every broker group the route names.
pub fn topic_status(inv: &Invocation, out: &mut dyn Write) -> Result<(), AdminError> {
    let topic = inv.value('t').unwrap_or_default();
    let route = remoting_client::topic_route(&inv.namesrv_addrs()?, topic)?;
    let mut table = TopicStatsTable::new();
    for broker in &route.broker_datas {
        // `BrokerData.selectBrokerAddr`: the master when there is one.
        let Some(addr) = broker
            .master_addr()
            .or_else(|| broker.broker_addrs.values().next().map(String::as_str))
        else {
            continue;
        };
        let request = Request::GetTopicStatsInfo {
            topic: topic.to_string(),
        };
        match call(addr, &request)? {
            Response::TopicStats(stats) => table.extend(stats),
            other => return Err(AdminError::Failed(format!("unexpected answer: {other:?}"))),
        }
    }
    if table.is_empty() {
        return Err(AdminError::Failed(format!(
            "Not found the topic stats info of {topic}"
        )));
    }
    writeln!(
        out,
        "{:<32}  {:<4}  {:<20}  {:<20}    #Last Updated",
        "#Broker Name", "#QID", "#Min Offset", "#Max Offset"
    )
    .map_err(io)?;
    for (mq, offset) in &table {
        let updated = if offset.last_update_timestamp_ms > 0 {
            human_millis(offset.last_update_timestamp_ms)
        } else {
            String::new()
        };
        writeln!(
            out,
            "{:<32}  {:<4}  {:<20}  {:<20}    {updated}",
            mq.broker_name, mq.queue_id, offset.min_offset, offset.max_offset
        )
        .map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_config_prints_as_java_prints_it() {
        let t = TopicConfig {
            topic_name: "T".into(),
            read_queue_nums: 3,
            write_queue_nums: 5,
            perm: 6,
            ..TopicConfig::default()
        };
        assert_eq!(
            topic_config_line(&t),
            "TopicConfig [topicName=T, readQueueNums=3, writeQueueNums=5, perm=RW-, topicFilterType=SINGLE_TAG, topicSysFlag=0, order=false, attributes={}]"
        );
        assert_eq!(perm_string(4), "R--");
        assert_eq!(perm_string(7), "RWX");
    }
}
