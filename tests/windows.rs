//! Deploy windows and freezes through IRC on a real ngIRCd: a deploy outside its target's
//! window is refused naming when the next one opens; an emergency goes anyway, logged and
//! announced as one; a freeze refuses whole days. The windows are set from the test's own
//! clock (a day that is not today), so the refusal is certain whenever the test runs; the
//! rules themselves are tested with fixed instants in `src/config/windows.rs`.

mod support;
use support::*;

use jiff::ToSpan;

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// lever with a `site` target whose deploy is one quick step, and `schedule` in its table.
fn lever(server: &Ngircd, schedule: &str, client: &mut Client) -> Lever {
    let lever = Lever::start(&bot_config(
        server.port,
        "",
        &format!(
            "[targets.site]\n{schedule}\n[[targets.site.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n"
        ),
    ));
    client.expect(|l| l.verb == "JOIN" && l.from == "lever");
    lever
}

#[test]
fn outside_its_window_a_deploy_is_refused_until_the_next_one_and_an_emergency_goes() {
    let server = Ngircd::start();
    let mut ida = Client::connect(server.port, "ida");
    ida.join("#ops");
    // Two days from now, by the UTC calendar: never today.
    let day = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::UTC)
        .date()
        + 2.days();
    let name = DAYS[day.weekday().to_monday_zero_offset() as usize];
    let _lever = lever(
        &server,
        &format!("windows = [\"{name} 09:00-10:00\"]"),
        &mut ida,
    );

    ida.say_ops("!deploy site");
    let refusal = ida.lever_says();
    like(
        &refusal,
        &format!(
            "ida: site deploys only {name} 09:00-10:00 (UTC); the next window opens {name} {day} 09:00 UTC ({{dur}} from now); for an emergency: !deploy site emergency <reason>"
        ),
    );
    ida.say_ops("!deploy site emergency payments are down");
    like(
        &ida.lever_says(),
        "ida is deploying site: the current build → live (1 step) — EMERGENCY: payments are down",
    );
    like(&ida.lever_says(), "site deployed by ida in {dur}");
    ida.say_ops("!log 2");
    let lines = [ida.lever_says(), ida.lever_says()];
    like(
        &lines[1],
        "[{time}] [ida] starting deploy of site... (the current build → live) EMERGENCY: payments are down",
    );
}

#[test]
fn a_freeze_refuses_the_whole_day() {
    let server = Ngircd::start();
    let mut jo = Client::connect(server.port, "jo");
    jo.join("#ops");
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::UTC)
        .date();
    let until = today + 1.days();
    let _lever = lever(
        &server,
        &format!(
            "[[targets.site.freezes]]\nfrom = \"{today}\"\nuntil = \"{until}\"\nreason = \"year-end freeze\"\n"
        ),
        &mut jo,
    );
    jo.say_ops("!deploy");
    assert_eq!(
        jo.lever_says(),
        format!("jo: site is frozen until {until} included (year-end freeze); for an emergency: !deploy site emergency <reason>")
    );
}
