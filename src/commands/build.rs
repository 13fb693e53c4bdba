//! `!build <job> [KEY=value ...]`: starts a configured Jenkins job and follows it to its end.
//!
//! The build is queued while the command runs (so a refusal, bad credentials or an unreachable
//! Jenkins are answered at once); following it runs in a task of its own, counted as activity
//! so the piped console waits for it. Its start and end are published as [`Event::Build`] and
//! worded by the announcer like any CI result; what goes wrong on the way is told to the asker.

use tokio::time::Instant;

use super::{CommandError, Ctx, Example, Spec};
use crate::access::Role;
use crate::chat::message::Place;
use crate::chat::text::{sanitize_line, truncate_chars};
use crate::config::{JenkinsConfig, JenkinsJob};
use crate::events::{BuildReport, Event};
use crate::jenkins::follow::{follow, Update};
use crate::jenkins::{Client, Started};

pub const SPEC: Spec = Spec {
    name: "build",
    aliases: &[],
    usage: "<job> [KEY=value ...]",
    help: "Starts a configured Jenkins job with the parameters it allows, and announces its start and its result with duration and link.",
    role: Some(Role::Stage),
    examples: &[Example {
        input: "!build app BRANCH=main",
        reply: r"alice: no \[jenkins\] url is configured; add it to use !build",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

/// A queue wait Jenkins always imposes, not worth a line in the channel.
async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let Args { job: name, params } = parse(&ctx.args)?;
    let Some(config) = ctx.bot.config.jenkins.as_ref() else {
        return Err(CommandError::User(format!(
            "no [jenkins] url is configured; add it to use {}build",
            ctx.prefix()
        )));
    };
    let job = find_job(config, name)?;
    check_place(&ctx, name, job)?;
    check_params(name, job, &params).map_err(CommandError::User)?;
    let params: Vec<(String, String)> = params
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let name = name.to_owned();
    let client = Client::new(config);
    let deadline = Instant::now() + config.timeout;
    let queued = client.trigger(job, &name, &params).await.map_err(|e| {
        CommandError::User(if e.maybe_queued() {
            format!("build {name}: {e}")
        } else {
            format!("build {name} not started: {e}")
        })
    })?;
    tracing::info!(
        job = %name,
        user = %ctx.msg.who.source(),
        params = ?params.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        queue = %queued.item,
        "Jenkins build queued"
    );
    ctx.tell(&format!("building {name} (queued)"));
    let busy = ctx.bot.activity.begin();
    let timeout = config.timeout;
    tokio::spawn(async move {
        let _busy = busy;
        follow(
            &client,
            &name,
            &queued,
            deadline,
            timeout,
            |update| match update {
                Update::Tell(text) => ctx.tell(&text),
                Update::Started(build) => publish(&ctx, &name, build, "STARTED", None),
                Update::Finished(build, end) => {
                    publish(&ctx, &name, build, &end.result, end.duration_ms)
                }
            },
        )
        .await;
    });
    Ok(())
}

fn publish(ctx: &Ctx, name: &str, build: &Started, status: &str, duration_ms: Option<u64>) {
    ctx.bot.events.publish(Event::Build(BuildReport {
        job: name.to_owned(),
        number: Some(build.number),
        status: status.to_owned(),
        url: Some(build.link.clone()),
        duration_ms,
        user: Some(ctx.msg.who.nick.clone()),
        via: "!build".into(),
        channels: ctx
            .bot
            .config
            .jenkins
            .as_ref()
            .and_then(|j| j.jobs.get(name))
            .map(|job| job.channels.clone())
            .unwrap_or_default(),
    }));
}

/// `!build`'s words: the job's name as typed, and the parameters.
#[derive(Debug, PartialEq, Eq)]
struct Args<'a> {
    job: &'a str,
    params: Vec<(&'a str, &'a str)>,
}

/// `<job> [KEY=value ...]`, checked for shape: each parameter `KEY=value` with a non-empty
/// key, no value with control characters, no key twice, at most the allowed number.
fn parse(args: &str) -> Result<Args<'_>, CommandError> {
    let mut words = args.split_whitespace();
    let name = words.next().ok_or(CommandError::Usage)?;
    let mut params: Vec<(&str, &str)> = Vec::new();
    for word in words {
        let Some((key, value)) = word.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(CommandError::User(format!(
                "'{}' is not a parameter: write KEY=value",
                truncate_chars(&sanitize_line(word), 40)
            )));
        };
        let key_shown = truncate_chars(&sanitize_line(key), 40).into_owned();
        if key.contains(char::is_control) || value.contains(char::is_control) {
            return Err(CommandError::User(format!(
                "the parameter {key_shown} holds control characters"
            )));
        }
        if params.iter().any(|(k, _)| *k == key) {
            return Err(CommandError::User(format!(
                "the parameter {key_shown} is given twice"
            )));
        }
        params.push((key, value));
        if params.len() > JenkinsJob::MAX_PARAMS {
            return Err(CommandError::User(format!(
                "at most {} parameters",
                JenkinsJob::MAX_PARAMS
            )));
        }
    }
    Ok(Args { job: name, params })
}

fn find_job<'a>(config: &'a JenkinsConfig, name: &str) -> Result<&'a JenkinsJob, CommandError> {
    config.jobs.get(name).ok_or_else(|| {
        CommandError::User(if config.jobs.is_empty() {
            "no jobs are configured: add [jenkins.jobs.NAME] to the config".into()
        } else {
            let names: Vec<&str> = config.jobs.keys().map(String::as_str).collect();
            format!(
                "no job '{}'; jobs: {}",
                truncate_chars(&sanitize_line(name), 32),
                names.join(", ")
            )
        })
    })
}

/// A job with `channels` may be built only from those.
fn check_place(ctx: &Ctx, name: &str, job: &JenkinsJob) -> Result<(), CommandError> {
    if job.channels.is_empty() {
        return Ok(());
    }
    let allowed = match &ctx.msg.place {
        Place::Channel(here) => job.channels.iter().any(|c| ctx.msg.casemap.eq(c, here)),
        Place::Private => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(CommandError::User(format!(
            "{name} may be built only from {}",
            job.channels.join(", ")
        )))
    }
}

/// Every parameter must be one the job lists.
fn check_params(name: &str, job: &JenkinsJob, params: &[(&str, &str)]) -> Result<(), String> {
    for (key, _) in params {
        if !job.params.iter().any(|p| p == key) {
            let shown = truncate_chars(&sanitize_line(key), 40).into_owned();
            return Err(if job.params.is_empty() {
                format!("{name} takes no parameters (not {shown})")
            } else {
                format!(
                    "{name} takes no parameter {shown}; it takes {}",
                    job.params.join(", ")
                )
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::{bot, message, run};

    fn words(args: &str) -> Result<Args<'_>, String> {
        parse(args).map_err(|e| match e {
            CommandError::User(text) => text,
            CommandError::Usage => "usage".into(),
            CommandError::Internal(e) => e.to_string(),
        })
    }

    #[test]
    fn arguments_are_a_job_and_key_value_pairs() {
        let args = |job, params| Ok(Args { job, params });
        assert_eq!(words("app"), args("app", vec![]));
        assert_eq!(
            words("app  BRANCH=main NOTE=a=b EMPTY="),
            args(
                "app",
                vec![("BRANCH", "main"), ("NOTE", "a=b"), ("EMPTY", "")]
            )
        );
        assert_eq!(words(""), Err("usage".into()));
        assert_eq!(
            words("app main"),
            Err("'main' is not a parameter: write KEY=value".into())
        );
        assert_eq!(
            words("app =x"),
            Err("'=x' is not a parameter: write KEY=value".into())
        );
        assert_eq!(
            words("app A=1 A=2"),
            Err("the parameter A is given twice".into())
        );
        assert_eq!(
            words("app A=\x01x"),
            Err("the parameter A holds control characters".into())
        );
        let many: Vec<String> = (0..21).map(|i| format!("P{i}=v")).collect();
        assert_eq!(
            words(&format!("app {}", many.join(" "))).map(|a| a.params.len()),
            Err("at most 20 parameters".into())
        );
        let twenty = many[..20].join(" ");
        assert_eq!(
            words(&format!("app {twenty}")).map(|a| a.params.len()),
            Ok(20)
        );
    }

    const JENKINS: &str = "[jenkins]\nurl = \"http://127.0.0.1:9/\"\n\
        [jenkins.jobs.app]\nparams = [\"BRANCH\"]\n\
        [jenkins.jobs.plain]\n\
        [jenkins.jobs.ops-only]\nchannels = [\"#ops\"]\n";

    #[tokio::test]
    async fn refusals_come_before_any_request() {
        // The url's port 9 (discard) would fail loudly if anything reached it.
        let bot = bot(JENKINS);
        let chan = |t: &str| message(t, Place::Channel("#ops".into()));
        assert_eq!(
            run(&bot, chan("!build nosuch")).await,
            ["alice: no job 'nosuch'; jobs: app, plain, ops-only"]
        );
        assert_eq!(
            run(&bot, chan("!build app FOO=1")).await,
            ["alice: app takes no parameter FOO; it takes BRANCH"]
        );
        assert_eq!(
            run(&bot, chan("!build plain BRANCH=main")).await,
            ["alice: plain takes no parameters (not BRANCH)"]
        );
        assert_eq!(
            run(&bot, message("build ops-only", Place::Private)).await,
            ["ops-only may be built only from #ops"]
        );
        assert_eq!(
            run(&bot, chan("!build")).await,
            ["alice: usage: !build <job> [KEY=value ...]"]
        );
    }
}
