//! IRC names: case mapping, `nick!user@host` sources and wildcard masks.
//!
//! Nicks and channels compare case-insensitively by the rules the server announces in
//! `CASEMAPPING` (RPL_ISUPPORT). Masks use `*` (any run) and `?` (any one character); every
//! other character, `[` and `]` included, is literal.

/// How the server folds case; from ISUPPORT `CASEMAPPING`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaseMapping {
    /// Only `A-Z` fold to `a-z`.
    Ascii,
    /// `A-Z` and `[]\~` fold to `a-z` and `{}|^` (the RFC 1459 default when unannounced).
    #[default]
    Rfc1459,
    /// Like `Rfc1459` without `~` → `^`.
    StrictRfc1459,
}

impl CaseMapping {
    /// Reads an ISUPPORT `CASEMAPPING` value; an unknown one keeps the RFC default.
    pub fn from_isupport(value: &str) -> Self {
        match value.to_ascii_lowercase().as_str() {
            "ascii" => Self::Ascii,
            "strict-rfc1459" => Self::StrictRfc1459,
            _ => Self::Rfc1459,
        }
    }

    /// Folds one character to its canonical lower form.
    pub fn fold_char(self, c: char) -> char {
        match (self, c) {
            (_, 'A'..='Z') => c.to_ascii_lowercase(),
            (Self::Rfc1459 | Self::StrictRfc1459, '[') => '{',
            (Self::Rfc1459 | Self::StrictRfc1459, ']') => '}',
            (Self::Rfc1459 | Self::StrictRfc1459, '\\') => '|',
            (Self::Rfc1459, '~') => '^',
            _ => c,
        }
    }

    /// Folds a whole name, for use as a map key.
    pub fn fold(self, name: &str) -> String {
        name.chars().map(|c| self.fold_char(c)).collect()
    }

    /// Whether two names are the same under this mapping.
    pub fn eq(self, a: &str, b: &str) -> bool {
        a.len() == b.len()
            && a.chars()
                .zip(b.chars())
                .all(|(x, y)| self.fold_char(x) == self.fold_char(y))
    }
}

/// Splits a message source `nick!user@host` into its parts; a missing part is empty.
///
/// The host is what follows the *last* `@` and the nick what precedes the *first* `!`, so a
/// source a server or bridge built from a user name holding `@` or `!` still yields the host the
/// server put last; [`is_plain_source`] then tells whether the parts can be trusted at all.
pub fn split_source(source: &str) -> (&str, &str, &str) {
    let (rest, host) = source.rsplit_once('@').unwrap_or((source, ""));
    let (nick, user) = rest.split_once('!').unwrap_or((rest, ""));
    (nick, user, host)
}

/// Whether no part of a source holds a `!` or `@` of its own. A source that does (a user name
/// `evil@10.0.0.5` relayed as `nick!evil@10.0.0.5@real.host`) has no single reading, so no
/// mask may match it; only an `account:` rule, which the server vouches for, can.
pub fn is_plain_source(nick: &str, user: &str, host: &str) -> bool {
    [nick, user, host]
        .iter()
        .all(|part| !part.contains(['!', '@']))
}

/// Whether the `nick!user@host` mask matches a source given by its parts: nick against the
/// mask's nick, user against its user, host against its host, so no `*` reaches across a
/// `!` or `@`. A source that is not [plain](is_plain_source) matches no mask.
pub fn matches_source(
    mask: &str,
    (nick, user, host): (&str, &str, &str),
    casemap: CaseMapping,
) -> bool {
    let (mask_nick, mask_user, mask_host) = split_source(mask);
    is_plain_source(nick, user, host)
        && is_plain_source(mask_nick, mask_user, mask_host)
        && matches(mask_nick, nick, casemap)
        && matches(mask_user, user, casemap)
        && matches(mask_host, host, casemap)
}

/// Whether `subject` (e.g. `nick!user@host`) matches the wildcard `mask` under `casemap`.
pub fn matches(mask: &str, subject: &str, casemap: CaseMapping) -> bool {
    let mask: Vec<char> = mask.chars().map(|c| casemap.fold_char(c)).collect();
    let subject: Vec<char> = subject.chars().map(|c| casemap.fold_char(c)).collect();
    // Linear-time glob: on a mismatch, retry from the last `*` with it eating one more char.
    let (mut m, mut s) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while s < subject.len() {
        match mask.get(m) {
            Some('*') => {
                star = Some((m, s));
                m += 1;
            }
            Some(&c) if c == '?' || c == subject[s] => {
                m += 1;
                s += 1;
            }
            _ => match star {
                Some((star_m, star_s)) => {
                    m = star_m + 1;
                    s = star_s + 1;
                    star = Some((star_m, star_s + 1));
                }
                None => return false,
            },
        }
    }
    mask[m..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    const MASK_VECTORS: &str = include_str!("../../testdata/ircdocs/mask-match.yaml");
    const USERHOST_VECTORS: &str = include_str!("../../testdata/ircdocs/userhost-split.yaml");

    #[derive(Deserialize)]
    struct Vectors<T> {
        tests: Vec<T>,
    }
    #[derive(Deserialize)]
    struct MaskCase {
        mask: String,
        matches: Vec<String>,
        fails: Vec<String>,
    }
    #[derive(Deserialize)]
    struct SplitCase {
        source: String,
        atoms: Atoms,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Atoms {
        nick: String,
        user: String,
        host: String,
    }

    #[test]
    fn ircdocs_mask_match_vectors() {
        let v: Vectors<MaskCase> = serde_norway::from_str(MASK_VECTORS).unwrap();
        assert!(v.tests.len() >= 6);
        for case in v.tests {
            for cm in [CaseMapping::Ascii, CaseMapping::Rfc1459] {
                for s in &case.matches {
                    assert!(matches(&case.mask, s, cm), "{} should match {s}", case.mask);
                }
                for s in &case.fails {
                    assert!(
                        !matches(&case.mask, s, cm),
                        "{} should not match {s}",
                        case.mask
                    );
                }
            }
        }
    }

    #[test]
    fn ircdocs_userhost_split_vectors() {
        let v: Vectors<SplitCase> = serde_norway::from_str(USERHOST_VECTORS).unwrap();
        assert!(v.tests.len() >= 7);
        for case in v.tests {
            let (nick, user, host) = split_source(&case.source);
            assert_eq!(
                (nick, user, host),
                (&*case.atoms.nick, &*case.atoms.user, &*case.atoms.host),
                "{:?}",
                case.source
            );
        }
    }

    #[test]
    fn matching_folds_case_by_the_servers_mapping() {
        let rfc = CaseMapping::Rfc1459;
        let ascii = CaseMapping::Ascii;
        assert!(matches(
            "Alice!*@*.Example.NET",
            "alice!a@host.example.net",
            ascii
        ));
        assert!(matches("dan[x]!*@*", "DAN{X}!u@h", rfc));
        assert!(!matches("dan[x]!*@*", "DAN{X}!u@h", ascii));
        assert!(matches("a~b!*@*", "A^B!u@h", rfc));
        assert!(!matches("a~b!*@*", "A^B!u@h", CaseMapping::StrictRfc1459));
        assert!(rfc.eq("#Ops[1]", "#ops{1}"));
        assert!(!ascii.eq("#Ops[1]", "#ops{1}"));
    }

    #[test]
    fn stars_backtrack_and_question_marks_take_one_char() {
        let a = CaseMapping::Ascii;
        assert!(matches("*!*@10.0.0.*", "bob!~b@10.0.0.42", a));
        assert!(!matches("*!*@10.0.0.*", "bob!~b@10.0.1.42", a));
        assert!(matches("*a*b*c", "xxaxxbxxbxxc", a));
        assert!(!matches("*a*b*c", "xxaxxbxxbxxd", a));
        assert!(matches("??", "ab", a));
        assert!(!matches("??", "abc", a));
        assert!(matches("", "", a));
        assert!(!matches("", "x", a));
        assert!(matches("**", "", a));
    }

    #[test]
    fn the_host_follows_the_last_at_and_the_nick_ends_at_the_first_bang() {
        assert_eq!(
            split_source("nick!evil@10.0.0.5@real.host"),
            ("nick", "evil@10.0.0.5", "real.host")
        );
        assert_eq!(split_source("a!b!c@h"), ("a", "b!c", "h"));
        assert!(is_plain_source("bob", "~bob", "10.0.0.5"));
        assert!(!is_plain_source("nick", "evil@10.0.0.5", "real.host"));
        assert!(!is_plain_source("a", "b!c", "h"));
        assert!(!is_plain_source("n@x", "u", "h"));
    }

    #[test]
    fn source_masks_match_part_by_part() {
        let a = CaseMapping::Ascii;
        assert!(matches_source(
            "*!*@10.0.0.*",
            ("bob", "~b", "10.0.0.42"),
            a
        ));
        assert!(matches_source("Bob!~b@*", ("bob", "~b", "h"), a));
        // A star in one part never eats into the next.
        assert!(!matches_source(
            "*!*@10.0.0.*",
            ("x", "u@10.0.0.1", "evil"),
            a
        ));
        assert!(!matches_source(
            "*!*@10.0.0.*",
            ("x", "u", "10.0.0.5@evil"),
            a
        ));
        assert!(!matches_source("b*!*@h", ("b!x", "u", "h"), a));
        assert!(!matches_source("*!*@h", ("n", "u", "x!y@h"), a));
    }

    #[test]
    fn unknown_casemapping_keeps_the_rfc_default() {
        assert_eq!(CaseMapping::from_isupport("ascii"), CaseMapping::Ascii);
        assert_eq!(CaseMapping::from_isupport("RFC1459"), CaseMapping::Rfc1459);
        assert_eq!(
            CaseMapping::from_isupport("strict-rfc1459"),
            CaseMapping::StrictRfc1459
        );
        assert_eq!(CaseMapping::from_isupport("rfc7613"), CaseMapping::Rfc1459);
    }
}
