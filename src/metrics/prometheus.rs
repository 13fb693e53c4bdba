//! Prometheus' HTTP API: `/api/v1/query` and `/api/v1/query_range` URLs, and their answers
//! read into samples and series. Pure: no I/O.

use serde::Deserialize;
use serde_json::Value;

use super::{parse_value, Labels, Sample, Series};

/// `{status, data: {resultType, result}, errorType, error}`
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: Value,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    metric: Labels,
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    values: Option<Vec<(f64, String)>>,
}

fn endpoint(base: &str, path: &str, params: &[(&str, String)]) -> reqwest::Url {
    let base = format!("{}/api/v1/{path}", base.trim_end_matches('/'));
    reqwest::Url::parse_with_params(&base, params).expect("source URLs are checked at load")
}

pub fn instant_url(base: &str, expr: &str) -> reqwest::Url {
    endpoint(base, "query", &[("query", expr.to_owned())])
}

/// A range query with a point every `step` seconds (at least one), laid so the last point
/// falls on `until`: Prometheus evaluates at `start + k × step`, and a grid ending short of
/// `until` would miss the newest data.
pub fn range_url(base: &str, expr: &str, from: f64, until: f64, step: f64) -> reqwest::Url {
    let step = step.max(1.0).ceil();
    let start = until - ((until - from) / step).floor() * step;
    endpoint(
        base,
        "query_range",
        &[
            ("query", expr.to_owned()),
            ("start", format!("{start:.3}")),
            ("end", format!("{until:.3}")),
            ("step", format!("{step}")),
        ],
    )
}

/// The error text of an error answer: `bad_data: parse error …`.
pub fn error_message(body: &str) -> Option<String> {
    let envelope: Envelope = serde_json::from_str(body).ok()?;
    let error = envelope.error?;
    Some(match envelope.error_type {
        Some(kind) => format!("{kind}: {error}"),
        None => error,
    })
}

fn data(body: &str) -> Result<Data, String> {
    let envelope: Envelope =
        serde_json::from_str(body).map_err(|e| format!("not a Prometheus API answer ({e})"))?;
    if envelope.status != "success" {
        return Err(error_message(body).unwrap_or_else(|| format!("status {}", envelope.status)));
    }
    envelope
        .data
        .ok_or_else(|| "the answer has no data".to_owned())
}

fn items(result: Value) -> Result<Vec<Item>, String> {
    serde_json::from_value(result).map_err(|e| format!("unexpected result shape ({e})"))
}

fn value(text: &str) -> Result<f64, String> {
    parse_value(text).ok_or_else(|| format!("'{text}' is not a number"))
}

/// Current values: a vector's samples, a scalar, or a matrix's last points.
pub fn parse_instant(body: &str) -> Result<Vec<Sample>, String> {
    let data = data(body)?;
    match data.result_type.as_str() {
        "scalar" => {
            let (_, text): (f64, String) = serde_json::from_value(data.result)
                .map_err(|e| format!("unexpected scalar ({e})"))?;
            Ok(vec![Sample {
                labels: Labels::new(),
                value: value(&text)?,
            }])
        }
        "vector" => items(data.result)?
            .into_iter()
            .map(|item| {
                let (_, text) = item.value.ok_or("a vector sample has no value")?;
                Ok(Sample {
                    labels: item.metric,
                    value: value(&text)?,
                })
            })
            .collect(),
        "matrix" => Ok(parse_matrix(data.result)?
            .into_iter()
            .filter_map(|series| {
                let (_, last) = *series.points.last()?;
                Some(Sample {
                    labels: series.labels,
                    value: last,
                })
            })
            .collect()),
        other => Err(format!("the query returned a {other}, not numbers")),
    }
}

fn parse_matrix(result: Value) -> Result<Vec<Series>, String> {
    items(result)?
        .into_iter()
        .map(|item| {
            let points = item
                .values
                .unwrap_or_default()
                .into_iter()
                .map(|(t, text)| Ok((t, value(&text)?)))
                .collect::<Result<Vec<_>, String>>()?;
            Ok(Series {
                labels: item.metric,
                points,
            })
        })
        .collect()
}

/// A range query's series.
pub fn parse_range(body: &str) -> Result<Vec<Series>, String> {
    let data = data(body)?;
    match data.result_type.as_str() {
        "matrix" => parse_matrix(data.result),
        other => Err(format!("a range query returned a {other}, not series")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(name: &str) -> String {
        let path = format!("{}/testdata/payloads/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // The .txt captures end with the status line curl printed.
        text.lines()
            .filter(|l| !l.starts_with("HTTP "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_vector_gives_each_series_with_its_labels() {
        let samples = parse_instant(&payload("prometheus-2.42-query-vector.json")).unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].labels["code"], "200");
        assert_eq!(samples[0].value, 1027.0);
        assert_eq!(samples[1].value, 3.0);
        let docs = parse_instant(&payload("prometheus-docs-query-vector.json")).unwrap();
        assert_eq!(docs[1].labels["job"], "node");
        assert_eq!(docs[1].value, 0.0);
    }

    #[test]
    fn scalars_infinities_and_empty_results() {
        let scalar = parse_instant(&payload("prometheus-2.42-query-scalar.json")).unwrap();
        assert_eq!(
            scalar,
            [Sample {
                labels: Labels::new(),
                value: 7.0
            }]
        );
        let inf = parse_instant(&payload("prometheus-2.42-query-scalar-inf.json")).unwrap();
        assert_eq!(inf[0].value, f64::INFINITY);
        assert!(parse_instant(&payload("prometheus-2.42-query-empty.json"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn ranges_give_points_in_order() {
        let series = parse_range(&payload("prometheus-2.42-query_range-matrix.json")).unwrap();
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].points.first(), Some(&(1795808703.0, 42.0)));
        assert_eq!(series[0].points.last(), Some(&(1795808709.0, 7.0)));
        let docs = parse_range(&payload("prometheus-docs-query_range-matrix.json")).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].points.len(), 3);
    }

    #[test]
    fn errors_keep_prometheus_words() {
        assert_eq!(
            error_message(&payload("prometheus-2.42-query-error-400.txt")).unwrap(),
            "bad_data: invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"
        );
        assert!(error_message(&payload(
            "prometheus-2.42-query_range-error-400-resolution.txt"
        ))
        .unwrap()
        .contains("exceeded maximum resolution of 11,000 points"));
        assert!(parse_instant("<html>")
            .unwrap_err()
            .contains("not a Prometheus API answer"));
        assert!(parse_instant(
            r#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#
        )
        .unwrap_err()
        .contains("returned a string"));
    }

    #[test]
    fn urls_carry_the_expression_as_one_parameter() {
        let url = instant_url("http://p:9090/", "sum(rate(x{a=\"b&c\"}[5m]))");
        assert_eq!(url.path(), "/api/v1/query");
        let pairs: Vec<_> = url.query_pairs().collect();
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].1, "sum(rate(x{a=\"b&c\"}[5m]))");
        let range = range_url("http://p:9090", "up", 1000.0, 4600.0, 75.0);
        let q: std::collections::HashMap<_, _> = range.query_pairs().collect();
        assert_eq!(q["step"], "75");
        assert_eq!(q["start"], "1000.000");
        // 300 s in steps of 7 s: 42 of them back from the end.
        let uneven = range_url("http://p:9090", "up", 1000.0, 1300.0, 6.5);
        let q: std::collections::HashMap<_, _> = uneven.query_pairs().collect();
        assert_eq!(
            (&*q["step"], &*q["start"], &*q["end"]),
            ("7", "1006.000", "1300.000")
        );
    }
}
