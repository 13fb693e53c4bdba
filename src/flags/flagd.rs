//! The flags as a flagd flag definition file (https://flagd.dev/schema/v0/flags.json), so flagd
//! and in-process OpenFeature providers read the same flags: served at `/flags/flagd.json`
//! and written to `[flags] file`.
//!
//! A flag serving one variant to everyone has no targeting (`defaultVariant` is that variant).
//! A beta list is an `if` on `targetingKey in [...]`; a rollout is flagd's `fractional`
//! shorthand (which buckets `[flag key, targeting key]`, as [`super::eval`] does); then
//! `defaultVariant` is the flag's default, what flagd serves when targeting cannot decide. A
//! disabled flag is `"state": "DISABLED"`.

use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use super::{FlagDef, Snapshot};

/// The whole file, as pretty JSON.
pub fn export(defs: &IndexMap<String, FlagDef>, snapshot: &Snapshot) -> String {
    let mut flags = Map::new();
    for (key, def) in defs {
        let Some(state) = snapshot.states.get(key) else {
            continue;
        };
        let treated = def.treatment(state);
        let split = state.rollout.map(|percent| {
            let fractions: Vec<Value> = [(treated, percent), (def.default.as_str(), 100 - percent)]
                .into_iter()
                .filter(|(_, weight)| *weight > 0)
                .map(|(variant, weight)| json!([variant, weight]))
                .collect();
            json!({ "fractional": fractions })
        });
        let targeting = match (state.beta.is_empty(), split) {
            (true, None) => None,
            (true, Some(split)) => Some(split),
            (false, rest) => Some(json!({ "if": [
                { "in": [{ "var": "targetingKey" }, state.beta] },
                treated,
                rest.unwrap_or_else(|| json!(state.variant)),
            ]})),
        };
        let mut flag = Map::new();
        flag.insert(
            "state".into(),
            json!(if state.enabled { "ENABLED" } else { "DISABLED" }),
        );
        flag.insert("variants".into(), json!(def.variants));
        let default = match targeting {
            None => &state.variant,
            Some(_) => &def.default,
        };
        flag.insert("defaultVariant".into(), json!(default));
        if let Some(targeting) = targeting {
            flag.insert("targeting".into(), targeting);
        }
        flag.insert(
            "metadata".into(),
            json!({ "version": state.version, "contingency": def.contingency }),
        );
        flags.insert(key.clone(), Value::Object(flag));
    }
    let file = json!({
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "flags": flags,
        "metadata": { "generation": snapshot.generation },
    });
    serde_json::to_string_pretty(&file).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FlagConfig, FlagDefault};
    use crate::store::flags::FlagState;

    #[test]
    fn a_rollout_with_a_beta_list_is_an_if_around_flagds_fractional() {
        let def = FlagDef::new(
            "video",
            &FlagConfig {
                description: String::new(),
                default: FlagDefault::On(false),
                variants: Default::default(),
                contingency: true,
            },
        );
        let state = FlagState {
            rollout: Some(10),
            beta: vec!["alice".into()],
            variant: "on".into(),
            version: 3,
            ..def.initial()
        };
        let defs = IndexMap::from([("video".to_owned(), def)]);
        let snapshot = Snapshot {
            generation: 3,
            states: IndexMap::from([("video".to_owned(), state)]),
            etag: String::new(),
        };
        let file: Value = serde_json::from_str(&export(&defs, &snapshot)).unwrap();
        assert_eq!(
            file["flags"]["video"],
            json!({
                "state": "ENABLED",
                "variants": { "on": true, "off": false },
                "defaultVariant": "off",
                "targeting": { "if": [
                    { "in": [{ "var": "targetingKey" }, ["alice"]] },
                    "on",
                    { "fractional": [["on", 10], ["off", 90]] },
                ]},
                "metadata": { "version": 3, "contingency": true },
            })
        );
    }
}
