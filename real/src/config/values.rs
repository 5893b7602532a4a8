//! Value parsers shared by the broker's and the name server's keys. Each returns, on
//! failure, the description of what is accepted, which the caller puts into
//! `ConfError::InvalidValue` next to the key and the value.

use std::net::IpAddr;

/// An integer in `[min, max]` (Java's `Long.parseLong` syntax: digits, optional `+`).
pub(crate) fn integer(value: &str, min: u64, max: u64) -> Result<u64, String> {
    let expected = || {
        if max == u64::MAX {
            format!("an integer >= {min}")
        } else {
            format!("an integer from {min} to {max}")
        }
    };
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(expected()),
    }
}

/// `true` or `false`, in any case. Java's `Boolean.parseBoolean` reads every other
/// word as false; a typo here is an error instead.
pub(crate) fn boolean(value: &str) -> Result<bool, String> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err("true or false".to_string())
    }
}

/// A TCP port to listen on.
pub(crate) fn port(value: &str) -> Result<u16, String> {
    integer(value, 1, u16::MAX as u64)
        .map(|p| p as u16)
        .map_err(|_| "a port from 1 to 65535".to_string())
}

/// A non-empty name without blanks (cluster, broker).
pub(crate) fn name(value: &str) -> Result<String, String> {
    if value.is_empty() || value.chars().any(char::is_whitespace) {
        return Err("a non-empty name without blanks".to_string());
    }
    Ok(value.to_string())
}

fn is_host(value: &str) -> bool {
    if value.parse::<IpAddr>().is_ok() {
        return true;
    }
    !value.is_empty()
        && value.len() <= 253
        && value.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// An IP address or a host name.
pub(crate) fn host(value: &str) -> Result<String, String> {
    if is_host(value) {
        Ok(value.to_string())
    } else {
        Err("an IP address or a host name".to_string())
    }
}

/// `host:port` (`[v6]:port` for an IPv6 address).
pub(crate) fn address(value: &str) -> Result<String, String> {
    let expected = || "host:port".to_string();
    let (host_part, port_part) = value.rsplit_once(':').ok_or_else(expected)?;
    let host_part = host_part
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host_part);
    if !is_host(host_part) || port(port_part).is_err() {
        return Err(expected());
    }
    Ok(value.to_string())
}

/// RocketMQ's name server list: `host:port` entries separated by `;` (blanks around
/// them and an empty last entry, as in `a:9876;b:9876;`, are tolerated).
pub(crate) fn address_list(value: &str) -> Result<Vec<String>, String> {
    let expected = || "host:port addresses separated by ';'".to_string();
    let addrs: Vec<&str> = value
        .split(';')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect();
    if addrs.is_empty() {
        return Err(expected());
    }
    addrs
        .into_iter()
        .map(|a| address(a).map_err(|_| expected()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(integer("10", 1, 20), Ok(10));
        assert_eq!(integer("+10", 1, 20), Ok(10));
        assert!(integer("0", 1, 20).is_err());
        assert!(integer("-1", 0, 20).is_err());
        assert!(integer("1k", 0, 20).is_err());
        assert_eq!(integer("x", 1, u64::MAX), Err("an integer >= 1".into()));
    }

    #[test]
    fn addresses() {
        assert_eq!(
            address_list("127.0.0.1:9876; ns2:9876;").unwrap(),
            vec!["127.0.0.1:9876", "ns2:9876"]
        );
        assert!(address_list(";").is_err());
        assert!(address_list("127.0.0.1").is_err());
        assert!(address_list("127.0.0.1:0").is_err());
        assert!(address("[::1]:9876").is_ok());
        assert!(address("a b:1").is_err());
        assert!(host("10.0.0.1").is_ok());
        assert!(host("broker-a.local").is_ok());
        assert!(host("").is_err());
        assert!(host("a..b").is_err());
    }

    #[test]
    fn booleans() {
        assert_eq!(boolean("TRUE"), Ok(true));
        assert_eq!(boolean("false"), Ok(false));
        assert!(boolean("yes").is_err());
    }
}
