//! CTCP: `\x01VERB args\x01` inside a PRIVMSG. lever answers VERSION, PING, TIME and
//! CLIENTINFO sent to it in private, by NOTICE, and never answers in a channel (the `irc`
//! crate's client would, which spams a channel whenever someone probes it).

/// A CTCP request: its verb (upper-cased) and argument text.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub verb: String,
    pub args: &'a str,
}

/// Reads a CTCP request out of message text, if the text is one.
pub fn parse(text: &str) -> Option<Request<'_>> {
    let inner = text.strip_prefix('\x01')?;
    let inner = inner.strip_suffix('\x01').unwrap_or(inner);
    let (verb, args) = inner.split_once(' ').unwrap_or((inner, ""));
    if verb.is_empty() {
        return None;
    }
    Some(Request {
        verb: verb.to_ascii_uppercase(),
        args,
    })
}

/// The NOTICE text answering a private CTCP request, or `None` for requests lever ignores
/// (ACTION, DCC, anything unknown).
pub fn answer(request: &Request<'_>, version: &str) -> Option<String> {
    let body = match request.verb.as_str() {
        "VERSION" => format!("VERSION {version}"),
        // Echo the token, but only printable text of bounded length.
        "PING" => format!("PING {}", clean(request.args, 64)),
        "TIME" => format!(
            "TIME {}",
            humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        ),
        "CLIENTINFO" => "CLIENTINFO CLIENTINFO PING TIME VERSION".to_owned(),
        _ => return None,
    };
    Some(format!("\x01{body}\x01"))
}

fn clean(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests_with_or_without_the_closing_marker() {
        assert_eq!(
            parse("\x01VERSION\x01"),
            Some(Request {
                verb: "VERSION".into(),
                args: ""
            })
        );
        assert_eq!(
            parse("\x01ping 123 456"),
            Some(Request {
                verb: "PING".into(),
                args: "123 456"
            })
        );
        assert_eq!(parse("hello"), None);
        assert_eq!(parse("\x01\x01"), None);
    }

    #[test]
    fn answers_only_what_it_knows() {
        let v = answer(&parse("\x01VERSION\x01").unwrap(), "lever 0.1.0").unwrap();
        assert_eq!(v, "\x01VERSION lever 0.1.0\x01");
        let p = answer(&parse("\x01PING 12\r\n34\x01").unwrap(), "x").unwrap();
        assert_eq!(p, "\x01PING 1234\x01");
        assert!(answer(&parse("\x01ACTION waves\x01").unwrap(), "x").is_none());
        assert!(answer(&parse("\x01DCC SEND x\x01").unwrap(), "x").is_none());
    }
}
