//! Metadata filters, evaluated on each row during the scan so a selective filter
//! still yields k results.
//!
//! The syntax follows MongoDB's, as Chroma, Qdrant and LanceDB users expect:
//! `{"lang": "rust"}`, `{"tag": {"$in": ["a", "b"]}}`, `{"year": {"$gte": 2020}}`,
//! `{"$or": [{...}, {...}]}`, `{"tag": {"$exists": true}}`,
//! `{"price": {"$not": {"$gt": 5}}}`.
//!
//! A key is a path: dots always separate its segments, as in MongoDB, so
//! `"repo.lang"` reads `lang` inside the object `repo`, and a metadata key that itself
//! holds a dot cannot be named. A path that meets a non-object on the way (an array, a
//! string, null) finds nothing there: the key counts as missing. Arrays are values, never
//! traversed. Paths are split once, when the filter is parsed; matching a row allocates
//! nothing.
//!
//! On a missing key, `$eq`, `$in` and the ranges fail and `$ne` and `$nin` pass (as in
//! MongoDB); `$exists: false` passes and `$not` passes whenever its expression fails. A
//! present `null` is present: `{"a": null}` and `{"a": {"$exists": true}}` match it, and
//! (unlike MongoDB) `{"a": null}` does not match a row without `a`.

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// A compiled filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    /// The value at `path` (or its absence) passes every one of `ops`.
    Field {
        path: Path,
        ops: Vec<Op>,
    },
}

/// A key path split at its dots: `"repo.lang"` is `["repo", "lang"]`, never empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Path(Box<[String]>);

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
    /// Whether the key is present (a present `null` counts).
    Exists(bool),
    /// Passes when not all of these pass, a missing key included.
    Not(Vec<Op>),
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
            Filter::Field { path, ops } => {
                let v = path.find(metadata);
                ops.iter().all(|op| op.matches(v))
            }
        }
    }
}

impl Path {
    fn parse(key: &str, path: &str) -> Result<Path> {
        let segments: Box<[String]> = key.split('.').map(String::from).collect();
        if segments.iter().any(String::is_empty) {
            return Err(Error::invalid(format!(
                "{path}: empty segment in key path (dots separate nested keys)"
            )));
        }
        Ok(Path(segments))
    }

    /// The segments, outermost first.
    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// The value at this path, or None where a segment is missing or its parent is not
    /// an object.
    fn find<'a>(&self, metadata: Option<&'a Map<String, Value>>) -> Option<&'a Value> {
        let (first, rest) = self.0.split_first()?;
        let mut v = metadata?.get(first)?;
        for segment in rest {
            v = v.as_object()?.get(segment)?;
        }
        Some(v)
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

/// An object of operators (every key starting with `$`), as opposed to a nested value.
fn operators(v: &Value) -> Option<&Map<String, Value>> {
    v.as_object()
        .filter(|ops| !ops.is_empty() && ops.keys().any(|k| k.starts_with('$')))
}

fn parse_field(key: &str, v: &Value, path: &str) -> Result<Filter> {
    let path_of_key = Path::parse(key, path)?;
    let ops = match v {
        Value::Object(_) | Value::Array(_) => match operators(v) {
            Some(ops) => parse_ops(ops, path)?,
            None => {
                return Err(Error::invalid(format!(
                    "{path}: compare with a scalar or an operator object such as {{\"$in\": [...]}}"
                )))
            }
        },
        scalar => vec![Op::Eq(scalar.clone())],
    };
    Ok(Filter::Field { path: path_of_key, ops })
}

fn parse_ops(ops: &Map<String, Value>, path: &str) -> Result<Vec<Op>> {
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
        all.push(match name.as_str() {
            "$eq" => Op::Eq(scalar()?),
            "$ne" => Op::Ne(scalar()?),
            "$in" => Op::In(list()?),
            "$nin" => Op::Nin(list()?),
            "$gt" => Op::Gt(ordered()?),
            "$gte" => Op::Gte(ordered()?),
            "$lt" => Op::Lt(ordered()?),
            "$lte" => Op::Lte(ordered()?),
            "$exists" => Op::Exists(
                arg.as_bool()
                    .ok_or_else(|| Error::invalid(format!("{here}: must be true or false")))?,
            ),
            "$not" => match operators(arg) {
                Some(inner) => Op::Not(parse_ops(inner, &here)?),
                None => {
                    return Err(Error::invalid(format!(
                        "{here}: expected an operator object such as {{\"$gt\": 5}}"
                    )))
                }
            },
            _ => return Err(Error::invalid(format!("{here}: unknown operator"))),
        });
    }
    Ok(all)
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
            Op::Exists(want) => v.is_some() == *want,
            Op::Not(ops) => !ops.iter().all(|op| op.matches(v)),
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
            (
                json!({"price": {"$not": 5}}),
                "filter.price.$not: expected an operator object",
            ),
            (
                json!({"price": {"$not": {}}}),
                "filter.price.$not: expected an operator object",
            ),
            (
                json!({"price": {"$not": {"gt": 5}}}),
                "filter.price.$not: expected an operator object",
            ),
            (
                json!({"repo.lang": {"$not": {"$in": "rust"}}}),
                "filter.repo.lang.$not.$in: must be an array",
            ),
            (
                json!({"a": {"$not": {"$not": {"$regex": "x"}}}}),
                "filter.a.$not.$not.$regex: unknown operator",
            ),
            (
                json!({"$and": [{"repo.stars": {"$exists": 1}}]}),
                "filter.$and[0].repo.stars.$exists: must be true or false",
            ),
            (
                json!({"a": {"$exists": null}}),
                "filter.a.$exists: must be true or false",
            ),
            (json!({"a..b": 1}), "filter.a..b: empty segment in key path"),
            (json!({".a": {"$exists": true}}), "filter..a: empty segment in key path"),
            (json!({"a.": 1}), "filter.a.: empty segment in key path"),
            (json!({"$not": {"a": 1}}), "filter.$not: unknown operator"),
            (
                json!({"a": {"$not": {"$gt": 1, "b": 2}}}),
                "filter.a.$not.b: unknown operator",
            ),
            (json!({"repo": {"lang": "rust"}}), "filter.repo: compare with a scalar"),
        ];
        for (f, want) in cases {
            let e = Filter::parse(&f).unwrap_err();
            assert!(e.message.starts_with(want), "{f}: {}", e.message);
            assert_eq!(e.code, crate::error::Code::InvalidArgument, "{f}");
        }
    }

    fn passes(f: Value, row: &Map<String, Value>) -> bool {
        Filter::parse(&f).unwrap().matches(Some(row))
    }

    #[test]
    fn exists_counts_a_present_null_as_present() {
        let row = m(json!({"a": 1, "n": null, "f": false, "o": {}}));
        for key in ["a", "n", "f", "o"] {
            assert!(passes(json!({ key: {"$exists": true} }), &row), "{key}");
            assert!(!passes(json!({ key: {"$exists": false} }), &row), "{key}");
        }
        assert!(!passes(json!({"b": {"$exists": true}}), &row));
        assert!(passes(json!({"b": {"$exists": false}}), &row));
        assert!(passes(json!({"n": null}), &row));
        // Equality with null needs the key present (unlike MongoDB).
        assert!(!passes(json!({"b": null}), &row));
        assert!(passes(json!({"b": {"$ne": null}}), &row));
        // With other operators on the same key, all must hold.
        assert!(passes(json!({"n": {"$exists": true, "$eq": null}}), &row));
        assert!(!passes(json!({"n": {"$exists": true, "$ne": null}}), &row));
        assert!(passes(json!({"a": {"$exists": true, "$ne": null}}), &row));
        let none = Filter::parse(&json!({"a": {"$exists": false}})).unwrap();
        assert!(none.matches(None));
        assert!(!Filter::parse(&json!({"a": {"$exists": true}})).unwrap().matches(None));
    }

    #[test]
    fn not_negates_the_operator_expression_and_matches_missing_keys() {
        let cheap = m(json!({"price": 3}));
        let dear = m(json!({"price": 9}));
        let none = m(json!({"name": "x"}));
        let text = m(json!({"price": "n/a"}));
        let null = m(json!({"price": null}));
        let f = json!({"price": {"$not": {"$gt": 5}}});
        assert!(passes(f.clone(), &cheap));
        assert!(!passes(f.clone(), &dear));
        assert!(passes(f.clone(), &none), "a missing key is not > 5");
        assert!(passes(f.clone(), &text), "a string is not > 5");
        assert!(passes(f.clone(), &null));
        assert!(Filter::parse(&f).unwrap().matches(None));
        // $not of several operators negates their conjunction.
        let band = json!({"price": {"$not": {"$gte": 2, "$lte": 4}}});
        assert!(!passes(band.clone(), &cheap));
        assert!(passes(band.clone(), &dear));
        assert!(passes(band, &none));
        // $not beside other operators on the same key.
        let both = json!({"price": {"$exists": true, "$not": {"$gt": 5}}});
        assert!(passes(both.clone(), &cheap));
        assert!(!passes(both.clone(), &none));
        assert!(!passes(both, &dear));
        // Negated membership, existence and equality; double negation.
        assert!(passes(json!({"price": {"$not": {"$in": [9, 10]}}}), &cheap));
        assert!(!passes(json!({"price": {"$not": {"$in": [9, 10]}}}), &dear));
        assert!(passes(json!({"price": {"$not": {"$exists": true}}}), &none));
        assert!(!passes(json!({"price": {"$not": {"$exists": true}}}), &null));
        assert!(!passes(json!({"price": {"$not": {"$eq": 3}}}), &cheap));
        assert!(passes(json!({"price": {"$not": {"$ne": 3}}}), &cheap));
        assert!(passes(json!({"price": {"$not": {"$not": {"$gt": 5}}}}), &dear));
        assert!(!passes(json!({"price": {"$not": {"$not": {"$gt": 5}}}}), &none));
    }

    #[test]
    fn not_and_exists_combine_with_and_and_or() {
        let rows = [
            m(json!({"lang": "rust", "price": 3})),
            m(json!({"lang": "go", "price": 9})),
            m(json!({"lang": "go"})),
            m(json!({"price": 1})),
        ];
        let hits = |f: Value| -> Vec<usize> {
            let f = Filter::parse(&f).unwrap();
            (0..rows.len()).filter(|&i| f.matches(Some(&rows[i]))).collect()
        };
        assert_eq!(
            hits(json!({"$or": [{"lang": {"$exists": false}}, {"price": {"$not": {"$lt": 5}}}]})),
            [1, 2, 3]
        );
        assert_eq!(
            hits(json!({"$and": [{"lang": {"$exists": true}}, {"price": {"$not": {"$gt": 5}}}]})),
            [0, 2]
        );
        assert_eq!(
            hits(
                json!({"lang": {"$not": {"$eq": "rust"}}, "$or": [{"price": {"$exists": false}}, {"price": {"$gt": 5}}]})
            ),
            [1, 2]
        );
        assert_eq!(
            hits(json!({"$and": [{"$or": [{"lang": "go"}, {"price": 1}]}, {"price": {"$not": {"$exists": true}}}]})),
            [2]
        );
    }

    #[test]
    fn dotted_paths_reach_into_nested_objects() {
        let row = m(json!({
            "repo": {"lang": "rust", "stars": 120, "owner": {"name": "ada", "org": null}},
            "tags": [{"lang": "go"}],
            "title": "x",
            "a.b": 1,
        }));
        let yes = [
            json!({"repo.lang": "rust"}),
            json!({"repo.stars": {"$gte": 100, "$lt": 200}}),
            json!({"repo.owner.name": {"$in": ["ada", "bob"]}}),
            json!({"repo.owner.org": null}),
            json!({"repo.owner.org": {"$exists": true}}),
            json!({"repo.owner.site": {"$exists": false}}),
            json!({"repo.owner.name.first": {"$exists": false}}),
            json!({"repo.missing.deeper": {"$ne": 1}}),
            json!({"repo.stars": {"$not": {"$lt": 100}}}),
            json!({"repo.license": {"$not": {"$eq": "mit"}}}),
            json!({"$or": [{"repo.lang": "go"}, {"repo.owner.name": "ada"}]}),
            json!({"repo.lang": "rust", "title": "x"}),
            // Arrays are not traversed: the path finds nothing there.
            json!({"tags.lang": {"$exists": false}}),
            json!({"tags.0.lang": {"$exists": false}}),
            // Dots always separate: "a.b" is `b` inside `a`, not the key "a.b".
            json!({"a.b": {"$exists": false}}),
            // A path through a scalar or a null finds nothing.
            json!({"title.length": {"$exists": false}}),
            json!({"repo.owner.org.name": {"$exists": false}}),
        ];
        let no = [
            json!({"repo.lang": "go"}),
            json!({"repo.lang.name": "rust"}),
            json!({"repo.owner": "ada"}),
            json!({"repo.stars": {"$gt": 120}}),
            json!({"repo.owner.site": {"$exists": true}}),
            json!({"repo.stars": {"$not": {"$exists": true}}}),
            json!({"tags.lang": "go"}),
            json!({"tags.0.lang": "go"}),
            json!({"a.b": 1}),
            json!({"lang": "rust"}),
        ];
        for f in yes {
            assert!(passes(f.clone(), &row), "{f}");
        }
        for f in no {
            assert!(!passes(f.clone(), &row), "{f}");
        }
        let f = Filter::parse(&json!({"repo.owner.name": "ada"})).unwrap();
        match &f {
            Filter::Field { path, .. } => assert_eq!(path.segments(), ["repo", "owner", "name"]),
            other => panic!("{other:?}"),
        }
        assert!(!f.matches(None));
    }
}
