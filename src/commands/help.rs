//! `!help [command]`: generated from the command list and the plugins' commands, filtered by
//! what the asker may use.

use super::args::Words;
use super::{lookup, CommandError, Ctx, Example, Spec, COMMANDS};
use crate::access::Role;

pub const SPEC: Spec = Spec {
    name: "help",
    aliases: &["commands"],
    usage: "[command]",
    help: "Lists the commands you may use, or explains one.",
    role: None,
    examples: &[
        Example {
            input: "!help",
            reply: r"commands you can use: .*\bping\b.*; !help <command> explains one",
        },
        Example {
            input: "!help ping",
            reply: r"!ping — Checks that lever is alive; it answers pong\. Example: !ping",
        },
        Example {
            input: "!help nosuch",
            reply: r"alice: no command 'nosuch'; !help lists them",
        },
    ],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let prefix = ctx.prefix();
    // `!help deploy` and `!help !deploy` alike; words after the first are ignored.
    let wanted = Words::new(&ctx.args)
        .next()
        .map(|w| w.trim_start_matches(prefix));
    let plugins = ctx.bot.plugins.all();
    let Some(wanted) = wanted else {
        let names: Vec<&str> = COMMANDS
            .iter()
            .filter(|spec| may_use(&ctx, spec.role))
            .map(|spec| spec.name)
            .chain(
                plugins
                    .iter()
                    .filter(|c| may_use(&ctx, c.role))
                    .map(|c| c.name.as_str()),
            )
            .collect();
        ctx.reply(&format!(
            "commands you can use: {}; {prefix}help <command> explains one",
            names.join(", ")
        ));
        return Ok(());
    };
    let Some(spec) = lookup(wanted) else {
        let Some(command) = ctx.bot.plugins.lookup(wanted) else {
            return Err(CommandError::User(format!(
                "no command '{}'; {prefix}help lists them",
                crate::chat::text::truncate_chars(wanted, 30)
            )));
        };
        let mut text = format!("{} — {}", command.synopsis(prefix), command.help);
        push_role(&ctx, &mut text, command.role);
        text.push_str(&format!(" (plugin {})", command.plugin.name));
        ctx.reply(&text);
        return Ok(());
    };
    let mut text = format!("{} — {}", spec.synopsis(prefix), spec.help);
    if !spec.aliases.is_empty() {
        let aliases: Vec<String> = spec
            .aliases
            .iter()
            .map(|a| format!("{prefix}{a}"))
            .collect();
        text.push_str(&format!(" Also: {}.", aliases.join(", ")));
    }
    push_role(&ctx, &mut text, spec.role);
    if let Some(example) = spec.examples.first() {
        // Examples are written with "!"; show them with the configured prefix.
        let input = example.input.strip_prefix('!').unwrap_or(example.input);
        text.push_str(&format!(" Example: {prefix}{input}"));
    }
    ctx.reply(&text);
    Ok(())
}

/// " Needs the deploy role." (", which you do not have." when the asker lacks it).
fn push_role(ctx: &Ctx, text: &mut String, role: Option<Role>) {
    if let Some(role) = role {
        text.push_str(&format!(" Needs the {role} role"));
        text.push_str(if may_use(ctx, Some(role)) {
            "."
        } else {
            ", which you do not have."
        });
    }
}

fn may_use(ctx: &Ctx, role: Option<Role>) -> bool {
    role.is_none_or(|role| ctx.bot.access.allows(&ctx.msg, role))
}
