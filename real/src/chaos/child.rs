//! One mqnamesrv or mqbroker the harness started: its process id, its output in a
//! file, and the signals the faults send it. Dropping it kills the process (SIGKILL,
//! then reaps it), so no path out of the harness leaves one running.

use std::fs::File;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// What went wrong with a node, named so the report says which one and why.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    #[error("{node}: cannot start {exe}: {source}")]
    Spawn {
        node: String,
        exe: String,
        source: io::Error,
    },
    #[error("{node}: not listening on {addr} within {timeout_ms} ms{}", tail(.output))]
    NotListening {
        node: String,
        addr: SocketAddr,
        timeout_ms: u64,
        output: String,
    },
    #[error("{node}: exited ({status}) while starting{}", tail(.output))]
    Exited {
        node: String,
        status: String,
        output: String,
    },
    #[error("{node}: cannot signal process {pid}: {source}")]
    Signal {
        node: String,
        pid: u32,
        source: io::Error,
    },
    #[error("{node}: did not exit within {timeout_ms} ms of SIGTERM")]
    NoExit { node: String, timeout_ms: u64 },
}

/// The last lines of a node's output, for an error message.
fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let from = lines.len().saturating_sub(15);
    if lines.is_empty() {
        String::new()
    } else {
        format!("; its last output:\n{}", lines[from..].join("\n"))
    }
}

/// A free loopback port (the kernel picks it; another process may take it before the
/// node binds it, which then fails to start and says so).
pub fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `name` next to the running executable (cargo puts every binary of a package in one
/// directory, and a test's executable one level below it in `deps/`).
pub fn sibling_exe(name: &str) -> io::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let dir = me.parent().unwrap_or(Path::new("."));
    for candidate in [dir.join(name), dir.join("..").join(name)] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "{name} is not next to {} (build it: cargo build -p rmq-real --bins)",
            me.display()
        ),
    ))
}

pub struct ChildNode {
    /// How the report names it ("broker-a master").
    pub name: String,
    exe: PathBuf,
    args: Vec<String>,
    home: PathBuf,
    /// Where it serves remoting: up again once this accepts connections.
    pub addr: SocketAddr,
    child: Option<Child>,
    /// Output files, one per incarnation.
    logs: Vec<PathBuf>,
}

impl ChildNode {
    /// Starts `exe args` with `home` as its HOME and output directory, and waits until
    /// it listens on `addr`.
    pub fn start(
        name: &str,
        exe: PathBuf,
        args: Vec<String>,
        home: PathBuf,
        addr: SocketAddr,
        timeout_ms: u64,
    ) -> Result<ChildNode, ChildError> {
        let mut node = ChildNode {
            name: name.to_string(),
            exe,
            args,
            home,
            addr,
            child: None,
            logs: Vec::new(),
        };
        node.spawn(timeout_ms)?;
        Ok(node)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts a new incarnation and waits until it listens.
    pub fn spawn(&mut self, timeout_ms: u64) -> Result<(), ChildError> {
        let log = self.home.join(format!(
            "{}-{}.out",
            self.name.replace(' ', "_"),
            self.logs.len()
        ));
        let spawn_error = |source| ChildError::Spawn {
            node: self.name.clone(),
            exe: self.exe.display().to_string(),
            source,
        };
        let out = File::create(&log).map_err(spawn_error)?;
        let err = out.try_clone().map_err(spawn_error)?;
        let child = Command::new(&self.exe)
            .args(&self.args)
            .env("HOME", &self.home)
            .env_remove("NAMESRV_ADDR")
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(spawn_error)?;
        self.logs.push(log);
        self.child = Some(child);
        self.wait_listening(timeout_ms)
    }

    fn wait_listening(&mut self, timeout_ms: u64) -> Result<(), ChildError> {
        let started = Instant::now();
        loop {
            if TcpStream::connect(self.addr).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok()?) {
                self.child = None;
                return Err(ChildError::Exited {
                    node: self.name.clone(),
                    status: status.to_string(),
                    output: self.output(),
                });
            }
            if started.elapsed() >= Duration::from_millis(timeout_ms) {
                return Err(ChildError::NotListening {
                    node: self.name.clone(),
                    addr: self.addr,
                    timeout_ms,
                    output: self.output(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The current incarnation's output.
    pub fn output(&self) -> String {
        let mut text = String::new();
        if let Some(log) = self.logs.last() {
            let _ = File::open(log).and_then(|mut f| f.read_to_string(&mut text));
        }
        text
    }

    fn signal(&self, signal: libc::c_int) -> Result<(), ChildError> {
        let Some(pid) = self.pid() else {
            return Ok(());
        };
        // SAFETY: kill(2) with a pid this process spawned and has not reaped yet (the
        // child is reaped only in `reap`), so the pid cannot name another process.
        let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
        if rc == 0 {
            Ok(())
        } else {
            Err(ChildError::Signal {
                node: self.name.clone(),
                pid,
                source: io::Error::last_os_error(),
            })
        }
    }

    /// `kill -9` and reap: memory gone, the page cache (what it wrote) kept.
    pub fn kill9(&mut self) -> Result<(), ChildError> {
        self.signal(libc::SIGKILL)?;
        self.reap();
        Ok(())
    }

    /// SIGSTOP: the process freezes with its sockets open.
    pub fn pause(&self) -> Result<(), ChildError> {
        self.signal(libc::SIGSTOP)
    }

    /// SIGCONT after [`Self::pause`].
    pub fn resume(&self) -> Result<(), ChildError> {
        self.signal(libc::SIGCONT)
    }

    /// SIGTERM, and waits for the clean shutdown.
    pub fn terminate(&mut self, timeout_ms: u64) -> Result<(), ChildError> {
        self.signal(libc::SIGTERM)?;
        let started = Instant::now();
        while let Some(child) = self.child.as_mut() {
            if child.try_wait().ok().flatten().is_some() {
                self.child = None;
                return Ok(());
            }
            if started.elapsed() > Duration::from_millis(timeout_ms) {
                return Err(ChildError::NoExit {
                    node: self.name.clone(),
                    timeout_ms,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn reap(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ChildNode {
    fn drop(&mut self) {
        // A paused process must be killed too: SIGKILL works on a stopped process.
        self.reap();
    }
}
