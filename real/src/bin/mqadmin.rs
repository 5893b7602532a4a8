//! mqadmin: RocketMQ's admin tool against our name servers and brokers (or RocketMQ's),
//! invoked as RocketMQ's is: `mqadmin <command> -n 127.0.0.1:9876 [options]`;
//! `mqadmin` alone lists the commands, `mqadmin help <command>` shows one's options.
//! Everything is in `rmq_real::admin`.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let code = rmq_real::admin::run(
        &args,
        std::env::var("NAMESRV_ADDR").ok(),
        &mut out,
        &mut std::io::stderr(),
    );
    let _ = out.flush();
    ExitCode::from(code)
}
