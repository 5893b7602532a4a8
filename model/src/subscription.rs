//! A consumer group's tag subscription (`SubscriptionData`, built by
//! `FilterAPI.buildSubscriptionData`, reference C.2) — the ONE parser of tag
//! expressions that the broker and the client share, so the two sides can never
//! disagree on what an expression means.
//!
//! - `*` or an empty expression subscribes to everything, untagged messages included.
//! - Otherwise the expression is split on `||` and each piece trimmed; the non-empty
//!   pieces are the subscribed tags, and their Java hash codes the code set.
//! - The broker matches a consume-queue entry by its tag hash code
//!   ([`CodeFilter::matches_code`], the code set alone, which agrees with
//!   [`SubscriptionData::matches_code`]; `ExpressionMessageFilter.isMatchedByConsumeQueue`);
//!   a hash collision passes there, so the client matches the TAGS string exactly
//!   ([`SubscriptionData::matches_tags`], `PullAPIWrapper.processPullResult`).
//!
//! Deviations, both on degenerate expressions: the whole expression is trimmed before
//! it is compared with `*` (RocketMQ would read ` * ` as the tag `*`), and an
//! expression of separators only (` || `) subscribes to nothing on both sides
//! (RocketMQ's broker passes nothing for it and its client, seeing an empty tag set,
//! would filter nothing — the same end result).

use std::collections::BTreeSet;

use crate::message::tags_code;

/// `SubscriptionData.SUB_ALL`.
pub const SUB_ALL: &str = "*";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubscriptionData {
    /// `*` or empty: every message.
    All,
    /// Only messages whose TAGS is one of `tags` (`tagsSet`); `codes` are their hash
    /// codes (`codeSet`), as the consume queue stores them.
    Tags {
        tags: BTreeSet<String>,
        codes: BTreeSet<i64>,
    },
}

impl SubscriptionData {
    /// `FilterAPI.buildSubscriptionData` for the TAG expression type.
    pub fn parse(expression: &str) -> SubscriptionData {
        let Some(names) = tag_names(expression) else {
            return SubscriptionData::All;
        };
        let tags: BTreeSet<String> = names.map(str::to_string).collect();
        let codes = tags.iter().map(|t| tags_code(Some(t))).collect();
        SubscriptionData::Tags { tags, codes }
    }

    pub fn is_all(&self) -> bool {
        matches!(self, SubscriptionData::All)
    }

    /// The broker's match on a consume-queue entry's tag hash code.
    pub fn matches_code(&self, tags_code: i64) -> bool {
        match self {
            SubscriptionData::All => true,
            SubscriptionData::Tags { codes, .. } => codes.contains(&tags_code),
        }
    }

    /// The client's exact match on a message's TAGS (none: only `*` takes it).
    pub fn matches_tags(&self, tags: Option<&str>) -> bool {
        match self {
            SubscriptionData::All => true,
            SubscriptionData::Tags { tags: set, .. } => tags.is_some_and(|t| set.contains(t)),
        }
    }
}

/// The subscribed tags of an expression (repeats included), or None for all.
fn tag_names(expression: &str) -> Option<impl Iterator<Item = &str>> {
    let expression = expression.trim();
    if expression.is_empty() || expression == SUB_ALL {
        return None;
    }
    Some(
        expression
            .split("||")
            .map(str::trim)
            .filter(|t| !t.is_empty()),
    )
}

/// The broker's part of a subscription: the tag hash codes alone, as
/// `ExpressionMessageFilter.isMatchedByConsumeQueue` reads only the code set. Built
/// for every pull that finds records, so without the tag names or a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeFilter {
    /// None: every message.
    codes: Option<Vec<i64>>,
}

impl CodeFilter {
    pub fn parse(expression: &str) -> CodeFilter {
        CodeFilter {
            codes: tag_names(expression).map(|names| names.map(|t| tags_code(Some(t))).collect()),
        }
    }

    /// [`SubscriptionData::matches_code`] of the same expression.
    pub fn matches_code(&self, tags_code: i64) -> bool {
        self.codes
            .as_ref()
            .is_none_or(|codes| codes.contains(&tags_code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::java_string_hash;

    /// The broker's code filter answers as the whole subscription does, on every kind
    /// of expression and on codes in and out of it.
    #[test]
    fn code_filter_matches_as_the_subscription_does() {
        let expressions = [
            "*",
            "",
            " * ",
            "  ",
            "TagA",
            "TagA || TagB||  TagC ",
            " || ",
            "TagA||TagA",
            "TagAa",
            "a||*",
        ];
        let probes = [
            "TagA", "TagB", "TagC", "TagBB", "TagAa", "*", "a", "", "TagD",
        ];
        for e in expressions {
            let (whole, broker) = (SubscriptionData::parse(e), CodeFilter::parse(e));
            for p in probes {
                let code = tags_code(Some(p));
                assert_eq!(
                    broker.matches_code(code),
                    whole.matches_code(code),
                    "{e:?} on {p:?}"
                );
            }
            assert_eq!(
                broker.matches_code(tags_code(None)),
                whole.matches_code(tags_code(None)),
                "{e:?}"
            );
        }
    }

    #[test]
    fn star_or_empty_take_everything() {
        for e in ["*", "", " * ", "  "] {
            let s = SubscriptionData::parse(e);
            assert!(s.is_all(), "{e:?}");
            assert!(s.matches_tags(None));
            assert!(s.matches_code(12345));
        }
    }

    #[test]
    fn alternatives_are_split_trimmed_and_matched_exactly() {
        let s = SubscriptionData::parse("TagA || TagB||  TagC ");
        let SubscriptionData::Tags { tags, codes } = &s else {
            panic!("{s:?}")
        };
        assert_eq!(tags, &["TagA", "TagB", "TagC"].map(String::from).into());
        assert!(codes.contains(&i64::from(java_string_hash("TagB"))));
        assert_eq!(codes.len(), 3);
        assert!(s.matches_tags(Some("TagA")));
        assert!(s.matches_tags(Some("TagC")));
        // Exact: no prefixes, no case folding, no padding, no untagged messages.
        assert!(!s.matches_tags(Some("Tag")));
        assert!(!s.matches_tags(Some("taga")));
        assert!(!s.matches_tags(Some("TagA ")));
        assert!(!s.matches_tags(None));
    }

    #[test]
    fn a_hash_collision_passes_the_broker_but_not_the_client() {
        // "Aa" and "BB" share Java's hash code.
        assert_eq!(java_string_hash("TagAa"), java_string_hash("TagBB"));
        let s = SubscriptionData::parse("TagAa");
        assert!(s.matches_code(tags_code(Some("TagBB"))));
        assert!(!s.matches_tags(Some("TagBB")));
        assert!(s.matches_tags(Some("TagAa")));
        assert!(!s.matches_code(tags_code(Some("TagC"))));
    }

    #[test]
    fn separators_only_subscribe_to_nothing_on_both_sides() {
        let s = SubscriptionData::parse(" || ");
        assert!(!s.is_all());
        assert!(!s.matches_tags(Some("")));
        assert!(!s.matches_tags(None));
        assert!(!s.matches_code(0));
    }
}
