//! A small validator for JSON responses against Google's discovery documents: `$ref`
//! resolution, property types and formats, arrays, nested objects, enums, unknown properties
//! fail, and `required`-annotated properties must be present.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value};

pub struct Discovery {
    docs: Vec<Value>,
}

/// `infra/google-sandbox/discovery` (Google's documents, kept in the repository). Cargo sets
/// `CARGO_MANIFEST_DIR` when it runs the test, so the binary finds it wherever the checkout is.
fn discovery_dir() -> std::path::PathBuf {
    let manifest = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    std::path::Path::new(&manifest).join("discovery")
}

pub fn discovery() -> &'static Discovery {
    static DOCS: OnceLock<Discovery> = OnceLock::new();
    DOCS.get_or_init(|| {
        let docs = ["calendar.v3.json", "people.v1.json", "oauth2.v2.json"]
            .iter()
            .map(|f| {
                let path = discovery_dir().join(f);
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                serde_json::from_str(&text).expect("discovery document is JSON")
            })
            .collect();
        Discovery { docs }
    })
}

/// Every validated response, by method id (for the coverage test).
pub fn recorded() -> &'static Mutex<HashMap<String, usize>> {
    static REC: OnceLock<Mutex<HashMap<String, usize>>> = OnceLock::new();
    REC.get_or_init(|| Mutex::new(HashMap::new()))
}

fn find_method<'a>(node: &'a Value, id: &str) -> Option<&'a Value> {
    if let Some(methods) = node.get("methods").and_then(Value::as_object) {
        for m in methods.values() {
            if m.get("id").and_then(Value::as_str) == Some(id) {
                return Some(m);
            }
        }
    }
    if let Some(resources) = node.get("resources").and_then(Value::as_object) {
        for r in resources.values() {
            if let Some(m) = find_method(r, id) {
                return Some(m);
            }
        }
    }
    None
}

impl Discovery {
    /// The document and response schema name of a method id (e.g. `calendar.events.list`).
    pub fn response_schema(&self, method_id: &str) -> Option<(&Value, String)> {
        for doc in &self.docs {
            if let Some(m) = find_method(doc, method_id) {
                let name = m.get("response")?.get("$ref")?.as_str()?.to_string();
                return Some((doc, name));
            }
        }
        None
    }

    /// Validates `value` as the response of `method_id`; returns every violation.
    pub fn validate_response(&self, method_id: &str, value: &Value) -> Vec<String> {
        let Some((doc, name)) = self.response_schema(method_id) else {
            return vec![format!("no response schema for method {method_id}")];
        };
        let mut errors = Vec::new();
        let schema = serde_json::json!({ "$ref": name });
        check(doc, &schema, value, "$", &mut errors);
        errors
    }

    /// Validates `value` against a named schema of the document that defines it.
    pub fn validate_schema(&self, schema_name: &str, value: &Value) -> Vec<String> {
        for doc in &self.docs {
            if doc
                .get("schemas")
                .and_then(|s| s.get(schema_name))
                .is_some()
            {
                let mut errors = Vec::new();
                let schema = serde_json::json!({ "$ref": schema_name });
                check(doc, &schema, value, "$", &mut errors);
                return errors;
            }
        }
        vec![format!("unknown schema {schema_name}")]
    }
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> Option<&'a Value> {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(name) => doc.get("schemas")?.get(name),
        None => Some(schema),
    }
}

fn check(doc: &Value, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(schema) = resolve(doc, schema) else {
        errors.push(format!("{path}: unresolvable schema {schema}"));
        return;
    };
    let ty = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("object");
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            errors.push(format!("{path}: {value} not in enum"));
        }
    }
    match ty {
        "any" => {}
        "string" => match value.as_str() {
            None => errors.push(format!("{path}: expected string, got {value}")),
            Some(s) => match schema.get("format").and_then(Value::as_str) {
                Some("int64" | "uint64") if s.parse::<i128>().is_err() => {
                    errors.push(format!("{path}: expected int64 string, got {s}"))
                }
                Some("date-time" | "google-datetime") if s.parse::<jiff::Timestamp>().is_err() => {
                    errors.push(format!("{path}: expected RFC 3339, got {s}"))
                }
                Some("date") if s.parse::<jiff::civil::Date>().is_err() => {
                    errors.push(format!("{path}: expected date, got {s}"))
                }
                _ => {}
            },
        },
        "integer" => {
            if !(value.is_i64() || value.is_u64()) {
                errors.push(format!("{path}: expected integer, got {value}"));
            }
        }
        "number" => {
            if !value.is_number() {
                errors.push(format!("{path}: expected number, got {value}"));
            }
        }
        "boolean" => {
            if !value.is_boolean() {
                errors.push(format!("{path}: expected boolean, got {value}"));
            }
        }
        "array" => match value.as_array() {
            None => errors.push(format!("{path}: expected array, got {value}")),
            Some(items) => {
                let item_schema = schema.get("items").cloned().unwrap_or(Value::Null);
                for (i, item) in items.iter().enumerate() {
                    check(doc, &item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        },
        "object" => match value.as_object() {
            None => errors.push(format!("{path}: expected object, got {value}")),
            Some(obj) => check_object(doc, schema, obj, path, errors),
        },
        other => errors.push(format!("{path}: unknown schema type {other}")),
    }
}

fn check_object(
    doc: &Value,
    schema: &Value,
    obj: &Map<String, Value>,
    path: &str,
    errors: &mut Vec<String>,
) {
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    if let Some(props) = props {
        for (name, prop) in props {
            if prop.get("required").and_then(Value::as_bool) == Some(true)
                && !obj.contains_key(name)
            {
                errors.push(format!("{path}: missing required property {name}"));
            }
        }
    }
    for (key, v) in obj {
        let sub = format!("{path}.{key}");
        match props.and_then(|p| p.get(key)) {
            Some(prop) => check(doc, prop, v, &sub, errors),
            None => match additional {
                Some(a) => check(doc, a, v, &sub, errors),
                None => errors.push(format!("{sub}: property not in schema")),
            },
        }
    }
}
