//! Graphite's render API (`/render?format=json`): URLs, and answers read into samples and
//! series. Pure: no I/O. A Graphite series is labelled `{target: <its name>}`.

use serde::Deserialize;

use super::{Labels, Sample, Series};

/// How far back `!metric` looks for a series' latest value: Graphite has no "now", only the
/// newest non-null point.
const INSTANT_LOOKBACK_SECS: f64 = 600.0;

/// `{target, datapoints: [[value|null, unix], ...]}`; value first.
#[derive(Deserialize)]
struct Item {
    target: String,
    datapoints: Vec<(Option<f64>, f64)>,
}

fn render(base: &str, params: &[(&str, String)]) -> reqwest::Url {
    let base = format!("{}/render", base.trim_end_matches('/'));
    reqwest::Url::parse_with_params(&base, params).expect("source URLs are checked at load")
}

pub fn instant_url(base: &str, expr: &str, now: f64) -> reqwest::Url {
    range_url(base, expr, now - INSTANT_LOOKBACK_SECS, now, 0)
}

/// `points` > 0 asks Graphite to consolidate to about that many points.
pub fn range_url(base: &str, expr: &str, from: f64, until: f64, points: usize) -> reqwest::Url {
    let mut params = vec![
        ("target", expr.to_owned()),
        ("format", "json".to_owned()),
        ("from", format!("{}", from.floor() as i64)),
        ("until", format!("{}", until.ceil() as i64)),
    ];
    if points > 0 {
        params.push(("maxDataPoints", points.to_string()));
    }
    render(base, &params)
}

fn items(body: &str) -> Result<Vec<Item>, String> {
    serde_json::from_str(body).map_err(|e| format!("not a Graphite render answer ({e})"))
}

fn labels(target: String) -> Labels {
    Labels::from([("target".to_owned(), target)])
}

/// Each series' newest non-null value; series with none are left out.
pub fn parse_instant(body: &str) -> Result<Vec<Sample>, String> {
    Ok(items(body)?
        .into_iter()
        .filter_map(|item| {
            let value = item.datapoints.iter().rev().find_map(|(v, _)| *v)?;
            Some(Sample {
                labels: labels(item.target),
                value,
            })
        })
        .collect())
}

pub fn parse_range(body: &str) -> Result<Vec<Series>, String> {
    Ok(items(body)?
        .into_iter()
        .map(|item| Series {
            points: item
                .datapoints
                .iter()
                .filter_map(|(v, t)| Some((*t, (*v)?)))
                .collect(),
            labels: labels(item.target),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(name: &str) -> String {
        let path = format!("{}/testdata/payloads/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn the_newest_non_null_point_is_the_value() {
        let samples =
            parse_instant(&payload("graphite-1.1.8-captured-render-single.json")).unwrap();
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].labels["target"], "lever.web.latency_ms");
        assert_eq!(samples[0].value, 99.0);
        let two = parse_instant(&payload("graphite-1.1.8-captured-render-wildcard.json")).unwrap();
        assert_eq!(two.iter().map(|s| s.value).collect::<Vec<_>>(), [1.0, 99.0]);
        let docs = parse_instant(&payload("graphite-docs-render-json.json")).unwrap();
        assert_eq!(docs[0].value, 6.0);
        assert!(parse_instant(&payload(
            "graphite-1.1.8-captured-render-unknown-target.json"
        ))
        .unwrap()
        .is_empty());
    }

    #[test]
    fn ranges_leave_nulls_out() {
        let series = parse_range(&payload("graphite-1.1.8-captured-render-single.json")).unwrap();
        assert_eq!(
            series[0].points,
            [
                (1795809280.0, 120.5),
                (1795809290.0, 118.0),
                (1795809300.0, 131.25),
                (1795809320.0, 99.0)
            ]
        );
        let consolidated = parse_range(&payload(
            "graphite-1.1.8-captured-render-maxdatapoints.json",
        ))
        .unwrap();
        assert_eq!(
            consolidated[0].labels["target"],
            "sumSeries(lever.web.errors)"
        );
        assert_eq!(consolidated[0].points, [(1795809300.0, 1.5)]);
    }

    #[test]
    fn an_error_page_is_not_an_answer() {
        let text = payload("graphite-1.1.8-captured-render-error-400.txt");
        assert!(parse_instant(&text)
            .unwrap_err()
            .contains("not a Graphite render answer"));
    }

    #[test]
    fn urls_carry_the_target_as_one_parameter() {
        let url = range_url("http://g:8080/", "sumSeries(a.*,b&c)", 100.5, 200.5, 48);
        assert_eq!(url.path(), "/render");
        let q: std::collections::HashMap<_, _> = url.query_pairs().collect();
        assert_eq!(q["target"], "sumSeries(a.*,b&c)");
        assert_eq!(
            (&*q["from"], &*q["until"], &*q["maxDataPoints"]),
            ("100", "201", "48")
        );
        assert!(!instant_url("http://g", "x", 1000.0)
            .as_str()
            .contains("maxDataPoints"));
    }
}
