//! Writing answers byte for byte as qemu-ga writes them (QEMU's `qobject/json-writer.c` and
//! `qdict.c`): `": "` and `", "` between members, every character outside printable ASCII as
//! `\uXXXX` (upper-case hex, surrogate pairs beyond the BMP, U+FFFD for invalid UTF-8),
//! doubles with `%.17g`, and the members of an object in qemu's hash-table order (bucket
//! `tdb_hash(key) % 512` ascending, the newest member first within a bucket), so that e.g.
//! `{"return": {}, "id": 1}` but `{"id": 1, "error": {...}}`.

use super::parser::{mod_utf8_codepoint, Value};

const QDICT_BUCKET_MAX: u32 = 512;

/// qemu's `tdb_hash` (qobject/qdict.c).
fn tdb_hash(name: &[u8]) -> u32 {
    let mut value = 0x238F_13AFu32.wrapping_mul(name.len() as u32);
    for (i, &b) in name.iter().enumerate() {
        value = value.wrapping_add(u32::from(b) << (i * 5 % 24));
    }
    1_103_515_243u32.wrapping_mul(value).wrapping_add(12345)
}

/// The keys of an object (given in insertion order) in the order qemu iterates them.
pub fn qdict_order<'a>(keys: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut k: Vec<(u32, usize, &str)> = keys
        .enumerate()
        .map(|(i, k)| (tdb_hash(k.as_bytes()) % QDICT_BUCKET_MAX, i, k))
        .collect();
    k.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    k.into_iter().map(|(_, _, k)| k).collect()
}

/// One document, as qemu writes it (no newline).
pub fn to_bytes(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write(v, &mut out);
    out
}

fn write(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else {
                out.extend_from_slice(&g17(n.as_f64().unwrap_or(0.0)));
            }
        }
        Value::String(s) => quoted(s.as_bytes(), out),
        Value::Array(a) => {
            out.push(b'[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write(e, out);
            }
            out.push(b']');
        }
        Value::Object(m) => {
            out.push(b'{');
            for (i, k) in qdict_order(m.keys().map(String::as_str))
                .into_iter()
                .enumerate()
            {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                quoted(k.as_bytes(), out);
                out.extend_from_slice(b": ");
                if let Some(e) = m.get(k) {
                    write(e, out);
                }
            }
            out.push(b'}');
        }
    }
}

/// `%.17g`, as qemu's `qnum_to_string`.
fn g17(f: f64) -> Vec<u8> {
    let mut buf = [0u8; 64];
    // SAFETY: snprintf writes at most buf.len() bytes (NUL included) into buf; the format
    // takes exactly one double.
    let n = unsafe { libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), c"%.17g".as_ptr(), f) };
    let n = usize::try_from(n).unwrap_or(0).min(buf.len() - 1);
    buf[..n].to_vec()
}

/// A string (bytes: may be invalid UTF-8, from an error text) as qemu quotes it.
pub fn quoted(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    let mut i = 0;
    while i < s.len() {
        let (cp, len) = if s[i] == 0 {
            (0, 1)
        } else {
            mod_utf8_codepoint(&s[i..s.len().min(i + 6)])
        };
        i += len.max(1);
        match cp {
            0x22 => out.extend_from_slice(b"\\\""),
            0x5C => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0C => out.extend_from_slice(b"\\f"),
            0x0A => out.extend_from_slice(b"\\n"),
            0x0D => out.extend_from_slice(b"\\r"),
            0x09 => out.extend_from_slice(b"\\t"),
            _ => {
                let cp = if cp < 0 { 0xFFFD } else { cp };
                if cp > 0xFFFF {
                    let c = cp - 0x10000;
                    out.extend_from_slice(
                        format!(
                            "\\u{:04X}\\u{:04X}",
                            0xD800 + (c >> 10),
                            0xDC00 + (c & 0x3FF)
                        )
                        .as_bytes(),
                    );
                } else if !(0x20..0x7F).contains(&cp) {
                    out.extend_from_slice(format!("\\u{cp:04X}").as_bytes());
                } else {
                    out.push(cp as u8);
                }
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn member_order_is_qemus() {
        // Recorded from qemu-ga 7.2.
        assert_eq!(
            to_bytes(&json!({"return": {}, "id": "abc"})),
            br#"{"return": {}, "id": "abc"}"#
        );
        assert_eq!(
            to_bytes(&json!({"error": {"class": "C", "desc": "d"}, "id": 1})),
            br#"{"id": 1, "error": {"class": "C", "desc": "d"}}"#
        );
        assert_eq!(qdict_order(["foo", "bar"].into_iter()), ["bar", "foo"]);
        assert_eq!(
            to_bytes(&json!({"enabled": true, "name": "guest-ping", "success-response": true})),
            br#"{"enabled": true, "name": "guest-ping", "success-response": true}"#
        );
        assert_eq!(
            to_bytes(&json!({"version": "7.2.22", "supported_commands": []})),
            br#"{"version": "7.2.22", "supported_commands": []}"#
        );
    }

    #[test]
    fn strings_and_numbers() {
        let mut o = Vec::new();
        quoted(b"stray '\xff' \xc3\xa9 \x01 \xf0\x9f\x98\x80 \"\\/", &mut o);
        assert_eq!(
            String::from_utf8(o).unwrap(),
            r#""stray '\uFFFD' \u00E9 \u0001 \uD83D\uDE00 \"\\/""#
        );
        assert_eq!(
            to_bytes(&json!([0.1, 2.5, -3, 18446744073709551615u64])),
            b"[0.10000000000000001, 2.5, -3, 18446744073709551615]"
        );
    }
}
