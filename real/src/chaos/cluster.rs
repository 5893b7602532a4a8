//! The run's cluster: the name server and broker groups as processes, each behind
//! the TCP proxies of its links, and which links a network fault on a broker touches.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use rmq_sim::history::{FaultKind, FlushMode, Replication};

use super::child::{sibling_exe, ChildNode};
use super::proxy::{Flow, Link, Mode, Proxies};
use super::schedule::{broker_name, NetFault, Scope, Target};
use super::{io_error, master_node, slave_node, HarnessError, Options, NAMESRV_NODE};

/// Where every node binds. Its proxy takes the same port on [`PROXY_IP`], the address
/// the node registers (`bindAddress` apart from `brokerIP1`/`brokerIP2`), so each
/// connection to it crosses a [`proxy::Link`] the network faults can cut.
const NODE_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const PROXY_IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// One broker's links.
pub(super) struct BrokerLinks {
    /// Connections to its remoting port: the clients', and a master's slave's
    /// (SlaveSynchronize).
    pub(super) remoting: Link,
    /// Its own connection to the name server.
    pub(super) namesrv: Link,
}

/// One broker group's processes and links.
pub(super) struct Group {
    pub(super) master: ChildNode,
    pub(super) slave: Option<ChildNode>,
    pub(super) master_links: BrokerLinks,
    pub(super) slave_links: Option<BrokerLinks>,
    /// The slave's connection to the master's HA port.
    pub(super) replication: Option<Link>,
}

/// The run's processes and proxies: dropped, each process is killed by its id.
pub(super) struct Cluster {
    pub(super) _namesrv: ChildNode,
    /// The clients' name server address (through their proxy).
    pub(super) namesrv_addr: String,
    pub(super) groups: Vec<Group>,
    /// Dropped last: the links outlive the processes.
    pub(super) _proxies: Proxies,
}

fn write_file(path: &Path, text: &str) -> Result<(), HarnessError> {
    std::fs::write(path, text).map_err(io_error(format!("writing {}", path.display())))
}

pub(super) fn start_cluster(o: &Options, dir: &Path) -> Result<Cluster, HarnessError> {
    let proxies = Proxies::start().map_err(io_error("starting the proxies"))?;
    // A proxy on a free port of PROXY_IP in front of the same port of NODE_IP.
    let front = || {
        proxies
            .front(PROXY_IP, NODE_IP)
            .map_err(io_error("starting a proxy"))
    };
    let exe = |name| sibling_exe(name).map_err(io_error(format!("finding {name}")));
    let home = |name: &str| -> Result<PathBuf, HarnessError> {
        let h = dir.join(name);
        std::fs::create_dir_all(&h).map_err(io_error(format!("creating {}", h.display())))?;
        Ok(h)
    };
    let namesrv_home = home("namesrv")?;
    let clients_namesrv = front()?;
    let namesrv_node = clients_namesrv.node;
    let conf = namesrv_home.join("namesrv.properties");
    write_file(
        &conf,
        &format!(
            "listenPort={}\nbindAddress={NODE_IP}\n",
            namesrv_node.port()
        ),
    )?;
    let namesrv = ChildNode::start(
        "name server",
        exe("mqnamesrv")?,
        vec!["-c".into(), conf.display().to_string()],
        namesrv_home,
        namesrv_node,
        o.start_timeout_ms,
    )?;
    let namesrv_addr = clients_namesrv.listen.to_string();
    let flush = match o.flush {
        FlushMode::SyncFlush => "SYNC_FLUSH",
        FlushMode::AsyncFlush => "ASYNC_FLUSH",
    };
    let broker_exe = match &o.broker_exe {
        Some(path) => path.clone(),
        None => exe("mqbroker")?,
    };
    // One member of a group: its name, brokerId, role, and its master's HA port (the
    // proxy's, for a slave). Returns the process, its links and its own HA front.
    let broker = |group: &str, id: u32, role: &str, master_ha: Option<&Link>| {
        let name = format!("{group} {}", if id == 0 { "master" } else { "slave" });
        let h = home(&name.replace(' ', "-"))?;
        let remoting = front()?;
        let ha = front()?;
        let namesrv = proxies
            .link(SocketAddr::new(PROXY_IP, 0), namesrv_node)
            .map_err(io_error("starting a proxy"))?;
        let conf = h.join("broker.properties");
        let mut text = format!(
            "brokerClusterName=ChaosCluster\nbrokerName={group}\nbrokerId={id}\n\
             brokerRole={role}\nflushDiskType={flush}\nlistenPort={}\n\
             haListenPort={}\nbindAddress={NODE_IP}\nbrokerIP1={PROXY_IP}\n\
             brokerIP2={PROXY_IP}\nnamesrvAddr={}\nstorePathRootDir={}\n\
             mappedFileSizeCommitLog={}\n",
            remoting.node.port(),
            ha.node.port(),
            namesrv.listen,
            h.join("store").display(),
            o.commit_log_file_bytes
        );
        if let Some(master_ha) = master_ha {
            text.push_str(&format!("haMasterAddress={}\n", master_ha.listen));
        }
        write_file(&conf, &text)?;
        let node = ChildNode::start(
            &name,
            broker_exe.clone(),
            vec!["-c".into(), conf.display().to_string()],
            h,
            remoting.node,
            o.start_timeout_ms,
        )?;
        Ok::<_, HarnessError>((node, BrokerLinks { remoting, namesrv }, ha))
    };
    let master_role = match o.replication {
        Replication::Sync => "SYNC_MASTER",
        Replication::Async | Replication::None => "ASYNC_MASTER",
    };
    let mut groups = Vec::new();
    for g in 0..o.groups {
        let name = broker_name(g);
        let (master, master_links, master_ha) = broker(&name, 0, master_role, None)?;
        let (slave, slave_links) = match o.replication {
            Replication::None => (None, None),
            Replication::Sync | Replication::Async => {
                let (slave, links, _) = broker(&name, 1, "SLAVE", Some(&master_ha))?;
                (Some(slave), Some(links))
            }
        };
        groups.push(Group {
            master,
            slave,
            master_links,
            replication: slave_links.as_ref().map(|_| master_ha),
            slave_links,
        });
    }
    Ok(Cluster {
        _namesrv: namesrv,
        namesrv_addr,
        groups,
        _proxies: proxies,
    })
}

/// A link a network step touches, with the nodes at its other end.
pub(super) struct Touched<'c> {
    pub(super) link: &'c Link,
    /// Whether the struck broker is the node behind the proxy (the link's `to_node`
    /// direction goes to it), or the side that connects.
    pub(super) behind: bool,
    pub(super) peers: Vec<u32>,
}

/// The links of `scope` of group `g`'s `target` broker.
pub(super) fn links_of<'c>(
    cluster: &'c Cluster,
    g: u32,
    target: Target,
    scope: Scope,
    clients: &[u32],
) -> Vec<Touched<'c>> {
    let group = &cluster.groups[g as usize];
    let (links, partner, struck_is_master) = match (target, group.slave_links.as_ref()) {
        (Target::Slave, Some(links)) => (links, master_node(g), false),
        _ => (&group.master_links, slave_node(g), true),
    };
    let mut out = Vec::new();
    if matches!(scope, Scope::Node | Scope::Clients) {
        let mut peers = clients.to_vec();
        if struck_is_master && group.slave.is_some() {
            peers.push(slave_node(g));
        }
        out.push(Touched {
            link: &links.remoting,
            behind: true,
            peers,
        });
    }
    if scope == Scope::Node {
        out.push(Touched {
            link: &links.namesrv,
            behind: false,
            peers: vec![NAMESRV_NODE],
        });
    }
    if matches!(scope, Scope::Node | Scope::Replication) {
        if let Some(link) = &group.replication {
            // The master's HA port is behind it; the slave connects.
            out.push(Touched {
                link,
                behind: struck_is_master,
                peers: vec![partner],
            });
        }
    }
    out
}

/// The history's kind for a network fault and its detail, `{x}` the struck broker and
/// `{p}` a peer (the checker reads the peer as the second node named).
pub(super) fn net_words(how: NetFault) -> (FaultKind, String) {
    match how {
        NetFault::Partition => (FaultKind::Partition, "partition {x} <-> {p}".into()),
        NetFault::RequestsLost => (FaultKind::Partition, "partition {x} <- {p}".into()),
        NetFault::AnswersLost => (FaultKind::Partition, "partition {x} -> {p}".into()),
        // Held bytes arrive late, none lost: a partition whose packets all come
        // through after it, as the rules see a delay.
        NetFault::Stall => (FaultKind::Partition, "stall {x} <-> {p}".into()),
        NetFault::Clog { extra_ms } => (
            FaultKind::Clog,
            format!("clog {{x}} <-> {{p}} +{extra_ms}ms"),
        ),
    }
}

/// The proxy mode of a network fault on a link, `behind` as in [`Touched`].
pub(super) fn net_mode(how: NetFault, behind: bool) -> Mode {
    let both = |flow| Mode {
        to_node: flow,
        from_node: flow,
    };
    // `lost` on the direction towards (or away from) the struck broker.
    let one_way = |towards_struck: bool| {
        if towards_struck == behind {
            Mode {
                to_node: Flow::Drop,
                from_node: Flow::Pass,
            }
        } else {
            Mode {
                to_node: Flow::Pass,
                from_node: Flow::Drop,
            }
        }
    };
    match how {
        NetFault::Partition => both(Flow::Drop),
        NetFault::RequestsLost => one_way(true),
        NetFault::AnswersLost => one_way(false),
        NetFault::Stall => both(Flow::Stall),
        NetFault::Clog { extra_ms } => both(Flow::Delay { ms: extra_ms }),
    }
}
