//! Escaping for the markup renderers. Evidence carries whatever a hostile probe printed (stderr
//! tails, data read), so everything from a report is escaped, and characters XML 1.0 forbids
//! (control characters other than tab, newline, carriage return) are shown as `\u{..}` escapes
//! instead of breaking the document.

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

/// Text safe inside a Markdown table cell: pipes and newlines would split the row.
pub fn markdown_cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
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
}
