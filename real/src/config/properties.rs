//! The text format of `java.util.Properties.load`, which RocketMQ's `BrokerStartup` and
//! `NamesrvStartup` use to read `-c` files.
//!
//! What `Properties` accepts, and so what is accepted here:
//! - natural lines end at `\n`, `\r\n` or `\r`; a line whose first non-blank character is
//!   `#` or `!` is a comment, a line of blanks (space, tab, form feed) is skipped;
//! - a line ending in an odd number of backslashes continues on the next line, whose
//!   leading blanks are dropped;
//! - the key runs to the first unescaped `=`, `:` or blank; then blanks, at most one
//!   `=` or `:`, and blanks again are skipped: `k=v`, `k = v`, `k:v`, `k v` are the same;
//!   the rest of the line is the value (a lone `k` has the empty value);
//! - escapes `\t \n \r \f \uXXXX`, and `\` before any other character stands for it.
//!
//! Deviations: a file that is valid UTF-8 is read as UTF-8 (`Properties.load` of a
//! stream reads ISO 8859-1; the two agree on ASCII, which every RocketMQ key and almost
//! every value is), anything else as ISO 8859-1. A malformed `\u` escape is an error
//! naming the line, as it is in Java.

use std::borrow::Cow;

/// One `key=value` pair, with the (1-based) line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {detail}")]
pub struct PropertiesError {
    pub line: usize,
    pub detail: String,
}

/// The text of a properties file: UTF-8 if it is, ISO 8859-1 otherwise.
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

/// Every pair in file order (a later duplicate does not remove an earlier one here: the
/// caller decides; `Properties` keeps the last).
pub fn parse(text: &str) -> Result<Vec<Entry>, PropertiesError> {
    let mut entries = Vec::new();
    let mut logical = String::new();
    let mut logical_start_line = 0;
    let mut continuing = false;
    for (index, natural) in natural_lines(text).enumerate() {
        let line_number = index + 1;
        let trimmed = natural.trim_start_matches(is_blank);
        if !continuing {
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
                continue;
            }
            logical.clear();
            logical_start_line = line_number;
        }
        let trailing_backslashes = trimmed.chars().rev().take_while(|&c| c == '\\').count();
        if trailing_backslashes % 2 == 1 {
            logical.push_str(&trimmed[..trimmed.len() - 1]);
            continuing = true;
            continue;
        }
        logical.push_str(trimmed);
        continuing = false;
        entries.push(split_entry(&logical, logical_start_line)?);
    }
    // A continuation on the last line ends the logical line, as in Java.
    if continuing && !logical.is_empty() {
        entries.push(split_entry(&logical, logical_start_line)?);
    }
    Ok(entries)
}

/// Natural lines: split at `\n`, `\r\n` or a lone `\r`.
fn natural_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.find(['\n', '\r']) {
            Some(i) => {
                let line = &rest[..i];
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
                Some(line)
            }
            None => {
                let line = rest;
                rest = "";
                Some(line)
            }
        }
    })
}

/// A logical line (leading blanks already gone) into its unescaped key and value.
fn split_entry(logical: &str, line: usize) -> Result<Entry, PropertiesError> {
    let mut key_end = logical.len();
    let mut has_separator = false;
    let mut escaped = false;
    for (i, c) in logical.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' {
            key_end = i;
            has_separator = true;
            break;
        } else if is_blank(c) {
            key_end = i;
            break;
        }
    }
    let mut value_start = if has_separator { key_end + 1 } else { key_end };
    for c in logical[value_start..].chars() {
        if is_blank(c) {
            value_start += c.len_utf8();
        } else if !has_separator && (c == '=' || c == ':') {
            has_separator = true;
            value_start += 1;
        } else {
            break;
        }
    }
    Ok(Entry {
        key: unescape(&logical[..key_end], line)?,
        value: unescape(&logical[value_start..], line)?,
        line,
    })
}

fn unescape(raw: &str, line: usize) -> Result<String, PropertiesError> {
    if !raw.contains('\\') {
        return Ok(raw.to_string());
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = (hex.len() == 4)
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .ok_or_else(|| PropertiesError {
                        line,
                        detail: format!("malformed \\uxxxx escape: \\u{hex}"),
                    })?;
                // A lone UTF-16 surrogate has no char; Java would keep it in its string.
                out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect()
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn separators_blanks_and_comments() {
        let text =
            "# comment\n! also a comment\n\n   \na=1\nb = 2\nc:3\nd 4\n\te\t=\t5\nf\ng =  = 6\n";
        assert_eq!(
            pairs(text),
            vec![
                pair("a", "1"),
                pair("b", "2"),
                pair("c", "3"),
                pair("d", "4"),
                pair("e", "5"),
                pair("f", ""),
                pair("g", "= 6"),
            ]
        );
    }

    #[test]
    fn line_endings_and_continuations() {
        assert_eq!(
            pairs("a=1\r\nb=2\rc=3"),
            vec![pair("a", "1"), pair("b", "2"), pair("c", "3")]
        );
        assert_eq!(
            pairs("list=x;\\\n    y;\\\n    z\nnext=1\n"),
            vec![pair("list", "x;y;z"), pair("next", "1")]
        );
        // An even number of trailing backslashes is an escaped backslash, not a join.
        assert_eq!(
            pairs("a=c:\\\\\nb=2"),
            vec![pair("a", "c:\\"), pair("b", "2")]
        );
        // A comment line never continues, even when it ends in a backslash.
        assert_eq!(pairs("# x \\\na=1"), vec![pair("a", "1")]);
        // A continuation at the end of the file ends the pair.
        assert_eq!(pairs("a=1\\"), vec![pair("a", "1")]);
    }

    #[test]
    fn escapes() {
        assert_eq!(
            pairs("k\\=ey=v\\:al\\tue\\u0041\\z"),
            vec![pair("k=ey", "v:al\tueAz")]
        );
        assert_eq!(pairs("sp\\ ace value"), vec![pair("sp ace", "value")]);
        let err = parse("a=1\nb=\\u12").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.detail.contains("\\u"), "{err}");
    }

    #[test]
    fn line_numbers_and_trailing_blanks() {
        let entries = parse("\n# c\nkey=value  \n").unwrap();
        assert_eq!(entries[0].line, 3);
        // Properties keeps trailing blanks; the config layer trims them.
        assert_eq!(entries[0].value, "value  ");
    }

    #[test]
    fn latin1_fallback() {
        assert_eq!(decode(b"a=\xe9"), "a=\u{e9}");
        assert_eq!(decode("a=é".as_bytes()), "a=é");
    }
}
