//! A blocking remoting client for admin calls: one TCP connection per call, the
//! request written as Java's client writes it (JSON header), the answer with the same
//! opaque read back. Connecting, writing and reading share one deadline, so a server
//! that accepts and never answers costs [`CALL_TIMEOUT`], never a hang.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use rmq_model::protocol::{request_code, ClusterInfo, Request, Response, TopicRouteData};

use super::AdminError;
use crate::remoting::{
    decode_frame, encode_frame, request_to_wire, response_from_wire, DEFAULT_MAX_FRAME_BYTES,
};

/// Every call's bound: connect, send and answer (RocketMQ's admin calls use 3 s too).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// The request's name in messages.
fn what(request: &Request) -> &'static str {
    match request.code() {
        request_code::UPDATE_AND_CREATE_TOPIC => "UPDATE_AND_CREATE_TOPIC",
        request_code::GET_ROUTEINFO_BY_TOPIC => "GET_ROUTEINFO_BY_TOPIC",
        request_code::GET_BROKER_CLUSTER_INFO => "GET_BROKER_CLUSTER_INFO",
        request_code::GET_ALL_TOPIC_LIST_FROM_NAMESERVER => "GET_ALL_TOPIC_LIST_FROM_NAMESERVER",
        request_code::GET_TOPIC_STATS_INFO => "GET_TOPIC_STATS_INFO",
        request_code::GET_CONSUME_STATS => "GET_CONSUME_STATS",
        request_code::INVOKE_BROKER_TO_RESET_OFFSET => "INVOKE_BROKER_TO_RESET_OFFSET",
        request_code::VIEW_MESSAGE_BY_ID => "VIEW_MESSAGE_BY_ID",
        request_code::GET_MIN_OFFSET => "GET_MIN_OFFSET",
        request_code::GET_MAX_OFFSET => "GET_MAX_OFFSET",
        request_code::SEND_MESSAGE_V2 => "SEND_MESSAGE_V2",
        request_code::PULL_MESSAGE => "PULL_MESSAGE",
        _ => "the request",
    }
}

/// One connection to a broker or name server.
pub struct RemotingClient {
    addr: String,
    stream: TcpStream,
    deadline: Instant,
    next_opaque: u32,
    buf: Vec<u8>,
}

impl RemotingClient {
    /// Connects to `addr` (`host:port`) within `timeout`, which then bounds every call
    /// made on this connection together.
    pub fn connect(addr: &str, timeout: Duration) -> Result<RemotingClient, AdminError> {
        let deadline = Instant::now() + timeout;
        let unreachable = |why: String| AdminError::Unreachable(format!("{addr}: {why}"));
        let targets: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| unreachable(format!("not an address to connect to ({e})")))?
            .collect();
        let mut last = String::from("resolves to no address");
        for target in targets {
            match TcpStream::connect_timeout(&target, timeout) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(RemotingClient {
                        addr: addr.to_string(),
                        stream,
                        deadline,
                        next_opaque: 1,
                        buf: Vec::new(),
                    });
                }
                Err(e) => last = format!("cannot connect ({e})"),
            }
        }
        Err(unreachable(last))
    }

    /// This end's address (the born host of what it sends).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.stream.local_addr().ok()
    }

    fn remaining(&self, what: &str) -> Result<Duration, AdminError> {
        self.deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                AdminError::Unreachable(format!(
                    "{}: no answer to {what} within {} ms",
                    self.addr,
                    CALL_TIMEOUT.as_millis()
                ))
            })
    }

    /// Sends `request` and waits for its answer. An error code comes back as
    /// [`AdminError::Refused`].
    pub fn call(&mut self, request: &Request) -> Result<Response, AdminError> {
        let what = what(request);
        let opaque = self.next_opaque;
        self.next_opaque += 1;
        let mut frame = Vec::new();
        encode_frame(&request_to_wire(opaque, request, false), &mut frame);
        let io_error = |addr: &str, e: std::io::Error| {
            AdminError::Unreachable(format!("{addr}: {what} failed: {e}"))
        };
        self.stream
            .set_write_timeout(Some(self.remaining(what)?))
            .map_err(|e| io_error(&self.addr, e))?;
        self.stream
            .write_all(&frame)
            .map_err(|e| io_error(&self.addr, e))?;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match decode_frame(&self.buf, DEFAULT_MAX_FRAME_BYTES) {
                Ok(Some((cmd, used))) => {
                    self.buf.drain(..used);
                    // Anything else (a request the server sends us) is not ours to answer.
                    if !cmd.is_response() || cmd.opaque != opaque {
                        continue;
                    }
                    let response = response_from_wire(request.code(), &cmd).map_err(|e| {
                        AdminError::Failed(format!("{}: bad answer to {what}: {e}", self.addr))
                    })?;
                    return match response {
                        Response::Error { code, remark } => Err(AdminError::Refused {
                            addr: self.addr.clone(),
                            what,
                            code,
                            remark,
                        }),
                        other => Ok(other),
                    };
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(AdminError::Failed(format!(
                        "{}: undecodable answer to {what}: {e}",
                        self.addr
                    )))
                }
            }
            self.stream
                .set_read_timeout(Some(self.remaining(what)?))
                .map_err(|e| io_error(&self.addr, e))?;
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(AdminError::Unreachable(format!(
                        "{}: the connection closed before the answer to {what}",
                        self.addr
                    )))
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    self.remaining(what)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(&self.addr, e)),
            }
        }
    }
}

/// One call on a fresh connection bounded by [`CALL_TIMEOUT`].
pub fn call(addr: &str, request: &Request) -> Result<Response, AdminError> {
    RemotingClient::connect(addr, CALL_TIMEOUT)?.call(request)
}

/// Asks the name servers in turn until one answers (an error code is an answer).
pub fn call_namesrv(addrs: &[String], request: &Request) -> Result<Response, AdminError> {
    let mut last = AdminError::Unreachable("no name server address".into());
    for addr in addrs {
        match call(addr, request) {
            Err(AdminError::Unreachable(why)) => last = AdminError::Unreachable(why),
            answered => return answered,
        }
    }
    Err(last)
}

fn unexpected(what: &str, response: Response) -> AdminError {
    AdminError::Failed(format!("unexpected answer to {what}: {response:?}"))
}

/// GET_ROUTEINFO_BY_TOPIC.
pub fn topic_route(namesrv: &[String], topic: &str) -> Result<TopicRouteData, AdminError> {
    let request = Request::GetRouteInfoByTopic {
        topic: topic.to_string(),
    };
    match call_namesrv(namesrv, &request)? {
        Response::Route(route) => Ok(route),
        other => Err(unexpected("GET_ROUTEINFO_BY_TOPIC", other)),
    }
}

/// GET_BROKER_CLUSTER_INFO.
pub fn cluster_info(namesrv: &[String]) -> Result<ClusterInfo, AdminError> {
    match call_namesrv(namesrv, &Request::GetBrokerClusterInfo)? {
        Response::ClusterInfo(info) => Ok(info),
        other => Err(unexpected("GET_BROKER_CLUSTER_INFO", other)),
    }
}

/// An offset answer (GET_MIN_OFFSET, GET_MAX_OFFSET).
pub fn offset(addr: &str, request: &Request) -> Result<u64, AdminError> {
    match call(addr, request)? {
        Response::Offset(o) => Ok(o),
        other => Err(unexpected(what(request), other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_that_never_answers_costs_the_timeout_not_a_hang() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        // Accepts (the backlog does) and never answers.
        let mut client = RemotingClient::connect(&addr, Duration::from_millis(200)).unwrap();
        match client.call(&Request::GetBrokerClusterInfo) {
            Err(AdminError::Unreachable(why)) => {
                assert!(
                    why.contains("no answer to GET_BROKER_CLUSTER_INFO"),
                    "{why}"
                )
            }
            other => panic!("{other:?}"),
        }
        drop(listener);
        // Nothing listens there any more.
        match call(&addr, &Request::GetBrokerClusterInfo) {
            Err(AdminError::Unreachable(why)) => assert!(why.contains("cannot connect"), "{why}"),
            other => panic!("{other:?}"),
        }
        match call("no port here", &Request::GetBrokerClusterInfo) {
            Err(AdminError::Unreachable(why)) => assert!(why.contains("not an address"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
