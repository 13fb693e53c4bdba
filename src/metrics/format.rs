//! How numbers, units, ranges and series read in the channel.

use std::time::Duration;

use super::Labels;

/// A value short enough for a chat line: `1027`, `0.42`, `131.3`, `0.00123`, `2.5e-7`,
/// `NaN`, `+Inf`.
pub fn value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let a = v.abs();
    let text = if a == 0.0 {
        "0".to_owned()
    } else if !(1e-4..1e15).contains(&a) {
        format!("{v:.2e}")
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        // Three significant digits.
        let decimals = (-a.log10().floor()) as usize + 2;
        format!("{v:.decimals$}")
    };
    trim_zeros(&text)
}

fn trim_zeros(text: &str) -> String {
    if let Some((mantissa, exponent)) = text.split_once('e') {
        return format!("{}e{exponent}", trim_zeros(mantissa));
    }
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text.to_owned()
    }
}

/// A value with its unit: `0.42 req/s`, `131.3 ms`, `7`.
pub fn with_unit(v: f64, unit: Option<&str>) -> String {
    match unit {
        Some(unit) if v.is_finite() => format!("{} {unit}", value(v)),
        _ => value(v),
    }
}

/// A range as Prometheus writes it and people type it: `1h`, `30m`, `2d`, `90s`.
pub fn range(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Labels as PromQL writes them, without those every series shares (`common`) and without
/// the metric name when it is shared: `{code="500",handler="/deploy"}`. A Graphite series
/// reads as its name. A series with nothing of its own reads as its full label set.
pub fn series(labels: &Labels, common: &Labels) -> String {
    if labels.len() == 1 {
        if let Some(target) = labels.get("target") {
            return target.clone();
        }
    }
    let own: Vec<(&String, &String)> = labels
        .iter()
        .filter(|(k, v)| common.get(*k) != Some(*v))
        .collect();
    let shown = if own.is_empty() {
        labels.iter().collect()
    } else {
        own
    };
    let name = shown
        .iter()
        .find(|(k, _)| *k == "__name__")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let pairs: Vec<String> = shown
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    if pairs.is_empty() {
        if name.is_empty() {
            "{}".into()
        } else {
            name.into()
        }
    } else {
        format!("{name}{{{}}}", pairs.join(","))
    }
}

/// The labels every one of `all` has with the same value.
pub fn common<'a>(mut all: impl Iterator<Item = &'a Labels>) -> Labels {
    let Some(first) = all.next() else {
        return Labels::new();
    };
    let mut shared = first.clone();
    for labels in all {
        shared.retain(|k, v| labels.get(k) == Some(v));
    }
    shared
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_short_and_exact_enough() {
        let cases = [
            (0.0, "0"),
            (7.0, "7"),
            (1027.0, "1027"),
            (-3.0, "-3"),
            (0.42, "0.42"),
            (0.123456, "0.123"),
            (0.00123456, "0.00123"),
            (1.5, "1.5"),
            (2.345, "2.35"),
            (131.27, "131.3"),
            (99.99, "99.99"),
            (2.5e-7, "2.5e-7"),
            (3.2e18, "3.2e18"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (v, text) in cases {
            assert_eq!(value(v), text, "{v}");
        }
        assert_eq!(with_unit(0.42, Some("req/s")), "0.42 req/s");
        assert_eq!(with_unit(f64::NAN, Some("req/s")), "NaN");
    }

    #[test]
    fn ranges_read_as_typed() {
        let r = |s| range(Duration::from_secs(s));
        assert_eq!(
            [r(3600), r(1800), r(172_800), r(90)],
            ["1h", "30m", "2d", "90s"]
        );
    }

    #[test]
    fn series_show_what_tells_them_apart() {
        let labels = |pairs: &[(&str, &str)]| -> Labels {
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect()
        };
        let a = labels(&[("__name__", "req"), ("code", "500"), ("job", "web")]);
        let b = labels(&[("__name__", "req"), ("code", "200"), ("job", "web")]);
        let shared = common([&a, &b].into_iter());
        assert_eq!(series(&a, &shared), "{code=\"500\"}");
        assert_eq!(series(&a, &Labels::new()), "req{code=\"500\",job=\"web\"}");
        assert_eq!(series(&a, &a), "req{code=\"500\",job=\"web\"}");
        assert_eq!(
            series(&labels(&[("target", "lever.web.errors")]), &Labels::new()),
            "lever.web.errors"
        );
        assert_eq!(series(&Labels::new(), &Labels::new()), "{}");
    }
}
