//! `mqnamesrv`'s configuration (`NamesrvStartup`): defaults, then the `-c` properties
//! file. Keys: `listenPort` (9876), `bindAddress` (RocketMQ 5's `NettyServerConfig`;
//! 127.0.0.1 here rather than 0.0.0.0, so that a name server started without a config
//! file is not exposed beyond this machine), `scanNotActiveBrokerInterval` (5.x
//! `NamesrvConfig`; 4.x fixes the period at 10 s, which stays the default).

use std::path::Path;

use rmq_model::namesrv::NamesrvConfig;

use super::values::{host, integer, port};
use super::{
    apply_file, parse_command_line, read_file, CommandLine, ConfError, KeyAction, Loaded, Setter,
};

/// `listenPort`'s default.
pub const DEFAULT_LISTEN_PORT: u16 = 9876;
/// `bindAddress`'s default here: loopback unless the file says otherwise.
pub const DEFAULT_BIND_ADDRESS: &str = "127.0.0.1";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamesrvConf {
    /// The state machine's settings.
    pub namesrv: NamesrvConfig,
    /// `listenPort`.
    pub listen_port: u16,
    /// `bindAddress`: the address the name server listens on.
    pub bind_address: String,
}

impl Default for NamesrvConf {
    fn default() -> Self {
        NamesrvConf {
            namesrv: NamesrvConfig::default(),
            listen_port: DEFAULT_LISTEN_PORT,
            bind_address: DEFAULT_BIND_ADDRESS.to_string(),
        }
    }
}

impl NamesrvConf {
    /// `bindAddress:listenPort`.
    pub fn listen_addr(&self) -> String {
        if self.bind_address.contains(':') {
            format!("[{}]:{}", self.bind_address, self.listen_port)
        } else {
            format!("{}:{}", self.bind_address, self.listen_port)
        }
    }

    /// Every setting as `key=value` lines (`-p`); reading them back gives the same.
    pub fn to_properties(&self) -> String {
        KEYS.iter()
            .map(|(name, _, get)| format!("{name}={}\n", get(self)))
            .collect()
    }
}

type Key = (
    &'static str,
    Setter<NamesrvConf>,
    fn(&NamesrvConf) -> String,
);

const KEYS: &[Key] = &[
    (
        "listenPort",
        |c, v| {
            c.listen_port = port(v)?;
            Ok(None)
        },
        |c| c.listen_port.to_string(),
    ),
    (
        "bindAddress",
        |c, v| {
            c.bind_address = host(v)?;
            Ok(None)
        },
        |c| c.bind_address.clone(),
    ),
    (
        "scanNotActiveBrokerInterval",
        |c, v| {
            c.namesrv.scan_not_active_broker_interval_ms =
                integer(v, 1, u64::MAX).map_err(|e| format!("{e} (milliseconds)"))?;
            Ok(None)
        },
        |c| c.namesrv.scan_not_active_broker_interval_ms.to_string(),
    ),
];

/// RocketMQ keys accepted without effect, with the reason told to the operator.
const NO_EFFECT: &[(&str, &str)] = &[
    (
        "rocketmqHome",
        "no effect: rocketsim needs no install directory",
    ),
    (
        "kvConfigPath",
        "no effect: the name server keeps nothing on disk",
    ),
    (
        "configStorePath",
        "no effect: the name server keeps nothing on disk",
    ),
    (
        "orderMessageEnable",
        "no effect: order-topic KV config is not implemented",
    ),
    ("productEnvName", "no effect"),
    ("clusterTest", "no effect"),
    (
        "serverWorkerThreads",
        "no effect: one thread runs the name server",
    ),
];

fn lookup(key: &str) -> Option<KeyAction<NamesrvConf>> {
    if let Some((_, set, _)) = KEYS.iter().find(|(name, _, _)| *name == key) {
        return Some(KeyAction::Set(*set));
    }
    NO_EFFECT
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, reason)| KeyAction::NoEffect(reason))
}

/// Every key name read, in `-p` order.
pub fn known_keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|(name, _, _)| *name)
}

/// Parses `mqnamesrv`'s arguments and reads the `-c` file they name, if any.
pub fn load_namesrv(
    args: impl IntoIterator<Item = impl Into<String>>,
) -> Result<(CommandLine, Loaded<NamesrvConf>), ConfError> {
    let command_line = parse_command_line(args)?;
    let loaded = match &command_line.config_file {
        Some(path) => {
            let text = read_file(path)?;
            namesrv_conf_from_text(Some((path, &text)), &command_line)?
        }
        None => namesrv_conf_from_text(None, &command_line)?,
    };
    Ok((command_line, loaded))
}

/// The configuration from the text of a properties file (and its path, for messages).
pub fn namesrv_conf_from_text(
    file: Option<(&Path, &str)>,
    command_line: &CommandLine,
) -> Result<Loaded<NamesrvConf>, ConfError> {
    let mut conf = NamesrvConf::default();
    let mut unknown_keys = Vec::new();
    let mut notes = Vec::new();
    if let Some((path, text)) = file {
        apply_file(&mut conf, path, text, lookup, &mut unknown_keys, &mut notes)?;
    }
    if command_line.namesrv_addr.is_some() {
        notes.push("-n has no effect on a name server".to_string());
    }
    Ok(Loaded {
        conf,
        unknown_keys,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Origin;
    use std::path::PathBuf;

    fn from(text: &str) -> Result<Loaded<NamesrvConf>, ConfError> {
        namesrv_conf_from_text(
            Some((Path::new("namesrv.conf"), text)),
            &CommandLine::default(),
        )
    }

    #[test]
    fn defaults() {
        let loaded = namesrv_conf_from_text(None, &CommandLine::default()).unwrap();
        assert_eq!(loaded.conf, NamesrvConf::default());
        assert_eq!(loaded.conf.listen_addr(), "127.0.0.1:9876");
        assert!(loaded.warnings().is_empty());
    }

    #[test]
    fn every_key_and_round_trip() {
        let loaded = from(
            "listenPort = 9877\nbindAddress=0.0.0.0\nscanNotActiveBrokerInterval=5000\n\
             rocketmqHome=/opt/rocketmq\nkvConfigPath=/x\nfoo=bar\n",
        )
        .unwrap();
        let conf = &loaded.conf;
        assert_eq!(conf.listen_port, 9877);
        assert_eq!(conf.bind_address, "0.0.0.0");
        assert_eq!(conf.namesrv.scan_not_active_broker_interval_ms, 5000);
        assert_eq!(
            loaded.unknown_keys,
            vec![crate::config::UnknownKey {
                key: "foo".into(),
                origin: Origin::File {
                    path: PathBuf::from("namesrv.conf"),
                    line: 6
                }
            }]
        );
        assert_eq!(loaded.notes.len(), 2, "{:?}", loaded.notes);
        assert!(loaded.notes[0].contains("rocketmqHome"));
        let again = from(&conf.to_properties()).unwrap();
        assert_eq!(&again.conf, conf);
        assert!(again.warnings().is_empty(), "{:?}", again.warnings());
        assert_eq!(known_keys().count(), KEYS.len());
    }

    #[test]
    fn bad_values_name_key_value_and_choices() {
        for (text, key) in [
            ("listenPort=abc", "listenPort"),
            ("listenPort=0", "listenPort"),
            ("listenPort=70000", "listenPort"),
            ("bindAddress=not an ip", "bindAddress"),
            (
                "scanNotActiveBrokerInterval=0",
                "scanNotActiveBrokerInterval",
            ),
        ] {
            let err = from(text).unwrap_err();
            let message = err.to_string();
            assert!(message.starts_with("namesrv.conf:1: "), "{message}");
            assert!(message.contains(key), "{message}");
            assert!(message.contains("expected"), "{message}");
        }
    }

    #[test]
    fn command_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("namesrv.conf");
        std::fs::write(&path, "listenPort=9999\n").unwrap();
        let (cmd, loaded) = load_namesrv(["-c", path.to_str().unwrap()]).unwrap();
        assert_eq!(cmd.config_file.as_deref(), Some(path.as_path()));
        assert_eq!(loaded.conf.listen_port, 9999);
        let err = load_namesrv(["-c", "/no/such/namesrv.conf"]).unwrap_err();
        assert!(err.to_string().contains("/no/such/namesrv.conf"), "{err}");
        let (_, loaded) = load_namesrv(["-n", "127.0.0.1:9876"]).unwrap();
        assert_eq!(loaded.notes, vec!["-n has no effect on a name server"]);
    }
}
