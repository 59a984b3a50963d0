//! A small JSON writer: the CLI's only output format for machines, without dependencies.

use std::fmt::Write as _;

/// Appends `s` as a JSON string literal.
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `s` as a JSON string literal.
pub fn quoted(s: &str) -> String {
    let mut out = String::new();
    string(&mut out, s);
    out
}

/// Builds one JSON object, field by field.
pub struct Object {
    out: String,
    first: bool,
}

impl Object {
    pub fn new() -> Self {
        Object {
            out: String::from("{"),
            first: true,
        }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        string(&mut self.out, k);
        self.out.push(':');
    }

    pub fn str(mut self, k: &str, v: &str) -> Self {
        self.key(k);
        string(&mut self.out, v);
        self
    }

    pub fn opt_str(mut self, k: &str, v: Option<&str>) -> Self {
        match v {
            Some(v) => self.str(k, v),
            None => {
                self.key(k);
                self.out.push_str("null");
                self
            }
        }
    }

    pub fn num(mut self, k: &str, v: impl std::fmt::Display) -> Self {
        self.key(k);
        let _ = write!(self.out, "{v}");
        self
    }

    pub fn opt_num(mut self, k: &str, v: Option<u64>) -> Self {
        match v {
            Some(v) => self.num(k, v),
            None => {
                self.key(k);
                self.out.push_str("null");
                self
            }
        }
    }

    pub fn bool(mut self, k: &str, v: bool) -> Self {
        self.key(k);
        self.out.push_str(if v { "true" } else { "false" });
        self
    }

    /// A field whose value is already JSON.
    pub fn raw(mut self, k: &str, json: &str) -> Self {
        self.key(k);
        self.out.push_str(json);
        self
    }

    pub fn strings<'a>(self, k: &str, items: impl IntoIterator<Item = &'a str>) -> Self {
        let mut a = String::from("[");
        for (i, s) in items.into_iter().enumerate() {
            if i > 0 {
                a.push(',');
            }
            string(&mut a, s);
        }
        a.push(']');
        self.raw(k, &a)
    }

    pub fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// `[a,b,...]` from JSON values.
pub fn array(items: impl IntoIterator<Item = String>) -> String {
    let v: Vec<String> = items.into_iter().collect();
    format!("[{}]", v.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_nests() {
        let o = Object::new()
            .str("a", "x\"y\\z\n\u{1}")
            .num("n", 3)
            .opt_str("e", None)
            .bool("b", true)
            .strings("l", ["p", "q"])
            .finish();
        assert_eq!(
            o,
            r#"{"a":"x\"y\\z\n\u0001","n":3,"e":null,"b":true,"l":["p","q"]}"#
        );
        assert_eq!(array(["1".into(), "{}".into()]), "[1,{}]");
    }
}
