//! Responses: [`Response`] ⇄ wire commands (reference G.6, G.7, F).
//!
//! A response carries the request's opaque, flag RESPONSE and language JAVA. Which
//! model response a wire response becomes depends on the request it answers, so the
//! client side needs the request code: SUCCESS to GET_MAX_OFFSET is an offset, SUCCESS
//! to HEART_BEAT is nothing. Every code that is not a success of its request becomes
//! [`Response::Error`] with the remark.
//!
//! Send responses carry `MSG_REGION` and `TRACE_ON` (Java's client reads them without
//! a null check); pull responses carry the records exactly as the store holds them.

use rmq_model::protocol::{
    request_code as rc, response_code, ClusterInfo, PullResponse, RegisterBrokerResult, Response,
    SendResponse, TopicRouteData,
};
use rmq_model::store::config_tables::ConsumerOffsetTable;

use super::bodies::{self, ConsumerIdList, KvTable, TopicList};
use super::fastjson;
use super::fields::{Fields, MappingError};
use super::{RemotingCommand, SerializeType};

/// `BrokerConfig.regionId`'s default, sent as `MSG_REGION`.
const DEFAULT_REGION: &str = "DefaultRegion";

fn is_send(request_code: i32) -> bool {
    matches!(
        request_code,
        rc::SEND_MESSAGE | rc::SEND_MESSAGE_V2 | rc::SEND_BATCH_MESSAGE
    )
}

/// The codes with which a send stored the message (`SendResponse`'s doc).
const SEND_STORED: [i32; 4] = [
    response_code::SUCCESS,
    response_code::FLUSH_DISK_TIMEOUT,
    response_code::FLUSH_SLAVE_TIMEOUT,
    response_code::SLAVE_NOT_AVAILABLE,
];

/// The codes of a pull that carry offsets (`PullResponse`'s doc).
const PULL_ANSWERED: [i32; 4] = [
    response_code::SUCCESS,
    response_code::PULL_NOT_FOUND,
    response_code::PULL_RETRY_IMMEDIATELY,
    response_code::PULL_OFFSET_MOVED,
];

/// Server side: the model's answer to a request with `request_code` and `opaque`.
pub fn response_to_wire(
    request_code: i32,
    opaque: u32,
    response: &Response,
    serialize_type: SerializeType,
) -> RemotingCommand {
    let mut cmd = RemotingCommand::response(response_code::SUCCESS, opaque, None, serialize_type);
    let mut set = |k: &str, v: String| {
        cmd.ext_fields.insert(k.to_string(), v);
    };
    let mut body = Vec::new();
    let mut code = response_code::SUCCESS;
    let mut remark = None;
    match response {
        Response::RegisterBroker(r) => {
            if let Some(a) = &r.ha_server_addr {
                set("haServerAddr", a.clone());
            }
            if let Some(a) = &r.master_addr {
                set("masterAddr", a.clone());
            }
        }
        Response::UnregisterBroker | Response::HeartBeat | Response::UnregisterClient => {}
        Response::Route(route) => body = bodies::to_json(route),
        Response::ClusterInfo(info) => body = bodies::to_json(info),
        Response::Send(s) => {
            code = s.code;
            set("msgId", s.msg_id.clone());
            set("queueId", s.queue_id.to_string());
            set("queueOffset", s.queue_offset.to_string());
        }
        Response::Pull(p) => {
            code = p.code;
            set(
                "suggestWhichBrokerId",
                p.suggest_which_broker_id.to_string(),
            );
            set("nextBeginOffset", p.next_begin_offset.to_string());
            set("minOffset", p.min_offset.to_string());
            set("maxOffset", p.max_offset.to_string());
            body = p.records.clone();
        }
        Response::Offset(offset) => set("offset", offset.to_string()),
        Response::ConsumerList(ids) => {
            body = bodies::to_json(&ConsumerIdList {
                consumer_id_list: ids.clone(),
            })
        }
        Response::ConsumerOffsets(table) => body = bodies::to_json(table),
        Response::DelayOffsets(text) => body = text.as_bytes().to_vec(),
        Response::LockBatchMq(queues) => body = bodies::locked_to_json(queues),
        Response::UnlockBatchMq | Response::TopicUpdated | Response::ConsumerSendMsgBack => {}
        Response::StoredMessage(bytes) => body = bytes.clone(),
        Response::TopicStats(table) => body = bodies::topic_stats_to_json(table),
        Response::TopicList(topics) => {
            body = bodies::to_json(&TopicList {
                topic_list: topics.clone(),
            })
        }
        Response::RuntimeInfo(table) => {
            body = bodies::to_json(&KvTable {
                table: table.clone(),
            })
        }
        Response::ConsumeStats(stats) => body = bodies::consume_stats_to_json(stats),
        Response::ResetOffset(table) => body = bodies::reset_offset_to_json(table),
        Response::Error { code: c, remark: r } => {
            code = *c;
            remark = Some(r.clone()).filter(|r| !r.is_empty());
        }
    }
    if is_send(request_code) {
        set("MSG_REGION", DEFAULT_REGION.to_string());
        set("TRACE_ON", "true".to_string());
    }
    cmd.code = code;
    cmd.remark = remark;
    cmd.body = body;
    cmd
}

/// Client side: the model's response for `cmd`, the answer to a request with
/// `request_code`.
pub fn response_from_wire(
    request_code: i32,
    cmd: &RemotingCommand,
) -> Result<Response, MappingError> {
    if !cmd.is_response() {
        return Err(MappingError::NotAResponse { flag: cmd.flag });
    }
    let f = Fields {
        code: request_code,
        ext: &cmd.ext_fields,
    };
    let bad_body = |reason: String| MappingError::InvalidBody {
        code: request_code,
        reason,
    };
    let no_model_response = |reason| MappingError::NoModelResponse {
        request_code,
        response_code: cmd.code,
        reason,
    };
    let code = cmd.code;
    let success = code == response_code::SUCCESS;
    let response = match request_code {
        c if is_send(c) && SEND_STORED.contains(&code) => Response::Send(SendResponse {
            code,
            msg_id: f.string("msgId")?,
            queue_id: f.num("queueId")?,
            queue_offset: f.num("queueOffset")?,
        }),
        rc::PULL_MESSAGE if PULL_ANSWERED.contains(&code) => Response::Pull(PullResponse {
            code,
            next_begin_offset: f.num("nextBeginOffset")?,
            min_offset: f.num("minOffset")?,
            max_offset: f.num("maxOffset")?,
            suggest_which_broker_id: f.num("suggestWhichBrokerId")?,
            records: cmd.body.clone(),
        }),
        rc::QUERY_CONSUMER_OFFSET | rc::GET_MAX_OFFSET | rc::GET_MIN_OFFSET if success => {
            Response::Offset(f.num("offset")?)
        }
        rc::HEART_BEAT if success => Response::HeartBeat,
        rc::UNREGISTER_CLIENT if success => Response::UnregisterClient,
        rc::GET_CONSUMER_LIST_BY_GROUP if success => {
            Response::ConsumerList(bodies::consumer_ids_from_json(&cmd.body).map_err(bad_body)?)
        }
        rc::GET_ALL_DELAY_OFFSET if success => Response::DelayOffsets(
            String::from_utf8(cmd.body.clone())
                .map_err(|_| bad_body("delayOffset.json is not UTF-8".to_string()))?,
        ),
        rc::GET_ALL_CONSUMER_OFFSET if success => Response::ConsumerOffsets(
            fastjson::from_slice::<ConsumerOffsetTable>(&cmd.body).map_err(bad_body)?,
        ),
        rc::LOCK_BATCH_MQ if success => {
            Response::LockBatchMq(bodies::locked_from_json(&cmd.body).map_err(bad_body)?)
        }
        rc::UNLOCK_BATCH_MQ if success => Response::UnlockBatchMq,
        rc::CONSUMER_SEND_MSG_BACK if success => Response::ConsumerSendMsgBack,
        rc::REGISTER_BROKER if success => Response::RegisterBroker(RegisterBrokerResult {
            master_addr: f.opt_str("masterAddr").map(str::to_string),
            ha_server_addr: f.opt_str("haServerAddr").map(str::to_string),
        }),
        rc::UNREGISTER_BROKER if success => Response::UnregisterBroker,
        rc::GET_ROUTEINFO_BY_TOPIC if success => {
            Response::Route(fastjson::from_slice::<TopicRouteData>(&cmd.body).map_err(bad_body)?)
        }
        rc::GET_BROKER_CLUSTER_INFO if success => {
            Response::ClusterInfo(fastjson::from_slice::<ClusterInfo>(&cmd.body).map_err(bad_body)?)
        }
        rc::UPDATE_AND_CREATE_TOPIC if success => Response::TopicUpdated,
        rc::VIEW_MESSAGE_BY_ID if success => Response::StoredMessage(cmd.body.clone()),
        rc::GET_TOPIC_STATS_INFO if success => {
            Response::TopicStats(bodies::topic_stats_from_json(&cmd.body).map_err(bad_body)?)
        }
        rc::GET_ALL_TOPIC_LIST_FROM_NAMESERVER if success => Response::TopicList(
            fastjson::from_slice::<TopicList>(&cmd.body)
                .map_err(bad_body)?
                .topic_list,
        ),
        rc::GET_BROKER_RUNTIME_INFO if success => Response::RuntimeInfo(
            fastjson::from_slice::<KvTable>(&cmd.body)
                .map_err(bad_body)?
                .table,
        ),
        rc::INVOKE_BROKER_TO_RESET_OFFSET if success => {
            Response::ResetOffset(bodies::reset_offset_from_json(&cmd.body).map_err(bad_body)?)
        }
        rc::GET_CONSUME_STATS if success => {
            Response::ConsumeStats(bodies::consume_stats_from_json(&cmd.body).map_err(bad_body)?)
        }
        rc::UPDATE_CONSUMER_OFFSET
        | rc::NOTIFY_CONSUMER_IDS_CHANGED
        | rc::RESET_CONSUMER_CLIENT_OFFSET
            if success =>
        {
            return Err(no_model_response(
                "the model sends this request oneway and expects no answer",
            ))
        }
        _ if success => return Err(MappingError::UnsupportedRequestCode(request_code)),
        _ => Response::Error {
            code,
            remark: cmd.remark.clone().unwrap_or_default(),
        },
    };
    Ok(response)
}
