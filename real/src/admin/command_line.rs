//! The sub-commands and their options, as RocketMQ's `SubCommand.buildCommandlineOptions`
//! declare them (same letters, long names and descriptions), parsed as commons-cli
//! parses them, with its usage layout. `-h` and `-n` are every command's
//! (`ServerUtil.buildCommandlineOptions`).

use std::collections::BTreeMap;
use std::io::Write;
use std::str::FromStr;

use super::AdminError;

/// One option of a sub-command.
#[derive(Debug)]
pub struct OptSpec {
    pub short: char,
    pub long: &'static str,
    /// Takes a value (`-t TopicTest`), or is a flag (`-l`).
    pub takes_value: bool,
    pub required: bool,
    pub description: &'static str,
}

pub(super) const fn opt(
    short: char,
    long: &'static str,
    required: bool,
    description: &'static str,
) -> OptSpec {
    OptSpec {
        short,
        long,
        takes_value: true,
        required,
        description,
    }
}

pub(super) const fn flag(short: char, long: &'static str, description: &'static str) -> OptSpec {
    OptSpec {
        short,
        long,
        takes_value: false,
        required: false,
        description,
    }
}

const COMMON: [OptSpec; 2] = [
    flag('h', "help", "Print help"),
    opt(
        'n',
        "namesrvAddr",
        false,
        "Name server address list, eg: '192.168.0.1:9876;192.168.0.2:9876'",
    ),
];

pub struct SubCommand {
    pub name: &'static str,
    pub description: &'static str,
    pub options: &'static [OptSpec],
    /// Options of which exactly one must be given (commons-cli's required OptionGroup).
    pub one_of: &'static [char],
    pub run: fn(&Invocation, &mut dyn Write) -> Result<(), AdminError>,
}

fn all_options(cmd: &SubCommand) -> Vec<&OptSpec> {
    let mut all: Vec<&OptSpec> = COMMON.iter().chain(cmd.options).collect();
    all.sort_by_key(|o| o.short);
    all
}

/// commons-cli's `HelpFormatter.printHelp(app, options, autoUsage = true)`.
pub fn print_usage(cmd: &SubCommand, out: &mut dyn Write) -> std::io::Result<()> {
    let all = all_options(cmd);
    let mut usage = format!("usage: mqadmin {}", cmd.name);
    if !cmd.one_of.is_empty() {
        let group: Vec<String> = cmd.one_of.iter().map(|c| format!("-{c} <arg>")).collect();
        usage.push_str(&format!(" {}", group.join(" | ")));
    }
    for o in all.iter().filter(|o| !cmd.one_of.contains(&o.short)) {
        let arg = if o.takes_value { " <arg>" } else { "" };
        if o.required {
            usage.push_str(&format!(" -{}{arg}", o.short));
        } else {
            usage.push_str(&format!(" [-{}{arg}]", o.short));
        }
    }
    writeln!(out, "{usage}")?;
    let names: Vec<String> = all
        .iter()
        .map(|o| {
            let arg = if o.takes_value { " <arg>" } else { "" };
            format!(" -{},--{}{arg}", o.short, o.long)
        })
        .collect();
    let width = names.iter().map(String::len).max().unwrap_or(0);
    for (name, o) in names.iter().zip(&all) {
        writeln!(out, "{name:<width$}   {}", o.description)?;
    }
    Ok(())
}

/// A parsed command line: the values of the options given.
#[derive(Debug)]
pub struct Invocation {
    values: BTreeMap<char, String>,
    /// `-n`, else `NAMESRV_ADDR`.
    namesrv: Option<String>,
}

impl Invocation {
    /// Parses `args` for `cmd`; `Ok(None)` when `-h` asked for the usage.
    pub fn parse(
        cmd: &SubCommand,
        args: &[String],
        namesrv_env: Option<String>,
    ) -> Result<Option<Invocation>, AdminError> {
        let all = all_options(cmd);
        let usage = |m: String| AdminError::Usage(m);
        let mut values = BTreeMap::new();
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            let (spec, glued) = if let Some(long) = arg.strip_prefix("--") {
                let (name, glued) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (long, None),
                };
                let spec = all
                    .iter()
                    .find(|o| o.long == name)
                    .ok_or_else(|| usage(format!("Unrecognized option: {arg}")))?;
                (spec, glued)
            } else if let Some(short) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
                let mut chars = short.chars();
                let letter = chars.next().expect("not empty");
                let spec = all
                    .iter()
                    .find(|o| o.short == letter)
                    .ok_or_else(|| usage(format!("Unrecognized option: {arg}")))?;
                let glued = chars.as_str();
                (spec, (!glued.is_empty()).then(|| glued.to_string()))
            } else {
                return Err(usage(format!("Unexpected argument: {arg}")));
            };
            let value = if spec.takes_value {
                match glued.or_else(|| rest.next().cloned()) {
                    Some(v) => v,
                    None => {
                        return Err(usage(format!(
                            "Missing argument for option: {}",
                            spec.short
                        )))
                    }
                }
            } else if glued.is_some() {
                return Err(usage(format!("Option -{} takes no value", spec.short)));
            } else {
                String::new()
            };
            values.insert(spec.short, value);
        }
        if values.contains_key(&'h') {
            return Ok(None);
        }
        let missing: Vec<String> = all
            .iter()
            .filter(|o| o.required && !values.contains_key(&o.short))
            .map(|o| o.short.to_string())
            .collect();
        if !missing.is_empty() {
            let s = if missing.len() > 1 { "s" } else { "" };
            return Err(usage(format!(
                "Missing required option{s}: {}",
                missing.join(", ")
            )));
        }
        if !cmd.one_of.is_empty() {
            let given = cmd.one_of.iter().filter(|c| values.contains_key(c)).count();
            let group: Vec<String> = cmd.one_of.iter().map(|c| format!("-{c}")).collect();
            if given == 0 {
                return Err(usage(format!(
                    "Missing required option: [{}]",
                    group.join(", ")
                )));
            }
            if given > 1 {
                return Err(usage(format!(
                    "Only one of [{}] may be given",
                    group.join(", ")
                )));
            }
        }
        let namesrv = values.remove(&'n').or(namesrv_env);
        Ok(Some(Invocation { values, namesrv }))
    }

    /// The option's value, trimmed as RocketMQ's commands trim it.
    pub fn value(&self, short: char) -> Option<&str> {
        self.values.get(&short).map(|v| v.trim())
    }

    pub fn has(&self, short: char) -> bool {
        self.values.contains_key(&short)
    }

    /// A number option, `default` when absent.
    pub fn num<T: FromStr>(&self, short: char, default: T) -> Result<T, AdminError> {
        match self.value(short) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                AdminError::Usage(format!("option -{short}: {v:?} is not a valid number"))
            }),
        }
    }

    /// A boolean option as Java's `Boolean.parseBoolean` reads it: "true" in any case.
    pub fn boolean(&self, short: char) -> bool {
        self.value(short)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// The name servers (`;`-separated), or the error saying how to give them.
    pub fn namesrv_addrs(&self) -> Result<Vec<String>, AdminError> {
        let addrs: Vec<String> = self
            .namesrv
            .as_deref()
            .unwrap_or("")
            .split(';')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        if addrs.is_empty() {
            return Err(AdminError::Usage(
                "no name server address: give -n 127.0.0.1:9876 or set NAMESRV_ADDR".into(),
            ));
        }
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::sub_commands::find;

    fn parse(
        name: &str,
        args: &[&str],
        env: Option<&str>,
    ) -> Result<Option<Invocation>, AdminError> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        Invocation::parse(find(name).unwrap(), &args, env.map(str::to_string))
    }

    #[test]
    fn options_parse_as_commons_cli_parses_them() {
        let inv = parse(
            "updateTopic",
            &[
                "-n",
                "1.2.3.4:9876;5.6.7.8:9876",
                "-t",
                " T ",
                "--readQueueNums=3",
                "-w4",
                "-c",
                "C",
            ],
            Some("ignored:1"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(inv.value('t'), Some("T"));
        assert_eq!(inv.num('r', 8u32).unwrap(), 3);
        assert_eq!(inv.num('w', 8u32).unwrap(), 4);
        assert_eq!(inv.num('p', 6u32).unwrap(), 6, "default when absent");
        assert_eq!(
            inv.namesrv_addrs().unwrap(),
            ["1.2.3.4:9876", "5.6.7.8:9876"]
        );
        let env = parse("topicList", &[], Some("9.9.9.9:9876"))
            .unwrap()
            .unwrap();
        assert_eq!(
            env.namesrv_addrs().unwrap(),
            ["9.9.9.9:9876"],
            "NAMESRV_ADDR"
        );
        assert!(matches!(
            parse("topicList", &[], None)
                .unwrap()
                .unwrap()
                .namesrv_addrs(),
            Err(AdminError::Usage(_))
        ));
        assert!(parse("topicRoute", &["-h"], None).unwrap().is_none());
        assert!(find("TOPICLIST").is_some(), "names match ignoring case");
    }

    #[test]
    fn mistakes_are_usage_errors_naming_the_option() {
        let usage = |name: &str, args: &[&str]| match parse(name, args, None) {
            Err(AdminError::Usage(m)) => m,
            other => panic!("{args:?}: {other:?}"),
        };
        assert_eq!(usage("topicRoute", &[]), "Missing required option: t");
        assert_eq!(
            usage("topicRoute", &["-t"]),
            "Missing argument for option: t"
        );
        assert_eq!(
            usage("topicRoute", &["-t", "T", "-x"]),
            "Unrecognized option: -x"
        );
        assert_eq!(
            usage("topicRoute", &["-t", "T", "--nope"]),
            "Unrecognized option: --nope"
        );
        assert_eq!(
            usage("topicRoute", &["-t", "T", "stray"]),
            "Unexpected argument: stray"
        );
        assert_eq!(
            usage("updateTopic", &["-t", "T"]),
            "Missing required option: [-b, -c]"
        );
        assert_eq!(
            usage("updateTopic", &["-t", "T", "-b", "a:1", "-c", "C"]),
            "Only one of [-b, -c] may be given"
        );
        let inv = parse("updateTopic", &["-t", "T", "-b", "a:1", "-r", "x"], None)
            .unwrap()
            .unwrap();
        assert!(matches!(inv.num('r', 8u32), Err(AdminError::Usage(_))));
    }

    #[test]
    fn usage_lists_every_option_as_commons_cli_does() {
        let mut out = Vec::new();
        print_usage(find("topicRoute").unwrap(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "usage: mqadmin topicRoute [-h] [-l] [-n <arg>] -t <arg>\n\
             \x20-h,--help                Print help\n\
             \x20-l,--list                Use list format to print data\n\
             \x20-n,--namesrvAddr <arg>   Name server address list, eg: '192.168.0.1:9876;192.168.0.2:9876'\n\
             \x20-t,--topic <arg>         topic name\n"
        );
    }
}
