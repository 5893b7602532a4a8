//! RocketMQ tag expressions as the checker judges them: `*` (or an empty expression)
//! subscribes to every message; otherwise `a || b || c` is split on `||`, each part
//! trimmed, and a message matches when its tag string equals one of the parts exactly.
//! A message without tags matches only `*`.

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TagExpr {
    All,
    AnyOf(Vec<String>),
}

impl TagExpr {
    pub(crate) fn parse(expr: &str) -> TagExpr {
        let expr = expr.trim();
        if expr.is_empty() || expr == "*" {
            return TagExpr::All;
        }
        TagExpr::AnyOf(
            expr.split("||")
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    pub(crate) fn matches(&self, tags: Option<&str>) -> bool {
        match (self, tags) {
            (TagExpr::All, _) => true,
            (TagExpr::AnyOf(_), None) => false,
            (TagExpr::AnyOf(parts), Some(t)) => parts.iter().any(|p| p == t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TagExpr;

    #[test]
    fn star_or_empty_match_everything_including_untagged() {
        for e in ["*", " * ", ""] {
            let t = TagExpr::parse(e);
            assert!(t.matches(None) && t.matches(Some("x")), "{e:?}");
        }
    }

    #[test]
    fn alternatives_match_exactly() {
        let t = TagExpr::parse("a || b ||c");
        assert!(t.matches(Some("a")) && t.matches(Some("b")) && t.matches(Some("c")));
        assert!(!t.matches(Some("ab")) && !t.matches(Some("a ")) && !t.matches(None));
    }
}
