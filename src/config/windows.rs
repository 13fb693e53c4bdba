//! Deploy windows and freezes: when a target may be deployed. `windows = ["Mon-Thu
//! 09:00-16:00", "Fri 09:00-12:00"]` in the target's `timezone` (default UTC), and dated
//! `[[targets.NAME.freezes]]` (`from`, `until`, both days included, and a `reason`). No windows:
//! any time outside a freeze. Parsed once at load (a mistake names its key), evaluated for an
//! instant given by the caller, so every rule is tested with a clock of the test's own.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};
use serde::Deserialize;

/// `[[targets.NAME.freezes]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeConfig {
    /// The first day frozen, `"2026-12-20"`, in the target's time zone.
    pub from: String,
    /// The last day frozen (included).
    pub until: String,
    /// Why, as the refusal says it.
    #[serde(default)]
    pub reason: String,
}

/// A target's schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    windows: Vec<Window>,
    freezes: Vec<Freeze>,
    tz: TimeZone,
    /// The windows as written, for messages.
    written: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Window {
    /// Monday first.
    days: [bool; 7],
    start: Time,
    end: Time,
}

#[derive(Debug, Clone)]
struct Freeze {
    from: Date,
    until: Date,
    reason: String,
}

/// Why a deploy may not start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// A freeze covers today: until its last day, and why.
    Frozen { until: Date, reason: String },
    /// Outside every window; when the next one opens (none within a year: `None`).
    Outside { next: Option<Zoned> },
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Schedule {
    /// Parses a target's schedule; the error names what is wrong (the caller adds the key).
    pub fn parse(
        windows: &[String],
        timezone: Option<&str>,
        freezes: &[FreezeConfig],
    ) -> Result<Schedule, (String, String)> {
        let tz = match timezone {
            None => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|_| {
                (
                    "timezone".to_owned(),
                    format!("'{name}' is not a time zone (an IANA name such as \"Europe/Berlin\")"),
                )
            })?,
        };
        let windows = windows
            .iter()
            .map(|w| window(w).map_err(|why| ("windows".to_owned(), format!("'{w}': {why}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let freezes = freezes
            .iter()
            .map(|f| {
                let date = |text: &str| {
                    text.parse::<Date>().map_err(|_| {
                        (
                            "freezes".to_owned(),
                            format!("'{text}' is not a day such as \"2026-12-24\""),
                        )
                    })
                };
                let (from, until) = (date(&f.from)?, date(&f.until)?);
                if until < from {
                    return Err((
                        "freezes".to_owned(),
                        format!("{from} to {until}: the freeze ends before it starts"),
                    ));
                }
                Ok(Freeze {
                    from,
                    until,
                    reason: f.reason.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut schedule = Schedule {
            written: Vec::new(),
            windows,
            freezes,
            tz,
        };
        schedule.written = schedule.describe_windows();
        Ok(schedule)
    }

    /// Whether a deploy may start at `now`; if not, why and when it may.
    pub fn check(&self, now: Timestamp) -> Result<(), Closed> {
        let here = now.to_zoned(self.tz.clone());
        if let Some(freeze) = self.frozen(here.date()) {
            return Err(Closed::Frozen {
                until: freeze.until,
                reason: freeze.reason.clone(),
            });
        }
        if self.windows.is_empty() || self.windows.iter().any(|w| w.holds(&here)) {
            return Ok(());
        }
        Err(Closed::Outside {
            next: self.next_open(&here),
        })
    }

    /// The windows as written, and the zone: `Mon-Thu 09:00-16:00 (Europe/Berlin)`.
    pub fn windows_text(&self) -> String {
        self.written.join(", ")
    }

    fn frozen(&self, day: Date) -> Option<&Freeze> {
        self.freezes
            .iter()
            .find(|f| f.from <= day && day <= f.until)
    }

    /// The first moment after `here` a window opens on a day no freeze covers.
    fn next_open(&self, here: &Zoned) -> Option<Zoned> {
        let today = here.date();
        (0..=400).find_map(|ahead| {
            let day = today.checked_add(ahead.days()).ok()?;
            if self.frozen(day).is_some() {
                return None;
            }
            let weekday = day.weekday().to_monday_zero_offset() as usize;
            self.windows
                .iter()
                .filter(|w| w.days[weekday])
                .filter_map(|w| day.to_datetime(w.start).to_zoned(self.tz.clone()).ok())
                .filter(|start| start > here)
                .min()
        })
    }

    fn describe_windows(&self) -> Vec<String> {
        let zone = self.tz.iana_name().unwrap_or("UTC");
        self.windows
            .iter()
            .map(|w| {
                format!(
                    "{} {}-{} ({zone})",
                    days_text(&w.days),
                    hm(w.start),
                    hm(w.end)
                )
            })
            .collect()
    }
}

impl Window {
    fn holds(&self, here: &Zoned) -> bool {
        let weekday = here.weekday().to_monday_zero_offset() as usize;
        let time = here.time();
        self.days[weekday] && self.start <= time && time < self.end
    }
}

/// `Mon-Thu 09:00-16:00`, `Mon,Wed,Fri 10:00-12:00`, `daily 09:00-17:00`.
fn window(text: &str) -> Result<Window, String> {
    let (days, hours) = text
        .trim()
        .split_once(' ')
        .ok_or("write days and hours, such as \"Mon-Thu 09:00-16:00\"")?;
    let (start, end) = hours
        .trim()
        .split_once('-')
        .ok_or("hours are written \"09:00-16:00\"")?;
    let time = |t: &str| -> Result<Time, String> {
        if t.trim() == "24:00" {
            return Ok(Time::MAX);
        }
        Time::strptime("%H:%M", t.trim()).map_err(|_| format!("'{t}' is not a time such as 09:00"))
    };
    let (start, end) = (time(start)?, time(end)?);
    if end <= start {
        return Err(
            "a window ends after it starts (windows do not cross midnight: split one in two)"
                .into(),
        );
    }
    Ok(Window {
        days: days_of(days)?,
        start,
        end,
    })
}

/// `Mon-Thu`, `Sat,Sun`, `Fri-Mon`, `daily`.
fn days_of(text: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    if text.eq_ignore_ascii_case("daily") {
        return Ok([true; 7]);
    }
    let index = |d: &str| {
        DAYS.iter()
            .position(|n| n.eq_ignore_ascii_case(d.trim()))
            .ok_or_else(|| {
                format!("'{d}' is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun, or daily)")
            })
    };
    for part in text.split(',') {
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (index(from)?, index(to)?);
                let mut day = from;
                loop {
                    days[day] = true;
                    if day == to {
                        break;
                    }
                    day = (day + 1) % 7;
                }
            }
            None => days[index(part)?] = true,
        }
    }
    Ok(days)
}

fn days_text(days: &[bool; 7]) -> String {
    if days.iter().all(|d| *d) {
        return "daily".into();
    }
    let name = |i: usize| {
        let d = DAYS[i];
        format!("{}{}", d[..1].to_uppercase(), &d[1..])
    };
    // Runs of days: Mon-Thu, Sat.
    let mut parts = Vec::new();
    let mut i = 0;
    while i < 7 {
        if !days[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i + 1 < 7 && days[i + 1] {
            i += 1;
        }
        parts.push(match i - start {
            0 => name(start),
            _ => format!("{}-{}", name(start), name(i)),
        });
        i += 1;
    }
    parts.join(",")
}

fn hm(t: Time) -> String {
    if t == Time::MAX {
        return "24:00".into();
    }
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// A weekday by its three-letter name, for messages.
pub fn weekday_name(day: Weekday) -> &'static str {
    ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][day.to_monday_zero_offset() as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn schedule(windows: &[&str], tz: Option<&str>, freezes: &[(&str, &str)]) -> Schedule {
        let windows: Vec<String> = windows.iter().map(|w| w.to_string()).collect();
        let freezes: Vec<FreezeConfig> = freezes
            .iter()
            .map(|(from, until)| FreezeConfig {
                from: from.to_string(),
                until: until.to_string(),
                reason: "holidays".into(),
            })
            .collect();
        Schedule::parse(&windows, tz, &freezes).unwrap()
    }

    #[test]
    fn a_window_holds_on_its_days_between_its_hours_in_its_zone() {
        let s = schedule(
            &["Mon-Thu 09:00-16:00", "Fri 09:00-12:00"],
            Some("Europe/Berlin"),
            &[],
        );
        // 2026-12-07 is a Monday; Berlin is UTC+1 in December.
        assert_eq!(
            s.check(at("2026-12-07T08:30:00Z")),
            Ok(()),
            "09:30 in Berlin"
        );
        assert_eq!(s.check(at("2026-12-11T10:59:00Z")), Ok(()), "Friday 11:59");
        let Err(Closed::Outside { next: Some(next) }) = s.check(at("2026-12-11T11:00:00Z")) else {
            panic!("Friday noon is outside")
        };
        assert_eq!(
            next.to_string(),
            "2026-12-14T09:00:00+01:00[Europe/Berlin]",
            "Monday morning"
        );
        let Err(Closed::Outside { next: Some(next) }) = s.check(at("2026-12-07T06:00:00Z")) else {
            panic!("07:00 is before the window")
        };
        assert_eq!(
            next.timestamp(),
            at("2026-12-07T08:00:00Z"),
            "the same day at 09:00"
        );
        assert_eq!(
            s.windows_text(),
            "Mon-Thu 09:00-16:00 (Europe/Berlin), Fri 09:00-12:00 (Europe/Berlin)"
        );
    }

    #[test]
    fn a_freeze_closes_whole_days_and_the_next_window_is_after_it() {
        let s = schedule(
            &["daily 09:00-17:00"],
            None,
            &[("2026-12-24", "2026-12-26")],
        );
        assert_eq!(
            s.check(at("2026-12-25T10:00:00Z")),
            Err(Closed::Frozen {
                until: "2026-12-26".parse().unwrap(),
                reason: "holidays".into()
            })
        );
        let Err(Closed::Outside { next: Some(next) }) = s.check(at("2026-12-23T18:00:00Z")) else {
            panic!("evening is outside")
        };
        assert_eq!(
            next.timestamp(),
            at("2026-12-27T09:00:00Z"),
            "the freeze is skipped"
        );
        // No windows: always open, outside freezes.
        let any = schedule(&[], None, &[("2026-12-24", "2026-12-24")]);
        assert_eq!(any.check(at("2026-12-23T03:00:00Z")), Ok(()));
        assert!(any.check(at("2026-12-24T03:00:00Z")).is_err());
    }

    #[test]
    fn mistakes_say_what_is_wrong() {
        let refused =
            |w: &str, tz: Option<&str>| Schedule::parse(&[w.to_owned()], tz, &[]).unwrap_err();
        assert_eq!(refused("Mon-Thu 9-16", None).0, "windows");
        assert!(refused("Funday 09:00-16:00", None)
            .1
            .contains("'Funday' is not a day"));
        assert!(refused("Mon 16:00-09:00", None)
            .1
            .contains("do not cross midnight"));
        assert_eq!(
            refused("Mon 09:00-16:00", Some("Mars/Olympus")).0,
            "timezone"
        );
        assert_eq!(
            days_of("Fri-Mon").unwrap(),
            [true, false, false, false, true, true, true]
        );
        assert_eq!(days_text(&days_of("Sat,Mon-Wed").unwrap()), "Mon-Wed,Sat");
    }
}
