//! The options `mqbroker` and `mqnamesrv` share (`ServerUtil.buildCommandlineOptions`
//! plus each startup's own): `-c configFile`, `-n namesrvAddr`, `-p printConfigItem`,
//! `-m printImportantConfig`, `-h help`. As with commons-cli, an option's value may
//! follow it (`-c file`), be glued to it (`-cfile`), or use the long name
//! (`--configFile file`, `--configFile=file`).

use std::path::PathBuf;

use super::ConfError;

pub const USAGE: &str = "usage: [-c configFile] [-n namesrvAddr] [-p] [-m] [-h]
  -c, --configFile FILE         properties file (RocketMQ's broker.conf / namesrv.conf format)
  -n, --namesrvAddr ADDRS       name servers, e.g. 192.168.0.1:9876;192.168.0.2:9876
  -p, --printConfigItem         print every setting and exit
  -m, --printImportantConfig    print the important settings and exit
  -h, --help                    print this help and exit";

/// What the command line asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandLine {
    pub config_file: Option<PathBuf>,
    /// `-n`: overrides `namesrvAddr` from the file and `NAMESRV_ADDR`.
    pub namesrv_addr: Option<String>,
    pub print_config: bool,
    pub print_important_config: bool,
    pub help: bool,
}

/// Parses the arguments after the program name.
pub fn parse_command_line<I, S>(args: I) -> Result<CommandLine, ConfError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut out = CommandLine::default();
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        let (option, glued): (&str, Option<String>) = if let Some(long) = arg.strip_prefix("--") {
            match long.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (long, None),
            }
        } else if let Some(short) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            let (name, rest) = short.split_at(short.chars().next().map_or(0, char::len_utf8));
            (name, (!rest.is_empty()).then(|| rest.to_string()))
        } else {
            return Err(ConfError::Usage(format!("unexpected argument {arg:?}")));
        };
        let mut value = |flag: &str| -> Result<String, ConfError> {
            match glued.clone().or_else(|| args.next()) {
                Some(v) => Ok(v),
                None => Err(ConfError::Usage(format!("option {flag} needs a value"))),
            }
        };
        let flag_only = |set: &mut bool| -> Result<(), ConfError> {
            if glued.is_some() {
                return Err(ConfError::Usage(format!("option {arg} takes no value")));
            }
            *set = true;
            Ok(())
        };
        match option {
            "c" | "configFile" => out.config_file = Some(PathBuf::from(value("-c")?)),
            "n" | "namesrvAddr" => out.namesrv_addr = Some(value("-n")?),
            "p" | "printConfigItem" => flag_only(&mut out.print_config)?,
            "m" | "printImportantConfig" => flag_only(&mut out.print_important_config)?,
            "h" | "help" => flag_only(&mut out.help)?,
            _ => return Err(ConfError::Usage(format!("unknown option {arg:?}"))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_long_and_glued_forms() {
        let expected = CommandLine {
            config_file: Some(PathBuf::from("conf/broker.conf")),
            namesrv_addr: Some("127.0.0.1:9876".into()),
            ..CommandLine::default()
        };
        for args in [
            vec!["-c", "conf/broker.conf", "-n", "127.0.0.1:9876"],
            vec!["-cconf/broker.conf", "-n127.0.0.1:9876"],
            vec![
                "--configFile",
                "conf/broker.conf",
                "--namesrvAddr=127.0.0.1:9876",
            ],
        ] {
            assert_eq!(parse_command_line(args).unwrap(), expected);
        }
        let flags = parse_command_line(["-p", "-m", "-h"]).unwrap();
        assert!(flags.print_config && flags.print_important_config && flags.help);
        assert_eq!(
            parse_command_line(Vec::<String>::new()).unwrap(),
            CommandLine::default()
        );
    }

    #[test]
    fn mistakes_are_usage_errors() {
        for args in [
            vec!["-c"],
            vec!["-x"],
            vec!["broker.conf"],
            vec!["-pvalue"],
            vec!["-"],
        ] {
            let err = parse_command_line(args.clone()).unwrap_err();
            assert!(matches!(err, ConfError::Usage(_)), "{args:?}: {err}");
            assert!(err.to_string().contains("usage:"), "{err}");
        }
    }
}
