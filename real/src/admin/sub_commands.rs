//! Every sub-command `mqadmin` has: its name, description and options (as RocketMQ's
//! `SubCommand`s declare them) and the function that runs it.

use std::io::Write;

use super::command_line::{flag, opt, SubCommand};
use super::{cluster, consumer, message, offset, topic};

/// Every sub-command, in the order `mqadmin` lists them.
pub const SUB_COMMANDS: &[SubCommand] = &[
    SubCommand {
        name: "updateTopic",
        description: "Update or create topic.",
        options: &[
            opt('b', "brokerAddr", false, "create topic to which broker"),
            opt('c', "clusterName", false, "create topic to which cluster"),
            opt('t', "topic", true, "topic name"),
            opt('r', "readQueueNums", false, "set read queue nums"),
            opt('w', "writeQueueNums", false, "set write queue nums"),
            opt(
                'p',
                "perm",
                false,
                "set topic's permission(2|4|6), intro[2:W 4:R; 6:RW]",
            ),
            opt('o', "order", false, "set topic's order(true|false)"),
        ],
        one_of: &['b', 'c'],
        run: topic::update_topic,
    },
    SubCommand {
        name: "topicList",
        description: "Fetch all topic list from name server.",
        options: &[],
        one_of: &[],
        run: topic::topic_list,
    },
    SubCommand {
        name: "topicRoute",
        description: "Examine topic route info.",
        options: &[
            opt('t', "topic", true, "topic name"),
            flag('l', "list", "Use list format to print data"),
        ],
        one_of: &[],
        run: topic::topic_route,
    },
    SubCommand {
        name: "topicStatus",
        description: "Examine topic Status info.",
        options: &[opt('t', "topic", true, "topic name")],
        one_of: &[],
        run: topic::topic_status,
    },
    SubCommand {
        name: "clusterList",
        description: "List cluster infos.",
        options: &[opt('c', "clusterName", false, "which cluster")],
        one_of: &[],
        run: cluster::cluster_list,
    },
    SubCommand {
        name: "consumerProgress",
        description: "Query consumer's progress, speed.",
        options: &[
            opt('g', "groupName", true, "consumer group name"),
            opt('t', "topicName", false, "topic name"),
        ],
        one_of: &[],
        run: consumer::consumer_progress,
    },
    SubCommand {
        name: "resetOffsetByTime",
        description: "Reset consumer offset by timestamp(without client restart).",
        options: &[
            opt('g', "group", true, "set the consumer group"),
            opt('t', "topic", true, "set the topic"),
            opt(
                's',
                "timestamp",
                true,
                "set the timestamp[now|currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]",
            ),
            opt(
                'f',
                "force",
                false,
                "set the force rollback by timestamp switch[true|false]. Deprecated.",
            ),
        ],
        one_of: &[],
        run: offset::reset_offset_by_time,
    },
    SubCommand {
        name: "queryMsgById",
        description: "Query Message by Id.",
        options: &[
            opt('i', "msgId", true, "Message Id"),
            opt('t', "topic", false, "topic name"),
        ],
        one_of: &[],
        run: message::query_msg_by_id,
    },
    SubCommand {
        name: "sendMessage",
        description: "Send a message.",
        options: &[
            opt('t', "topic", true, "Topic name"),
            opt('p', "body", true, "UTF-8 string format of the message body"),
            opt('k', "key", false, "Message keys"),
            opt('c', "tags", false, "Message tags"),
            opt('b', "broker", false, "Send message to target broker"),
            opt('i', "qid", false, "Send message to target queue"),
        ],
        one_of: &[],
        run: message::send_message,
    },
    SubCommand {
        name: "consumeMessage",
        description: "Consume message.",
        options: &[
            opt('t', "topic", true, "Topic name"),
            opt('b', "brokerName", false, "Broker name"),
            opt('i', "queueId", false, "Queue Id"),
            opt('o', "offset", false, "Queue offset"),
            opt('g', "consumerGroup", false, "Consumer group name"),
            opt(
                'c',
                "MessageNumber",
                false,
                "Number of message to be consumed",
            ),
        ],
        one_of: &[],
        run: message::consume_message,
    },
];

/// The sub-command named `name` (RocketMQ matches ignoring case).
pub fn find(name: &str) -> Option<&'static SubCommand> {
    SUB_COMMANDS
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(name))
}

/// `mqadmin` alone: the list of commands.
pub fn print_help(out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "The most commonly used mqadmin commands are:")?;
    for cmd in SUB_COMMANDS {
        writeln!(out, "   {:<35} {}", cmd.name, cmd.description)?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "See 'mqadmin help <command>' for more information on a specific command."
    )
}
