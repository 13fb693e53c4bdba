//! `!graph <name|expr> [range]`: a metric over time as a sparkline, with deploys marked.

use std::time::Duration;

use super::{args, metric, CommandError, Ctx, Example, Spec};
use crate::metrics::sparkline::{self, MARK};
use crate::metrics::{format, unix_now, Query, Series};
use crate::store::{format_time, LogEntry, LogKind};

/// Characters in the sparkline.
const CELLS: usize = 48;
const DEFAULT_RANGE: Duration = Duration::from_secs(3600);
const MIN_RANGE: Duration = Duration::from_secs(60);
const MAX_RANGE: Duration = Duration::from_secs(30 * 86_400);

pub const SPEC: Spec = Spec {
    name: "graph",
    aliases: &["g"],
    usage: "<name|expression> [range]",
    help: "Draws a metric over the last hour (or range: 30m, 6h, 7d) as a sparkline with min, max and last, and marks deploys with |.",
    role: None,
    examples: &[Example {
        input: "!graph errors 6h",
        reply: r"alice: no metrics source is configured: add a \[metrics.sources.NAME\] section to the config",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let (text, range) = split_range(&ctx.args)?;
    let query = metric::resolve(&ctx, text)?;
    // A whole number of seconds per cell, and one point per cell.
    let step = (range.as_secs_f64() / CELLS as f64).ceil();
    let cells = (range.as_secs_f64() / step).floor() as usize;
    // Whole seconds: the source's timestamps then fall exactly on the cells' ends.
    let until = unix_now().floor();
    let from = until - cells as f64 * step;
    let series = ctx
        .bot
        .metrics
        .range(&query, from, until, step)
        .await
        .map_err(|e| CommandError::User(e.to_string()))?;
    let deploys = ctx.bot.store.log_between(
        &[LogKind::Deployed, LogKind::RolledBack],
        (from * 1000.0) as i64,
        crate::store::now_ms(),
    )?;
    let deploys: Vec<LogEntry> = deploys
        .into_iter()
        .filter(|e| query.target.is_none() || e.target == query.target)
        .collect();
    let mut line = describe(&query, &series, &deploys, (from, until, cells), range);
    if let Some(link) = ctx.bot.metrics.graph_link(&query, range, until) {
        line.push_str(&format!(" · {link}"));
    }
    ctx.reply(&line);
    Ok(())
}

/// `errors 6h` → (`errors`, 6 h); a last word that is a duration is the range.
fn split_range(args: &str) -> Result<(&str, Duration), CommandError> {
    let args = args.trim();
    let Some((head, last)) = args.rsplit_once(char::is_whitespace) else {
        return Ok((args, DEFAULT_RANGE));
    };
    let Some(range) = args::duration(last) else {
        return Ok((args, DEFAULT_RANGE));
    };
    if !(MIN_RANGE..=MAX_RANGE).contains(&range) {
        return Err(CommandError::User(
            "a graph's range is between 1m and 30d, e.g. 30m, 6h, 7d".into(),
        ));
    }
    Ok((head.trim_end(), range))
}

/// The reply line (without the link), drawing `[from, until]` in `cells` characters.
pub fn describe(
    query: &Query,
    series: &[Series],
    deploys: &[LogEntry],
    (from, until, cells): (f64, f64, usize),
    range: Duration,
) -> String {
    let unit = query
        .unit
        .as_ref()
        .map(|u| format!(" ({u})"))
        .unwrap_or_default();
    let head = format!("{}{unit}, last {}", query.title(), format::range(range));
    // The series that ends highest; a graph of several would be unreadable in one line.
    let chosen = series
        .iter()
        .filter_map(|s| Some((s, s.points.iter().rev().find(|p| p.1.is_finite())?.1)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(s, _)| s);
    let marks: Vec<f64> = deploys.iter().map(|e| e.at as f64 / 1000.0).collect();
    let Some(spark) = chosen.and_then(|s| sparkline::render(&s.points, from, until, cells, &marks))
    else {
        return format!("{head}: no data");
    };
    let unit = query.unit.as_deref();
    let mut text = format!(
        "{head}: {} min {} · max {} · last {}",
        spark.line,
        format::value(spark.min),
        format::value(spark.max),
        format::with_unit(spark.last, unit)
    );
    if series.len() > 1 {
        let chosen = chosen.expect("a spark needs a series");
        let common = format::common(series.iter().map(|s| &s.labels));
        text.push_str(&format!(
            " · {} of {} series (sum them to graph one)",
            format::series(&chosen.labels, &common),
            series.len()
        ));
    }
    if let Some(latest) = deploys.last() {
        let count = if deploys.len() > 1 {
            format!("{} deploys, latest ", deploys.len())
        } else {
            String::new()
        };
        // Within a day the time says enough; beyond, the date too.
        let at = format_time(latest.at);
        let at = if range <= Duration::from_secs(86_400) {
            &at[11..16]
        } else {
            &at[5..16]
        };
        text.push_str(&format!(
            " · {MARK} {count}{} {at} UTC by {}",
            latest.target.as_deref().unwrap_or("every target"),
            latest.user
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Labels;

    fn query() -> Query {
        Query {
            source: "prom".into(),
            expr: "x".into(),
            unit: Some("req/s".into()),
            name: Some("errors".into()),
            target: None,
        }
    }

    fn deploy(at_secs: i64) -> LogEntry {
        LogEntry {
            id: 1,
            at: at_secs * 1000,
            user: "alice".into(),
            target: Some("site".into()),
            kind: LogKind::Deployed,
            text: "site deployed".into(),
            run_id: Some(1),
        }
    }

    #[test]
    fn ranges_come_last_and_are_bounded() {
        fn split(a: &str) -> Result<(&str, Duration), String> {
            split_range(a).map_err(|e| e.to_string())
        }
        assert_eq!(split("errors").unwrap(), ("errors", DEFAULT_RANGE));
        assert_eq!(
            split("errors 6h").unwrap(),
            ("errors", Duration::from_secs(6 * 3600))
        );
        assert_eq!(
            split("rate(x[5m]) 2d").unwrap(),
            ("rate(x[5m])", Duration::from_secs(2 * 86_400))
        );
        assert_eq!(split("rate(x[5m])").unwrap().0, "rate(x[5m])");
        assert!(split("errors 90d")
            .unwrap_err()
            .contains("between 1m and 30d"));
    }

    #[test]
    fn a_graph_has_its_spark_figures_and_the_last_deploy() {
        // 2026-11-27 00:00:00 UTC, over one hour, rising at 00:30; a deploy at 00:30:30.
        let from = 1_795_737_600.0;
        let until = from + 3600.0;
        let points: Vec<(f64, f64)> = (1..=48)
            .map(|i| (from + i as f64 * 75.0, if i <= 24 { 1.0 } else { 3.0 }))
            .collect();
        let series = [Series {
            labels: Labels::new(),
            points,
        }];
        let deploys = [deploy(from as i64 + 1830)];
        assert_eq!(
            describe(
                &query(),
                &series,
                &deploys,
                (from, until, 48),
                DEFAULT_RANGE
            ),
            "errors (req/s), last 1h: ▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁|████████████████████████ \
             min 1 · max 3 · last 3 req/s · | site 00:30 UTC by alice"
        );
        assert_eq!(
            describe(&query(), &[], &deploys, (from, until, 48), DEFAULT_RANGE),
            "errors (req/s), last 1h: no data"
        );
    }

    #[test]
    fn of_several_series_the_one_ending_highest_is_drawn_and_named() {
        let from = 1_795_737_600.0;
        let until = from + 4.0 * 900.0;
        let series = |code: &str, last: f64| Series {
            labels: [("__name__", "req"), ("code", code)]
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            points: vec![(from + 900.0, 1.0), (until, last)],
        };
        let all = [series("200", 5.0), series("500", 9.0), series("404", 2.0)];
        assert_eq!(
            describe(&query(), &all, &[], (from, until, 4), DEFAULT_RANGE),
            "errors (req/s), last 1h: ▁  █ min 1 · max 9 · last 9 req/s · \
             {code=\"500\"} of 3 series (sum them to graph one)"
        );
    }
}
