//! Metadata filters, evaluated on each row during the scan so a selective filter
//! still yields k results.
//!
//! The syntax follows MongoDB's, as Chroma, Qdrant and LanceDB users expect:
//! `{"lang": "rust"}`, `{"tag": {"$in": ["a", "b"]}}`, `{"year": {"$gte": 2020}}`,
//! `{"$or": [{...}, {...}]}`. Keys are top-level metadata keys.

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// A compiled filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Field { key: String, op: Op },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Eq(Value),
    Ne(Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Gt(Value),
    Gte(Value),
    Lt(Value),
    Lte(Value),
}

impl Filter {
    /// Compiles a JSON filter; errors name the offending path, e.g. `filter.tag.$in`.
    pub fn parse(value: &Value) -> Result<Filter> {
        parse_object(value, "filter")
    }

    /// Whether a row's metadata passes. A row with no metadata has no keys.
    pub fn matches(&self, metadata: Option<&Map<String, Value>>) -> bool {
        match self {
            Filter::And(all) => all.iter().all(|f| f.matches(metadata)),
            Filter::Or(any) => any.iter().any(|f| f.matches(metadata)),
            Filter::Field { key, op } => op.matches(metadata.and_then(|m| m.get(key))),
        }
    }
}

fn parse_object(value: &Value, path: &str) -> Result<Filter> {
    let obj = value
        .as_object()
        .ok_or_else(|| Error::invalid(format!("{path}: must be an object")))?;
    let mut all = Vec::with_capacity(obj.len());
    for (key, v) in obj {
        let here = format!("{path}.{key}");
        all.push(match key.as_str() {
            "$and" | "$or" => {
                let items = v
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| Error::invalid(format!("{here}: must be a non-empty array")))?;
                let parts = items
                    .iter()
                    .enumerate()
                    .map(|(i, f)| parse_object(f, &format!("{here}[{i}]")))
                    .collect::<Result<Vec<_>>>()?;
                if key == "$and" {
                    Filter::And(parts)
                } else {
                    Filter::Or(parts)
                }
            }
            k if k.starts_with('$') => {
                return Err(Error::invalid(format!("{here}: unknown operator")));
            }
            _ => parse_field(key, v, &here)?,
        });
    }
    Ok(if all.len() == 1 {
        all.pop().unwrap()
    } else {
        Filter::And(all)
    })
}

fn parse_field(key: &str, v: &Value, path: &str) -> Result<Filter> {
    let ops = match v {
        Value::Object(ops) if ops.keys().any(|k| k.starts_with('$')) => ops,
        Value::Object(_) | Value::Array(_) => {
            return Err(Error::invalid(format!(
                "{path}: compare with a scalar or an operator object such as {{\"$in\": [...]}}"
            )))
        }
        scalar => {
            return Ok(Filter::Field {
                key: key.into(),
                op: Op::Eq(scalar.clone()),
            })
        }
    };
    let mut all = Vec::with_capacity(ops.len());
    for (name, arg) in ops {
        let here = format!("{path}.{name}");
        let list = || -> Result<Vec<Value>> {
            arg.as_array()
                .cloned()
                .ok_or_else(|| Error::invalid(format!("{here}: must be an array")))
        };
        let scalar = || -> Result<Value> {
            match arg {
                Value::Array(_) | Value::Object(_) => Err(Error::invalid(format!(
                    "{here}: must be a string, number, boolean or null"
                ))),
                v => Ok(v.clone()),
            }
        };
        let ordered = || -> Result<Value> {
            match arg {
                Value::Number(_) | Value::String(_) => Ok(arg.clone()),
                _ => Err(Error::invalid(format!("{here}: must be a number or a string"))),
            }
        };
        let op = match name.as_str() {
            "$eq" => Op::Eq(scalar()?),
            "$ne" => Op::Ne(scalar()?),
            "$in" => Op::In(list()?),
            "$nin" => Op::Nin(list()?),
            "$gt" => Op::Gt(ordered()?),
            "$gte" => Op::Gte(ordered()?),
            "$lt" => Op::Lt(ordered()?),
            "$lte" => Op::Lte(ordered()?),
            _ => return Err(Error::invalid(format!("{here}: unknown operator"))),
        };
        all.push(Filter::Field { key: key.into(), op });
    }
    Ok(if all.len() == 1 {
        all.pop().unwrap()
    } else {
        Filter::And(all)
    })
}

impl Op {
    fn matches(&self, v: Option<&Value>) -> bool {
        match self {
            Op::Eq(want) => v.is_some_and(|v| same(v, want)),
            Op::Ne(want) => !v.is_some_and(|v| same(v, want)),
            Op::In(set) => v.is_some_and(|v| set.iter().any(|w| same(v, w))),
            Op::Nin(set) => !v.is_some_and(|v| set.iter().any(|w| same(v, w))),
            Op::Gt(b) => order(v, b) == Some(Ordering::Greater),
            Op::Gte(b) => matches!(order(v, b), Some(Ordering::Greater | Ordering::Equal)),
            Op::Lt(b) => order(v, b) == Some(Ordering::Less),
            Op::Lte(b) => matches!(order(v, b), Some(Ordering::Less | Ordering::Equal)),
        }
    }
}

/// Equality where numbers compare by value (1 == 1.0), as they do in JavaScript.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Order between two numbers or two strings; anything else is incomparable.
fn order(a: Option<&Value>, b: &Value) -> Option<Ordering> {
    match (a?, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.as_str().cmp(y.as_str())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn equality_in_and_ranges() {
        let row = m(json!({"lang": "rust", "year": 2021, "tag": "a"}));
        let yes = [
            json!({"lang": "rust"}),
            json!({"year": 2021.0}),
            json!({"tag": {"$in": ["a", "b"]}}),
            json!({"year": {"$gte": 2021, "$lt": 2022}}),
            json!({"$or": [{"lang": "go"}, {"tag": "a"}]}),
            json!({"missing": {"$ne": 1}}),
            json!({"lang": {"$nin": ["go"]}}),
        ];
        let no = [
            json!({"lang": "go"}),
            json!({"tag": {"$in": []}}),
            json!({"year": {"$gt": 2021}}),
            json!({"lang": "rust", "year": 1999}),
            json!({"missing": 1}),
            json!({"lang": {"$lt": 3}}),
        ];
        for f in &yes {
            assert!(Filter::parse(f).unwrap().matches(Some(&row)), "{f}");
        }
        for f in &no {
            assert!(!Filter::parse(f).unwrap().matches(Some(&row)), "{f}");
        }
        assert!(!Filter::parse(&json!({"lang": "rust"})).unwrap().matches(None));
    }

    #[test]
    fn errors_name_the_path() {
        let cases = [
            (json!([1]), "filter: must be an object"),
            (json!({"tag": {"$in": 3}}), "filter.tag.$in: must be an array"),
            (json!({"tag": {"$regex": "x"}}), "filter.tag.$regex: unknown operator"),
            (json!({"$or": []}), "filter.$or: must be a non-empty array"),
            (
                json!({"$or": [{"a": {"$gt": true}}]}),
                "filter.$or[0].a.$gt: must be a number or a string",
            ),
            (json!({"a": [1, 2]}), "filter.a: compare with a scalar"),
        ];
        for (f, want) in cases {
            let e = Filter::parse(&f).unwrap_err();
            assert!(e.message.starts_with(want), "{f}: {}", e.message);
        }
    }
}
