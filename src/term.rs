//! Text that a terminal cannot act on. Ticket titles, descriptions, summaries, Plane's error
//! messages and anything else that came from outside may hold control characters: `ESC [2J`
//! clears the screen, an OSC sequence retitles the window, `\r` and `\b` overwrite a row of
//! `list` with a fake one, `ESC [8m` hides text, and bidi overrides reorder what a person reads.
//!
//! Every line printed for a person goes through one of the two functions here:
//!
//! - [`inert`] for one cell or one line (a table cell, a title, an error message): every
//!   control character becomes a visible stand-in and a line break becomes a space, so the
//!   text can never start a new row;
//! - [`inert_lines`] for text whose line breaks are meant (a description, a summary): the
//!   same, but `\n` is kept.
//!
//! Stand-ins: C0 controls and DEL in caret notation (`^[` for ESC, `^M` for `\r`, `^H` for
//! `\b`, `^?` for DEL); C1 controls, bidi embeddings, overrides and isolates, and the line and
//! paragraph separators U+2028/U+2029 become `\u{FFFD}` (the replacement character). Tabs
//! become one space. Both return the text unchanged (borrowed, no copy) when nothing needs
//! replacing, so calling them on every cell costs nothing for ordinary text.
//!
//! `--json` output never goes through here: JSON escapes control characters itself, and a
//! script reading it gets the exact text.

use std::borrow::Cow;

/// One line for a terminal: controls made visible, line breaks and tabs turned into spaces.
#[must_use]
pub fn inert(text: &str) -> Cow<'_, str> {
    replace(text, false)
}

/// Several lines for a terminal: like [`inert`], but `\n` starts a new line as written.
#[must_use]
pub fn inert_lines(text: &str) -> Cow<'_, str> {
    replace(text, true)
}

/// Whether `c` is something a terminal or a reader's eye would act on rather than show.
fn needs_stand_in(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

/// The bidirectional formatting characters (marks, embeddings, overrides, isolates): they
/// make text read in another order than it is stored, so a reviewed line can hide another.
#[must_use]
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

fn replace(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let keep = |c: char| keep_newlines && c == '\n';
    // Printable ASCII, most text, needs no look at each character.
    if text.bytes().all(|b| (0x20..0x7f).contains(&b))
        || !text.chars().any(|c| needs_stand_in(c) && !keep(c))
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' if keep_newlines => out.push('\n'),
            '\n' | '\t' => out.push(' '),
            '\u{0}'..='\u{1F}' => {
                out.push('^');
                out.push(char::from(c as u8 + 0x40));
            }
            '\u{7F}' => out.push_str("^?"),
            c if needs_stand_in(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_text_is_borrowed() {
        assert!(matches!(
            inert("CSLOG-1 fix the café 日本語"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(inert_lines("a\nb"), Cow::Borrowed(_)));
    }

    #[test]
    fn controls_become_visible() {
        assert_eq!(inert("a\u{1b}[2Jb"), "a^[[2Jb");
        assert_eq!(inert("x\rEVIL-9 pending\u{8}"), "x^MEVIL-9 pending^H");
        assert_eq!(inert("\u{1b}]0;title\u{7}"), "^[]0;title^G");
        assert_eq!(inert("del\u{7f}"), "del^?");
        assert_eq!(inert("c1\u{9b}2J"), "c1\u{FFFD}2J");
        assert_eq!(inert("two\nlines\tand tab"), "two lines and tab");
        assert_eq!(inert("rtl \u{202E}fdp.exe"), "rtl \u{FFFD}fdp.exe");
        assert_eq!(inert("iso\u{2066}x\u{2069}"), "iso\u{FFFD}x\u{FFFD}");
        assert_eq!(inert("sep\u{2028}x"), "sep\u{FFFD}x");
    }

    #[test]
    fn lines_keep_their_breaks_only() {
        assert_eq!(inert_lines("a\nb\r\nc\u{1b}"), "a\nb^M\nc^[");
    }
}
