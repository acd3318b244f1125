//! Label and field selectors, as list and watch requests send them
//! (`labelSelector=a=b,c!=d,e in (f,g),!h`, `fieldSelector=metadata.name=x`).

use serde_json::Value;

use super::store::Kind;

/// One term of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `labelSelector` (every term must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        for term in split_terms(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let requirement = if let Some(key) = term.strip_prefix('!') {
                Requirement::NotExists(key_of(key)?)
            } else if let Some((key, value)) = term.split_once("!=") {
                Requirement::NotEquals(key_of(key)?, value_of(value)?)
            } else if let Some((key, value)) = term.split_once("==") {
                Requirement::Equals(key_of(key)?, value_of(value)?)
            } else if let Some((key, value)) = term.split_once('=') {
                Requirement::Equals(key_of(key)?, value_of(value)?)
            } else if let Some((key, values)) = set_term(term, "notin") {
                Requirement::NotIn(key_of(key)?, values?)
            } else if let Some((key, values)) = set_term(term, "in") {
                Requirement::In(key_of(key)?, values?)
            } else {
                Requirement::Exists(key_of(term)?)
            };
            requirements.push(requirement);
        }
        Ok(LabelSelector(requirements))
    }

    /// Whether an object's `metadata.labels` satisfy every term.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let label = |key: &str| labels.get(key).and_then(Value::as_str);
        self.0.iter().all(|requirement| match requirement {
            Requirement::Equals(key, value) => label(key) == Some(value.as_str()),
            Requirement::NotEquals(key, value) => label(key) != Some(value.as_str()),
            Requirement::In(key, values) => {
                label(key).is_some_and(|l| values.iter().any(|v| v == l))
            }
            Requirement::NotIn(key, values) => {
                label(key).is_none_or(|l| values.iter().all(|v| v != l))
            }
            Requirement::Exists(key) => label(key).is_some(),
            Requirement::NotExists(key) => label(key).is_none(),
        })
    }
}

/// Splits on the commas outside parentheses (`a in (b,c),d` → two terms).
fn split_terms(text: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms
}

/// `key in (a, b)` → the key and the values.
fn set_term<'a>(term: &'a str, operator: &str) -> Option<(&'a str, Result<Vec<String>, String>)> {
    let open = term.find('(')?;
    let (head, rest) = term.split_at(open);
    let key = head.trim().strip_suffix(operator)?;
    if !key.ends_with(char::is_whitespace) {
        return None;
    }
    let values = match rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        Some(inner) => inner
            .split(',')
            .map(|v| value_of(v.trim()))
            .collect::<Result<Vec<_>, _>>(),
        None => Err(format!("unable to parse requirement: {term}")),
    };
    Some((key.trim(), values))
}

fn key_of(key: &str) -> Result<String, String> {
    let key = key.trim();
    let valid = !key.is_empty()
        && key.len() <= 316
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if valid {
        Ok(key.to_string())
    } else {
        Err(format!("invalid label key {key:?}"))
    }
}

fn value_of(value: &str) -> Result<String, String> {
    let value = value.trim();
    let valid = value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if valid {
        Ok(value.to_string())
    } else {
        Err(format!("invalid label value {value:?}"))
    }
}

/// A parsed `fieldSelector`: `field=value` / `field==value` /
/// `field!=value` terms over the fields the real server supports for the
/// kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(text: &str, kind: Kind) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{text}'; can't understand '{term}'"
                ));
            };
            let field = field.trim();
            let supported = match kind {
                Kind::ConfigMap => &["metadata.name", "metadata.namespace"][..],
                Kind::Job => &["metadata.name", "metadata.namespace", "status.successful"][..],
                Kind::Pod => &[
                    "metadata.name",
                    "metadata.namespace",
                    "status.phase",
                    "spec.nodeName",
                    "spec.restartPolicy",
                ][..],
            };
            if !supported.contains(&field) {
                return Err(format!("field label not supported: {field}"));
            }
            terms.push((field.to_string(), equal, value.trim().to_string()));
        }
        Ok(FieldSelector(terms))
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let found = field.split('.').fold(object, |v, part| &v[part]);
            let found = match found {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (found == *value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labelled(labels: Value) -> Value {
        json!({"metadata": {"name": "x", "labels": labels}})
    }

    #[test]
    fn label_selectors_take_every_operator() {
        let object = labelled(json!({"a": "b", "c": "d"}));
        for (selector, expected) in [
            ("", true),
            ("a=b", true),
            ("a==b,c=d", true),
            ("a=b,c=e", false),
            ("a!=x", true),
            ("a", true),
            ("!a", false),
            ("!z", true),
            ("a in (x, b)", true),
            ("a notin (b)", false),
            ("z notin (b)", true),
            ("a in (x),c=d", false),
        ] {
            let parsed = LabelSelector::parse(selector).unwrap();
            assert_eq!(parsed.matches(&object), expected, "{selector}");
        }
        assert!(LabelSelector::parse("a=b c").is_err());
        assert!(LabelSelector::parse("a in (b").is_err());
    }

    #[test]
    fn field_selectors_take_the_supported_fields() {
        let object = json!({"metadata": {"name": "job-1"}, "status": {"phase": "Running"}});
        let by_name = FieldSelector::parse("metadata.name=job-1", Kind::Job).unwrap();
        assert!(by_name.matches(&object));
        let other = FieldSelector::parse("metadata.name!=job-1", Kind::Job).unwrap();
        assert!(!other.matches(&object));
        assert!(
            FieldSelector::parse("status.phase=Running", Kind::Pod)
                .unwrap()
                .matches(&object)
        );
        assert!(FieldSelector::parse("spec.template=x", Kind::Job).is_err());
        assert!(FieldSelector::parse("nonsense", Kind::Job).is_err());
    }
}
