//! Notifications shaped like Alertmanager 0.25's (`testdata/payloads/alertmanager-0.25-captured-*.json`):
//! one storm of `STORM_ALERTS` alerts, as 100 groups of 100 or as 10,000 one-alert groups,
//! written out as ready-to-send POSTs.

use serde_json::{json, Map, Value};

use crate::{GROUPS, PER_GROUP, STORM_ALERTS, TOKEN};

/// One ready-to-write POST and how many alerts it carries.
pub struct Request {
    pub bytes: Vec<u8>,
    pub alerts: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// 100 groups by alertname, 100 alerts each: one notification per group.
    Grouped,
    /// `group_by: ['...']`: every alert its own group, 10,000 notifications of one alert.
    Single,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Grouped => "100 groups x 100 alerts",
            Shape::Single => "10,000 groups x 1 alert",
        }
    }
}

const NAMES: &[&str] = &[
    "HostDiskFull",
    "HighErrorRate",
    "NodeDown",
    "HighLatency",
    "TargetMissing",
];

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub fn alertname(seed: u64, group: usize) -> String {
    let name = NAMES[group % NAMES.len()];
    if seed == 0 {
        format!("{name}{group:03}")
    } else {
        format!("{name}{group:03}s{seed}")
    }
}

fn strings(pairs: &[(&str, String)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(v.as_str())))
        .collect()
}

/// One alert: labels, annotations (the summary names its instance, so a group of them has no
/// common summary and gets per-alert lines), times, fingerprint.
fn alert(seed: u64, group: usize, i: usize) -> (Map<String, Value>, Map<String, Value>, Value) {
    let name = alertname(seed, group);
    let instance = format!("node-{group:03}-{i:03}.dc1.example:9100");
    let severity = if group % 10 == 0 {
        "critical"
    } else {
        "warning"
    };
    let labels = strings(&[
        ("alertname", name.clone()),
        ("instance", instance.clone()),
        ("job", "node".into()),
        ("service", "fleet".into()),
        ("severity", severity.into()),
    ]);
    let annotations = strings(&[
        (
            "summary",
            format!("{name} on {instance}: {}% for 5m", 90 + i % 10),
        ),
        ("runbook_url", format!("https://runbooks.example/{name}")),
    ]);
    let fingerprint = format!(
        "{:016x}",
        splitmix((seed << 40) ^ ((group as u64) << 20) ^ i as u64)
    );
    let value = json!({
        "status": "firing",
        "labels": labels,
        "annotations": annotations,
        "startsAt": "2026-11-27T19:43:02.318455079Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": format!("http://prometheus.example:9090/graph?g0.expr=up%7Bgroup%3D%22{group}%22%7D&g0.tab=1"),
        "fingerprint": fingerprint,
    });
    (labels, annotations, value)
}

/// The labels/annotations every map in `maps` shares (what Alertmanager puts in `common*`).
fn common(maps: &[Map<String, Value>]) -> Map<String, Value> {
    let mut out = maps[0].clone();
    for m in &maps[1..] {
        out.retain(|k, v| m.get(k) == Some(v));
    }
    out
}

fn notification(seed: u64, group: usize, alerts: &[usize], group_by_all: bool) -> Value {
    let built: Vec<_> = alerts.iter().map(|&i| alert(seed, group, i)).collect();
    let labels: Vec<_> = built.iter().map(|b| b.0.clone()).collect();
    let annotations: Vec<_> = built.iter().map(|b| b.1.clone()).collect();
    let common_labels = common(&labels);
    let group_labels: Map<String, Value> = if group_by_all {
        common_labels.clone()
    } else {
        common_labels
            .iter()
            .filter(|(k, _)| *k == "alertname")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let key = group_labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    json!({
        "receiver": "lever",
        "status": "firing",
        "alerts": built.into_iter().map(|b| b.2).collect::<Vec<_>>(),
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": common(&annotations),
        "externalURL": "http://alertmanager.example:9093",
        "version": "4",
        "groupKey": format!("{{}}:{{{key}}}"),
        "truncatedAlerts": 0,
    })
}

fn post(port: u16, body: &Value, alerts: usize) -> Request {
    let body = serde_json::to_vec(body).expect("json");
    let mut bytes = format!(
        "POST /hooks/alertmanager HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: Alertmanager/0.25.0\r\n\
         Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(&body);
    Request { bytes, alerts }
}

/// The notifications of one storm: `STORM_ALERTS` alerts with fingerprints from `seed`.
pub fn storm(port: u16, shape: Shape, seed: u64) -> Vec<Request> {
    let all: Vec<usize> = (0..PER_GROUP).collect();
    let mut out = Vec::new();
    match shape {
        Shape::Grouped => {
            for g in 0..GROUPS {
                out.push(post(port, &notification(seed, g, &all, false), PER_GROUP));
            }
        }
        Shape::Single => {
            // Interleaved as a storm arrives: every group's first instance, then the second, ...
            for i in 0..PER_GROUP {
                for g in 0..GROUPS {
                    out.push(post(port, &notification(seed, g, &[i], true), 1));
                }
            }
        }
    }
    assert_eq!(
        out.iter().map(|r| r.alerts).sum::<usize>(),
        STORM_ALERTS,
        "storm size"
    );
    out
}
