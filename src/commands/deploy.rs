//! `!deploy [target] [force] [emergency <reason>]`: pushes the staged build live, unless a hold
//! or the target's deploy windows say no.

use super::args::{Known, Words};
use super::{CommandError, Ctx, Example, Spec};
use crate::access::Role;
use crate::chat::text::clean_line;
use crate::deploy::DeployStart;

pub const SPEC: Spec = Spec {
    name: "deploy",
    aliases: &["ship"],
    usage: "[target] [force] [emergency <reason>]",
    help: "Deploys the staged build of a target. Refused while a hold covers it, except for the person who placed the hold (admins may add 'force' to pass anyone's hold, logged loudly), and outside the target's deploy windows unless it is an emergency, said with its reason (logged EMERGENCY).",
    role: Some(Role::Deploy),
    examples: &[Example {
        input: "!deploy",
        reply: r"alice: site has not been staged yet: !stage site first",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let request = parse(&ctx.args, &ctx.known())?;
    if request.force {
        ctx.check_force()?;
    }
    let target = &request.target;
    let started = ctx.bot.deploys.deploy(
        target,
        &ctx.msg.who,
        request.force,
        request.emergency.as_deref(),
    )?;
    match started {
        DeployStart::Started(_) => ctx.ack_if_unheard(target, &format!("deploying {target}")),
        DeployStart::NeedsConfirm { summary, .. } => ctx.tell(&summary),
    }
    Ok(())
}

/// What `!deploy` was asked.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    target: String,
    force: bool,
    /// Why it cannot wait for a deploy window.
    emergency: Option<String>,
}

/// `[target] [force] [emergency <reason>]`.
fn parse(args: &str, known: &Known) -> Result<Request, CommandError> {
    let mut words = Words::new(args);
    let named = words.next_if(|w| w != "force" && w != "emergency");
    let force = words.next_if(|w| w == "force").is_some();
    let emergency = match words.next_if(|w| w == "emergency") {
        None => {
            words.end()?;
            None
        }
        Some(_) => {
            let reason = clean_line(words.rest(), 200);
            if reason.is_empty() {
                return Err(CommandError::User(
                    "say why it cannot wait: !deploy [target] emergency <reason>".into(),
                ));
            }
            Some(reason)
        }
    };
    Ok(Request {
        target: known.target(named)?,
        force,
        emergency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::args::tests::known;

    #[test]
    fn a_deploy_names_a_target_force_and_an_emergency_with_its_reason() {
        let parsed = |args| parse(args, &known()).unwrap();
        assert_eq!(
            parsed(""),
            Request {
                target: "site".into(),
                force: false,
                emergency: None
            }
        );
        assert_eq!(
            parsed("api force emergency payments down"),
            Request {
                target: "api".into(),
                force: true,
                emergency: Some("payments down".into())
            }
        );
        assert_eq!(parsed("emergency fix").emergency.as_deref(), Some("fix"));
        assert!(parse("site emergency", &known()).is_err());
        assert!(parse("site tomorrow", &known()).is_err());
    }
}
