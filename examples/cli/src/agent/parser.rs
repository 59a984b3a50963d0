//! The tokens of one message into a document, with qemu's error texts (QEMU's
//! `qobject/json-parser.c`): "expecting value", "missing : in object pair", "key is not a
//! string in object", "expected separator in dict", "duplicate key", "invalid keyword 'x'",
//! "invalid UTF-8 sequence in string", "premature EOI", each after "JSON parse error, " and
//! cut at 1023 bytes as qemu's message buffer cuts it. The first error wins.

use super::framing::Tok;

/// A document: serde_json's value, objects in insertion order.
pub type Value = serde_json::Value;

/// qemu's parse error text buffer (`char message[1024]`).
const MESSAGE_MAX: usize = 1023;

struct Parser<'t> {
    tokens: &'t [(Tok, Vec<u8>)],
    next: usize,
    err: Option<Vec<u8>>,
}

/// Parses one message. `Err` holds the answer's text.
pub fn parse(tokens: &[(Tok, Vec<u8>)]) -> Result<Value, Vec<u8>> {
    let mut p = Parser {
        tokens,
        next: 0,
        err: None,
    };
    let v = p.value();
    match (v, p.err) {
        (_, Some(e)) => Err(e),
        (Some(v), None) => Ok(v),
        (None, None) => Err(b"JSON parse error, expecting value".to_vec()),
    }
}

impl<'t> Parser<'t> {
    fn error(&mut self, message: &[u8]) {
        if self.err.is_some() {
            return;
        }
        let mut e = b"JSON parse error, ".to_vec();
        e.extend_from_slice(&message[..message.len().min(MESSAGE_MAX)]);
        self.err = Some(e);
    }

    fn peek(&self) -> Option<&'t (Tok, Vec<u8>)> {
        self.tokens.get(self.next)
    }

    fn pop(&mut self) -> Option<&'t (Tok, Vec<u8>)> {
        let t = self.tokens.get(self.next);
        if t.is_some() {
            self.next += 1;
        }
        t
    }

    fn value(&mut self) -> Option<Value> {
        let Some((t, _)) = self.peek() else {
            self.error(b"premature EOI");
            return None;
        };
        match t {
            Tok::LCurly => self.object(),
            Tok::LSquare => self.array(),
            Tok::String | Tok::Integer | Tok::Float => self.literal(),
            Tok::Keyword => self.keyword(),
            _ => {
                self.error(b"expecting value");
                None
            }
        }
    }

    fn keyword(&mut self) -> Option<Value> {
        let (_, text) = self.pop()?;
        match text.as_slice() {
            b"true" => Some(Value::Bool(true)),
            b"false" => Some(Value::Bool(false)),
            b"null" => Some(Value::Null),
            other => {
                let mut m = b"invalid keyword '".to_vec();
                m.extend_from_slice(other);
                m.push(b'\'');
                self.error(&m);
                None
            }
        }
    }

    fn literal(&mut self) -> Option<Value> {
        let (t, text) = self.pop()?;
        match t {
            Tok::String => self.string(text).map(Value::String),
            _ => Some(number(text)),
        }
    }

    fn object(&mut self) -> Option<Value> {
        self.pop();
        let mut map = serde_json::Map::new();
        let Some((t, _)) = self.peek() else {
            self.error(b"premature EOI");
            return None;
        };
        if *t == Tok::RCurly {
            self.pop();
            return Some(Value::Object(map));
        }
        self.pair(&mut map)?;
        loop {
            let Some((t, _)) = self.pop() else {
                self.error(b"premature EOI");
                return None;
            };
            match t {
                Tok::RCurly => return Some(Value::Object(map)),
                Tok::Comma => self.pair(&mut map)?,
                _ => {
                    self.error(b"expected separator in dict");
                    return None;
                }
            }
        }
    }

    fn pair(&mut self, map: &mut serde_json::Map<String, Value>) -> Option<()> {
        if self.peek().is_none() {
            self.error(b"premature EOI");
            return None;
        }
        let key = match self.value() {
            Some(Value::String(k)) => k,
            _ => {
                self.error(b"key is not a string in object");
                return None;
            }
        };
        let Some((t, _)) = self.pop() else {
            self.error(b"premature EOI");
            return None;
        };
        if *t != Tok::Colon {
            self.error(b"missing : in object pair");
            return None;
        }
        let Some(value) = self.value() else {
            self.error(b"Missing value in dict");
            return None;
        };
        if map.contains_key(&key) {
            self.error(b"duplicate key");
            return None;
        }
        map.insert(key, value);
        Some(())
    }

    fn array(&mut self) -> Option<Value> {
        self.pop();
        let mut list = Vec::new();
        let Some((t, _)) = self.peek() else {
            self.error(b"premature EOI");
            return None;
        };
        if *t == Tok::RSquare {
            self.pop();
            return Some(Value::Array(list));
        }
        let Some(v) = self.value() else {
            self.error(b"expecting value");
            return None;
        };
        list.push(v);
        loop {
            let Some((t, _)) = self.pop() else {
                self.error(b"premature EOI");
                return None;
            };
            match t {
                Tok::RSquare => return Some(Value::Array(list)),
                Tok::Comma => {
                    let Some(v) = self.value() else {
                        self.error(b"expecting value");
                        return None;
                    };
                    list.push(v);
                }
                _ => {
                    self.error(b"expected separator in list");
                    return None;
                }
            }
        }
    }

    /// A string token (with its quotes) into its text: escapes decoded (`\'` too), UTF-8
    /// checked as qemu checks it (no surrogates, no noncharacters, no overlong forms except
    /// `C0 80` for U+0000).
    fn string(&mut self, token: &[u8]) -> Option<String> {
        let quote = token[0];
        let mut s = String::new();
        let mut i = 1;
        while i < token.len() && token[i] != quote {
            if token[i] == b'\\' {
                let beg = i;
                let c = token.get(i + 1).copied().unwrap_or(0);
                i += 2;
                let simple = match c {
                    b'"' => Some('"'),
                    b'\'' => Some('\''),
                    b'\\' => Some('\\'),
                    b'/' => Some('/'),
                    b'b' => Some('\u{8}'),
                    b'f' => Some('\u{c}'),
                    b'n' => Some('\n'),
                    b'r' => Some('\r'),
                    b't' => Some('\t'),
                    b'u' => None,
                    _ => {
                        self.error(b"invalid escape sequence in string");
                        return None;
                    }
                };
                if let Some(ch) = simple {
                    s.push(ch);
                    continue;
                }
                let mut cp = hex4(token.get(i..i + 4));
                i += 4;
                if (0xD800..=0xDBFF).contains(&cp) && token.get(i..i + 2) == Some(b"\\u") {
                    let trailing = hex4(token.get(i + 2..i + 6));
                    if (0xDC00..=0xDFFF).contains(&trailing) {
                        cp = (0x10000 + ((cp & 0x3FF) << 10)) | (trailing & 0x3FF);
                        i += 6;
                    } else {
                        cp = -1;
                    }
                }
                match valid_codepoint(cp)
                    .then(|| char::from_u32(cp as u32))
                    .flatten()
                {
                    Some(ch) => s.push(ch),
                    None => {
                        let end = i.min(token.len());
                        let mut m = token[beg..end].to_vec();
                        m.extend_from_slice(b" is not a valid Unicode character");
                        self.error(&m);
                        return None;
                    }
                }
            } else {
                let (cp, len) = mod_utf8_codepoint(&token[i..]);
                match (cp >= 0).then(|| char::from_u32(cp as u32)).flatten() {
                    Some(ch) => s.push(ch),
                    None => {
                        self.error(b"invalid UTF-8 sequence in string");
                        return None;
                    }
                }
                i += len;
            }
        }
        Some(s)
    }
}

fn hex4(b: Option<&[u8]>) -> i64 {
    let Some(b) = b else { return -1 };
    let mut cp = 0i64;
    for &c in b {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return -1,
        };
        cp = cp << 4 | i64::from(d);
    }
    cp
}

/// qemu's `is_valid_codepoint`.
fn valid_codepoint(cp: i64) -> bool {
    (0..=0x10FFFF).contains(&cp)
        && !(0xFDD0..=0xFDEF).contains(&cp)
        && cp & 0xFFFE != 0xFFFE
        && !(0xD800..=0xDFFF).contains(&cp)
}

/// qemu's `mod_utf8_codepoint` on at most 6 bytes: the code point (or -1) and how many bytes
/// it took.
pub fn mod_utf8_codepoint(s: &[u8]) -> (i64, usize) {
    const MIN: [i64; 5] = [0x80, 0x800, 0x10000, 0x200000, 0x4000000];
    let Some(&first) = s.first() else {
        return (-1, 0);
    };
    let byte = u32::from(first);
    if byte < 0x80 {
        return (i64::from(byte), 1);
    }
    if byte >= 0xFE || byte & 0x40 == 0 {
        return (-1, 1);
    }
    let len = (byte as u8).leading_ones() as usize;
    let mut cp = i64::from(byte & (0x7F >> len));
    let mut used = 1;
    for k in 1..len {
        let b = if k < 6 {
            s.get(k).copied().unwrap_or(0)
        } else {
            0
        };
        if b & 0xC0 != 0x80 {
            return (-1, used);
        }
        used += 1;
        cp = cp << 6 | i64::from(b & 0x3F);
    }
    let ok = if cp == 0 && len == 2 {
        true
    } else {
        valid_codepoint(cp) && cp >= MIN[len - 2]
    };
    (if ok { cp } else { -1 }, used)
}

/// An integer token as int64, else uint64, else double (as qemu); a float token as double.
fn number(text: &[u8]) -> Value {
    let s = std::str::from_utf8(text).unwrap_or("0");
    if let Ok(i) = s.parse::<i64>() {
        return Value::from(i);
    }
    if !s.starts_with('-') {
        if let Ok(u) = s.parse::<u64>() {
            return Value::from(u);
        }
    }
    let f: f64 = s.parse().unwrap_or(0.0);
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::super::framing::{Framing, Message};
    use super::*;

    fn one(input: &[u8]) -> Result<Value, String> {
        let mut f = Framing::default();
        let mut out = Vec::new();
        f.feed(input, &mut out);
        f.feed(b" ", &mut out);
        match out.pop() {
            Some(Message::Request(v)) => Ok(v),
            Some(Message::Error(e)) => Err(String::from_utf8_lossy(&e).into_owned()),
            None => Err("nothing".into()),
        }
    }

    #[test]
    fn qemu_parse_errors() {
        // Each text recorded from qemu-ga 7.2.
        for (input, want) in [
            (
                &br#"{"a" 1}"#[..],
                "JSON parse error, missing : in object pair",
            ),
            (
                br#"{"execute":"guest-ping",}"#,
                "JSON parse error, expecting value",
            ),
            (
                b"{\"execute\":\"gu\xc3\x28\"}",
                "JSON parse error, invalid UTF-8 sequence in string",
            ),
            (
                br#"{1: 2}"#,
                "JSON parse error, key is not a string in object",
            ),
            (
                br#"{"a": 1 "b": 2}"#,
                "JSON parse error, expected separator in dict",
            ),
            (br#"[1 2]"#, "JSON parse error, expected separator in list"),
            (br#"{"a": 1, "a": 2}"#, "JSON parse error, duplicate key"),
            (
                br#"{"a": "\q"}"#,
                "JSON parse error, invalid escape sequence in string",
            ),
            (
                br#"{"a": "\ud800"}"#,
                "JSON parse error, \\ud800 is not a valid Unicode character",
            ),
        ] {
            assert_eq!(
                one(input),
                Err(want.to_string()),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn values() {
        assert_eq!(
            one(br#"{"a": [1, -2, 2.5, 18446744073709551615, "x\u00e9\ud83d\ude00", 'q"', true, null]}"#),
            Ok(serde_json::json!({"a": [1, -2, 2.5, 18446744073709551615u64, "x\u{e9}\u{1F600}", "q\"", true, null]}))
        );
    }

    #[test]
    fn long_errors_are_cut_as_qemu_cuts_them() {
        let e = one(&vec![b'a'; 1 << 20]).unwrap_err();
        assert_eq!(e.len(), "JSON parse error, ".len() + MESSAGE_MAX);
        assert!(e.starts_with("JSON parse error, invalid keyword 'aaa"));
    }
}
