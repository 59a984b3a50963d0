//! Reading a few top-level fields of quiesce's one-line JSON report (numbers and strings
//! without escapes), without a JSON library.

/// The raw text of the value of `"key":` (first occurrence), up to the next `,` or `}`.
fn raw<'a>(obj: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":");
    let start = obj.find(&pat)? + pat.len();
    let rest = &obj[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

/// A number field (`null` is None).
pub fn number(obj: &str, key: &str) -> Option<f64> {
    raw(obj, key)?.parse().ok()
}

/// A string field.
pub fn string<'a>(obj: &'a str, key: &str) -> Option<&'a str> {
    raw(obj, key)?.strip_prefix('"')?.strip_suffix('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields() {
        let o = r#"{"command":"freeze","status":13,"status_name":"timeout","end":"deadline","timeout_ms":200,"window_us":201534,"targets":[{"freeze_us":9}]}"#;
        assert_eq!(number(o, "status"), Some(13.0));
        assert_eq!(number(o, "timeout_ms"), Some(200.0));
        assert_eq!(number(o, "window_us"), Some(201534.0));
        assert_eq!(string(o, "end"), Some("deadline"));
        assert_eq!(string(o, "status_name"), Some("timeout"));
        assert_eq!(number(r#"{"window_us":null}"#, "window_us"), None);
        assert_eq!(number(o, "missing"), None);
    }
}
