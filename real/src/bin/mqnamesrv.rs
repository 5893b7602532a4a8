//! mqnamesrv: the model's name server as a process, started as RocketMQ's is
//! (`mqnamesrv [-c namesrv.conf]`; `listenPort`, default 9876, on 127.0.0.1).
//!
//! Its own files (none today besides the log) live under `$HOME/namesrv`, as
//! RocketMQ's kvConfig does; it logs to stderr and `$HOME/logs/rocketmqlogs/namesrv.log`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use rmq_model::namesrv::NameServer;
use rmq_real::config::namesrv_conf::load_namesrv;
use rmq_real::config::{Env, USAGE};
use rmq_real::fs_disk::FsDisk;
use rmq_real::process::{init_logging, run_process};

fn main() -> ExitCode {
    let (command_line, loaded) = match load_namesrv(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("mqnamesrv: {e}");
            return ExitCode::from(2);
        }
    };
    if command_line.help {
        println!("mqnamesrv {USAGE}");
        return ExitCode::SUCCESS;
    }
    if command_line.print_config || command_line.print_important_config {
        print!("{}", loaded.conf.to_properties());
        return ExitCode::SUCCESS;
    }
    let home = Env::from_process()
        .home_dir
        .unwrap_or_else(|| PathBuf::from("."));
    if let Err(e) = init_logging(Some(&home.join("logs/rocketmqlogs/namesrv.log"))) {
        eprintln!("mqnamesrv: cannot set up logging: {e}");
    }
    for warning in loaded.warnings() {
        tracing::warn!("{warning}");
    }
    let listen_addr = loaded.conf.listen_addr();
    let listen: SocketAddr = match listen_addr.parse() {
        Ok(addr) => addr,
        Err(e) => {
            tracing::error!(%listen_addr, error = %e, "not an address to listen on");
            return ExitCode::from(2);
        }
    };
    let disk = match FsDisk::open_threaded(home.join("namesrv")) {
        Ok(disk) => disk,
        Err(e) => {
            tracing::error!(error = %e, "cannot open $HOME/namesrv");
            return ExitCode::FAILURE;
        }
    };
    let config = loaded.conf.namesrv.clone();
    tracing::info!(%listen, "the name server boots");
    run_process(
        listen,
        None,
        listen_addr,
        move |_| Box::new(NameServer::new(config)),
        disk,
    )
}
