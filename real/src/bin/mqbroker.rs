//! mqbroker: the model's broker as a process, started as RocketMQ's is
//! (`mqbroker -n 127.0.0.1:9876 -c broker.conf`, RocketMQ's keys; see
//! `rmq_real::config::broker_conf`).
//!
//! It takes the store directory's lock (a second broker on it is refused), boots from
//! the store (recovery: normal after a clean stop, abnormal after a crash), listens on
//! `brokerIP1:listenPort` (and for slaves' HA connections on `brokerIP2:haListenPort`,
//! as RocketMQ's `HAService` does whatever the role), and on SIGTERM flushes, writes the checkpoint, removes the
//! abort marker and exits 0. Logs go to stderr and `{storePathRootDir}/logs/broker.log`.

use std::net::SocketAddr;
use std::process::ExitCode;

use rmq_model::broker::Broker;
use rmq_real::config::broker_conf::load_broker;
use rmq_real::config::store_lock::StoreLock;
use rmq_real::config::{Env, USAGE};
use rmq_real::fs_disk::FsDisk;
use rmq_real::process::{init_logging, run_process};

fn main() -> ExitCode {
    let (command_line, loaded) = match load_broker(std::env::args().skip(1), &Env::from_process()) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("mqbroker: {e}");
            return ExitCode::from(2);
        }
    };
    if command_line.help {
        println!("mqbroker {USAGE}");
        return ExitCode::SUCCESS;
    }
    if command_line.print_config {
        print!("{}", loaded.conf.to_properties());
        return ExitCode::SUCCESS;
    }
    if command_line.print_important_config {
        print!("{}", loaded.conf.important_properties());
        return ExitCode::SUCCESS;
    }
    let conf = loaded.conf.clone();
    let root = conf.store_path_root_dir.clone();
    // Before anything touches the store: a second broker on it must not.
    let _lock = match StoreLock::acquire(&root) {
        Ok(lock) => lock,
        Err(e) => {
            eprintln!("mqbroker: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = init_logging(Some(&root.join("logs/broker.log"))) {
        eprintln!("mqbroker: cannot set up logging: {e}");
    }
    for warning in loaded.warnings() {
        tracing::warn!("{warning}");
    }
    let broker_addr = conf.broker_addr();
    let listen_addr = conf.listen_addr();
    let listen: SocketAddr = match listen_addr.parse() {
        Ok(addr) => addr,
        Err(e) => {
            tracing::error!(%listen_addr, error = %e, "not an address to listen on");
            return ExitCode::from(2);
        }
    };
    let ha_server_addr = conf.ha_server_addr();
    let ha_listen_addr = conf.ha_listen_addr();
    let ha_listen: SocketAddr = match ha_listen_addr.parse() {
        Ok(addr) => addr,
        Err(e) => {
            tracing::error!(%ha_listen_addr, error = %e, "not an address to listen on for HA");
            return ExitCode::from(2);
        }
    };
    let disk = match FsDisk::open_threaded(&root) {
        Ok(disk) => disk,
        Err(e) => {
            tracing::error!(root = %root.display(), error = %e, "cannot open the store directory");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        cluster = %conf.broker.cluster_name,
        broker = %conf.broker.broker_name,
        id = conf.broker.broker_id,
        role = ?conf.broker.role,
        flush = ?conf.broker.flush_disk_type,
        store = %root.display(),
        "the broker boots"
    );
    let mut config = conf.broker.clone();
    // Slaves replicate from here: registered with the name servers as haServerAddr.
    config.ha_server_addr = Some(ha_server_addr);
    run_process(
        listen,
        Some(ha_listen),
        broker_addr,
        move |disk| Box::new(Broker::boot(config, disk)),
        disk,
    )
}
