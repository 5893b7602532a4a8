//! mqnamesrv and mqbroker as child processes of a test: free loopback ports, their own
//! HOME and store, their output in a file shown when something goes wrong, and a kill
//! on drop so a failing test leaves nothing running.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A port nothing listens on now (the OS picks it; a race with another process taking
/// it in between is possible but harmless here: the start then fails loudly).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Proc {
    pub name: &'static str,
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn start(name: &'static str, exe: &str, args: &[&str], home: &Path) -> Proc {
        // Numbered so a restart under the same name keeps the first run's output.
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let log = home.join(format!("{}-{n}.out", name.replace([' ', '(', ')'], "_")));
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

    pub fn output(&self) -> String {
        let mut text = String::new();
        let _ = std::fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {}", self.name);
    }

    /// Waits for the process to exit; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
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
pub fn wait_listening(proc: &Proc, port: u16) {
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

pub fn broker_conf(dir: &Path, port: u16, namesrv: &str) -> PathBuf {
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
             haListenPort={}\n\
             namesrvAddr={namesrv}\n\
             storePathRootDir={}\n",
            // Not listenPort + 1, RocketMQ's default: that one may be taken.
            free_port(),
            dir.join("store").display()
        ),
    )
    .unwrap();
    path
}

/// mqnamesrv on a free port with its own config file; it and its address.
pub fn start_namesrv(home: &Path) -> (Proc, String) {
    let port = free_port();
    let conf = home.join("namesrv.properties");
    std::fs::write(&conf, format!("listenPort={port}\n")).unwrap();
    let namesrv = Proc::start(
        "mqnamesrv",
        env!("CARGO_BIN_EXE_mqnamesrv"),
        &["-c", conf.to_str().unwrap()],
        home,
    );
    wait_listening(&namesrv, port);
    (namesrv, format!("127.0.0.1:{port}"))
}

/// mqbroker started from `conf` (see [`broker_conf`]), once it listens on `port`.
pub fn start_broker(name: &'static str, conf: &Path, port: u16, home: &Path) -> Proc {
    let broker = Proc::start(
        name,
        env!("CARGO_BIN_EXE_mqbroker"),
        &["-c", conf.to_str().unwrap()],
        home,
    );
    wait_listening(&broker, port);
    broker
}
