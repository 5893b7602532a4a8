//! The name server's tables (`RouteInfoManager`, reference F): which clusters hold
//! which broker groups, each group's addresses by broker id, each topic's queues per
//! broker group, and when each broker was last heard from.
//!
//! Following RocketMQ 4.9.8: a registration refreshes liveness; a *master's*
//! registration rebuilds the topic's queue data when it is the first one or its data
//! version changed; a broker address re-registering under another id replaces the old
//! id (slave promoted to master). Removing an address (unregister, channel closed,
//! silent for 120 s) removes the whole broker group, and its queue data, only when that
//! was the group's last address.

use std::collections::{BTreeMap, BTreeSet};

use crate::node::NodeId;
use crate::protocol::{
    BrokerData, BrokerIdentity, ClusterInfo, QueueData, RegisterBroker, RegisterBrokerResult,
    TopicRouteData,
};
use crate::store::config_tables::DataVersion;

/// What the name server remembers of a broker address (`BrokerLiveInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerLiveInfo {
    pub last_update_ms: u64,
    pub data_version: DataVersion,
    /// The connection it registered over: when that breaks, the broker is gone.
    pub channel: NodeId,
    pub ha_server_addr: String,
}

#[derive(Clone, Debug, Default)]
pub struct RouteInfoManager {
    /// topic → broker name → queues.
    topic_queue_table: BTreeMap<String, BTreeMap<String, QueueData>>,
    /// broker name → addresses by id.
    broker_addr_table: BTreeMap<String, BrokerData>,
    /// cluster → broker names.
    cluster_addr_table: BTreeMap<String, BTreeSet<String>>,
    /// broker address → liveness.
    broker_live_table: BTreeMap<String, BrokerLiveInfo>,
}

impl RouteInfoManager {
    pub fn new() -> RouteInfoManager {
        RouteInfoManager::default()
    }

    pub fn register_broker(
        &mut self,
        req: &RegisterBroker,
        channel: NodeId,
        now_ms: u64,
    ) -> RegisterBrokerResult {
        let b = &req.broker;
        self.cluster_addr_table
            .entry(b.cluster_name.clone())
            .or_default()
            .insert(b.broker_name.clone());
        let broker_data = self
            .broker_addr_table
            .entry(b.broker_name.clone())
            .or_insert_with(|| BrokerData {
                cluster: b.cluster_name.clone(),
                broker_name: b.broker_name.clone(),
                broker_addrs: BTreeMap::new(),
            });
        // The same address under another id: the broker switched role (slave → master).
        broker_data
            .broker_addrs
            .retain(|id, addr| *id == b.broker_id || *addr != b.broker_addr);
        let previous = broker_data
            .broker_addrs
            .insert(b.broker_id, b.broker_addr.clone());
        let register_first = previous.is_none();

        if b.broker_id == 0 {
            let changed = self
                .broker_live_table
                .get(&b.broker_addr)
                .is_none_or(|live| live.data_version != req.data_version);
            if register_first || changed {
                for (topic, config) in &req.topic_config_table {
                    self.topic_queue_table
                        .entry(topic.clone())
                        .or_default()
                        .insert(
                            b.broker_name.clone(),
                            QueueData {
                                broker_name: b.broker_name.clone(),
                                read_queue_nums: config.read_queue_nums,
                                write_queue_nums: config.write_queue_nums,
                                perm: config.perm,
                                topic_sys_flag: config.topic_sys_flag,
                            },
                        );
                }
            }
        } else if self.broker_addr_table[&b.broker_name]
            .master_addr()
            .is_none()
        {
            // No master registered (it died, or this name server restarted since): the
            // slave's topics keep the group's queues visible to consumers, who then
            // read from the slave. RocketMQ 4.9.8 lists queues only from masters;
            // 5.x does this for a "prime slave" (`enableSlaveActingMaster`). Only
            // missing entries are added: a master's data is never overwritten.
            for (topic, config) in &req.topic_config_table {
                self.topic_queue_table
                    .entry(topic.clone())
                    .or_default()
                    .entry(b.broker_name.clone())
                    .or_insert_with(|| QueueData {
                        broker_name: b.broker_name.clone(),
                        read_queue_nums: config.read_queue_nums,
                        write_queue_nums: config.write_queue_nums,
                        perm: config.perm,
                        topic_sys_flag: config.topic_sys_flag,
                    });
            }
        }
        self.broker_live_table.insert(
            b.broker_addr.clone(),
            BrokerLiveInfo {
                last_update_ms: now_ms,
                data_version: req.data_version.clone(),
                channel,
                ha_server_addr: req.ha_server_addr.clone(),
            },
        );

        let mut result = RegisterBrokerResult::default();
        if b.broker_id != 0 {
            let master = self.broker_addr_table[&b.broker_name].master_addr();
            if let Some(master) = master {
                result.ha_server_addr = self
                    .broker_live_table
                    .get(master)
                    .map(|live| live.ha_server_addr.clone());
                result.master_addr = Some(master.to_string());
            }
        }
        result
    }

    pub fn unregister_broker(&mut self, b: &BrokerIdentity) {
        self.broker_live_table.remove(&b.broker_addr);
        self.remove_address(&b.broker_name, Some(b.broker_id), &b.broker_addr);
    }

    /// A broker's connection closed: forget every address registered over it.
    pub fn on_channel_destroy(&mut self, channel: NodeId) -> Vec<String> {
        let gone: Vec<String> = self
            .broker_live_table
            .iter()
            .filter(|(_, live)| live.channel == channel)
            .map(|(addr, _)| addr.clone())
            .collect();
        for addr in &gone {
            self.remove_address_everywhere(addr);
        }
        gone
    }

    /// `scanNotActiveBroker`: drops brokers not heard from for `expired_ms`.
    pub fn scan_not_active_brokers(&mut self, now_ms: u64, expired_ms: u64) -> Vec<String> {
        let gone: Vec<String> = self
            .broker_live_table
            .iter()
            .filter(|(_, live)| live.last_update_ms + expired_ms < now_ms)
            .map(|(addr, _)| addr.clone())
            .collect();
        for addr in &gone {
            self.remove_address_everywhere(addr);
        }
        gone
    }

    fn remove_address_everywhere(&mut self, addr: &str) {
        self.broker_live_table.remove(addr);
        let names: Vec<String> = self
            .broker_addr_table
            .values()
            .filter(|d| d.broker_addrs.values().any(|a| a == addr))
            .map(|d| d.broker_name.clone())
            .collect();
        for name in names {
            self.remove_address(&name, None, addr);
        }
    }

    /// Removes `addr` (under `id`, or any id) from a broker group; the group, its
    /// cluster membership and its queue data go with its last address.
    fn remove_address(&mut self, broker_name: &str, id: Option<u64>, addr: &str) {
        let Some(data) = self.broker_addr_table.get_mut(broker_name) else {
            return;
        };
        data.broker_addrs
            .retain(|i, a| !(a == addr && id.is_none_or(|id| id == *i)));
        if !data.broker_addrs.is_empty() {
            return;
        }
        let cluster = data.cluster.clone();
        self.broker_addr_table.remove(broker_name);
        if let Some(names) = self.cluster_addr_table.get_mut(&cluster) {
            names.remove(broker_name);
            if names.is_empty() {
                self.cluster_addr_table.remove(&cluster);
            }
        }
        self.topic_queue_table.retain(|_, by_broker| {
            by_broker.remove(broker_name);
            !by_broker.is_empty()
        });
    }

    /// `pickupTopicRouteData`: None when no live broker serves the topic.
    pub fn topic_route(&self, topic: &str) -> Option<TopicRouteData> {
        let by_broker = self.topic_queue_table.get(topic)?;
        let queue_datas: Vec<QueueData> = by_broker.values().cloned().collect();
        let broker_datas: Vec<BrokerData> = by_broker
            .keys()
            .filter_map(|name| self.broker_addr_table.get(name).cloned())
            .collect();
        if broker_datas.is_empty() {
            return None;
        }
        Some(TopicRouteData {
            order_topic_conf: None,
            queue_datas,
            broker_datas,
            filter_server_table: BTreeMap::new(),
        })
    }

    /// `getAllTopicList`: every topic some live broker registered, in name order.
    pub fn topic_list(&self) -> Vec<String> {
        self.topic_queue_table.keys().cloned().collect()
    }

    pub fn cluster_info(&self) -> ClusterInfo {
        ClusterInfo {
            broker_addr_table: self.broker_addr_table.clone(),
            cluster_addr_table: self.cluster_addr_table.clone(),
        }
    }

    pub fn live_brokers(&self) -> impl Iterator<Item = (&String, &BrokerLiveInfo)> {
        self.broker_live_table.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::config_tables::TopicConfig;

    fn register(
        name: &str,
        id: u64,
        addr: &str,
        topics: &[(&str, u32)],
        version: i64,
    ) -> RegisterBroker {
        RegisterBroker {
            broker: BrokerIdentity {
                cluster_name: "DefaultCluster".into(),
                broker_name: name.into(),
                broker_addr: addr.into(),
                broker_id: id,
            },
            ha_server_addr: format!("{addr}-ha"),
            topic_config_table: topics
                .iter()
                .map(|(t, queues)| {
                    (
                        t.to_string(),
                        TopicConfig {
                            topic_name: t.to_string(),
                            read_queue_nums: *queues,
                            write_queue_nums: *queues,
                            ..TopicConfig::default()
                        },
                    )
                })
                .collect(),
            data_version: DataVersion {
                timestamp: 0,
                counter: version,
            },
        }
    }

    #[test]
    fn master_and_slave_make_a_route_and_the_slave_learns_its_master() {
        let mut r = RouteInfoManager::new();
        r.register_broker(&register("a", 0, "m:1", &[("T", 4)], 1), NodeId(1), 0);
        let slave = r.register_broker(&register("a", 1, "s:1", &[("T", 4)], 1), NodeId(2), 0);
        assert_eq!(slave.master_addr.as_deref(), Some("m:1"));
        assert_eq!(slave.ha_server_addr.as_deref(), Some("m:1-ha"));
        let route = r.topic_route("T").unwrap();
        assert_eq!(route.queue_datas.len(), 1);
        assert_eq!(route.queue_datas[0].write_queue_nums, 4);
        assert_eq!(route.broker_datas[0].broker_addrs.len(), 2);
        assert!(r.topic_route("U").is_none());
        assert_eq!(
            r.cluster_info().cluster_addr_table["DefaultCluster"].len(),
            1
        );
        r.register_broker(
            &register("b", 0, "b:1", &[("S", 2), ("T", 4)], 1),
            NodeId(3),
            0,
        );
        assert_eq!(
            r.topic_list(),
            vec!["S", "T"],
            "each topic once, in name order"
        );
    }

    #[test]
    fn queue_data_is_rebuilt_only_when_the_data_version_changes() {
        let mut r = RouteInfoManager::new();
        r.register_broker(&register("a", 0, "m:1", &[("T", 4)], 1), NodeId(1), 0);
        // Same version, different table: RocketMQ keeps the old queue data.
        r.register_broker(&register("a", 0, "m:1", &[("T", 8)], 1), NodeId(1), 30_000);
        assert_eq!(
            r.topic_route("T").unwrap().queue_datas[0].read_queue_nums,
            4
        );
        r.register_broker(&register("a", 0, "m:1", &[("T", 8)], 2), NodeId(1), 60_000);
        assert_eq!(
            r.topic_route("T").unwrap().queue_datas[0].read_queue_nums,
            8
        );
        // Slaves never write queue data.
        r.register_broker(
            &register("a", 1, "s:1", &[("T", 2), ("V", 2)], 9),
            NodeId(2),
            0,
        );
        assert!(r.topic_route("V").is_none());
    }

    #[test]
    fn an_address_switching_id_replaces_its_old_id() {
        let mut r = RouteInfoManager::new();
        r.register_broker(&register("a", 1, "x:1", &[("T", 4)], 1), NodeId(1), 0);
        r.register_broker(&register("a", 0, "x:1", &[("T", 4)], 1), NodeId(1), 0);
        let addrs = &r.topic_route("T").unwrap().broker_datas[0].broker_addrs;
        assert_eq!(addrs.len(), 1);
        assert_eq!(addrs[&0], "x:1");
    }

    #[test]
    fn silent_brokers_expire_and_the_last_address_takes_the_queue_data() {
        let mut r = RouteInfoManager::new();
        r.register_broker(&register("a", 0, "m:1", &[("T", 4)], 1), NodeId(1), 0);
        r.register_broker(&register("a", 1, "s:1", &[("T", 4)], 1), NodeId(2), 100_000);
        assert!(r.scan_not_active_brokers(120_000, 120_000).is_empty());
        assert_eq!(r.scan_not_active_brokers(120_001, 120_000), vec!["m:1"]);
        // The group lives on with its slave: still routed, no master address.
        let route = r.topic_route("T").unwrap();
        assert_eq!(route.broker_datas[0].master_addr(), None);
        assert_eq!(r.on_channel_destroy(NodeId(2)), vec!["s:1"]);
        assert!(r.topic_route("T").is_none());
        assert!(r.cluster_info().cluster_addr_table.is_empty());
    }

    #[test]
    fn unregister_removes_one_address() {
        let mut r = RouteInfoManager::new();
        let m = register("a", 0, "m:1", &[("T", 4)], 1);
        r.register_broker(&m, NodeId(1), 0);
        r.register_broker(&register("b", 0, "m:2", &[("T", 2)], 1), NodeId(3), 0);
        r.unregister_broker(&m.broker);
        let route = r.topic_route("T").unwrap();
        assert_eq!(route.queue_datas.len(), 1);
        assert_eq!(route.queue_datas[0].broker_name, "b");
        assert_eq!(r.live_brokers().count(), 1);
    }
}
