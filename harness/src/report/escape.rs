//! Escaping for the renderers. Evidence carries whatever a hostile probe printed (stderr
//! tails, data read, the text of its steps, reasons quoting them), so everything from a report
//! is escaped: for markup, characters XML 1.0 forbids (control characters other than tab,
//! newline, carriage return) are shown as `\u{..}` escapes instead of breaking the document;
//! for a terminal or Markdown, [`terminal`] shows control characters instead of sending them.

use std::borrow::Cow;
use std::fmt::Write;

/// Text from a run as it may go to a terminal, a CI log or Markdown: control characters other
/// than newline and tab are shown escaped (`\x1b` for ESC, `\u{9b}` for a C1 control), and so
/// are the bidirectional overrides, so that a probe's text cannot move the cursor, clear the
/// screen, set a window title or a hyperlink, or reorder what a reader sees. JSON needs none of
/// this (serde escapes control characters) and markup has [`markup`].
pub fn terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(shown_escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            c if !shown_escaped(c) => out.push(c),
            c if c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "{}", c.escape_unicode());
            }
        }
    }
    Cow::Owned(out)
}

/// C0 and C1 controls and DEL (Unicode's Cc) but newline and tab; the bidirectional embeddings,
/// overrides and isolates (U+202A-U+202E, U+2066-U+2069).
fn shown_escaped(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Text safe inside an XML or HTML element or a double- or single-quoted attribute.
pub fn markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if is_forbidden_in_xml(c) => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].
fn is_forbidden_in_xml(c: char) -> bool {
    let c = c as u32;
    c < 0x20 || c == 0x7f || (0xFFFE..=0xFFFF).contains(&c)
}

/// Text safe inside a Markdown table cell: pipes and newlines would split the row, and
/// control characters are shown, not sent ([`terminal`]): report.md is read in terminals and CI
/// logs too.
pub fn markdown_cell(text: &str) -> String {
    let cell = text
        .replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    terminal(&cell).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_escapes_specials_and_forbidden_characters() {
        assert_eq!(
            markup("a<b>&\"c'\u{1}\u{7f}\n"),
            "a&lt;b&gt;&amp;&quot;c&#39;\\u{1}\\u{7f}\n"
        );
    }

    #[test]
    fn markdown_cell_keeps_the_row_whole() {
        assert_eq!(markdown_cell("a|b\nc"), "a\\|b c");
    }

    /// A probe's reason quoting what it printed: "\x1b[2J" would clear a reader's screen.
    #[test]
    fn terminal_text_shows_control_characters_instead_of_sending_them() {
        assert_eq!(
            terminal("stderr: \x1b[2J\x1b]0;owned\x07 gone\r\u{9b}31m\u{202e}txt.exe"),
            "stderr: \\x1b[2J\\x1b]0;owned\\x07 gone\\x0d\\u{9b}31m\\u{202e}txt.exe"
        );
        assert_eq!(
            terminal("two\tcolumns\nand lines, ünïcode"),
            "two\tcolumns\nand lines, ünïcode"
        );
        assert!(matches!(terminal("plain"), Cow::Borrowed("plain")));
        assert_eq!(markdown_cell("a\x1b[2Jb"), "a\\x1b[2Jb");
    }
}
