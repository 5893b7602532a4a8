//! The broker's topics (`TopicConfigManager`): loaded from `config/topics.json`, seeded
//! with TBW102 and the configured topics, auto-created on first send when enabled
//! (reference D: queues = min(the client's default, TBW102's write queues), TBW102's
//! permission without the inherit bit), persisted atomically on every change.

use super::config::{BrokerConfig, AUTO_CREATE_TOPIC_KEY, PERM_READ_WRITE_INHERIT};
use crate::message::is_valid_topic;
use crate::node::Ctx;
use crate::protocol::{response_code, Message, Response, SendMessage};
use crate::store::config_file::{ConfigEvent, ConfigFile};
use crate::store::config_tables::{TopicConfig, TopicConfigTable, TOPICS_PATH};
use crate::store::disk::{Disk, DiskError, SyncTicket};

/// The inherit bit (`PermName.PERM_INHERIT`).
const PERM_INHERIT: u32 = 1;

pub(super) struct Topics {
    table: TopicConfigTable,
    file: ConfigFile,
}

impl Topics {
    pub(super) fn load(config: &BrokerConfig, disk: &mut dyn Disk) -> Topics {
        let file = ConfigFile::new(TOPICS_PATH);
        let (table, _source): (TopicConfigTable, _) = file.load(disk);
        let mut topics = Topics { table, file };
        let mut changed = false;
        let tbw = TopicConfig {
            topic_name: AUTO_CREATE_TOPIC_KEY.into(),
            read_queue_nums: config.default_topic_queue_nums,
            write_queue_nums: config.default_topic_queue_nums,
            perm: PERM_READ_WRITE_INHERIT,
            ..TopicConfig::default()
        };
        let wanted = config
            .auto_create_topic_enable
            .then_some(tbw)
            .into_iter()
            .chain(config.topics.values().cloned());
        for t in wanted {
            if !topics.table.topic_config_table.contains_key(&t.topic_name) {
                topics
                    .table
                    .topic_config_table
                    .insert(t.topic_name.clone(), t);
                changed = true;
            }
        }
        if changed {
            topics.table.data_version.counter += 1;
            topics.persist(disk);
        }
        topics
    }

    pub(super) fn table(&self) -> &TopicConfigTable {
        &self.table
    }

    pub(super) fn get(&self, topic: &str) -> Option<&TopicConfig> {
        self.table.topic_config_table.get(topic)
    }

    /// The topic's config for a send, creating it from the default topic if allowed.
    /// `Ok((config, true))` when it was just created.
    pub(super) fn for_send(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        config: &BrokerConfig,
        req: &SendMessage,
    ) -> Result<(TopicConfig, bool), Response> {
        if !is_valid_topic(&req.topic) {
            return Err(Response::Error {
                code: response_code::MESSAGE_ILLEGAL,
                remark: format!("topic {:?} is not a valid topic name", req.topic),
            });
        }
        if let Some(t) = self.get(&req.topic) {
            return Ok((t.clone(), false));
        }
        let template = self
            .get(&req.default_topic)
            .filter(|t| config.auto_create_topic_enable && t.perm & PERM_INHERIT != 0)
            .cloned();
        let Some(template) = template else {
            return Err(Response::Error {
                code: response_code::TOPIC_NOT_EXIST,
                remark: format!("topic[{}] not exist, apply first please!", req.topic),
            });
        };
        let queues = req
            .default_topic_queue_nums
            .min(template.write_queue_nums)
            .max(1);
        let created = TopicConfig {
            topic_name: req.topic.clone(),
            read_queue_nums: queues,
            write_queue_nums: queues,
            perm: template.perm & !PERM_INHERIT,
            ..TopicConfig::default()
        };
        self.table
            .topic_config_table
            .insert(req.topic.clone(), created.clone());
        self.table.data_version.counter += 1;
        self.table.data_version.timestamp = ctx.now_ms() as i64;
        self.persist(ctx.disk());
        Ok((created, true))
    }

    /// `createTopicInSendMessageBackMethod`: a group's `%RETRY%` or `%DLQ%` topic, created
    /// with `queue_nums` queues and `perm` if missing (the default topic and auto-create
    /// play no part). `(config, true)` when it was just created.
    pub(super) fn for_send_back(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        topic: &str,
        queue_nums: u32,
        perm: u32,
    ) -> (TopicConfig, bool) {
        if let Some(t) = self.get(topic) {
            return (t.clone(), false);
        }
        let created = TopicConfig {
            topic_name: topic.to_string(),
            read_queue_nums: queue_nums,
            write_queue_nums: queue_nums,
            perm,
            ..TopicConfig::default()
        };
        self.update(ctx, created.clone());
        (created, true)
    }

    /// UPDATE_AND_CREATE_TOPIC (`TopicConfigManager.updateTopicConfig`): the config
    /// replaces whatever the topic had, the data version moves on (so name servers
    /// rebuild its route) and `topics.json` is persisted.
    pub(super) fn update(&mut self, ctx: &mut dyn Ctx<Message>, config: TopicConfig) {
        self.table
            .topic_config_table
            .insert(config.topic_name.clone(), config);
        self.table.data_version.counter += 1;
        self.table.data_version.timestamp = ctx.now_ms() as i64;
        self.persist(ctx.disk());
    }

    /// No write of `topics.json` in flight (a clean stop waits for it).
    pub(super) fn is_idle(&self) -> bool {
        self.file.is_idle()
    }

    fn persist(&mut self, disk: &mut dyn Disk) {
        let json = serde_json::to_string(&self.table).expect("topic table serializes");
        if let Err(e) = self.file.persist(disk, json) {
            tracing::warn!(error = %e, "topics.json not persisted");
        }
    }

    /// True if the ticket was this file's.
    pub(super) fn on_sync_complete(
        &mut self,
        disk: &mut dyn Disk,
        ticket: SyncTicket,
        result: Result<(), DiskError>,
    ) -> bool {
        match self.file.on_sync_complete(disk, ticket, result) {
            ConfigEvent::NotMine => false,
            ConfigEvent::Failed(e) => {
                tracing::warn!(error = %e, "topics.json not persisted");
                true
            }
            _ => true,
        }
    }
}
