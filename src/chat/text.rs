//! Text that is safe to put on the IRC wire.
//!
//! Every outgoing message text passes through here: [`lines`] turns arbitrary text (command
//! output, webhook fields, user input echoed back) into clean single lines, and [`split_to_fit`]
//! cuts a line into pieces that fit the 512-byte limit once the server adds its prefix.

use std::borrow::Cow;

/// IRC formatting codes that may stay in a message: bold, colour, hex colour, reset, monospace,
/// reverse, italic, strikethrough, underline.
const FORMATTING: &[char] = &[
    '\x02', '\x03', '\x04', '\x0f', '\x11', '\x16', '\x1d', '\x1e', '\x1f',
];

/// Unicode's bidirectional controls: embeddings and overrides (U+202A–U+202E), isolates
/// (U+2066–U+2069) and the marks (LRM, RLM, ALM). A right-to-left override in a hold reason
/// makes the rest of the deploy log line read backwards, so none is kept.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// Whether `c` is dropped from text lever says or stores: every C0 control but the formatting
/// codes and tab (CTCP's `\x01` too, so text cannot become a CTCP), DEL, every C1 control
/// (U+0080–U+009F; U+0085 NEXT LINE ends a line in some viewers) and the bidi controls.
fn is_stripped(c: char) -> bool {
    (c.is_control() && c != '\t' && !FORMATTING.contains(&c)) || is_bidi_control(c)
}

/// Makes one line safe for the wire, the store and the reader: the controls [`is_stripped`]
/// names are removed (CR, LF, NUL, U+0085, U+202E, ...) and a tab becomes a space. This is the
/// one rule for text from outside (chat, webhooks, the API, alerts, plugins).
pub fn sanitize_line(line: &str) -> Cow<'_, str> {
    if !line.chars().any(|c| c == '\t' || is_stripped(c)) {
        return Cow::Borrowed(line);
    }
    Cow::Owned(
        line.chars()
            .filter(|&c| !is_stripped(c))
            .map(|c| if c == '\t' { ' ' } else { c })
            .collect(),
    )
}

/// Splits text into the lines it would show as: `\n`, `\r\n` and a lone `\r` all end a line.
/// Each line is sanitized; lines left empty (or blank) are skipped, since IRC cannot send them.
pub fn lines(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(['\n', '\r'])
        .map(sanitize_line)
        .filter(|l| !l.trim().is_empty())
        .map(Cow::into_owned)
}

/// Cuts `line` so the first piece is at most `max_bytes` long, preferring a word break.
///
/// Returns `(piece, rest)`; `rest` is empty when the line already fits. The cut never falls
/// inside a UTF-8 sequence. A break at a space is taken when it keeps at least half of the room
/// (so a long URL does not leave a tiny first piece); the space itself is dropped.
pub fn split_to_fit(line: &str, max_bytes: usize) -> (&str, &str) {
    if line.len() <= max_bytes {
        return (line, "");
    }
    let max_bytes = max_bytes.max(4); // room for any one UTF-8 character
    let mut cut = max_bytes;
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    // A space is one byte and never inside a UTF-8 sequence, so searching bytes is safe.
    let window = &line.as_bytes()[..=max_bytes.min(line.len() - 1)];
    if let Some(space) = window.iter().rposition(|&b| b == b' ') {
        if space >= max_bytes / 2 {
            return (&line[..space], &line[space + 1..]);
        }
    }
    (&line[..cut], &line[cut..])
}

/// Text from outside (a reason, a note, a webhook field) as one clean line: [`sanitize_line`],
/// trimmed, then cut to `max_chars` ([`truncate_chars`]).
pub fn clean_line(text: &str, max_chars: usize) -> String {
    truncate_chars(sanitize_line(text).trim(), max_chars).into_owned()
}

/// Shortens `text` to at most `max_chars` characters, ending with `…` when it was cut.
pub fn truncate_chars(text: &str, max_chars: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        None => Cow::Borrowed(text),
        Some(_) => {
            let keep = max_chars.saturating_sub(1);
            let end = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
            Cow::Owned(format!("{}…", &text[..end]))
        }
    }
}

/// A duration the way the deploy log shows it: `3202 ms`, `42.9 s`, `2 min 16 s`, `3 h 5 min`,
/// `2 d 4 h`.
pub fn human_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    let secs = d.as_secs();
    match secs {
        0..=9 => format!("{ms} ms"),
        10..=59 => format!("{:.1} s", d.as_secs_f64()),
        60..=3599 => two_units(secs / 60, "min", secs % 60, "s"),
        3600..=86_399 => two_units(secs / 3600, "h", secs % 3600 / 60, "min"),
        _ => two_units(secs / 86_400, "d", secs % 86_400 / 3600, "h"),
    }
}

/// "2 min 16 s", or "2 min" when the smaller unit is zero.
fn two_units(big: u64, big_unit: &str, small: u64, small_unit: &str) -> String {
    if small == 0 {
        format!("{big} {big_unit}")
    } else {
        format!("{big} {big_unit} {small} {small_unit}")
    }
}

/// `!name usage`: how `!help` and usage errors show a command, built in or a plugin's.
pub fn synopsis(prefix: &str, name: &str, usage: &str) -> String {
    if usage.is_empty() {
        format!("{prefix}{name}")
    } else {
        format!("{prefix}{name} {usage}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_strips_controls_but_keeps_formatting() {
        assert_eq!(sanitize_line("plain text"), "plain text");
        assert!(matches!(sanitize_line("plain"), Cow::Borrowed(_)));
        assert_eq!(sanitize_line("a\rb\0c\x07d\x7f"), "abcd");
        assert_eq!(sanitize_line("\x01VERSION\x01"), "VERSION");
        assert_eq!(sanitize_line("tab\there"), "tab here");
        assert_eq!(
            sanitize_line("\x02bold\x02 \x0304red\x03 \x1ditalic\x0f"),
            "\x02bold\x02 \x0304red\x03 \x1ditalic\x0f"
        );
    }

    #[test]
    fn sanitize_strips_bidi_and_c1_controls() {
        assert_eq!(sanitize_line("db\u{202E}gnp.exe"), "dbgnp.exe");
        assert_eq!(
            sanitize_line("a\u{0085}b\u{0080}c\u{009F}d\u{009B}e"),
            "abcde"
        );
        for c in ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}') {
            assert_eq!(sanitize_line(&format!("x{c}y")), "xy", "{:?}", c);
        }
        assert_eq!(sanitize_line("\u{200E}l\u{200F}r\u{061C}a"), "lra");
        // Right-to-left text itself, and other non-ASCII, stays.
        assert_eq!(sanitize_line("שלום café ☃"), "שלום café ☃");
        assert!(matches!(sanitize_line("שלום"), Cow::Borrowed(_)));
    }

    #[test]
    fn lines_break_on_every_newline_kind_and_skip_blanks() {
        let got: Vec<_> = lines("one\r\ntwo\nthree\rfour\n\n  \nQUIT :bye\r\n").collect();
        assert_eq!(got, ["one", "two", "three", "four", "QUIT :bye"]);
        assert_eq!(lines("").count(), 0);
    }

    #[test]
    fn split_prefers_a_word_break() {
        assert_eq!(split_to_fit("hello world", 20), ("hello world", ""));
        assert_eq!(
            split_to_fit("hello world again", 12),
            ("hello world", "again")
        );
        assert_eq!(split_to_fit("hello world", 5), ("hello", "world"));
    }

    #[test]
    fn split_hard_cuts_a_long_word_on_a_char_boundary() {
        let word = "é".repeat(10); // 20 bytes
        let (a, b) = split_to_fit(&word, 7);
        assert_eq!(a, "ééé");
        assert_eq!(b, "ééééééé");
        let (a, _) = split_to_fit("x https://example.com/very/long/path", 20);
        assert_eq!(a, "x https://example.co");
    }

    #[test]
    fn split_pieces_reassemble_to_the_original_words() {
        let text = "Größe ☃ 日本語のテキスト snow ❄ ".repeat(40);
        let text = text.trim_end();
        let mut rest = text;
        let mut pieces = Vec::new();
        while !rest.is_empty() {
            let (piece, r) = split_to_fit(rest, 50);
            assert!(piece.len() <= 50, "{} bytes", piece.len());
            assert!(!piece.is_empty());
            pieces.push(piece);
            rest = r;
        }
        let joined: String = pieces.concat();
        let words = |s: &str| s.split_whitespace().collect::<String>();
        assert_eq!(words(&joined), words(text));
    }

    #[test]
    fn durations_read_like_the_deploy_log() {
        use std::time::Duration;
        assert_eq!(human_duration(Duration::from_millis(3202)), "3202 ms");
        assert_eq!(human_duration(Duration::from_millis(42_911)), "42.9 s");
        assert_eq!(human_duration(Duration::from_secs(136)), "2 min 16 s");
        assert_eq!(
            human_duration(Duration::from_secs(3 * 3600 + 300)),
            "3 h 5 min"
        );
        assert_eq!(
            human_duration(Duration::from_secs(2 * 86_400 + 4 * 3600)),
            "2 d 4 h"
        );
        assert_eq!(human_duration(Duration::from_secs(300)), "5 min");
        assert_eq!(human_duration(Duration::from_secs(7200)), "2 h");
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate_chars("short", 10), "short");
        assert_eq!(truncate_chars("abcdefghij", 5), "abcd…");
        assert_eq!(truncate_chars("日本語テキスト", 3), "日本…");
    }
}
