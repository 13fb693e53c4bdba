//! Turns a target's configured steps into runnable [`StepSpec`]s: placeholders filled, paths
//! resolved, environment assembled. Pure, so what a run will execute can be checked without
//! running it.

use std::path::{Path, PathBuf};

use crate::backend::StepSpec;
use crate::config::{Config, StepConfig, TargetConfig};
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
    env.push(("LEVER_TARGET".into(), run.target.into()));
    env.push(("LEVER_USER".into(), run.user.into()));
    env.push(("LEVER_RUN_ID".into(), run.run_id.to_string()));
    env.push(("LEVER_PHASE".into(), run.phase.as_str().into()));
    if let Some(version) = run.version {
        env.push(("LEVER_VERSION".into(), version.into()));
    }
    if let Some(prev) = run.prev_version {
        env.push(("LEVER_PREV_VERSION".into(), prev.into()));
    }
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
