//! `!whoami`: how lever sees you — your mask, your services account, your roles. The first
//! thing to ask when lever refuses you something.

use super::{CommandError, Ctx, Example, Spec};
use crate::access::Role;

pub const SPEC: Spec = Spec {
    name: "whoami",
    aliases: &[],
    usage: "",
    help: "Shows how lever sees you: your nick!user@host, your services account, and your roles.",
    role: None,
    examples: &[Example {
        input: "!whoami",
        reply: r"alice: you are alice!~alice@10\.0\.0\.1, not logged in to services; roles: stage, deploy, hold, metrics, alerts, flags, admin \(no \[access\] section: everyone holds every role\)",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let who = &ctx.msg.who;
    let account = match &who.account {
        Some(account) => format!("logged in as {account}"),
        None => "not logged in to services".to_owned(),
    };
    let roles: Vec<&str> = Role::ALL
        .into_iter()
        .filter(|role| ctx.bot.access.allows(&ctx.msg, *role))
        .map(Role::name)
        .collect();
    let roles = if roles.is_empty() {
        "none".to_owned()
    } else {
        roles.join(", ")
    };
    let note = if ctx.msg.trusted {
        " (the console user holds every role)"
    } else if ctx.bot.access.is_open() {
        " (no [access] section: everyone holds every role)"
    } else {
        ""
    };
    ctx.tell(&format!(
        "you are {}, {account}; roles: {roles}{note}",
        who.source()
    ));
    Ok(())
}
