//! `!metric <name|expr>`: a metric's value now, from Prometheus or Graphite.

use super::{CommandError, Ctx, Example, Spec};
use crate::access::Role;
use crate::metrics::{format, Query, Sample};

/// Series listed before "and N more".
const TOP: usize = 3;

pub const SPEC: Spec = Spec {
    name: "metric",
    aliases: &["m"],
    usage: "<name|expression>",
    help: "Shows a metric's value now: a named query from the config, or (with the metrics role) any expression for the first source, or @source expression.",
    role: None,
    examples: &[Example {
        input: "!metric errors",
        reply: r"alice: no metrics source is configured: add a \[metrics.sources.NAME\] section to the config",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let query = resolve(&ctx, &ctx.args)?;
    let samples = ctx
        .bot
        .metrics
        .instant(&query)
        .await
        .map_err(|e| CommandError::User(e.to_string()))?;
    ctx.reply(&describe(&query, samples));
    Ok(())
}

/// What `!metric` and `!graph` were asked for. Raw expressions need the metrics role: they
/// can be expensive, and named queries are what the team agreed to share.
pub(super) fn resolve(ctx: &Ctx, text: &str) -> Result<Query, CommandError> {
    if text.trim().is_empty() {
        return Err(CommandError::Usage);
    }
    let metrics = &ctx.bot.metrics;
    let query = metrics.resolve(text).map_err(CommandError::User)?;
    if query.is_raw() && !ctx.bot.access.allows(&ctx.msg, Role::Metrics) {
        return Err(CommandError::User(format!(
            "'{}' is not a named metric (named: {}); other expressions need the metrics role",
            crate::chat::text::truncate_chars(text.trim(), 40),
            metrics.query_names()
        )));
    }
    Ok(query)
}

/// The reply: one value, the top series, or why there is no number.
pub fn describe(query: &Query, mut samples: Vec<Sample>) -> String {
    let title = query.title();
    let unit = query.unit.as_deref();
    match samples.len() {
        0 => format!("{title}: no data (the query matched no series)"),
        1 => {
            let v = samples[0].value;
            if v.is_nan() {
                format!("{title} is NaN: the source had nothing to compute it from (0/0, or no change to take a rate of)")
            } else if v.is_infinite() {
                format!("{title} is {} (a division by zero?)", format::value(v))
            } else {
                format!("{title}: {}", format::with_unit(v, unit))
            }
        }
        n => {
            // Highest first; NaN last.
            samples.sort_by(|a, b| b.value.total_cmp(&a.value));
            samples.sort_by_key(|s| s.value.is_nan());
            let common = format::common(samples.iter().map(|s| &s.labels));
            let shown: Vec<String> = samples
                .iter()
                .take(TOP)
                .map(|s| {
                    format!(
                        "{} {}",
                        format::series(&s.labels, &common),
                        format::with_unit(s.value, unit)
                    )
                })
                .collect();
            let mut text = format!("{title}: {n} series, highest first: {}", shown.join(" · "));
            if n > TOP {
                text.push_str(&format!(" · and {} more", n - TOP));
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Labels;

    fn query(unit: Option<&str>) -> Query {
        Query {
            source: "prom".into(),
            expr: "x".into(),
            unit: unit.map(str::to_owned),
            name: Some("errors".into()),
            target: None,
        }
    }

    fn sample(code: &str, value: f64) -> Sample {
        let labels: Labels = [("__name__", "req"), ("code", code), ("job", "web")]
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Sample { labels, value }
    }

    #[test]
    fn one_value_with_its_unit() {
        let q = query(Some("req/s"));
        assert_eq!(
            describe(&q, vec![sample("500", 0.42)]),
            "errors: 0.42 req/s"
        );
        assert_eq!(
            describe(&q, vec![]),
            "errors: no data (the query matched no series)"
        );
        assert!(describe(&q, vec![sample("500", f64::NAN)]).starts_with("errors is NaN: "));
        assert_eq!(
            describe(&q, vec![sample("500", f64::INFINITY)]),
            "errors is +Inf (a division by zero?)"
        );
    }

    #[test]
    fn several_series_show_the_highest_and_how_many_more() {
        let samples = vec![
            sample("200", 1027.0),
            sample("404", f64::NAN),
            sample("500", 3.0),
            sample("503", 12.0),
            sample("302", 40.0),
        ];
        assert_eq!(
            describe(&query(None), samples),
            "errors: 5 series, highest first: {code=\"200\"} 1027 · {code=\"302\"} 40 · {code=\"503\"} 12 · and 2 more"
        );
    }
}
