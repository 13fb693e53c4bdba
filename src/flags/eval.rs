//! One flag evaluated for one evaluation context: pure, so every rule is tested without a
//! server, and shared by OFREP and `!flag NAME`.
//!
//! In order: a disabled flag gives its default (DISABLED); a targeting key on the beta list
//! gets the flag (TARGETING_MATCH); with a rollout, a stable share of targeting keys gets the
//! flag and the rest its default (SPLIT); otherwise everyone gets the variant served (STATIC).
//! "The flag" is the variant served, or `on` for an on/off flag.
//!
//! Rollout buckets are flagd's `fractional` ones, so the flagd export gives the same answers:
//! MurmurHash3 (x86, 32-bit, seed 0) of the canonical CBOR array `[flag key, targeting key]`,
//! times 100, shifted right 32 bits, is the bucket (0–99); below the percentage gets the flag.

use super::FlagDef;
use crate::store::flags::FlagState;

/// Why a flag evaluated as it did, in OpenFeature's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Static,
    TargetingMatch,
    Split,
    Disabled,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Disabled => "DISABLED",
        }
    }
}

/// A flag's answer: the variant's name, its value, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation<'a> {
    pub variant: &'a str,
    pub value: &'a serde_json::Value,
    pub reason: Reason,
}

/// A rollout cannot place a context without a targeting key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetingKeyMissing;

/// Evaluates `def` in `state` for `targeting_key`.
pub fn evaluate<'a>(
    def: &'a FlagDef,
    state: &'a FlagState,
    targeting_key: Option<&str>,
) -> Result<Evaluation<'a>, TargetingKeyMissing> {
    let answer = |variant: &'a str, reason| Evaluation {
        variant,
        value: def.value(variant),
        reason,
    };
    if !state.enabled {
        return Ok(answer(&def.default, Reason::Disabled));
    }
    let treated = def.treatment(state);
    let key = targeting_key.filter(|k| !k.is_empty());
    if key.is_some_and(|k| state.beta.iter().any(|b| b == k)) {
        return Ok(answer(treated, Reason::TargetingMatch));
    }
    match state.rollout {
        None => Ok(answer(&state.variant, Reason::Static)),
        Some(percent) => {
            let key = key.ok_or(TargetingKeyMissing)?;
            let variant = if bucket(&def.key, key) < u32::from(percent) {
                treated
            } else {
                &def.default
            };
            Ok(answer(variant, Reason::Split))
        }
    }
}

/// The bucket (0–99) `targeting_key` falls in for `flag_key`, as flagd's `fractional` places it.
pub fn bucket(flag_key: &str, targeting_key: &str) -> u32 {
    let mut cbor = Vec::with_capacity(flag_key.len() + targeting_key.len() + 11);
    cbor.push(0x82); // an array of two
    cbor_text(&mut cbor, flag_key);
    cbor_text(&mut cbor, targeting_key);
    let hash = mur3::murmurhash3_x86_32(&cbor, 0);
    ((u64::from(hash) * 100) >> 32) as u32
}

/// A CBOR text string (major type 3) with its shortest length header.
fn cbor_text(out: &mut Vec<u8>, text: &str) {
    let len = text.len();
    match len {
        0..=23 => out.push(0x60 | len as u8),
        24..=0xff => out.extend([0x78, len as u8]),
        0x100..=0xffff => {
            out.push(0x79);
            out.extend((len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x7a);
            out.extend((len as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FlagConfig, FlagDefault};

    fn video() -> FlagDef {
        FlagDef::new(
            "video",
            &FlagConfig {
                description: String::new(),
                default: FlagDefault::On(false),
                variants: Default::default(),
                contingency: true,
            },
        )
    }

    fn state(variant: &str) -> FlagState {
        FlagState {
            key: "video".into(),
            variant: variant.into(),
            enabled: true,
            rollout: None,
            beta: Vec::new(),
            version: 1,
            changed_by: "mygrant".into(),
            changed_at: 0,
            reason: String::new(),
        }
    }

    #[test]
    fn disabled_beta_rollout_then_everyone() {
        let def = video();
        let on = state("on");
        let answer = |s: &FlagState, key: Option<&str>| {
            evaluate(&def, s, key).map(|e| (e.variant.to_owned(), e.value.clone(), e.reason))
        };
        assert_eq!(
            answer(&on, None),
            Ok(("on".into(), serde_json::json!(true), Reason::Static))
        );
        let disabled = FlagState {
            enabled: false,
            ..on.clone()
        };
        assert_eq!(
            answer(&disabled, Some("alice")).unwrap().2,
            Reason::Disabled
        );
        assert_eq!(answer(&disabled, Some("alice")).unwrap().0, "off");
        let beta = FlagState {
            beta: vec!["alice".into()],
            ..state("off")
        };
        assert_eq!(
            answer(&beta, Some("alice")).unwrap().0,
            "on",
            "beta gets the flag"
        );
        assert_eq!(answer(&beta, Some("bob")).unwrap().0, "off");
        let rollout = FlagState {
            rollout: Some(30),
            ..on
        };
        assert_eq!(answer(&rollout, None), Err(TargetingKeyMissing));
        let share = (0..1000)
            .filter(|i| answer(&rollout, Some(&format!("user-{i}"))).unwrap().0 == "on")
            .count();
        assert!((250..350).contains(&share), "about 30%: {share}");
        for i in 0..50 {
            let key = format!("user-{i}");
            assert_eq!(
                answer(&rollout, Some(&key)),
                answer(&rollout, Some(&key)),
                "stable"
            );
        }
    }

    #[test]
    fn buckets_are_flagds_cbor_murmur3_buckets() {
        // [ "video", "alice" ] in canonical CBOR.
        let mut cbor = vec![0x82];
        cbor_text(&mut cbor, "video");
        cbor_text(&mut cbor, "alice");
        assert_eq!(cbor, b"\x82\x65video\x65alice");
        let mut long = Vec::new();
        cbor_text(&mut long, &"x".repeat(300));
        assert_eq!(&long[..3], &[0x79, 0x01, 0x2c]);
        assert!(bucket("video", "alice") < 100);
    }
}
