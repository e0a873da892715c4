//! Incremental (push) JSON syntax validation.
//!
//! The daemon feeds every `write(2)` of a JSON record through [`JsonCheck`] so
//! that a write which makes the file impossible to complete as JSON fails at
//! once, and calls [`JsonCheck::finish`] at commit. Nothing of the document is
//! buffered: the state is a small enum plus one bit per open container.
//!
//! What counts as valid is what `serde_json` (1.x) accepts when it really
//! parses the document, e.g. into `serde_json::Value`, with one exception:
//! numbers of any magnitude are accepted (`Value` rejects `1e400` as out of
//! range, but that is a property of `f64`, not of the syntax). That is
//! stricter than serde_json's `IgnoredAny`, which skips strings without
//! checking UTF-8 or surrogates and has no depth limit; a record that only
//! passed `IgnoredAny` could still fail every reader that parses it.
//! Concretely:
//! - RFC 8259 grammar; whitespace is space, tab, LF, CR; no BOM;
//! - strings are valid UTF-8 (no overlong forms, no encoded surrogates, nothing
//!   above U+10FFFF) with no raw byte below 0x20;
//! - a `\u` escape for a high surrogate must be followed at once by a `\u`
//!   escape for a low surrogate, and a low surrogate may not stand alone;
//! - at most [`MAX_DEPTH`] nested arrays/objects (serde_json's recursion limit
//!   rejects the 128th level);
//! - exactly one value, then only whitespace;
//! - zero bytes are accepted by `finish` (an empty file is a record not yet
//!   written); whitespace only is not.

use std::fmt;

/// Deepest nesting serde_json accepts: its limit of 128 counts down on each
/// `[`/`{` and fails when it reaches zero, i.e. on the 128th level.
pub const MAX_DEPTH: u32 = 127;

// The stack of open containers is one bit per level in a u128.
const _: () = assert!(MAX_DEPTH < 128);

/// Where and why a byte stream stopped being a possible JSON document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// 1-based line (lines are ended by LF).
    pub line: u64,
    /// 1-based byte column within the line.
    pub column: u64,
    /// 0-based byte offset of the offending byte (for errors found at the end,
    /// the length of the stream).
    pub offset: u64,
    /// What was wrong, e.g. "expected ',' or '}'".
    pub msg: &'static str,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.msg
        )
    }
}

impl std::error::Error for Invalid {}

/// What the next byte may be. Small and `Copy` so the hot loop keeps it in a
/// register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Top level, nothing but whitespace so far.
    Start,
    /// A value is required (after `:`, or after `,` in an array).
    Value,
    /// Just after `[`: a value or `]`.
    ArrayFirst,
    /// Just after `{`: a key or `}`.
    ObjectFirst,
    /// After `,` in an object: a key.
    Key,
    /// After a key: `:`.
    Colon,
    /// A value has ended: `,`, the closer, or (at top level) only whitespace.
    After,
    /// Inside a string.
    Str,
    /// After a backslash in a string.
    Escape,
    /// First hex digit of a `\u` escape.
    UFirst,
    /// Second hex digit of a `\u` escape whose first was `d`: decides whether
    /// it is a surrogate.
    USecond,
    /// `left` hex digits of a `\u` escape remain; `high` means it encodes a
    /// high surrogate, so a low one must follow.
    Hex { left: u8, high: bool },
    /// After a high surrogate escape: `\` of the low one.
    LowBackslash,
    /// After a high surrogate escape and `\`: `u`.
    LowU,
    /// First hex digit of the low surrogate: `d`.
    LowFirst,
    /// Second hex digit of the low surrogate: `c`..`f`.
    LowSecond,
    /// Inside a multi-byte UTF-8 sequence: `need` continuation bytes remain and
    /// the next one must be in `lo..=hi` (narrower than 80..BF right after some
    /// lead bytes, which is how overlong forms, surrogates and code points
    /// above U+10FFFF are excluded).
    Utf8 { need: u8, lo: u8, hi: u8 },
    /// After `-`.
    Minus,
    /// After a leading `0` (no more integer digits may follow).
    Zero,
    /// In the integer digits (after 1-9).
    Int,
    /// After `.`: a digit is required.
    Dot,
    /// In the fraction digits.
    Frac,
    /// After `e`/`E`: a sign or a digit.
    Exp,
    /// After the exponent sign: a digit.
    ExpSign,
    /// In the exponent digits.
    ExpInt,
    /// Inside `true`/`false`/`null`: the next byte must be `LITERALS[pos]`;
    /// the literal is complete at `end`.
    Lit { pos: u8, end: u8 },
}

/// `true`, `false` and `null` back to back; `State::Lit` indexes into it.
const LITERALS: &[u8; 13] = b"truefalsenull";

/// Checks a byte stream is exactly one JSON document (RFC 8259), fed in pieces.
#[derive(Clone, Debug)]
pub struct JsonCheck {
    state: State,
    /// Whether the string being read is an object key (it is followed by `:`
    /// rather than by whatever follows a value).
    in_key: bool,
    /// Number of open containers.
    depth: u32,
    /// Bit `d` set: the container at level `d` (0-based) is an object.
    stack: u128,
    /// Bytes fed so far.
    offset: u64,
    /// Current 1-based line and the offset at which it starts. Raw LF can only
    /// appear in whitespace (in a string it is an error), so only the
    /// whitespace path counts lines.
    line: u64,
    line_start: u64,
    /// First error; sticky.
    error: Option<Invalid>,
}

impl Default for JsonCheck {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonCheck {
    pub fn new() -> Self {
        JsonCheck {
            state: State::Start,
            in_key: false,
            depth: 0,
            stack: 0,
            offset: 0,
            line: 1,
            line_start: 0,
            error: None,
        }
    }
    /// Bytes fed so far. After an error, the offset of the offending byte: the bytes
    /// from there on were not taken.
    #[cfg(test)]
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Feeds the next bytes. Errs as soon as the bytes seen so far cannot be
    /// the prefix of any valid document, pointing at the first byte that made
    /// it so. The error is sticky: later calls return it again and ignore
    /// their bytes.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), Invalid> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let n = bytes.len();
        let mut st = self.state;
        let mut in_key = self.in_key;
        let mut depth = self.depth;
        let mut stack = self.stack;
        let mut i = 0usize;

        // Records the error at byte `i` and returns it.
        macro_rules! fail {
            ($msg:expr) => {{
                return Err(self.fail_at(i, $msg));
            }};
        }
        // Enters a container, or fails if that would exceed serde_json's limit.
        macro_rules! open {
            ($object:expr, $next:expr) => {{
                if depth >= MAX_DEPTH {
                    fail!("nesting deeper than 127");
                }
                let bit = 1u128 << depth;
                stack = if $object { stack | bit } else { stack & !bit };
                depth += 1;
                st = $next;
            }};
        }
        // Whether the innermost open container is an object (depth > 0).
        macro_rules! top_is_object {
            () => {
                (stack >> (depth - 1)) & 1 == 1
            };
        }

        // In the integer digits: skips them and handles what ends them.
        macro_rules! int_tail {
            () => {{
                i = skip_digits(bytes, i);
                if let Some(&b) = bytes.get(i) {
                    match b {
                        b'.' => {
                            st = State::Dot;
                            i += 1;
                        }
                        b'e' | b'E' => {
                            st = State::Exp;
                            i += 1;
                        }
                        // The number ended; this byte belongs to what follows.
                        _ => st = State::After,
                    }
                }
            }};
        }

        while i < n {
            let b = bytes[i];
            match st {
                State::Str => {
                    // Stay in the string until it ends, an escape starts, or
                    // the chunk runs out; plain bytes are skipped in bulk.
                    loop {
                        i = skip_plain(bytes, i);
                        if i >= n {
                            break;
                        }
                        let c = bytes[i];
                        if c == b'"' {
                            st = if in_key { State::Colon } else { State::After };
                            i += 1;
                            break;
                        }
                        if c == b'\\' {
                            // Escapes that are whole in this chunk and need no
                            // surrogate pairing are checked here; the rest go
                            // through the escape states byte by byte.
                            let len = escape_len(bytes.get(i + 1..i + 6).unwrap_or(&[]));
                            if len > 0 {
                                i += 1 + len;
                                continue;
                            }
                            st = State::Escape;
                            i += 1;
                            break;
                        }
                        if c < 0x20 {
                            fail!("control character in string");
                        }
                        // Non-ASCII: pass the text run of valid, complete
                        // sequences in one tight loop. Where it stops at a bad
                        // or incomplete sequence (maybe just split by the
                        // chunk end), continue byte-exactly below.
                        let j = skip_utf8_text(bytes, i);
                        if j > i {
                            i = j;
                            continue;
                        }
                        // A UTF-8 lead byte (ASCII is always valid UTF-8).
                        let Some((need, lo, hi)) = utf8_lead(c) else {
                            fail!("invalid UTF-8");
                        };
                        let need = usize::from(need);
                        if i + need < n {
                            // Whole sequence in this chunk: check it here.
                            i += 1;
                            if !(lo..=hi).contains(&bytes[i]) {
                                fail!("invalid UTF-8");
                            }
                            for _ in 1..need {
                                i += 1;
                                if bytes[i] & 0xC0 != 0x80 {
                                    fail!("invalid UTF-8");
                                }
                            }
                            i += 1;
                        } else {
                            // Split across chunks: carry the expectation.
                            st = State::Utf8 {
                                need: need as u8,
                                lo,
                                hi,
                            };
                            i += 1;
                            break;
                        }
                    }
                }
                State::Utf8 { need, lo, hi } => {
                    if !(lo..=hi).contains(&b) {
                        fail!("invalid UTF-8");
                    }
                    st = if need == 1 {
                        State::Str
                    } else {
                        State::Utf8 {
                            need: need - 1,
                            lo: 0x80,
                            hi: 0xBF,
                        }
                    };
                    i += 1;
                }
                // The structural states skip whitespace in place and handle
                // the usual next token inline: each return to the `match`
                // is an indirect jump, the main cost on punctuation-heavy
                // input.
                State::Start | State::Value | State::ArrayFirst => {
                    i = self.skip_ws(bytes, i);
                    let Some(&b) = bytes.get(i) else { break };
                    match b {
                        b'"' => {
                            in_key = false;
                            st = State::Str;
                        }
                        b'1'..=b'9' => {
                            st = State::Int;
                            i += 1;
                            int_tail!();
                            continue;
                        }
                        b'-' => st = State::Minus,
                        b'0' => st = State::Zero,
                        b'{' => open!(true, State::ObjectFirst),
                        b'[' => open!(false, State::ArrayFirst),
                        b't' => st = State::Lit { pos: 1, end: 4 },
                        b'f' => st = State::Lit { pos: 5, end: 9 },
                        b'n' => st = State::Lit { pos: 10, end: 13 },
                        b']' if st == State::ArrayFirst => {
                            depth -= 1;
                            st = State::After;
                        }
                        _ => fail!("expected a value"),
                    }
                    i += 1;
                }
                State::ObjectFirst | State::Key => {
                    i = self.skip_ws(bytes, i);
                    let Some(&b) = bytes.get(i) else { break };
                    match b {
                        b'"' => {
                            in_key = true;
                            st = State::Str;
                        }
                        b'}' if st == State::ObjectFirst => {
                            depth -= 1;
                            st = State::After;
                        }
                        _ if st == State::ObjectFirst => fail!("expected a key or '}'"),
                        _ => fail!("expected a key"),
                    }
                    i += 1;
                }
                State::Colon => {
                    i = self.skip_ws(bytes, i);
                    let Some(&b) = bytes.get(i) else { break };
                    if b != b':' {
                        fail!("expected ':'");
                    }
                    st = State::Value;
                    i += 1;
                }
                State::After => loop {
                    // Loops over runs of closers; leaves after a comma.
                    i = self.skip_ws(bytes, i);
                    let Some(&b) = bytes.get(i) else { break };
                    if depth == 0 {
                        fail!("trailing characters after the document");
                    }
                    let object = top_is_object!();
                    match b {
                        b',' if object => {
                            st = State::Key;
                            i = self.skip_ws(bytes, i + 1);
                            if bytes.get(i) == Some(&b'"') {
                                in_key = true;
                                st = State::Str;
                                i += 1;
                            }
                            break;
                        }
                        b',' => {
                            st = State::Value;
                            i += 1;
                            break;
                        }
                        b'}' if object => depth -= 1,
                        b']' if !object => depth -= 1,
                        _ if object => fail!("expected ',' or '}'"),
                        _ => fail!("expected ',' or ']'"),
                    }
                    i += 1;
                },
                State::Escape => {
                    st = match b {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => State::Str,
                        b'u' => State::UFirst,
                        _ => fail!("invalid escape"),
                    };
                    i += 1;
                }
                State::UFirst => {
                    st = match b {
                        b'd' | b'D' => State::USecond,
                        _ if b.is_ascii_hexdigit() => State::Hex {
                            left: 3,
                            high: false,
                        },
                        _ => fail!("invalid escape"),
                    };
                    i += 1;
                }
                State::USecond => {
                    st = match b {
                        b'0'..=b'7' => State::Hex {
                            left: 2,
                            high: false,
                        },
                        b'8' | b'9' | b'a' | b'b' | b'A' | b'B' => State::Hex {
                            left: 2,
                            high: true,
                        },
                        // DC00..DFFF: a low surrogate with no high one before.
                        _ if b.is_ascii_hexdigit() => fail!("lone surrogate"),
                        _ => fail!("invalid escape"),
                    };
                    i += 1;
                }
                State::Hex { left, high } => {
                    if !b.is_ascii_hexdigit() {
                        fail!("invalid escape");
                    }
                    st = match (left, high) {
                        (1, false) => State::Str,
                        (1, true) => State::LowBackslash,
                        _ => State::Hex {
                            left: left - 1,
                            high,
                        },
                    };
                    i += 1;
                }
                State::LowBackslash => {
                    if b != b'\\' {
                        fail!("lone surrogate");
                    }
                    st = State::LowU;
                    i += 1;
                }
                State::LowU => {
                    if b != b'u' {
                        fail!("lone surrogate");
                    }
                    st = State::LowFirst;
                    i += 1;
                }
                State::LowFirst => {
                    st = match b {
                        b'd' | b'D' => State::LowSecond,
                        _ if b.is_ascii_hexdigit() => fail!("lone surrogate"),
                        _ => fail!("invalid escape"),
                    };
                    i += 1;
                }
                State::LowSecond => {
                    st = match b {
                        b'c'..=b'f' | b'C'..=b'F' => State::Hex {
                            left: 2,
                            high: false,
                        },
                        _ if b.is_ascii_hexdigit() => fail!("lone surrogate"),
                        _ => fail!("invalid escape"),
                    };
                    i += 1;
                }
                State::Minus => {
                    st = match b {
                        b'0' => State::Zero,
                        b'1'..=b'9' => State::Int,
                        _ => fail!("invalid number"),
                    };
                    i += 1;
                }
                State::Zero => match b {
                    b'.' => {
                        st = State::Dot;
                        i += 1;
                    }
                    b'e' | b'E' => {
                        st = State::Exp;
                        i += 1;
                    }
                    b'0'..=b'9' => fail!("invalid number"),
                    // The number ended; this byte belongs to what follows it.
                    _ => st = State::After,
                },
                State::Int => int_tail!(),
                State::Dot => {
                    if !b.is_ascii_digit() {
                        fail!("invalid number");
                    }
                    st = State::Frac;
                    i += 1;
                }
                State::Frac => {
                    i = skip_digits(bytes, i);
                    if i < n {
                        match bytes[i] {
                            b'e' | b'E' => {
                                st = State::Exp;
                                i += 1;
                            }
                            _ => st = State::After,
                        }
                    }
                }
                State::Exp => {
                    st = match b {
                        b'+' | b'-' => State::ExpSign,
                        b'0'..=b'9' => State::ExpInt,
                        _ => fail!("invalid number"),
                    };
                    i += 1;
                }
                State::ExpSign => {
                    if !b.is_ascii_digit() {
                        fail!("invalid number");
                    }
                    st = State::ExpInt;
                    i += 1;
                }
                State::ExpInt => {
                    i = skip_digits(bytes, i);
                    if i < n {
                        st = State::After;
                    }
                }
                State::Lit { pos, end } => {
                    if b != LITERALS[usize::from(pos)] {
                        fail!("invalid literal");
                    }
                    st = if pos + 1 == end {
                        State::After
                    } else {
                        State::Lit { pos: pos + 1, end }
                    };
                    i += 1;
                }
            }
        }

        self.state = st;
        self.in_key = in_key;
        self.depth = depth;
        self.stack = stack;
        self.offset += n as u64;
        Ok(())
    }

    /// Whether a whole top-level object, array or string was fed (only whitespace may
    /// follow): its content can be judged before the stream ends.
    pub fn complete(&self) -> bool {
        self.error.is_none() && self.depth == 0 && matches!(self.state, State::After)
    }

    /// The stream ended: Ok if what was fed is exactly one complete document,
    /// or nothing at all.
    pub fn finish(&self) -> Result<(), Invalid> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.offset == 0 {
            return Ok(());
        }
        match self.state {
            // A top-level number has no terminator: end of input completes it.
            State::After | State::Zero | State::Int | State::Frac | State::ExpInt
                if self.depth == 0 =>
            {
                Ok(())
            }
            State::Start => Err(self.invalid(self.offset, "empty document")),
            _ => Err(self.invalid(self.offset, "unexpected end of input")),
        }
    }

    /// Skips JSON whitespace from `i`, counting lines; returns the index of the
    /// first other byte (or the end).
    #[inline]
    fn skip_ws(&mut self, bytes: &[u8], mut i: usize) -> usize {
        while let Some(&b) = bytes.get(i) {
            match b {
                b' ' | b'\t' | b'\r' => {}
                b'\n' => {
                    self.line += 1;
                    self.line_start = self.offset + i as u64 + 1;
                }
                _ => break,
            }
            i += 1;
        }
        i
    }

    /// Makes the error for byte `i` of the current chunk sticky and returns it.
    #[cold]
    fn fail_at(&mut self, i: usize, msg: &'static str) -> Invalid {
        let e = self.invalid(self.offset + i as u64, msg);
        self.error = Some(e.clone());
        self.offset += i as u64;
        e
    }

    fn invalid(&self, offset: u64, msg: &'static str) -> Invalid {
        Invalid {
            line: self.line,
            column: offset - self.line_start + 1,
            offset,
            msg,
        }
    }
}

/// For a UTF-8 lead byte: how many continuation bytes follow and the range the
/// first of them must lie in (RFC 3629 table); `None` for bytes that can never
/// start a sequence (ASCII is not passed here).
#[inline]
fn utf8_lead(b: u8) -> Option<(u8, u8, u8)> {
    Some(match b {
        0xC2..=0xDF => (1, 0x80, 0xBF),
        0xE0 => (2, 0xA0, 0xBF), // below A0 would be overlong
        0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80, 0xBF),
        0xED => (2, 0x80, 0x9F), // A0.. would encode a surrogate
        0xF0 => (3, 0x90, 0xBF), // below 90 would be overlong
        0xF1..=0xF3 => (3, 0x80, 0xBF),
        0xF4 => (3, 0x80, 0x8F), // 90.. would be above U+10FFFF
        _ => return None,
    })
}

/// Index of the first byte at or after `i` that is not a plain string byte
/// (plain: ASCII, not `"`, not `\`, not a control character), or `len`.
#[inline(always)]
fn skip_plain(bytes: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Eight bytes at a time. Each subtraction trick can flag a byte wrongly
    // only above a byte it flagged rightly (the borrow propagates upwards), so
    // the lowest flagged byte is always a real stop.
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let stops = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w)
            | w;
        let stops = stops & HIGH;
        if stops != 0 {
            return i + (stops.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if !(0x20..0x80).contains(&b) || b == b'"' || b == b'\\' {
            break;
        }
        i += 1;
    }
    i
}

/// From `i`, passes string text: ASCII other than `"`, `\` and control
/// bytes, and UTF-8 sequences that are valid and wholly in `bytes`. Returns the
/// index of the first byte it cannot pass.
#[inline(always)]
fn skip_utf8_text(bytes: &[u8], mut i: usize) -> usize {
    while let Some(&c) = bytes.get(i) {
        if c < 0x80 {
            // ASCII runs go word-at-a-time.
            let j = skip_plain(bytes, i);
            if j == i {
                break; // quote, backslash or control byte
            }
            i = j;
            continue;
        }
        let Some((need, lo, hi)) = utf8_lead(c) else {
            break;
        };
        let Some(seq) = bytes.get(i + 1..i + 1 + usize::from(need)) else {
            break;
        };
        let first_ok = (lo..=hi).contains(&seq[0]);
        if !first_ok || seq[1..].iter().any(|&t| t & 0xC0 != 0x80) {
            break;
        }
        i += 1 + usize::from(need);
    }
    i
}

/// Length of the escape after a backslash if `after` (the next five bytes, or
/// fewer at the chunk end) holds a complete, valid one that is not part of a
/// surrogate pair; 0 to leave it to the escape states.
#[inline(always)]
fn escape_len(after: &[u8]) -> usize {
    match after {
        [b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't', ..] => 1,
        [b'u', h @ ..] if h.len() == 4 && h.iter().all(u8::is_ascii_hexdigit) => {
            // D800..DFFF: surrogates need the pairing logic.
            let surrogate = matches!(h[0], b'd' | b'D') && !matches!(h[1], b'0'..=b'7');
            if surrogate { 0 } else { 5 }
        }
        _ => 0,
    }
}

/// Index of the first non-digit byte at or after `i`, or `len`.
#[inline(always)]
fn skip_digits(bytes: &[u8], mut i: usize) -> usize {
    while let Some(b) = bytes.get(i) {
        if !b.is_ascii_digit() {
            break;
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;
    use serde::de::IgnoredAny;
    use serde_json::Value;

    // ---------------------------------------------------------------- oracle

    /// serde_json's verdict, per the semantics in the module doc. Two passes,
    /// because no single serde_json entry point checks exactly that:
    /// `IgnoredAny` checks the grammar but not UTF-8, surrogates or depth;
    /// `Value` checks those but also rejects out-of-range numbers and stops at
    /// the first one. So: `IgnoredAny` on the input, then `Value` on a copy
    /// whose numbers (already known well-formed) are replaced by `0`.
    fn serde_ok(b: &[u8]) -> bool {
        if b.is_empty() {
            return true;
        }
        let mut de = serde_json::Deserializer::from_slice(b);
        if IgnoredAny::deserialize(&mut de)
            .and_then(|_| de.end())
            .is_err()
        {
            return false;
        }
        serde_json::from_slice::<Value>(&zero_numbers(b)).is_ok()
    }

    /// Replaces each number token outside strings by `0`. Only used on input
    /// that `IgnoredAny` accepted, where outside strings a number is exactly a
    /// maximal run of `-+.0-9eE`.
    fn zero_numbers(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        let mut in_str = false;
        while i < b.len() {
            let c = b[i];
            if in_str {
                out.push(c);
                if c == b'\\' {
                    i += 1;
                    out.push(b[i]);
                } else if c == b'"' {
                    in_str = false;
                }
                i += 1;
            } else if c == b'-' || c.is_ascii_digit() {
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                out.push(b'0');
            } else {
                in_str = c == b'"';
                out.push(c);
                i += 1;
            }
        }
        out
    }

    // ------------------------------------------------------------- helpers

    /// Feeds `b` split at `cuts` (sorted or not; clamped); returns the first
    /// feed error, or finish's verdict as `(feed_err, finish)`.
    fn run_split(b: &[u8], cuts: &[usize]) -> (Option<Invalid>, Result<(), Invalid>) {
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(b.len())).collect();
        cuts.sort_unstable();
        let mut c = JsonCheck::new();
        let mut last = 0;
        for &cut in cuts.iter().chain(std::iter::once(&b.len())) {
            if let Err(e) = c.feed(&b[last..cut]) {
                let fin = c.finish();
                assert_eq!(fin.as_ref().err(), Some(&e), "error is sticky");
                assert_eq!(c.feed(b"[").err(), Some(e.clone()), "error is sticky");
                return (Some(e), fin);
            }
            last = cut;
        }
        assert_eq!(c.offset(), b.len() as u64);
        (None, c.finish())
    }

    fn check_whole(b: &[u8]) -> (Option<Invalid>, Result<(), Invalid>) {
        run_split(b, &[])
    }

    fn ok(b: &[u8]) -> bool {
        check_whole(b).1.is_ok()
    }

    /// Feed error (offset, msg) for `b` fed whole, byte by byte, and split in
    /// the middle, asserting all agree.
    fn feed_err(b: &[u8]) -> Option<(u64, &'static str)> {
        let whole = check_whole(b);
        let mid = run_split(b, &[b.len() / 2]);
        let bytes = run_split(b, &(0..b.len()).collect::<Vec<_>>());
        assert_eq!(whole, mid, "{:?}", String::from_utf8_lossy(b));
        assert_eq!(whole, bytes, "{:?}", String::from_utf8_lossy(b));
        whole.0.map(|e| (e.offset, e.msg))
    }

    /// Asserts `b` is a viable prefix (no feed error) but incomplete.
    fn prefix(b: &[u8]) {
        let (fe, fin) = check_whole(b);
        assert_eq!(fe, None, "{:?}", String::from_utf8_lossy(b));
        assert!(
            fin.is_err(),
            "{:?} should be incomplete",
            String::from_utf8_lossy(b)
        );
        assert!(!serde_ok(b));
    }

    /// Asserts feeding `b` fails at byte `at` with `msg`, and serde agrees.
    fn bad(b: &[u8], at: u64, msg: &str) {
        assert_eq!(
            feed_err(b),
            Some((at, msg)),
            "{:?}",
            String::from_utf8_lossy(b)
        );
        assert!(
            !serde_ok(b),
            "serde accepts {:?}",
            String::from_utf8_lossy(b)
        );
    }

    /// Asserts `b` is a complete valid document, and serde agrees.
    fn good(b: &[u8]) {
        assert_eq!(feed_err(b), None, "{:?}", String::from_utf8_lossy(b));
        assert!(ok(b), "{:?}", String::from_utf8_lossy(b));
        assert!(
            serde_ok(b),
            "serde rejects {:?}",
            String::from_utf8_lossy(b)
        );
    }

    // ----------------------------------------------------------- unit tests

    #[test]
    fn brief_examples() {
        prefix(br#"{"a": 1"#);
        prefix(b"-");
        prefix(b"tru");
        prefix(b"[1,");
        prefix(br#""\u00"#);
        prefix(b"1.");
        prefix(b"1e");
        prefix(b"1e+");
        // `1` then `2` is `12`.
        assert_eq!(run_split(b"12", &[1]), (None, Ok(())));
        bad(b"{bad", 1, "expected a key or '}'");
        bad(b"[1,,", 3, "expected a value");
        bad(b"{}}", 2, "trailing characters after the document");
        bad(b"{} x", 3, "trailing characters after the document");
        bad(b"01", 1, "invalid number");
        bad(b"\"a\x01", 2, "control character in string");
        bad(b"\"a\n\"", 2, "control character in string");
        bad(b"\xef\xbb\xbf{}", 0, "expected a value");
    }

    #[test]
    fn empty_and_whitespace() {
        let c = JsonCheck::default();
        assert_eq!(c.finish(), Ok(()));
        let mut c = JsonCheck::new();
        c.feed(b"").unwrap();
        assert_eq!(c.finish(), Ok(()));
        let mut c = JsonCheck::new();
        c.feed(b" \n\t\r ").unwrap();
        let e = c.finish().unwrap_err();
        assert_eq!(e.msg, "empty document");
        assert_eq!((e.line, e.column, e.offset), (2, 4, 5));
        assert!(!serde_ok(b" \n\t\r "));
        good(b" \r\n\t[ 1 , {} ]\r\n \t");
        bad(b"\x0c1", 0, "expected a value"); // form feed is not JSON whitespace
        bad(b"1\x0b", 1, "trailing characters after the document");
    }

    #[test]
    fn numbers() {
        for s in [
            "0",
            "-0",
            "0e5",
            "1E-7",
            "1e+7",
            "-1.5e10",
            "0.0",
            "123456789012345678901234567890",
            "1e400",
            "-0.000001E-0009",
            "[0,1,-0,2.5]",
            "1e400000000000000000000",
        ] {
            good(s.as_bytes());
        }
        for s in ["-", "1.", "1e", "1e+", "-0.", "[1.", "[1e-"] {
            prefix(s.as_bytes());
        }
        bad(b"1.e3", 2, "invalid number");
        bad(b".5", 0, "expected a value");
        bad(b"+1", 0, "expected a value");
        bad(b"-a", 1, "invalid number");
        bad(b"00", 1, "invalid number");
        bad(b"-01", 2, "invalid number");
        bad(b"[01]", 2, "invalid number");
        bad(b"1e+-2", 3, "invalid number");
        bad(b"1.5.3", 3, "trailing characters after the document");
        bad(b"[1-2]", 2, "expected ',' or ']'");
        bad(b"1 2", 2, "trailing characters after the document");
        bad(b"[1]1", 3, "trailing characters after the document");
        bad(b"0x1", 1, "trailing characters after the document");
        bad(b"[1.]", 3, "invalid number");
        bad(b"[1e]", 3, "invalid number");
        bad(b"-Infinity", 1, "invalid number");
        bad(b"NaN", 0, "expected a value");
        // Ended by end of input at top level, but not inside a container.
        let mut c = JsonCheck::new();
        c.feed(b"[12").unwrap();
        assert_eq!(c.finish().unwrap_err().msg, "unexpected end of input");
    }

    #[test]
    fn literals() {
        good(b"true");
        good(b"false");
        good(b"null");
        good(b"[true,false,null]");
        prefix(b"t");
        prefix(b"fals");
        prefix(b"nul");
        bad(b"trUe", 2, "invalid literal");
        bad(b"nulll", 4, "trailing characters after the document");
        bad(b"[nul]", 4, "invalid literal");
        bad(b"True", 0, "expected a value");
        bad(b"[truefalse]", 5, "expected ',' or ']'");
    }

    #[test]
    fn structure() {
        good(b"{}");
        good(b"[]");
        good(br#"{"a":{"b":[1,{"c":[]}]},"d":"e"}"#);
        good(br#"{"a":1,"a":2}"#); // duplicate keys: serde_json's Value keeps the last
        bad(b"[1,]", 3, "expected a value");
        bad(br#"{"a":1,}"#, 7, "expected a key");
        bad(br#"{"a" 1}"#, 5, "expected ':'");
        bad(br#"{"a":}"#, 5, "expected a value");
        bad(b"{1:2}", 1, "expected a key or '}'");
        bad(b"[1}", 2, "expected ',' or ']'");
        bad(br#"{"a":1]"#, 6, "expected ',' or '}'");
        bad(b"]", 0, "expected a value");
        bad(b"[,1]", 1, "expected a value");
        bad(br#"{"a":1 "b":2}"#, 7, "expected ',' or '}'");
        prefix(b"[");
        prefix(b"{");
        prefix(br#"{"a""#);
        prefix(br#"{"a":"#);
        prefix(br#"{"a":1,"#);
        prefix(b"[[[]");
    }

    #[test]
    fn strings_and_escapes() {
        good(br#""""#);
        good(br#""\"\\\/\b\f\n\r\t""#);
        good(br#""\u0000\u001F\uFFFF\uabcd\uD7FF\uE000""#);
        good(b"\"\x7f\""); // DEL is not a control character for JSON
        good(br#"{"k\n\u0041":"v"}"#);
        bad(br#""\x""#, 2, "invalid escape");
        bad(br#""\U0041""#, 2, "invalid escape");
        bad(br#""\u00g0""#, 5, "invalid escape");
        bad(br#""\u12""#, 5, "invalid escape");
        bad(b"\"\t\"", 1, "control character in string");
        bad(b"\"\x00\"", 1, "control character in string");
        bad(b"'a'", 0, "expected a value");
        prefix(br#""abc"#);
        prefix(br#""\"#);
        prefix(br#"["\u"#);
    }

    #[test]
    fn surrogates() {
        good(br#""\ud83d\ude00""#);
        good(br#""\uD800\uDC00\uDBFF\uDFFF""#);
        good(br#"["\ud800\udc00x"]"#);
        prefix(br#""\ud800"#);
        prefix(br#""\ud800\"#);
        prefix(br#""\ud800\u"#);
        prefix(br#""\ud800\ud"#);
        prefix(br#""\ud800\udc"#);
        bad(br#""\ud800""#, 7, "lone surrogate");
        bad(br#""\udc00""#, 4, "lone surrogate");
        bad(br#""\uDFFF""#, 4, "lone surrogate");
        bad(br#""\ud800\u0041""#, 9, "lone surrogate");
        bad(br#""\ud800\ud800""#, 10, "lone surrogate");
        bad(br#""\ud800\n""#, 8, "lone surrogate");
        bad(br#""\ud800x""#, 7, "lone surrogate");
        bad(br#""\ud800\uZ""#, 9, "invalid escape");
        bad(br#""\ud800\udZ""#, 10, "invalid escape");
        bad(br#""\ud800\udcZ0""#, 11, "invalid escape");
    }

    #[test]
    fn utf8() {
        good("\"é\"".as_bytes()); // 2 bytes
        good("\"€ 中\"".as_bytes()); // 3 bytes
        good("\"😀\"".as_bytes()); // 4 bytes
        good("{\"ключ\":\"\u{10FFFF}\u{80}\u{7FF}\u{800}\u{FFFF}\u{10000}\"}".as_bytes());
        good(b"\"\xed\x9f\xbf\""); // U+D7FF, just below the surrogates
        good(b"\"\xee\x80\x80\""); // U+E000, just above
        prefix(b"\"\xe2\x82");
        prefix(b"\"\xf0\x9f\x98");
        bad(b"\"\xc0\x80\"", 1, "invalid UTF-8"); // overlong NUL
        bad(b"\"\xc1\xbf\"", 1, "invalid UTF-8"); // overlong
        bad(b"\"\xe0\x80\x80\"", 2, "invalid UTF-8"); // overlong
        bad(b"\"\xe0\x9f\xbf\"", 2, "invalid UTF-8"); // overlong
        bad(b"\"\xf0\x8f\xbf\xbf\"", 2, "invalid UTF-8"); // overlong
        bad(b"\"\xed\xa0\x80\"", 2, "invalid UTF-8"); // surrogate D800
        bad(b"\"\xed\xbf\xbf\"", 2, "invalid UTF-8"); // surrogate DFFF
        bad(b"\"\xf4\x90\x80\x80\"", 2, "invalid UTF-8"); // U+110000
        bad(b"\"\xf5\x80\x80\x80\"", 1, "invalid UTF-8");
        bad(b"\"\xff\"", 1, "invalid UTF-8");
        bad(b"\"\x80\"", 1, "invalid UTF-8"); // stray continuation
        bad(b"\"\xc3\"", 2, "invalid UTF-8"); // truncated
        bad(b"\"\xe2\x82\"", 3, "invalid UTF-8");
        bad(b"\"\xf0\x9f\x98\x41\"", 4, "invalid UTF-8");
        bad(b"\xc3\xa9", 0, "expected a value"); // outside a string
        bad(
            "[1]é".as_bytes(),
            3,
            "trailing characters after the document",
        );
    }

    #[test]
    fn depth_limit_matches_serde() {
        let nest = |d: usize| format!("{}{}", "[".repeat(d), "]".repeat(d)).into_bytes();
        let nest_obj = |d: usize| {
            format!("{}{{}}{}", r#"{"a":"#.repeat(d - 1), "}".repeat(d - 1)).into_bytes()
        };
        good(&nest(MAX_DEPTH as usize));
        good(&nest_obj(MAX_DEPTH as usize));
        assert!(serde_json::from_slice::<Value>(&nest(127)).is_ok());
        assert!(serde_json::from_slice::<Value>(&nest(128)).is_err());
        bad(&nest(128), 127, "nesting deeper than 127");
        bad(&nest(1000), 127, "nesting deeper than 127");
        bad(&nest_obj(128), 127 * 5, "nesting deeper than 127");
        // Depth is released on close: many siblings at the limit are fine.
        let arr = |d: usize| "[".repeat(d) + &"]".repeat(d);
        let (a126, a125) = (arr(126), arr(125));
        good(format!("[{a126},{a126},{{\"k\":{a125}}}]").as_bytes());
        bad(
            format!("[{a126},{{\"k\":{a126}}}]").as_bytes(),
            384,
            "nesting deeper than 127",
        );
    }

    #[test]
    fn positions() {
        let mut c = JsonCheck::new();
        c.feed(b"{\n  \"a\": 1,\n").unwrap();
        let e = c.feed(b"  x").unwrap_err();
        assert_eq!((e.line, e.column, e.offset), (3, 3, 14));
        assert_eq!(e.to_string(), "line 3, column 3: expected a key");
        assert_eq!(c.offset(), 14);
        // Sticky, and later bytes are not counted.
        assert_eq!(c.feed(b"}}}").unwrap_err(), e);
        assert_eq!(c.offset(), 14);
        assert_eq!(c.finish().unwrap_err(), e);

        let mut c = JsonCheck::new();
        c.feed(b"[1,\r\n 2").unwrap();
        assert_eq!(c.offset(), 7);
        let e = c.finish().unwrap_err();
        assert_eq!(
            (e.line, e.column, e.offset, e.msg),
            (2, 3, 7, "unexpected end of input")
        );
    }

    #[test]
    fn swar_skips_agree_with_bytewise() {
        let slow = |b: &[u8], i: usize| {
            (i..b.len())
                .find(|&j| b[j] < 0x20 || b[j] >= 0x80 || b[j] == b'"' || b[j] == b'\\')
                .unwrap_or(b.len())
        };
        let slow_text = |b: &[u8], i: usize| {
            (i..b.len())
                .find(|&j| b[j] < 0x20 || b[j] == b'"' || b[j] == b'\\')
                .unwrap_or(b.len())
        };
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..40 {
            for _ in 0..200 {
                let b: Vec<u8> = (0..len)
                    .map(|_| {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        // Mostly plain bytes, sometimes a stop.
                        match rng % 16 {
                            0 => b'"',
                            1 => b'\\',
                            2 => (rng >> 8) as u8 & 0x1F,
                            3 => 0x80 | (rng >> 8) as u8,
                            _ => 0x20 + ((rng >> 8) % 0x60) as u8,
                        }
                    })
                    .collect();
                for i in 0..=b.len() {
                    assert_eq!(skip_plain(&b, i), slow(&b, i), "{b:?} from {i}");
                    // skip_utf8_text passes exactly a prefix std calls valid
                    // UTF-8, stops at a stop byte or an invalid/incomplete
                    // sequence.
                    let j = skip_utf8_text(&b, i);
                    let stop = slow_text(&b, i);
                    assert!(j <= stop, "{b:?} from {i}");
                    let valid = std::str::from_utf8(&b[i..stop])
                        .map(|s| s.len())
                        .unwrap_or_else(|e| e.valid_up_to());
                    assert_eq!(j, i + valid, "{b:?} from {i}");
                }
            }
        }
    }

    // ------------------------------------------------------------ proptest

    fn arb_string() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[a-z\"\\\\/\n\t\u{0}-\u{1f} é€😀\u{7f}\u{ffff}\u{10000}]{0,12}",
        ]
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from), // non-finite becomes null
            arb_string().prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((arb_string(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// A JSON string literal written by hand, each char raw or escaped in any
    /// legal way (serde_json never writes `\u` for printable or non-BMP chars,
    /// so this covers surrogate pairs and upper/lower hex).
    fn arb_escaped_literal() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec((any::<char>(), 0u8..4), 0..10).prop_map(|chars| {
            let mut s = String::from("\"");
            for (c, how) in chars {
                let mut units = [0u16; 2];
                let units = c.encode_utf16(&mut units);
                match how {
                    0 if c >= ' ' && c != '"' && c != '\\' => s.push(c),
                    1 => units.iter().for_each(|u| s += &format!("\\u{u:04x}")),
                    2 => units.iter().for_each(|u| s += &format!("\\u{u:04X}")),
                    _ => {
                        // serde_json's own escaping, quotes stripped.
                        let quoted = serde_json::to_string(&c.to_string()).unwrap();
                        s += &quoted[1..quoted.len() - 1];
                    }
                }
            }
            s.push('"');
            s.into_bytes()
        })
    }

    /// Valid documents as bytes: compact, pretty, or hand-escaped strings.
    fn arb_doc() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            arb_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
            arb_value().prop_map(|v| serde_json::to_vec_pretty(&v).unwrap()),
            (arb_value(), arb_escaped_literal()).prop_map(|(v, lit)| {
                let mut b = b"[".to_vec();
                b.extend_from_slice(&lit);
                b.extend_from_slice(b", ");
                b.extend_from_slice(&serde_json::to_vec(&v).unwrap());
                b.extend_from_slice(b"]\n");
                b
            }),
        ]
    }

    /// Picks from `valid` mostly and from `invalid` rarely, so that a document
    /// built from many picks usually breaks in at most one place and the
    /// corners after it are reached too.
    fn pick(
        valid: Vec<&'static [u8]>,
        invalid: Vec<&'static [u8]>,
        dense: bool,
    ) -> BoxedStrategy<Vec<u8>> {
        let valid_weight = if dense { 1 } else { 30 };
        prop_oneof![
            valid_weight => prop::sample::select(valid).prop_map(|p| p.to_vec()),
            1 => prop::sample::select(invalid).prop_map(|p| p.to_vec()),
        ]
        .boxed()
    }

    /// One piece of a string's content, in the corners that matter (escapes,
    /// surrogates, UTF-8 boundaries).
    fn arb_str_piece(dense: bool) -> BoxedStrategy<Vec<u8>> {
        pick(
            vec![
                b"a",
                b" ",
                b"\x7f",
                "\u{e9}".as_bytes(),
                "\u{20ac}".as_bytes(),
                "\u{1f600}".as_bytes(),
                b"\\n",
                b"\\\"",
                b"\\/",
                b"\\u00e9",
                b"\\u0000",
                b"\\uFFFF",
                b"\\ud7ff",
                b"\\ue000",
                b"\\ud800\\udc00",
                b"\\uDBFF\\uDFFF",
                b"\\uDbfF\\udC00",
                b"\xc2\x80",
                b"\xdf\xbf",
                b"\xe0\xa0\x80",
                b"\xed\x9f\xbf",
                b"\xee\x80\x80",
                b"\xef\xbf\xbf",
                b"\xf0\x90\x80\x80",
                b"\xf4\x8f\xbf\xbf",
                b"\xf3\xbf\xbf\xbf",
            ],
            vec![
                b"\\ud800",
                b"\\udc00",
                b"\\uDFFF",
                b"\\udBff",
                b"\\ud800\\u0041",
                b"\\ud800\\ud800",
                b"\\ud800\\n",
                b"\\ud800\\ue000",
                b"\\a",
                b"\\U0041",
                b"\\u12",
                b"\\u12g4",
                b"\\",
                b"\xc0\x80",
                b"\xc1\xbf",
                b"\xe0\x80\x80",
                b"\xe0\x9f\xbf",
                b"\xed\xa0\x80",
                b"\xed\xbf\xbf",
                b"\xf0\x8f\xbf\xbf",
                b"\xf4\x90\x80\x80",
                b"\xf5\x80\x80\x80",
                b"\xc3",
                b"\xe2\x82",
                b"\x80",
                b"\xff",
                b"\x00",
                b"\x1f",
                b"\n",
                b"\t",
                b"\\ud800\\udbff",
                b"\\ud800\\u",
                b"\\ud800\"",
                b"\\u",
            ],
            dense,
        )
    }

    /// A scalar lexeme: mostly well-formed, rarely subtly not.
    fn arb_lexeme(dense: bool) -> BoxedStrategy<Vec<u8>> {
        let words = pick(
            vec![
                b"0",
                b"-0",
                b"7",
                b"-12",
                b"0.5",
                b"-0.0",
                b"1e5",
                b"1E+5",
                b"2e-0",
                b"0e5",
                b"1.25E-7",
                b"123456789012345678901234567890",
                b"1e400",
                b"-1e-400",
                b"true",
                b"false",
                b"null",
            ],
            vec![
                b"00", b"01", b"-01", b"-", b"1.", b".5", b"+1", b"1e", b"1e+", b"1.e3", b"0x1",
                b"1.5.3", b"--1", b"1ee2", b"tru", b"nul", b"True", b"nulll", b"NaN", b"-0.",
                b"1e-", b"0.e1", b"-e1", b"1e.5", b"1E-+2", b"2.5e",
            ],
            dense,
        );
        prop_oneof![2 => words, 3 => arb_string_lexeme(dense)].boxed()
    }

    fn arb_string_lexeme(dense: bool) -> BoxedStrategy<Vec<u8>> {
        prop::collection::vec(arb_str_piece(dense), 0..4)
            .prop_map(|ps| {
                let mut s = b"\"".to_vec();
                ps.iter().for_each(|p| s.extend_from_slice(p));
                s.push(b'"');
                s
            })
            .boxed()
    }

    /// An object key: a string, rarely something else.
    fn arb_key() -> BoxedStrategy<Vec<u8>> {
        prop_oneof![30 => arb_string_lexeme(false), 1 => arb_lexeme(false)].boxed()
    }

    /// Whitespace, mostly none or legal, rarely not.
    fn arb_ws() -> BoxedStrategy<Vec<u8>> {
        pick(
            vec![b"", b"", b"", b" ", b"\n  ", b"\r\n", b"\t"],
            vec![b" \x0c", b"\xc2\xa0", b"\x0b"],
            false,
        )
    }

    /// Documents built from lexemes, so most are well-formed except in one or
    /// two places; some nest close to the depth limit.
    fn arb_lexeme_doc() -> impl Strategy<Value = Vec<u8>> {
        let leaf = prop_oneof![
            6 => arb_lexeme(false),
            1 => (122usize..=130).prop_map(|d| {
                let mut b = b"[".repeat(d);
                b.extend_from_slice(&b"]".repeat(d));
                b
            }),
        ];
        let tree = leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec((arb_ws(), inner.clone()), 0..5).prop_map(|items| {
                    let mut b = b"[".to_vec();
                    for (k, (ws, item)) in items.iter().enumerate() {
                        if k > 0 {
                            b.push(b',');
                        }
                        b.extend_from_slice(ws);
                        b.extend_from_slice(item);
                    }
                    b.push(b']');
                    b
                }),
                prop::collection::vec((arb_key(), arb_ws(), inner.clone()), 0..5).prop_map(
                    |items| {
                        let mut b = b"{".to_vec();
                        for (k, (key, ws, item)) in items.iter().enumerate() {
                            if k > 0 {
                                b.push(b',');
                            }
                            b.extend_from_slice(key);
                            b.extend_from_slice(ws);
                            b.push(b':');
                            b.extend_from_slice(item);
                        }
                        b.push(b'}');
                        b
                    }
                ),
                // Wrap in a few more levels, to reach the limit from inside.
                (1usize..8, inner).prop_map(|(d, item)| {
                    let mut b = b"[".repeat(d);
                    b.extend_from_slice(&item);
                    b.extend_from_slice(&b"]".repeat(d));
                    b
                }),
            ]
        });
        (arb_ws(), tree, arb_ws()).prop_map(|(a, t, z)| [a, t, z].concat())
    }

    /// Bytes likely to matter to a JSON parser, plus anything.
    fn arb_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            3 => prop::sample::select(b"{}[],:\"\\0123456789-+.eEtfnrulsa \n\t\r/bu".to_vec()),
            1 => prop::sample::select(vec![0x00, 0x1f, 0x7f, 0x80, 0xbf, 0xc0, 0xc3, 0xe0, 0xed, 0xf0, 0xf4, 0xf5, 0xff]),
            1 => any::<u8>(),
        ]
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        Insert(usize, u8),
        Delete(usize),
        Replace(usize, u8),
        Truncate(usize),
    }

    fn arb_mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<usize>(), arb_byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
            any::<usize>().prop_map(Mutation::Delete),
            (any::<usize>(), arb_byte()).prop_map(|(i, b)| Mutation::Replace(i, b)),
            any::<usize>().prop_map(Mutation::Truncate),
        ]
    }

    fn apply(doc: &mut Vec<u8>, m: &Mutation) {
        let len = doc.len();
        match *m {
            Mutation::Insert(i, b) => doc.insert(i % (len + 1), b),
            Mutation::Delete(i) if len > 0 => {
                doc.remove(i % len);
            }
            Mutation::Replace(i, b) if len > 0 => doc[i % len] = b,
            Mutation::Truncate(i) => doc.truncate(i % (len + 1)),
            _ => {}
        }
    }

    /// Tails tried after a failing prefix; none may make serde_json accept.
    const COMPLETIONS: &[&[u8]] = &[
        b"",
        b"}",
        b"]",
        b"\"",
        b"0",
        b"\"}",
        b"]}",
        b"}]",
        b"\"]",
        b"0]",
        b"0}",
        b"\":0}",
        b"\"]}",
        b"\"}]",
        b"]]",
        b"}}",
        b"]]]",
        b"}}}",
        b"\"\"",
        b"\":0",
        b":0}",
        b"e0",
        b"0\"",
        b"0\"}",
        b"0\"]",
        b"\"]]",
        b"\"}}",
        b"\":0}]",
        b"dc00\"",
        b"\\udc00\"",
        b"\\udc00\"]",
        b"\\udc00\"}",
        b"ue\"",
        b"rue",
        b"alse",
        b"ull",
        b"00\"",
        b"000\"",
        b"\x80\"",
        b"\x80\x80\"",
        b"\x80\x80\x80\"",
    ];

    /// Ends of a scalar, key or member, tried before closing the containers.
    const ATOMS: &[&[u8]] = &[
        b"",
        b"0",
        b"\"",
        b"\"\"",
        b"\":0",
        b":0",
        b"\"\":0",
        b"e0",
        b"n\"",
        b"0\"",
        b"00\"",
        b"000\"",
        b"0000\"",
        b"c00\"",
        b"dc00\"",
        b"udc00\"",
        b"\\udc00\"",
        b"0\\udc00\"",
        b"00\\udc00\"",
        b"800\\udc00\"",
        b"rue",
        b"ue",
        b"e",
        b"alse",
        b"lse",
        b"se",
        b"ull",
        b"ll",
        b"l",
        b"\x80\"",
        b"\x80\x80\"",
        b"\x80\x80\x80\"",
        b"\xa0\x80\"",
        b"\x90\x80\x80\"",
    ];

    /// Whether serde_json accepts `prefix` followed by one of `ATOMS` (each
    /// also followed by `:0` in case it was a key) and then the closers of the
    /// containers left open. The open containers are read off a `JsonCheck`
    /// fed the prefix; serde_json alone judges the result.
    fn completable(prefix: &[u8]) -> bool {
        let mut c = JsonCheck::new();
        if c.feed(prefix).is_err() {
            return false;
        }
        let closers: Vec<u8> = (0..c.depth)
            .rev()
            .map(|d| if (c.stack >> d) & 1 == 1 { b'}' } else { b']' })
            .collect();
        ATOMS.iter().any(|atom| {
            [&b""[..], b":0"]
                .iter()
                .any(|member| serde_ok(&[prefix, atom, member, &closers].concat()))
        })
    }

    /// The contract between `feed`, `finish` and serde_json for one input.
    fn check_against_serde(b: &[u8], cuts: &[usize]) -> Result<(), TestCaseError> {
        let (fe, fin) = run_split(b, cuts);
        let whole = check_whole(b);
        prop_assert_eq!(
            &(fe.clone(), fin.clone()),
            &whole,
            "split changed the result"
        );
        prop_assert_eq!(fin.is_ok(), serde_ok(b), "finish disagrees with serde_json");
        if let Some(e) = fe {
            let k = e.offset as usize;
            prop_assert!(k < b.len());
            prop_assert!(!serde_ok(b));
            for tail in COMPLETIONS {
                let mut ext = b[..=k].to_vec();
                ext.extend_from_slice(tail);
                prop_assert!(
                    !serde_ok(&ext),
                    "early error at {}: serde accepts {:?}",
                    k,
                    ext
                );
            }
            // Not too late either: the bytes before the offending one are
            // still the start of something serde_json accepts.
            prop_assert!(completable(&b[..k]), "no completion of {:?}", &b[..k]);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn valid_docs_pass_any_split(doc in arb_doc(), cuts in prop::collection::vec(any::<usize>(), 0..8)) {
            let cuts: Vec<usize> = cuts.iter().map(|c| c % (doc.len() + 1)).collect();
            prop_assert!(serde_ok(&doc));
            let (fe, fin) = run_split(&doc, &cuts);
            prop_assert_eq!(fe, None);
            prop_assert_eq!(fin, Ok(()));
            // Byte by byte too, and every proper prefix is a viable one.
            let mut c = JsonCheck::new();
            for &byte in &doc {
                prop_assert!(c.feed(&[byte]).is_ok());
            }
            prop_assert_eq!(c.finish(), Ok(()));
        }

        #[test]
        fn mutated_docs_agree_with_serde(
            doc in arb_doc(),
            muts in prop::collection::vec(arb_mutation(), 1..4),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let mut doc = doc;
            for m in &muts {
                apply(&mut doc, m);
            }
            let cuts: Vec<usize> = cuts.iter().map(|c| c % (doc.len() + 1)).collect();
            check_against_serde(&doc, &cuts)?;
        }

        #[test]
        fn lexeme_docs_agree_with_serde(
            doc in arb_lexeme_doc(),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let cuts: Vec<usize> = cuts.iter().map(|c| c % (doc.len() + 1)).collect();
            check_against_serde(&doc, &cuts)?;
        }

        #[test]
        fn scalar_docs_agree_with_serde(
            lexeme in arb_lexeme(true),
            ws in arb_ws(),
            cut in any::<usize>(),
            truncate in any::<bool>(),
        ) {
            // A lone scalar (or a prefix of one): every corner of the number,
            // literal and string automata meets the end of input here.
            let mut doc = [&lexeme[..], &ws[..]].concat();
            if truncate {
                doc.truncate(cut % (doc.len() + 1));
            }
            check_against_serde(&doc, &[cut % (doc.len() + 1)])?;
            let wrapped = [b"[", &doc[..], b"]"].concat();
            check_against_serde(&wrapped, &[cut % (wrapped.len() + 1)])?;
        }

        #[test]
        fn mutated_lexeme_docs_agree_with_serde(
            doc in arb_lexeme_doc(),
            muts in prop::collection::vec(arb_mutation(), 1..3),
        ) {
            let mut doc = doc;
            for m in &muts {
                apply(&mut doc, m);
            }
            check_against_serde(&doc, &[doc.len() / 3])?;
        }

        #[test]
        fn random_bytes_agree_with_serde(
            b in prop::collection::vec(arb_byte(), 0..40),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let cuts: Vec<usize> = cuts.iter().map(|c| c % (b.len() + 1)).collect();
            check_against_serde(&b, &cuts)?;
        }

        #[test]
        fn byte_by_byte_equals_whole(b in prop::collection::vec(arb_byte(), 0..60)) {
            prop_assert_eq!(run_split(&b, &(0..b.len()).collect::<Vec<_>>()), check_whole(&b));
        }
    }
}
