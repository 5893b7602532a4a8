//! `clusterList` (`ClusterListSubCommand`) and the cluster lookups other commands
//! share (`CommandUtil.fetchMasterAddrByClusterName`).
//!
//! The runtime columns (version, TPS, thread-pool waits, disk use) come from
//! GET_BROKER_RUNTIME_INFO, which the model's broker does not serve: they print as
//! RocketMQ prints them for a broker that does not answer it.

use std::io::Write;

use rmq_model::protocol::ClusterInfo;

use super::command_line::Invocation;
use super::remoting_client::cluster_info;
use super::AdminError;

/// The master address of every broker group of `cluster` (every cluster when None),
/// in cluster then broker name order.
pub fn masters_of(info: &ClusterInfo, cluster: Option<&str>) -> Vec<String> {
    info.cluster_addr_table
        .iter()
        .filter(|(name, _)| cluster.is_none_or(|c| c == name.as_str()))
        .flat_map(|(_, brokers)| brokers)
        .filter_map(|b| info.broker_addr_table.get(b)?.master_addr())
        .map(str::to_string)
        .collect()
}

/// `clusterList [-c cluster]`: one line per broker address.
pub fn cluster_list(inv: &Invocation, out: &mut dyn Write) -> Result<(), AdminError> {
    let info = cluster_info(&inv.namesrv_addrs()?)?;
    let io = |e: std::io::Error| AdminError::Failed(format!("cannot write the output: {e}"));
    writeln!(
        out,
        "{:<22}  {:<22}  {:<4}  {:<22} {:<16}  {:>16}  {:>30}  {:<22}  {:<11}  {:<12}  {:<8}  {:<10}",
        "#Cluster Name",
        "#Broker Name",
        "#BID",
        "#Addr",
        "#Version",
        "#InTPS(LOAD)",
        "#OutTPS(LOAD)",
        "#Timer(Progress)",
        "#PCWait(ms)",
        "#Hour",
        "#SPACE",
        "#ACTIVATED"
    )
    .map_err(io)?;
    for (cluster, brokers) in &info.cluster_addr_table {
        if inv.value('c').is_some_and(|c| c != cluster) {
            continue;
        }
        for broker_name in brokers {
            let Some(data) = info.broker_addr_table.get(broker_name) else {
                continue;
            };
            for (id, addr) in &data.broker_addrs {
                writeln!(
                    out,
                    "{cluster:<22}  {broker_name:<22}  {id:<4}  {addr:<22} {:<16}  {:>16}  {:>30}  {:<22}  {:>11}  {:<12}  {:<8}  {:>10}",
                    "",
                    format!("{:9.2}(,ms)", 0.0),
                    format!("{:9.2}(,ms|,ms)", 0.0),
                    "0-0(0.0w, 0.0, 0.0)",
                    "",
                    "0.00",
                    "0.0000",
                    false
                )
                .map_err(io)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use rmq_model::protocol::BrokerData;

    use super::*;

    #[test]
    fn masters_of_a_cluster_or_of_all() {
        let group = |cluster: &str, name: &str, addrs: &[(u64, &str)]| BrokerData {
            cluster: cluster.into(),
            broker_name: name.into(),
            broker_addrs: addrs.iter().map(|(i, a)| (*i, a.to_string())).collect(),
        };
        let info = ClusterInfo {
            broker_addr_table: BTreeMap::from([
                ("a".into(), group("C1", "a", &[(0, "m:1"), (1, "s:1")])),
                ("b".into(), group("C1", "b", &[(1, "s:2")])),
                ("c".into(), group("C2", "c", &[(0, "m:3")])),
            ]),
            cluster_addr_table: BTreeMap::from([
                ("C1".into(), BTreeSet::from(["a".into(), "b".into()])),
                ("C2".into(), BTreeSet::from(["c".into()])),
            ]),
        };
        assert_eq!(masters_of(&info, Some("C1")), ["m:1"], "b has no master");
        assert_eq!(masters_of(&info, None), ["m:1", "m:3"]);
        assert!(masters_of(&info, Some("nope")).is_empty());
    }
}
