//! One request's envelope, checked as qemu's `qmp_dispatch` checks it, and the answers.
//!
//! Checks, in qemu's order and with its texts: the request must be an object ("QMP input must
//! be a JSON object"); each member, in qemu's hash order: `execute` a string, `arguments` an
//! object, `id` anything, nothing else ("QMP input member 'x' is unexpected"); `execute`
//! present ("QMP input lacks member 'execute'"). An `id` is echoed in the answer, errors
//! included. Arguments are checked as qemu's QAPI input visitor checks them: each declared
//! member in order ("Parameter 'id' is missing", "Invalid parameter type for 'id', expected:
//! integer"), then the members left over ("Parameter 'x' is unexpected").

use serde_json::Map;

use super::parser::Value;
use super::wire::{qdict_order, quoted, to_bytes};

/// qemu's error classes (the two the guest agent uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    GenericError,
    CommandNotFound,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::GenericError => "GenericError",
            Class::CommandNotFound => "CommandNotFound",
        }
    }
}

/// An error answer's class and text (bytes: a lexical error's text may not be UTF-8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QmpError {
    pub class: Class,
    pub desc: Vec<u8>,
}

impl QmpError {
    pub fn generic(desc: impl Into<Vec<u8>>) -> QmpError {
        QmpError {
            class: Class::GenericError,
            desc: desc.into(),
        }
    }

    pub fn not_found(desc: impl Into<Vec<u8>>) -> QmpError {
        QmpError {
            class: Class::CommandNotFound,
            desc: desc.into(),
        }
    }
}

/// A request that passed the envelope checks.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub command: String,
    pub arguments: Map<String, Value>,
    pub id: Option<Value>,
    /// The request as received (for relaying to qemu-ga).
    pub document: Value,
}

/// Checks the envelope. On `Err` the `id` (if the request had one) goes with the answer.
pub fn check(document: Value) -> Result<Request, (QmpError, Option<Value>)> {
    let Value::Object(dict) = &document else {
        return Err((QmpError::generic("QMP input must be a JSON object"), None));
    };
    let id = dict.get("id").cloned();
    let fail = |m: String| Err((QmpError::generic(m), id.clone()));
    for key in qdict_order(dict.keys().map(String::as_str)) {
        let v = &dict[key];
        match key {
            "execute" if !v.is_string() => {
                return fail("QMP input member 'execute' must be a string".into())
            }
            "arguments" if !v.is_object() => {
                return fail("QMP input member 'arguments' must be an object".into())
            }
            "execute" | "arguments" | "id" => {}
            other => return fail(format!("QMP input member '{other}' is unexpected")),
        }
    }
    let Some(Value::String(command)) = dict.get("execute") else {
        return fail("QMP input lacks member 'execute'".into());
    };
    let arguments = match dict.get("arguments") {
        Some(Value::Object(a)) => a.clone(),
        _ => Map::new(),
    };
    Ok(Request {
        command: command.clone(),
        arguments,
        id,
        document: document.clone(),
    })
}

/// A declared argument's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgType {
    Int,
    StrList,
}

/// Checks `args` against the declared members (name, type, required), as qemu's visitor:
/// members in declaration order first, then anything left over.
pub fn check_arguments(
    args: &Map<String, Value>,
    declared: &[(&str, ArgType, bool)],
) -> Result<(), QmpError> {
    for &(name, ty, required) in declared {
        let Some(v) = args.get(name) else {
            if required {
                return Err(QmpError::generic(format!("Parameter '{name}' is missing")));
            }
            continue;
        };
        let bad = |want: &str, name: &str| {
            Err(QmpError::generic(format!(
                "Invalid parameter type for '{name}', expected: {want}"
            )))
        };
        match ty {
            ArgType::Int => {
                if v.as_i64().is_none() {
                    return bad("integer", name);
                }
            }
            ArgType::StrList => {
                let Some(list) = v.as_array() else {
                    return bad("array", name);
                };
                for (i, e) in list.iter().enumerate() {
                    if !e.is_string() {
                        return bad("string", &format!("{name}[{i}]"));
                    }
                }
            }
        }
    }
    let extra = args
        .keys()
        .find(|k| !declared.iter().any(|(n, _, _)| n == k));
    match extra {
        Some(k) => Err(QmpError::generic(format!("Parameter '{k}' is unexpected"))),
        None => Ok(()),
    }
}

/// Writes an object of already-encoded members in qemu's member order.
fn object(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![b'{'];
    for (i, key) in qdict_order(members.iter().map(|(k, _)| *k))
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        quoted(key.as_bytes(), &mut out);
        out.extend_from_slice(b": ");
        if let Some((_, v)) = members.iter().find(|(k, _)| *k == key) {
            out.extend_from_slice(v);
        }
    }
    out.push(b'}');
    out
}

/// `{"return": value}` (with the id), newline-terminated.
pub fn success(value: &Value, id: Option<&Value>) -> Vec<u8> {
    let mut members = vec![("return", to_bytes(value))];
    if let Some(id) = id {
        members.push(("id", to_bytes(id)));
    }
    let mut out = object(&members);
    out.push(b'\n');
    out
}

/// `{"error": {"class": ..., "desc": ...}}` (with the id), newline-terminated.
pub fn failure(e: &QmpError, id: Option<&Value>) -> Vec<u8> {
    let mut desc = Vec::new();
    quoted(&e.desc, &mut desc);
    let mut class = Vec::new();
    quoted(e.class.name().as_bytes(), &mut class);
    let mut members = vec![("error", object(&[("class", class), ("desc", desc)]))];
    if let Some(id) = id {
        members.push(("id", to_bytes(id)));
    }
    let mut out = object(&members);
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        let (e, id) = check(v).unwrap_err();
        String::from_utf8(failure(&e, id.as_ref())).unwrap()
    }

    #[test]
    fn envelope_errors_as_qemu_ga() {
        // Each answer recorded from qemu-ga 7.2.
        assert_eq!(
            err(json!([1, 2])),
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input must be a JSON object\"}}\n"
        );
        assert_eq!(
            err(json!({})),
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input lacks member 'execute'\"}}\n"
        );
        assert_eq!(
            err(json!({"execute": "guest-ping", "foo": 1, "bar": 2})),
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'bar' is unexpected\"}}\n"
        );
        assert_eq!(
            err(json!({"execute": "guest-ping", "id": 1, "id2": 2})),
            "{\"id\": 1, \"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'id2' is unexpected\"}}\n"
        );
        assert_eq!(
            err(json!({"execute": 1})),
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'execute' must be a string\"}}\n"
        );
        assert_eq!(
            err(json!({"execute": "guest-ping", "arguments": null})),
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'arguments' must be an object\"}}\n"
        );
    }

    #[test]
    fn argument_errors_as_qemu_ga() {
        let sync = [("id", ArgType::Int, true)];
        let m = |v: Value| v.as_object().cloned().unwrap();
        let text = |r: Result<(), QmpError>| String::from_utf8(r.unwrap_err().desc).unwrap();
        assert_eq!(
            text(check_arguments(&m(json!({})), &sync)),
            "Parameter 'id' is missing"
        );
        assert_eq!(
            text(check_arguments(&m(json!({"id": 1.5})), &sync)),
            "Invalid parameter type for 'id', expected: integer"
        );
        assert_eq!(
            text(check_arguments(
                &m(json!({"id": 18446744073709551615u64})),
                &sync
            )),
            "Invalid parameter type for 'id', expected: integer"
        );
        assert_eq!(
            text(check_arguments(&m(json!({"id": 1, "x": 2})), &sync)),
            "Parameter 'x' is unexpected"
        );
        let list = [("mountpoints", ArgType::StrList, false)];
        assert!(check_arguments(&m(json!({})), &list).is_ok());
        assert_eq!(
            text(check_arguments(&m(json!({"mountpoints": "x"})), &list)),
            "Invalid parameter type for 'mountpoints', expected: array"
        );
        assert_eq!(
            text(check_arguments(
                &m(json!({"mountpoints": ["/a", 1]})),
                &list
            )),
            "Invalid parameter type for 'mountpoints[1]', expected: string"
        );
    }
}
