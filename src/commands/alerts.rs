//! `!alerts`: what is firing now, from Alertmanager.

use std::collections::BTreeMap;

use super::args::Words;
use super::{CommandError, Ctx, Example, Spec};
use crate::alerts::client::Client;
use crate::chat::text::{sanitize_line, truncate_chars};

/// Alert names listed before "and N more".
const MAX_LINES: usize = 5;

pub const SPEC: Spec = Spec {
    name: "alerts",
    aliases: &[],
    usage: "",
    help: "Lists what is firing in Alertmanager now (not silenced or inhibited), by alert name.",
    role: None,
    examples: &[Example {
        input: "!alerts",
        reply: r"alice: no \[alertmanager\] url is configured; add it to use !alerts, !ack and !silence",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    Words::new(&ctx.args).end()?;
    let client = client(&ctx)?;
    let firing = client
        .firing()
        .await
        .map_err(|e| CommandError::User(e.to_string()))?;
    if firing.is_empty() {
        ctx.reply("nothing is firing");
        return Ok(());
    }
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for alert in &firing {
        let name = alert
            .labels
            .get("alertname")
            .cloned()
            .unwrap_or_else(|| "alert".into());
        let instance = crate::alerts::webhook::instance_of(&alert.labels).unwrap_or_default();
        by_name.entry(name).or_default().push(instance);
    }
    let mut lines = vec![format!("{} firing:", firing.len())];
    for (name, instances) in by_name.iter().take(MAX_LINES) {
        let shown: Vec<&str> = instances
            .iter()
            .filter(|i| !i.is_empty())
            .take(5)
            .map(String::as_str)
            .collect();
        let mut line = format!(
            "{} ×{}",
            truncate_chars(&sanitize_line(name), 60),
            instances.len()
        );
        if !shown.is_empty() {
            line.push_str(&format!(
                " — {}",
                truncate_chars(&sanitize_line(&shown.join(", ")), 200)
            ));
        }
        lines.push(line);
    }
    if by_name.len() > MAX_LINES {
        lines.push(format!(
            "… and {} more alert names",
            by_name.len() - MAX_LINES
        ));
    }
    ctx.reply(&lines.join("\n"));
    Ok(())
}

/// The Alertmanager client, or a clear word that none is configured.
pub fn client(ctx: &Ctx) -> Result<Client, CommandError> {
    match &ctx.bot.config.alertmanager {
        Some(config) => Ok(Client::new(config)),
        None => Err(CommandError::User(format!(
            "no [alertmanager] url is configured; add it to use {p}alerts, {p}ack and {p}silence",
            p = ctx.prefix()
        ))),
    }
}
