//! Splitting the byte stream from the host into requests, exactly as qemu-ga does (QEMU's
//! `qobject/json-lexer.c` and `json-streamer.c`, unchanged in 7.2).
//!
//! - The lexer cuts bytes into tokens. A byte that cannot continue or start a token (`0xFF`,
//!   `0xFE`, a control character inside a string, anything unknown at the top level) is a
//!   lexical error: it becomes one error answer ("JSON parse error, stray '...'", with the
//!   bytes of the unfinished token) and the lexer skips on to the next structural character
//!   (`{ } [ ] : ,`), control character or `0xFE`/`0xFF`. This is how the host's `0xFF`
//!   resets the parser: whatever was unfinished is dropped.
//! - The streamer collects tokens until the braces and brackets balance (or go negative),
//!   then hands the tokens of one message to the parser. Limits: 64 MiB of tokens, 2 Mi
//!   tokens, 1024 levels of nesting; beyond them the message is dropped with an error answer.
//!
//! No request is ever too broken to get an answer or to leave the next one unanswered.

use super::parser::{parse, Value};

/// The longest token, and the most token bytes of one message (qemu's `MAX_TOKEN_SIZE`).
pub const MAX_TOKEN_SIZE: usize = 64 << 20;
/// The most tokens of one message (`MAX_TOKEN_COUNT`).
pub const MAX_TOKEN_COUNT: usize = 2 << 20;
/// The deepest nesting (`MAX_NESTING`).
pub const MAX_NESTING: i64 = 1 << 10;

/// A token type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tok {
    LCurly,
    RCurly,
    LSquare,
    RSquare,
    Colon,
    Comma,
    Integer,
    Float,
    Keyword,
    String,
    /// A token cut off at [`MAX_TOKEN_SIZE`] (qemu passes the lexer's state on; the streamer
    /// then refuses the message).
    Partial,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Recovery,
    DqString,
    DqEscape,
    SqString,
    SqEscape,
    Zero,
    ExpDigits,
    ExpSign,
    ExpE,
    Mantissa,
    MantissaDigits,
    Digits,
    Sign,
    Keyword,
    Start,
}

/// What one byte does in one state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Go(State),
    Token(Tok),
    Error,
}

/// The transition table, and whether the byte is left for the next state (lookahead).
fn step(state: State, b: u8) -> (Step, bool) {
    use State::*;
    let digit = b.is_ascii_digit();
    let consumed = |s| (s, false);
    let terminal = |t| (Step::Token(t), true);
    match state {
        Recovery => match b {
            b'\t' | 0x20..=0xFD if !matches!(b, b'[' | b']' | b'{' | b'}' | b':' | b',') => {
                consumed(Step::Go(Recovery))
            }
            _ => (Step::Go(Start), true),
        },
        DqString | SqString => {
            let (quote, escape) = if state == DqString {
                (b'"', DqEscape)
            } else {
                (b'\'', SqEscape)
            };
            match b {
                b'\\' => consumed(Step::Go(escape)),
                _ if b == quote => consumed(Step::Token(Tok::String)),
                0x20..=0xFD => consumed(Step::Go(state)),
                _ => consumed(Step::Error),
            }
        }
        DqEscape | SqEscape => match b {
            0x20..=0xFD => consumed(Step::Go(if state == DqEscape {
                DqString
            } else {
                SqString
            })),
            _ => consumed(Step::Error),
        },
        Zero => match b {
            _ if digit => consumed(Step::Error),
            b'.' => consumed(Step::Go(Mantissa)),
            _ => terminal(Tok::Integer),
        },
        ExpDigits => match b {
            _ if digit => consumed(Step::Go(ExpDigits)),
            _ => terminal(Tok::Float),
        },
        ExpSign => match b {
            _ if digit => consumed(Step::Go(ExpDigits)),
            _ => consumed(Step::Error),
        },
        ExpE => match b {
            b'-' | b'+' => consumed(Step::Go(ExpSign)),
            _ if digit => consumed(Step::Go(ExpDigits)),
            _ => consumed(Step::Error),
        },
        MantissaDigits => match b {
            _ if digit => consumed(Step::Go(MantissaDigits)),
            b'e' | b'E' => consumed(Step::Go(ExpE)),
            _ => terminal(Tok::Float),
        },
        Mantissa => match b {
            _ if digit => consumed(Step::Go(MantissaDigits)),
            _ => consumed(Step::Error),
        },
        Digits => match b {
            _ if digit => consumed(Step::Go(Digits)),
            b'e' | b'E' => consumed(Step::Go(ExpE)),
            b'.' => consumed(Step::Go(Mantissa)),
            _ => terminal(Tok::Integer),
        },
        Sign => match b {
            b'0' => consumed(Step::Go(Zero)),
            b'1'..=b'9' => consumed(Step::Go(Digits)),
            _ => consumed(Step::Error),
        },
        Keyword => match b {
            b'a'..=b'z' => consumed(Step::Go(Keyword)),
            _ => terminal(Tok::Keyword),
        },
        Start => match b {
            b'"' => consumed(Step::Go(DqString)),
            b'\'' => consumed(Step::Go(SqString)),
            b'0' => consumed(Step::Go(Zero)),
            b'1'..=b'9' => consumed(Step::Go(Digits)),
            b'-' => consumed(Step::Go(Sign)),
            b'{' => consumed(Step::Token(Tok::LCurly)),
            b'}' => consumed(Step::Token(Tok::RCurly)),
            b'[' => consumed(Step::Token(Tok::LSquare)),
            b']' => consumed(Step::Token(Tok::RSquare)),
            b',' => consumed(Step::Token(Tok::Comma)),
            b':' => consumed(Step::Token(Tok::Colon)),
            b'a'..=b'z' => consumed(Step::Go(Keyword)),
            b' ' | b'\t' | b'\r' | b'\n' => consumed(Step::Go(Start)),
            _ => consumed(Step::Error),
        },
    }
}

/// One complete message: a parsed document, or the error answer's text (bytes, as qemu's
/// C strings: they may hold invalid UTF-8, which the writer shows as U+FFFD).
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    Request(Value),
    Error(Vec<u8>),
}

/// qemu-ga's parser: feed it bytes, take the messages out.
pub struct Framing {
    state: State,
    token: Vec<u8>,
    tokens: Vec<(Tok, Vec<u8>)>,
    brace: i64,
    bracket: i64,
    size: usize,
}

impl Default for Framing {
    fn default() -> Self {
        Framing {
            state: State::Start,
            token: Vec::new(),
            tokens: Vec::new(),
            brace: 0,
            bracket: 0,
            size: 0,
        }
    }
}

/// A C string's view of bytes: up to the first NUL (qemu formats with `%s`).
fn c_str(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |n| &b[..n])
}

impl Framing {
    /// Feeds bytes; every message completed by them is pushed to `out`, in order.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Message>) {
        for &b in bytes {
            self.byte(b, out);
        }
    }

    fn byte(&mut self, b: u8, out: &mut Vec<Message>) {
        loop {
            let (next, lookahead) = step(self.state, b);
            if !lookahead {
                self.token.push(b);
            }
            match next {
                Step::Token(t) => {
                    let text = std::mem::take(&mut self.token);
                    self.token_done(t, text, out);
                    self.state = State::Start;
                }
                Step::Go(State::Start) => {
                    self.token.clear();
                    self.state = State::Start;
                }
                Step::Error => {
                    let mut desc = b"JSON parse error, stray '".to_vec();
                    desc.extend_from_slice(c_str(&self.token));
                    desc.push(b'\'');
                    self.token.clear();
                    self.emit(Message::Error(desc), out);
                    self.state = State::Recovery;
                }
                Step::Go(State::Recovery) => {
                    self.token.clear();
                    self.state = State::Recovery;
                }
                Step::Go(s) => self.state = s,
            }
            if !lookahead {
                break;
            }
        }
        if self.token.len() > MAX_TOKEN_SIZE {
            let text = std::mem::take(&mut self.token);
            self.token_done(Tok::Partial, text, out);
            self.state = State::Start;
        }
    }

    fn token_done(&mut self, t: Tok, text: Vec<u8>, out: &mut Vec<Message>) {
        match t {
            Tok::LCurly => self.brace += 1,
            Tok::RCurly => self.brace -= 1,
            Tok::LSquare => self.bracket += 1,
            Tok::RSquare => self.bracket -= 1,
            _ => {}
        }
        let refuse = if self.size + text.len() + 1 > MAX_TOKEN_SIZE {
            Some("JSON token size limit exceeded")
        } else if self.tokens.len() + 1 > MAX_TOKEN_COUNT {
            Some("JSON token count limit exceeded")
        } else if self.brace + self.bracket > MAX_NESTING {
            Some("JSON nesting depth limit exceeded")
        } else {
            None
        };
        if let Some(why) = refuse {
            self.emit(Message::Error(why.as_bytes().to_vec()), out);
            return;
        }
        self.size += text.len();
        self.tokens.push((t, text));
        if (self.brace > 0 || self.bracket > 0) && self.brace >= 0 && self.bracket >= 0 {
            return;
        }
        let tokens = std::mem::take(&mut self.tokens);
        let m = match parse(&tokens) {
            Ok(v) => Message::Request(v),
            Err(desc) => Message::Error(desc),
        };
        self.emit(m, out);
    }

    fn emit(&mut self, m: Message, out: &mut Vec<Message>) {
        self.brace = 0;
        self.bracket = 0;
        self.tokens.clear();
        self.size = 0;
        out.push(m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` one write at a time; the messages, as text.
    fn run(chunks: &[&[u8]]) -> Vec<String> {
        let mut f = Framing::default();
        let mut out = Vec::new();
        for c in chunks {
            f.feed(c, &mut out);
        }
        out.iter()
            .map(|m| match m {
                Message::Request(v) => format!(
                    "ok {}",
                    String::from_utf8_lossy(&super::super::wire::to_bytes(v))
                ),
                Message::Error(d) => format!("error {}", String::from_utf8_lossy(d)),
            })
            .collect()
    }

    #[test]
    fn one_request_per_object_and_two_in_one_write() {
        assert_eq!(
            run(&[br#"{"execute":"guest-ping"}{"execute":"guest-sync","arguments":{"id":7}}"#]),
            [
                r#"ok {"execute": "guest-ping"}"#,
                r#"ok {"execute": "guest-sync", "arguments": {"id": 7}}"#
            ]
        );
    }

    #[test]
    fn a_request_split_across_writes() {
        let whole = br#"{"execute": "guest-sync", "arguments": {"id": 12345}}"#;
        for cut in 1..whole.len() {
            let got = run(&[&whole[..cut], &whole[cut..]]);
            assert_eq!(got, run(&[whole]), "cut at {cut}");
        }
        // Byte by byte.
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(run(&bytes).len(), 1);
    }

    #[test]
    fn the_sentinel_byte_drops_the_unfinished_request() {
        // Recorded from qemu-ga 7.2: the 0xFF is one "stray" error, the unfinished object is
        // gone, and the next request is answered.
        assert_eq!(
            run(&[
                br#"{"execute":"guest-ping""#,
                b"\xff",
                br#"{"execute":"guest-ping"}"#
            ]),
            [
                "error JSON parse error, stray '\u{fffd}'",
                r#"ok {"execute": "guest-ping"}"#
            ]
        );
        // Inside a string the 0xFF ends the token: the stray text is what was read of it.
        assert_eq!(
            run(&[b"{\"execute\":\"gue\xff{\"execute\":\"guest-ping\"}"]),
            [
                "error JSON parse error, stray '\"gue\u{fffd}'",
                r#"ok {"execute": "guest-ping"}"#
            ]
        );
    }

    #[test]
    fn recovery_skips_to_a_structural_character() {
        // After the error, "garbage" is skipped silently up to the '{'.
        assert_eq!(
            run(&[b"\xffgarbage{\"execute\":\"guest-ping\"}"]),
            [
                "error JSON parse error, stray '\u{fffd}'",
                r#"ok {"execute": "guest-ping"}"#
            ]
        );
    }

    #[test]
    fn a_keyword_waits_for_its_end() {
        assert_eq!(run(&[b"garbage"]), Vec::<String>::new());
        assert_eq!(
            run(&[b"garbage", b"\n"]),
            ["error JSON parse error, invalid keyword 'garbage'"]
        );
    }

    #[test]
    fn a_newline_inside_a_string_is_stray() {
        assert_eq!(
            run(&[b"\"abc", b"\n"]),
            ["error JSON parse error, stray '\"abc\n'"]
        );
    }

    #[test]
    fn unbalanced_closers_are_parsed_at_once() {
        assert_eq!(run(&[b"}"]), ["error JSON parse error, expecting value"]);
    }

    #[test]
    fn nesting_is_limited() {
        let got = run(&[&[b'['; 3000], b"\n"]);
        assert_eq!(
            got,
            [
                "error JSON nesting depth limit exceeded",
                "error JSON nesting depth limit exceeded"
            ]
        );
    }

    #[test]
    fn an_oversized_token_is_refused_and_the_rest_is_read_on() {
        let mut f = Framing::default();
        let mut out = Vec::new();
        f.feed(
            b"{\"execute\":\"guest-ping\",\"arguments\":{\"pad\":\"",
            &mut out,
        );
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..65 {
            f.feed(&chunk, &mut out);
        }
        f.feed(b"\"}}\n", &mut out);
        assert!(matches!(&out[0], Message::Error(d) if d == b"JSON token size limit exceeded"));
        assert!(
            out.len() >= 2,
            "the tail is read as more input: {}",
            out.len()
        );
        let mut out = Vec::new();
        f.feed(b"\xff{\"execute\":\"guest-ping\"}", &mut out);
        assert!(matches!(out.last(), Some(Message::Request(_))));
    }

    #[test]
    fn garbage_never_panics() {
        // A pseudo-random byte stream (xorshift): every input gets answers, never a panic,
        // and the parser recovers at the next sentinel.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut bytes = Vec::new();
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let alphabet = b"{}[]:,\"'\\0123456789.eE+-truefalsnl \n\xff\xc3\xa9\x80";
            bytes.push(alphabet[(x % alphabet.len() as u64) as usize]);
        }
        let mut f = Framing::default();
        let mut out = Vec::new();
        for c in bytes.chunks(97) {
            f.feed(c, &mut out);
        }
        out.clear();
        f.feed(b"\xff{\"execute\":\"guest-ping\"}", &mut out);
        assert!(matches!(out.last(), Some(Message::Request(_))), "{out:?}");
    }
}
