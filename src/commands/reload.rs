//! `!reload`: asks every plugin for its manifest again, as SIGHUP does.

use super::{CommandError, Ctx, Example, Spec};
use crate::access::Role;

pub const SPEC: Spec = Spec {
    name: "reload",
    aliases: &[],
    usage: "",
    help: "Rescans the plugins folder and asks every plugin for its commands again (as SIGHUP does); says what loaded and what was skipped.",
    role: Some(Role::Admin),
    examples: &[Example {
        input: "!reload",
        reply: r"plugins are off: the config has no \[plugins\] section",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let report = super::reload_plugins(&ctx.bot).await;
    ctx.reply(&report.to_string());
    Ok(())
}
