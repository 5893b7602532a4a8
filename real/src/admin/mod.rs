//! `mqadmin`: RocketMQ's admin tool (`tools/.../command/**`, `MQAdminStartup`) over the
//! remoting protocol, invoked as RocketMQ's is: `mqadmin <command> -n 127.0.0.1:9876
//! [options]`, the name servers from `-n` or else `NAMESRV_ADDR`. Output lines, column
//! headers and their order follow RocketMQ's commands.
//!
//! - `command_line.rs`: the sub-command table, option parsing and usage text
//!   (commons-cli's shapes: `-t value`, `--topic value`, `--topic=value`, `-tvalue`).
//! - `remoting_client.rs`: a blocking request/response client (one connection per
//!   call, every call bounded by a timeout) and the name-server lookups.
//! - `topic.rs`: updateTopic, topicList, topicRoute, topicStatus.
//! - `cluster.rs`: clusterList. `consumer.rs`: consumerProgress. `offset.rs`:
//!   resetOffsetByTime.
//! - `message.rs`: sendMessage, consumeMessage, queryMsgById (records decoded by the
//!   model's record parser, properties built by the model's producer code).
//! - `time_format.rs`: RocketMQ's time formats.
//!
//! Deviations, each because the model has no such state: times print in UTC (the
//! tool has no time-zone database); TPS figures print 0 (brokers keep no rates);
//! clusterList prints what cluster info gives (no GET_BROKER_RUNTIME_INFO);
//! consumerProgress needs `-g` (RocketMQ's group listing walks `%RETRY%` topics);
//! queryMsgById takes offset message ids only (no message index).

mod cluster;
mod command_line;
mod consumer;
mod message;
mod offset;
mod remoting_client;
mod sub_commands;
mod time_format;
mod topic;

use std::io::Write;

pub use command_line::{Invocation, SubCommand};
pub use remoting_client::{RemotingClient, CALL_TIMEOUT};
pub use sub_commands::SUB_COMMANDS;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Bad command line: the usage is printed with it, exit code 2.
    #[error("{0}")]
    Usage(String),
    /// A server could not be reached or did not answer in time.
    #[error("{0}")]
    Unreachable(String),
    /// A server answered with an error code.
    #[error("{addr} refused {what}: code {code}, {remark}")]
    Refused {
        addr: String,
        what: &'static str,
        code: i32,
        remark: String,
    },
    /// Anything else that stops the command (what it looked for is not there, a local
    /// file cannot be written).
    #[error("{0}")]
    Failed(String),
}

/// Exit codes: 0 done, 1 the command failed, 2 a usage error.
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// Runs `mqadmin` with `args` (after the program name); `namesrv_env` is
/// `NAMESRV_ADDR`. Writes the command's output to `out`, errors to `err`; returns the
/// exit code.
pub fn run(
    args: &[String],
    namesrv_env: Option<String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let name = match args.first() {
        None => {
            let _ = sub_commands::print_help(out);
            return 0;
        }
        Some(name) => name,
    };
    if name == "help" && args.len() == 2 {
        return match sub_commands::find(&args[1]) {
            Some(cmd) => {
                let _ = command_line::print_usage(cmd, out);
                0
            }
            None => {
                let _ = writeln!(err, "The sub command {} not exist.", args[1]);
                EXIT_USAGE
            }
        };
    }
    let Some(cmd) = sub_commands::find(name) else {
        let _ = writeln!(err, "The sub command {name} not exist.");
        let _ = sub_commands::print_help(err);
        return EXIT_USAGE;
    };
    let invocation = match Invocation::parse(cmd, &args[1..], namesrv_env) {
        Ok(Some(invocation)) => invocation,
        Ok(None) => {
            // -h
            let _ = command_line::print_usage(cmd, out);
            return 0;
        }
        Err(e) => {
            let _ = writeln!(err, "mqadmin {}: {e}", cmd.name);
            let _ = command_line::print_usage(cmd, err);
            return EXIT_USAGE;
        }
    };
    match (cmd.run)(&invocation, out) {
        Ok(()) => 0,
        Err(AdminError::Usage(e)) => {
            let _ = writeln!(err, "mqadmin {}: {e}", cmd.name);
            let _ = command_line::print_usage(cmd, err);
            EXIT_USAGE
        }
        Err(e) => {
            let _ = out.flush();
            let _ = writeln!(err, "mqadmin {}: {e}", cmd.name);
            EXIT_FAILED
        }
    }
}
