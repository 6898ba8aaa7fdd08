//! Text that a spreadsheet may open safely: the one rule for every CSV wachter writes (the
//! dashboard's downloads, the Shadowserver export).
//!
//! Whoever opens these files opens them in Excel or LibreOffice, where a cell that starts
//! with `=`, `+`, `-` or `@` runs as a formula (CSV injection). Scanned servers choose
//! hostnames, certificate names and response text, so every cell is treated as hostile.

/// Whether `c` should never reach a line of text: control characters (C0, DEL, C1) and the
/// invisible line separators and direction marks that make text read other than it is.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// `cell` with a leading `'` when a spreadsheet would run it as a formula (it starts with
/// `=`, `+`, `-`, `@`, a tab or a line break) and it is not a plain number (`-1`, `+3.5`
/// stay numbers).
pub fn defuse_formula(mut cell: String) -> String {
    let risky = matches!(
        cell.chars().next(),
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\n')
    );
    if risky && !is_number(&cell) {
        cell.insert(0, '\'');
    }
    cell
}

/// A cell as a spreadsheet may safely open it: unsafe characters ([`is_unsafe_char`])
/// become spaces, the ends are trimmed, and a formula is defused ([`defuse_formula`]).
pub fn csv_cell(value: &str) -> String {
    let cleaned: String = value
        .chars()
        .map(|c| if is_unsafe_char(c) { ' ' } else { c })
        .collect();
    defuse_formula(cleaned.trim().to_string())
}

/// Whether `s` is a plain decimal number: an optional sign, digits, at most one dot.
pub fn is_number(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    let mut dots = 0;
    !digits.is_empty()
        && digits.bytes().any(|b| b.is_ascii_digit())
        && digits.bytes().all(|b| {
            dots += usize::from(b == b'.');
            b.is_ascii_digit() || (b == b'.' && dots == 1)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_never_run_as_formulas() {
        let cases = [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("+31 20 123", "'+31 20 123"),
            ("-cmd", "'-cmd"),
            ("-1", "-1"),
            ("+3.5", "+3.5"),
            ("-.5", "-.5"),
            ("-1.2.3", "'-1.2.3"),
            ("-", "'-"),
            ("+.", "'+."),
            ("\t=1+1", "'=1+1"),
            ("\r\n@x", "'@x"),
            ("  =x", "'=x"),
            ("vpn.example.nl", "vpn.example.nl"),
            ("a\r\nb\u{0}c\u{202e}d\u{feff}e", "a  b c d e"),
            ("", ""),
        ];
        for (value, expected) in cases {
            assert_eq!(csv_cell(value), expected, "{value:?}");
        }
    }

    #[test]
    fn a_formula_is_defused_as_it_stands() {
        let cases = [
            ("=1", "'=1"),
            ("\t=1", "'\t=1"),
            ("\n", "'\n"),
            ("12", "12"),
            ("a=b", "a=b"),
        ];
        for (value, expected) in cases {
            assert_eq!(defuse_formula(value.to_string()), expected, "{value:?}");
        }
    }

    #[test]
    fn unsafe_characters_are_controls_and_invisible_marks() {
        for c in [
            '\0', '\t', '\r', '\n', '\u{7f}', '\u{85}', '\u{2028}', '\u{202e}', '\u{2067}',
        ] {
            assert!(is_unsafe_char(c), "{c:?}");
        }
        for c in ['a', ' ', 'é', '…', '\u{200b}'] {
            assert!(!is_unsafe_char(c), "{c:?}");
        }
    }
}
