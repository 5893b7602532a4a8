//! mqnamesrv and mqbroker as processes, from cargo's build output, on free loopback
//! ports: the model's own producer and consumer (hosted in the test) send and consume
//! through them; a SYNC_FLUSH broker killed with SIGKILL and restarted loses nothing
//! acknowledged; SIGTERM stops it cleanly; a second broker on a held store is refused.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{assert_all_delivered, start_consumer, start_producer, wait_stored};

/// A port nothing listens on now (the OS picks it; a race with another process taking
/// it in between is possible but harmless here: the start then fails loudly).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn start(name: &'static str, exe: &str, args: &[&str], home: &Path) -> Proc {
        let log = home.join(format!(
            "{name}-{}.out",
            Instant::now().elapsed().as_nanos()
        ));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(exe)
            .args(args)
            .env("HOME", home)
            .env_remove("NAMESRV_ADDR")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {exe}: {e}"));
        Proc { name, child, log }
    }

    fn output(&self) -> String {
        let mut text = String::new();
        let _ = std::fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {}", self.name);
    }

    /// Waits for the process to exit; its exit code.
    fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                started.elapsed() < timeout,
                "{} did not exit within {timeout:?}:\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until something accepts connections at `port`.
fn wait_listening(proc: &Proc, port: u16) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{} is not listening on {port}:\n{}",
            proc.name,
            proc.output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn broker_conf(dir: &Path, port: u16, namesrv: &str) -> PathBuf {
    let path = dir.join("broker-a.properties");
    std::fs::write(
        &path,
        format!(
            "brokerClusterName=DefaultCluster\n\
             brokerName=broker-a\n\
             brokerId=0\n\
             deleteWhen=04\n\
             fileReservedTime=48\n\
             brokerRole=ASYNC_MASTER\n\
             flushDiskType=SYNC_FLUSH\n\
             listenPort={port}\n\
             namesrvAddr={namesrv}\n\
             storePathRootDir={}\n",
            dir.join("store").display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_sync_flush_broker_killed_and_restarted_loses_nothing_acknowledged() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let ns_port = free_port();
    let ns_conf = home.join("namesrv.properties");
    std::fs::write(&ns_conf, format!("listenPort={ns_port}\n")).unwrap();
    let namesrv = Proc::start(
        "mqnamesrv",
        env!("CARGO_BIN_EXE_mqnamesrv"),
        &["-c", ns_conf.to_str().unwrap()],
        home,
    );
    wait_listening(&namesrv, ns_port);
    let ns_addr = format!("127.0.0.1:{ns_port}");

    let broker_port = free_port();
    let conf = broker_conf(home, broker_port, &ns_addr);
    let conf = conf.to_str().unwrap();
    let mqbroker = env!("CARGO_BIN_EXE_mqbroker");
    let mut broker = Proc::start("mqbroker", mqbroker, &["-c", conf], home);
    wait_listening(&broker, broker_port);

    // A second broker on the same store is refused, naming the directory.
    let mut second = Proc::start("mqbroker (second)", mqbroker, &["-c", conf], home);
    let code = second.wait_exit(Duration::from_secs(20));
    assert_ne!(code, Some(0));
    let said = second.output();
    assert!(said.contains("in use by another broker"), "{said}");

    // Let the broker register before the producer asks for the route.
    std::thread::sleep(Duration::from_millis(500));
    const COUNT: usize = 300;
    let (mut producer, sent) = start_producer(home.join("producer"), &ns_addr, COUNT);
    let stored = wait_stored(&sent, COUNT);
    let _ = producer.stop();

    // Every SEND_OK was fsynced before it was answered: a SIGKILL takes none of them.
    broker.signal("-KILL");
    broker.wait_exit(Duration::from_secs(10));
    assert!(
        home.join("store/abort").exists(),
        "a killed broker leaves its abort marker"
    );
    let mut broker = Proc::start("mqbroker (restarted)", mqbroker, &["-c", conf], home);
    wait_listening(&broker, broker_port);
    let said = broker.output();
    assert!(!said.contains("in use by another broker"), "{said}");

    let (mut consumer, consumed) = start_consumer(home.join("consumer"), &ns_addr, "g_bin");
    assert_all_delivered(&stored, &consumed);
    let _ = consumer.stop();

    // SIGTERM: flush, checkpoint, remove the abort marker, exit 0.
    broker.signal("-TERM");
    assert_eq!(
        broker.wait_exit(Duration::from_secs(30)),
        Some(0),
        "{}",
        broker.output()
    );
    assert!(
        !home.join("store/abort").exists(),
        "a clean stop removes the abort marker"
    );
    let restarted = broker.output();
    assert!(
        restarted.contains("mode=Abnormal records=300"),
        "{restarted}"
    );
    namesrv.signal("-TERM");
    let mut namesrv = namesrv;
    assert_eq!(namesrv.wait_exit(Duration::from_secs(30)), Some(0));
}
