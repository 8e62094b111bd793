//! Kubernetes label selectors (`app=web,tier!=cache,env in (a,b),!legacy`): checked when
//! the config is read, so a typo fails at start rather than as an endless 400 from the
//! API server; and evaluated by the fake API server of the test kit (`clusterdns-testkit`).

use std::collections::BTreeMap;

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Exists(String),
    NotExists(String),
    /// `key=v`, `key==v`, `key in (v, …)`.
    In(String, Vec<String>),
    /// `key!=v`, `key notin (v, …)`: also true when the label is absent.
    NotIn(String, Vec<String>),
    Gt(String, i64),
    Lt(String, i64),
}

/// A parsed selector: every requirement must hold. Empty selects everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    pub requirements: Vec<Requirement>,
}

fn valid_key(k: &str) -> bool {
    let name = k.rsplit('/').next().unwrap_or(k);
    !name.is_empty()
        && name.len() <= 63
        && k.matches('/').count() <= 1
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl LabelSelector {
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return Err("empty requirement".into());
            }
            requirements.push(requirement(part)?);
        }
        Ok(LabelSelector { requirements })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Gt(k, n) => number(labels.get(k)).is_some_and(|v| v > *n),
            Requirement::Lt(k, n) => number(labels.get(k)).is_some_and(|v| v < *n),
        })
    }
}

fn number(v: Option<&String>) -> Option<i64> {
    v.and_then(|v| v.parse().ok())
}

/// Splits on commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn requirement(part: &str) -> Result<Requirement, String> {
    let key = |k: &str| {
        let k = k.trim();
        if valid_key(k) {
            Ok(k.to_owned())
        } else {
            Err(format!("{k:?} is not a valid label key"))
        }
    };
    let value = |v: &str| {
        let v = v.trim();
        if valid_value(v) {
            Ok(v.to_owned())
        } else {
            Err(format!("{v:?} is not a valid label value"))
        }
    };
    if let Some(k) = part.strip_prefix('!') {
        return Ok(Requirement::NotExists(key(k)?));
    }
    for (op, not) in [(" notin ", true), (" in ", false)] {
        if let Some(at) = part.find(op) {
            let set = part[at + op.len()..].trim();
            let inner = set
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .ok_or_else(|| format!("{set:?}: a set is written (a,b)"))?;
            let values = inner.split(',').map(value).collect::<Result<Vec<_>, _>>()?;
            let k = key(&part[..at])?;
            return Ok(if not {
                Requirement::NotIn(k, values)
            } else {
                Requirement::In(k, values)
            });
        }
    }
    for op in ["!=", "==", "=", ">", "<"] {
        if let Some((k, v)) = part.split_once(op) {
            let k = key(k)?;
            return Ok(match op {
                "!=" => Requirement::NotIn(k, vec![value(v)?]),
                ">" | "<" => {
                    let n = v
                        .trim()
                        .parse()
                        .map_err(|_| format!("{v:?} is not an integer"))?;
                    if op == ">" {
                        Requirement::Gt(k, n)
                    } else {
                        Requirement::Lt(k, n)
                    }
                }
                _ => Requirement::In(k, vec![value(v)?]),
            });
        }
    }
    Ok(Requirement::Exists(key(part)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_and_matches_like_kubernetes() {
        let s = LabelSelector::parse(
            "app=web, tier!=cache,env in (a, b),!legacy,app.kubernetes.io/part-of",
        )
        .unwrap();
        assert_eq!(s.requirements.len(), 5);
        let mut l = labels(&[
            ("app", "web"),
            ("env", "a"),
            ("app.kubernetes.io/part-of", "x"),
        ]);
        assert!(s.matches(&l));
        l.insert("legacy".into(), "".into());
        assert!(!s.matches(&l));
        assert!(LabelSelector::parse("").unwrap().matches(&l));
        assert!(LabelSelector::parse("x notin (y)").unwrap().matches(&l));
        assert!(LabelSelector::parse("app=").unwrap().requirements.len() == 1);
        for bad in ["app=we b", "a,,b", "env in a", "=x", "n > x"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }
}
