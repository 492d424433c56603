//! Safe rendering of untrusted names for terminals and logs.
//!
//! File names are chosen by whoever can write to the disk, an intruder
//! included. [`escape_bytes`] turns any byte string into printable text that
//! cannot move the cursor, change colours, reorder text (bidi controls) or hide
//! characters (zero-width), and that maps distinct inputs to distinct outputs:
//! a backslash is doubled, every escape starts with one.

use std::fmt::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Escapes `bytes` for display: invalid UTF-8 bytes and C0/C1 controls as
/// `\xNN`, `\` as `\\`, and bidi, zero-width and line-separator characters as
/// `\u{NNNN}`. Everything else is shown as itself.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 || c == '\x7f' => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if is_invisible_or_reordering(c) => {
                    let _ = write!(out, "\\u{{{:04x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Text made safe for a terminal line: controls and invisible or reordering
/// characters escaped as [`escape_bytes`] does, the rest (backslashes
/// included) left as it is, so that text escaped already is unchanged. For
/// whole messages that may quote something untrusted.
pub fn sanitize_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_invisible_or_reordering(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// JSON text with C1 controls and invisible or reordering characters
/// written as `\uXXXX` escapes: the same JSON value, but safe on a
/// terminal (serde_json escapes only C0 controls). Such characters can only
/// occur inside JSON strings, where the escape means the same character.
pub fn json_for_terminal(json: &str) -> std::borrow::Cow<'_, str> {
    if !json.chars().any(is_invisible_or_reordering) {
        return std::borrow::Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_invisible_or_reordering(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A writer of JSON text that passes it through [`json_for_terminal`],
/// whatever pieces it is written in.
pub struct JsonForTerminal<W: std::io::Write> {
    inner: W,
    /// The start of a character whose other bytes have not come yet.
    carry: Vec<u8>,
}

impl<W: std::io::Write> JsonForTerminal<W> {
    pub fn new(inner: W) -> JsonForTerminal<W> {
        JsonForTerminal {
            inner,
            carry: Vec::new(),
        }
    }
}

impl<W: std::io::Write> std::io::Write for JsonForTerminal<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.carry.extend_from_slice(buf);
        let data = std::mem::take(&mut self.carry);
        let complete = match std::str::from_utf8(&data) {
            Ok(_) => data.len(),
            // Cut inside a character: the rest comes with the next write.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            // Not UTF-8 at all (never from serde_json): passed on as it is.
            Err(_) => {
                self.inner.write_all(&data)?;
                return Ok(buf.len());
            }
        };
        let text = std::str::from_utf8(&data[..complete]).expect("checked above");
        self.inner.write_all(json_for_terminal(text).as_bytes())?;
        self.carry = data[complete..].to_vec();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.carry.is_empty() {
            let rest = std::mem::take(&mut self.carry);
            self.inner.write_all(&rest)?;
        }
        self.inner.flush()
    }
}

/// [`escape_bytes`] of a path's raw bytes.
pub fn escape_path(path: &Path) -> String {
    escape_bytes(path.as_os_str().as_bytes())
}

pub fn is_invisible_or_reordering(c: char) -> bool {
    matches!(c as u32,
        0x80..=0x9f            // C1 controls (CSI is 0x9b)
        | 0x061c               // arabic letter mark
        | 0x200b..=0x200f      // zero-width space/joiners, LRM, RLM
        | 0x2028..=0x202e      // line/paragraph separators, bidi embeddings and overrides
        | 0x2060..=0x2069      // word joiner, invisible operators, bidi isolates
        | 0xfeff               // zero-width no-break space (BOM)
        | 0xfff9..=0xfffb      // interlinear annotation controls
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_escapes_are_inert() {
        assert_eq!(escape_bytes(b"plain/name.py"), "plain/name.py");
        assert_eq!(escape_bytes(b"red\x1b[31mx"), "red\\x1b[31mx");
        assert_eq!(
            escape_bytes(b"line\nbreak\ttab\r"),
            "line\\x0abreak\\x09tab\\x0d"
        );
        assert_eq!(escape_bytes(b"del\x7f"), "del\\x7f");
        assert_eq!(escape_bytes("c1\u{9b}31m".as_bytes()), "c1\\u{009b}31m");
    }

    #[test]
    fn bidi_and_zero_width_are_visible() {
        assert_eq!(
            escape_bytes("evil\u{202e}txt.py".as_bytes()),
            "evil\\u{202e}txt.py"
        );
        assert_eq!(escape_bytes("a\u{200b}b".as_bytes()), "a\\u{200b}b");
        assert_eq!(escape_bytes("iso\u{2067}x".as_bytes()), "iso\\u{2067}x");
        assert_eq!(escape_bytes("bom\u{feff}".as_bytes()), "bom\\u{feff}");
    }

    #[test]
    fn invalid_utf8_is_hex_and_unicode_is_kept() {
        assert_eq!(escape_bytes(b"bad\xff\xfe"), "bad\\xff\\xfe");
        assert_eq!(escape_bytes("café/日本".as_bytes()), "café/日本");
    }

    #[test]
    fn lines_are_sanitized_without_escaping_twice() {
        assert_eq!(
            sanitize_line("a\\x1b b\u{1b}[2J\u{202e}"),
            "a\\x1b b\\x1b[2J\\u{202e}"
        );
    }

    #[test]
    fn json_keeps_its_value_and_loses_its_tricks() {
        let json =
            serde_json::to_string(&serde_json::json!({"n": "a\u{9b}31m\u{202e}b\u{1b}"})).unwrap();
        let safe = json_for_terminal(&json);
        assert!(
            !safe.contains('\u{9b}') && !safe.contains('\u{202e}'),
            "{safe}"
        );
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["n"], "a\u{9b}31m\u{202e}b\u{1b}");
        // Written a byte at a time, the same text comes out.
        let mut w = JsonForTerminal::new(Vec::new());
        for b in json.as_bytes() {
            std::io::Write::write_all(&mut w, &[*b]).unwrap();
        }
        std::io::Write::flush(&mut w).unwrap();
        assert_eq!(String::from_utf8(w.inner).unwrap(), safe);
    }

    #[test]
    fn escaping_is_injective_on_backslashes() {
        // A literal "\x1b" in a name must not look like an escaped ESC.
        assert_ne!(escape_bytes(b"\\x1b"), escape_bytes(b"\x1b"));
        assert_eq!(escape_bytes(b"\\x1b"), "\\\\x1b");
    }
}
