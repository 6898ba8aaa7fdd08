//! Hostile strings made safe for one line of text.
//!
//! Everything a scanned server chose (hostnames, certificate names, response bytes) passes
//! through here before it reaches a mail header, a text body or a CSV cell. HTML and JSON
//! escaping are the renderers' job (minijinja's auto-escape, serde_json); this module
//! removes what no medium should carry: line breaks, control characters, unbounded length.

use wachter_core::csv_cell::is_unsafe_char;

/// Longest hostname or certificate name shown (a DNS name is at most 253 bytes).
pub const MAX_NAME: usize = 255;

/// Longest evidence excerpt shown, in characters after escaping.
pub const MAX_EXCERPT: usize = 400;

/// `s` as one line: control characters (CR, LF, TAB, NUL, DEL, C1, U+2028/9, bidi
/// overrides) become a space, runs of spaces collapse, and the result is cut to `max`
/// characters with `…` marking the cut.
pub fn one_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 4));
    let mut count = 0;
    let mut last_space = false;
    for c in s.chars() {
        let c = if is_unsafe_char(c) { ' ' } else { c };
        if c == ' ' && last_space {
            continue;
        }
        if count == max {
            out.push('…');
            return out.trim().to_string();
        }
        last_space = c == ' ';
        out.push(c);
        count += 1;
    }
    out.trim().to_string()
}

/// Response bytes as printable text: printable ASCII kept, `\n` shown as `⏎`, everything
/// else as `\xNN`; cut to `max` characters.
pub fn excerpt(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    for &b in bytes {
        let piece = match b {
            b'\n' => "⏎".to_string(),
            b'\t' => "\\t".to_string(),
            0x20..=0x7e => (b as char).to_string(),
            _ => format!("\\x{b:02x}"),
        };
        if out.chars().count() + piece.chars().count() > max {
            out.push('…');
            break;
        }
        out.push_str(&piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_and_controls_become_spaces() {
        assert_eq!(
            one_line("vpn.example.nl\r\nBcc: victim@example.org", 100),
            "vpn.example.nl Bcc: victim@example.org"
        );
        assert_eq!(one_line("a\u{0}b\u{7f}c\u{85}d\u{202e}e", 100), "a b c d e");
    }

    #[test]
    fn long_strings_are_cut_and_marked() {
        let long = "x".repeat(10_000);
        let cut = one_line(&long, MAX_NAME);
        assert_eq!(cut.chars().count(), MAX_NAME + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn excerpt_escapes_bytes() {
        assert_eq!(
            excerpt(b"[global]\n\tx\x00\xff", 100),
            "[global]⏎\\tx\\x00\\xff"
        );
        let cut = excerpt(&[0u8; 1000], 20);
        assert!(cut.ends_with('…') && cut.chars().count() <= 21);
    }
}
