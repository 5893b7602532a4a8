//! The `remoting` fuzz target's check, here so `cargo test` replays the corpus without
//! nightly: arbitrary bytes go through the decoder as a stream of frames, and whatever
//! decodes must survive re-encoding and mapping.

use rmq_model::protocol::request_code as rc;

use super::{
    decode_frame, encode_frame, response_from_wire, response_to_wire, try_request_from_wire,
    try_request_to_wire, RemotingCommand, DEFAULT_MAX_FRAME_BYTES,
};

/// Frames decoded from one input, at most: inputs are small, this only bounds the loop.
const MAX_FRAMES_PER_CASE: usize = 64;

/// Every request code a response may answer, tried on each decoded response.
const REQUEST_CODES: [i32; 30] = [
    rc::SEND_MESSAGE,
    rc::SEND_MESSAGE_V2,
    rc::SEND_BATCH_MESSAGE,
    rc::PULL_MESSAGE,
    rc::QUERY_CONSUMER_OFFSET,
    rc::UPDATE_CONSUMER_OFFSET,
    rc::GET_MAX_OFFSET,
    rc::HEART_BEAT,
    rc::UNREGISTER_CLIENT,
    rc::GET_CONSUMER_LIST_BY_GROUP,
    rc::NOTIFY_CONSUMER_IDS_CHANGED,
    rc::GET_ALL_CONSUMER_OFFSET,
    rc::GET_ALL_DELAY_OFFSET,
    rc::LOCK_BATCH_MQ,
    rc::UNLOCK_BATCH_MQ,
    rc::REGISTER_BROKER,
    rc::UNREGISTER_BROKER,
    rc::GET_ROUTEINFO_BY_TOPIC,
    rc::GET_BROKER_CLUSTER_INFO,
    rc::UPDATE_AND_CREATE_TOPIC,
    rc::GET_MIN_OFFSET,
    rc::VIEW_MESSAGE_BY_ID,
    rc::GET_TOPIC_STATS_INFO,
    rc::GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
    rc::GET_BROKER_RUNTIME_INFO,
    rc::GET_CONSUME_STATS,
    rc::INVOKE_BROKER_TO_RESET_OFFSET,
    rc::RESET_CONSUMER_CLIENT_OFFSET,
    // Codes the model does not know.
    0,
    999,
];

/// Decodes `data` as a stream of frames. For each frame: every shorter prefix asks for
/// more bytes; it re-encodes and re-decodes to the same command; a request that maps
/// to the model maps back and again to the same request; a response that maps maps
/// back to the same response. Decoding errors are fine (the input is arbitrary);
/// panics and violations are not.
pub fn run_remoting_case(data: &[u8]) -> Result<(), String> {
    let mut rest = data;
    for _ in 0..MAX_FRAMES_PER_CASE {
        let (cmd, used) = match decode_frame(rest, DEFAULT_MAX_FRAME_BYTES) {
            Ok(Some(decoded)) => decoded,
            Ok(None) | Err(_) => return Ok(()),
        };
        if used == 0 || used > rest.len() {
            return Err(format!("consumed {used} of {} bytes", rest.len()));
        }
        for cut in 0..used {
            if let Ok(Some(_)) | Err(_) = decode_frame(&rest[..cut], DEFAULT_MAX_FRAME_BYTES) {
                return Err(format!(
                    "prefix of {cut} of {used} bytes did not ask for more"
                ));
            }
        }
        check_reencodes(&cmd)?;
        if cmd.is_response() {
            check_response(&cmd)?;
        } else {
            check_request(&cmd)?;
        }
        rest = &rest[used..];
    }
    Ok(())
}

fn check_reencodes(cmd: &RemotingCommand) -> Result<(), String> {
    let mut frame = Vec::new();
    encode_frame(cmd, &mut frame);
    match decode_frame(&frame, usize::MAX) {
        Ok(Some((again, used))) if used == frame.len() && again == *cmd => Ok(()),
        other => Err(format!("{cmd:?} re-decoded as {other:?}")),
    }
}

fn check_request(cmd: &RemotingCommand) -> Result<(), String> {
    let Ok(request) = try_request_from_wire(cmd) else {
        return Ok(());
    };
    let wire = try_request_to_wire(cmd.opaque, &request, cmd.is_oneway())
        .map_err(|e| format!("{request:?} decoded but does not encode: {e}"))?;
    let mut frame = Vec::new();
    encode_frame(&wire, &mut frame);
    let (again, _) = decode_frame(&frame, usize::MAX)
        .map_err(|e| format!("{wire:?} does not decode: {e}"))?
        .ok_or("a whole frame asked for more")?;
    match try_request_from_wire(&again) {
        Ok(back) if back == request => Ok(()),
        other => Err(format!("{request:?} came back as {other:?}")),
    }
}

fn check_response(cmd: &RemotingCommand) -> Result<(), String> {
    for request_code in REQUEST_CODES {
        let Ok(response) = response_from_wire(request_code, cmd) else {
            continue;
        };
        let wire = response_to_wire(request_code, cmd.opaque, &response, cmd.serialize_type);
        match response_from_wire(request_code, &wire) {
            Ok(back) if back == response => {}
            other => {
                return Err(format!(
                    "answer to {request_code}: {response:?} came back as {other:?}"
                ))
            }
        }
    }
    Ok(())
}
