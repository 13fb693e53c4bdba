//! Turns a target's configured steps into runnable [`StepSpec`]s: placeholders filled, paths
//! resolved, environment assembled. Pure, so what a run will execute can be checked without
//! running it.

use std::path::{Path, PathBuf};

use crate::config::{BackendKind, Config, StepConfig, TargetConfig};
use crate::deploy::backend::StepSpec;
use crate::store::Phase;

/// What a run's steps may refer to.
#[derive(Debug, Clone)]
pub struct RunContext<'a> {
    pub target: &'a str,
    pub phase: Phase,
    /// The nick of whoever started the run.
    pub user: &'a str,
    pub run_id: i64,
    /// The version being built, shipped or rolled back to.
    pub version: Option<&'a str>,
    /// The version live before this run.
    pub prev_version: Option<&'a str>,
}

/// What a run executes: local steps, a Jenkins job, or a request to an HTTP deploy engine.
#[derive(Debug, Clone)]
pub enum Work {
    Steps(Vec<StepSpec>),
    Jenkins(JenkinsWork),
    Http(HttpWork),
}

/// A Jenkins job to run for a phase, with the `LEVER_*` values the job declares.
#[derive(Debug, Clone)]
pub struct JenkinsWork {
    /// The `[jenkins.jobs]` entry.
    pub job: String,
    pub params: Vec<(String, String)>,
    pub timeout: std::time::Duration,
}

/// A run for an HTTP deploy engine.
#[derive(Debug, Clone)]
pub struct HttpWork {
    pub url: String,
    pub token: Option<String>,
    /// The JSON POSTed: target, phase, user, run_id, version, prev_version.
    pub body: serde_json::Value,
    pub timeout: std::time::Duration,
}

/// Whether `target` can run `phase` at all.
pub fn supports(target: &TargetConfig, phase: Phase) -> bool {
    match target.backend {
        BackendKind::Script => !configured(target, phase).is_empty(),
        BackendKind::Jenkins => target.jobs.contains_key(phase.as_str()),
        BackendKind::Http => true,
    }
}

/// Whether a deploy ships what a stage built, so a deploy needs a stage first. An HTTP deploy
/// engine builds what it ships itself.
pub fn stages_first(target: &TargetConfig) -> bool {
    target.backend != BackendKind::Http && supports(target, Phase::Stage)
}

/// How many steps a run will have, when lever can know it in advance (0: the engine says).
pub fn planned_steps(target: &TargetConfig, phase: Phase) -> usize {
    match target.backend {
        BackendKind::Script => configured(target, phase).len(),
        BackendKind::Jenkins => 1,
        BackendKind::Http => 0,
    }
}

/// What a run of `target` executes.
pub fn work(config: &Config, target: &TargetConfig, run: &RunContext<'_>) -> Work {
    let values = lever_values(run);
    match target.backend {
        BackendKind::Script => Work::Steps(steps(config, target, run)),
        BackendKind::Jenkins => {
            let job = target
                .jobs
                .get(run.phase.as_str())
                .cloned()
                .unwrap_or_default();
            let declared = config
                .jenkins
                .as_ref()
                .and_then(|j| j.jobs.get(&job))
                .map(|j| j.params.clone())
                .unwrap_or_default();
            let params = values
                .into_iter()
                .filter(|(k, _)| declared.contains(k))
                .collect();
            Work::Jenkins(JenkinsWork {
                job,
                params,
                timeout: target.timeout,
            })
        }
        BackendKind::Http => Work::Http(HttpWork {
            url: target.url.clone().unwrap_or_default(),
            token: target.token.as_ref().map(|t| t.expose().to_owned()),
            body: serde_json::json!({
                "target": run.target,
                "phase": run.phase.as_str(),
                "user": run.user,
                "run_id": run.run_id,
                "version": run.version,
                "prev_version": run.prev_version,
            }),
            timeout: target.timeout,
        }),
    }
}

/// `LEVER_TARGET`, `LEVER_USER`, `LEVER_RUN_ID`, `LEVER_PHASE` and, where known,
/// `LEVER_VERSION` and `LEVER_PREV_VERSION`.
fn lever_values(run: &RunContext<'_>) -> Vec<(String, String)> {
    let mut values = vec![
        ("LEVER_TARGET".to_owned(), run.target.to_owned()),
        ("LEVER_USER".to_owned(), run.user.to_owned()),
        ("LEVER_RUN_ID".to_owned(), run.run_id.to_string()),
        ("LEVER_PHASE".to_owned(), run.phase.as_str().to_owned()),
    ];
    if let Some(version) = run.version {
        values.push(("LEVER_VERSION".into(), version.into()));
    }
    if let Some(prev) = run.prev_version {
        values.push(("LEVER_PREV_VERSION".into(), prev.into()));
    }
    values
}

/// The configured steps of `target` for `phase`.
pub fn configured(target: &TargetConfig, phase: Phase) -> &[StepConfig] {
    match phase {
        Phase::Stage => &target.stage,
        Phase::Deploy => &target.deploy,
        Phase::Rollback => &target.rollback,
    }
}

/// The folder a target's steps run in.
pub fn target_workdir(config: &Config, target: &TargetConfig) -> PathBuf {
    match &target.workdir {
        Some(dir) => config.resolve(dir),
        None => config.base_dir.clone(),
    }
}

/// The steps to run, ready to execute.
pub fn steps(config: &Config, target: &TargetConfig, run: &RunContext<'_>) -> Vec<StepSpec> {
    let target_dir = target_workdir(config, target);
    configured(target, run.phase)
        .iter()
        .map(|step| {
            let workdir = match &step.workdir {
                Some(dir) if dir.is_absolute() => dir.clone(),
                Some(dir) => target_dir.join(dir),
                None => target_dir.clone(),
            };
            let mut argv: Vec<String> = step.run.iter().map(|arg| fill(arg, run)).collect();
            argv[0] = program_path(&argv[0], &workdir);
            StepSpec {
                name: step.name.clone(),
                argv,
                env: environment(target, step, run),
                workdir,
                timeout: step.timeout,
            }
        })
        .collect()
}

/// Replaces `{target}`, `{user}`, `{run}` and `{version}` in one argument. The values become
/// (parts of) single arguments; nothing is ever split or interpreted by a shell.
pub fn fill(arg: &str, run: &RunContext<'_>) -> String {
    arg.replace("{target}", run.target)
        .replace("{user}", run.user)
        .replace("{run}", &run.run_id.to_string())
        .replace("{version}", run.version.unwrap_or(""))
}

/// A relative program path with a `/` (`./steps/sync.sh`) is taken from the step's folder; a
/// bare name (`rsync`) is looked up on `PATH` as usual.
fn program_path(program: &str, workdir: &Path) -> String {
    let path = Path::new(program);
    if program.contains('/') && path.is_relative() {
        workdir.join(path).to_string_lossy().into_owned()
    } else {
        program.to_owned()
    }
}

fn environment(
    target: &TargetConfig,
    step: &StepConfig,
    run: &RunContext<'_>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = target
        .env
        .iter()
        .chain(&step.env)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.extend(lever_values(run));
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
        [irc]
        server = "h"
        [targets.site]
        env = { COLO = "mud" }
        [[targets.site.stage]]
        name = "exporting svn"
        run = ["./steps/export.sh", "{target}", "--by={user}", "run-{run}"]
        [[targets.site.deploy]]
        name = "syncing"
        run = ["rsync", "-a", "{version}", "dest/"]
        workdir = "deploy"
        timeout = "2m"
        env = { MODE = "live" }
    "#;

    fn config() -> Config {
        Config::from_toml(CONFIG, "t", PathBuf::from("/etc/lever")).unwrap()
    }

    fn context(phase: Phase) -> RunContext<'static> {
        RunContext {
            target: "site",
            phase,
            user: "mygrant",
            run_id: 42,
            version: Some("abc123"),
            prev_version: Some("9f8e7d"),
        }
    }

    #[test]
    fn placeholders_fill_single_arguments_and_paths_resolve_against_the_config_folder() {
        let cfg = config();
        let steps = steps(&cfg, &cfg.targets["site"], &context(Phase::Stage));
        assert_eq!(steps.len(), 1);
        assert_eq!(
            steps[0].argv,
            [
                "/etc/lever/./steps/export.sh",
                "site",
                "--by=mygrant",
                "run-42"
            ]
        );
        assert_eq!(steps[0].workdir, Path::new("/etc/lever"));
        assert_eq!(steps[0].timeout, std::time::Duration::from_secs(600));
    }

    #[test]
    fn a_bare_program_stays_on_path_and_the_step_workdir_nests() {
        let cfg = config();
        let steps = steps(&cfg, &cfg.targets["site"], &context(Phase::Deploy));
        assert_eq!(steps[0].argv, ["rsync", "-a", "abc123", "dest/"]);
        assert_eq!(steps[0].workdir, Path::new("/etc/lever/deploy"));
        let env: std::collections::HashMap<_, _> = steps[0].env.iter().cloned().collect();
        assert_eq!(env["COLO"], "mud");
        assert_eq!(env["MODE"], "live");
        assert_eq!(env["LEVER_TARGET"], "site");
        assert_eq!(env["LEVER_USER"], "mygrant");
        assert_eq!(env["LEVER_RUN_ID"], "42");
        assert_eq!(env["LEVER_PHASE"], "deploy");
        assert_eq!(env["LEVER_VERSION"], "abc123");
        assert_eq!(env["LEVER_PREV_VERSION"], "9f8e7d");
    }

    #[test]
    fn hostile_values_stay_inside_their_argument() {
        let run = RunContext {
            user: "$(rm -rf ~); `id` && echo",
            ..context(Phase::Stage)
        };
        assert_eq!(fill("--by={user}", &run), "--by=$(rm -rf ~); `id` && echo");
    }
}
