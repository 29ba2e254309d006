//! Vectorize's metadata filters: `{ field: value }` (equality) or `{ field: { $op: value } }`
//! with `$eq $ne $in $nin $lt $lte $gt $gte`, several fields and operators all having to hold.
//! A field may name a nested key with dots (`"author.team"`). Compiled once per query and
//! evaluated on every candidate before it is scored, so a filter never loses results.

use std::cmp::Ordering;

use serde_json::{Map, Value};

/// The largest filter Vectorize accepts, as JSON.
pub const MAX_FILTER_BYTES: usize = 2048;

#[derive(Debug, PartialEq)]
pub struct Filter {
    conditions: Vec<Condition>,
}

#[derive(Debug, PartialEq)]
struct Condition {
    path: Vec<String>,
    test: Test,
}

#[derive(Debug, PartialEq)]
enum Test {
    Eq(Value),
    Ne(Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Range(Ordering, bool, Value),
}

impl Filter {
    /// The filter, or what is wrong with it.
    pub fn parse(filter: &Map<String, Value>) -> Result<Filter, String> {
        let size = serde_json::to_string(filter).map_or(usize::MAX, |text| text.len());
        if size > MAX_FILTER_BYTES {
            return Err(format!("the filter is {size} bytes of JSON; Vectorize accepts at most {MAX_FILTER_BYTES}"));
        }
        let mut conditions = Vec::new();
        for (field, expected) in filter {
            if field.is_empty() || field.starts_with('$') {
                return Err(format!(
                    "filter field {field:?} is not a metadata key; write {{ \"key\": value }} or {{ \"key\": {{ \"$eq\": value }} }}"
                ));
            }
            let path: Vec<String> = field.split('.').map(str::to_owned).collect();
            match expected {
                Value::Object(operators) => {
                    if operators.is_empty() {
                        return Err(format!(
                            "filter field {field:?} has no operator; use one of $eq $ne $in $nin $lt $lte $gt $gte"
                        ));
                    }
                    for (operator, operand) in operators {
                        let test = test(field, operator, operand)?;
                        conditions.push(Condition { path: path.clone(), test });
                    }
                }
                value => conditions.push(Condition { path, test: Test::Eq(scalar(field, "$eq", value)?) }),
            }
        }
        Ok(Filter { conditions })
    }

    pub fn matches(&self, metadata: Option<&Map<String, Value>>) -> bool {
        self.conditions.iter().all(|condition| {
            let found = metadata.and_then(|metadata| lookup(metadata, &condition.path));
            condition.test.holds(found)
        })
    }
}

fn test(field: &str, operator: &str, operand: &Value) -> Result<Test, String> {
    let list = |operand: &Value| match operand {
        Value::Array(values) => {
            values.iter().map(|value| scalar(field, operator, value)).collect::<Result<Vec<_>, _>>()
        }
        _ => Err(format!("filter {field:?}: {operator} takes an array of values")),
    };
    let bound = |operand: &Value| match operand {
        Value::Number(_) | Value::String(_) => Ok(operand.clone()),
        _ => Err(format!("filter {field:?}: {operator} compares with a number or a string")),
    };
    Ok(match operator {
        "$eq" => Test::Eq(scalar(field, operator, operand)?),
        "$ne" => Test::Ne(scalar(field, operator, operand)?),
        "$in" => Test::In(list(operand)?),
        "$nin" => Test::Nin(list(operand)?),
        "$lt" => Test::Range(Ordering::Less, false, bound(operand)?),
        "$lte" => Test::Range(Ordering::Less, true, bound(operand)?),
        "$gt" => Test::Range(Ordering::Greater, false, bound(operand)?),
        "$gte" => Test::Range(Ordering::Greater, true, bound(operand)?),
        other => {
            return Err(format!(
                "filter {field:?}: unknown operator {other:?}; Vectorize's are $eq $ne $in $nin $lt $lte $gt $gte"
            ));
        }
    })
}

/// A value a filter may compare with: a string, number, boolean or null.
fn scalar(field: &str, operator: &str, value: &Value) -> Result<Value, String> {
    match value {
        Value::Array(_) | Value::Object(_) => {
            Err(format!("filter {field:?}: {operator} compares with a string, number, boolean or null"))
        }
        scalar => Ok(scalar.clone()),
    }
}

fn lookup<'a>(metadata: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    // A key that itself holds dots wins over nesting.
    if path.len() > 1
        && let Some(value) = metadata.get(&path.join("."))
    {
        return Some(value);
    }
    let (first, rest) = path.split_first()?;
    let mut value = metadata.get(first)?;
    for key in rest {
        value = value.as_object()?.get(key)?;
    }
    Some(value)
}

/// Equality across JSON's number representations (1 and 1.0 are equal).
fn equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(left), Value::Number(right)) => left.as_f64() == right.as_f64(),
        (left, right) => left == right,
    }
}

fn compare(found: &Value, bound: &Value) -> Option<Ordering> {
    match (found, bound) {
        (Value::Number(found), Value::Number(bound)) => found.as_f64()?.partial_cmp(&bound.as_f64()?),
        (Value::String(found), Value::String(bound)) => Some(found.as_str().cmp(bound.as_str())),
        _ => None,
    }
}

impl Test {
    fn holds(&self, found: Option<&Value>) -> bool {
        match self {
            Test::Eq(expected) => found.is_some_and(|found| equal(found, expected)),
            // A vector without the field is "not equal" and "not in".
            Test::Ne(expected) => !found.is_some_and(|found| equal(found, expected)),
            Test::In(values) => found.is_some_and(|found| values.iter().any(|value| equal(found, value))),
            Test::Nin(values) => !found.is_some_and(|found| values.iter().any(|value| equal(found, value))),
            Test::Range(direction, or_equal, bound) => match found.and_then(|found| compare(found, bound)) {
                Some(Ordering::Equal) => *or_equal,
                Some(order) => order == *direction,
                None => false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn filter(value: Value) -> Result<Filter, String> {
        Filter::parse(value.as_object().unwrap())
    }

    fn check(filter_json: Value, metadata: Value, expected: bool) {
        let compiled = filter(filter_json.clone()).unwrap();
        assert_eq!(compiled.matches(metadata.as_object()), expected, "{filter_json} on {metadata}");
    }

    #[test]
    fn operators() {
        let page = json!({ "team": "docs", "year": 2024, "draft": false, "author": { "team": "infra" } });
        check(json!({ "team": "docs" }), page.clone(), true);
        check(json!({ "team": { "$eq": "docs" } }), page.clone(), true);
        check(json!({ "team": { "$ne": "docs" } }), page.clone(), false);
        check(json!({ "missing": { "$ne": "docs" } }), page.clone(), true);
        check(json!({ "missing": "docs" }), page.clone(), false);
        check(json!({ "team": { "$in": ["sales", "docs"] } }), page.clone(), true);
        check(json!({ "team": { "$nin": ["sales", "docs"] } }), page.clone(), false);
        check(json!({ "missing": { "$nin": ["x"] } }), page.clone(), true);
        check(json!({ "year": { "$gte": 2024, "$lt": 2025 } }), page.clone(), true);
        check(json!({ "year": { "$gt": 2024 } }), page.clone(), false);
        check(json!({ "year": { "$lte": 2024.0 } }), page.clone(), true);
        check(json!({ "year": 2024.0 }), page.clone(), true);
        check(json!({ "team": { "$lt": "e" } }), page.clone(), true);
        check(json!({ "year": { "$lt": "3000" } }), page.clone(), false);
        check(json!({ "draft": false }), page.clone(), true);
        check(json!({ "author.team": "infra" }), page.clone(), true);
        check(json!({ "team": "docs", "year": 2023 }), page.clone(), false);
        check(json!({ "team": "docs" }), Value::Null, false);
    }

    #[test]
    fn bad_filters_say_what_is_wrong() {
        for (bad, expected) in [
            (json!({ "team": { "$regex": "d.*" } }), "unknown operator \"$regex\""),
            (json!({ "team": { "$in": "docs" } }), "$in takes an array"),
            (json!({ "team": { "$lt": true } }), "$lt compares with a number or a string"),
            (json!({ "team": ["docs"] }), "$eq compares with a string, number, boolean or null"),
            (json!({ "team": {} }), "has no operator"),
            (json!({ "$and": [] }), "is not a metadata key"),
            (json!({ "team": "x".repeat(MAX_FILTER_BYTES) }), "at most 2048"),
        ] {
            let message = filter(bad.clone()).unwrap_err();
            assert!(message.contains(expected), "{bad}: {message}");
        }
    }
}
