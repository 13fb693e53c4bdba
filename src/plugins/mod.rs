//! Plugins: commands in any language, from executables in the plugins folder (`[plugins] dir`)
//! or `[plugins.NAME] run` entries. The protocol is documented in `plugins/README.md`.
//!
//! At start, on `!reload` and on SIGHUP, lever asks each plugin for its manifest
//! (`PLUGIN --manifest`) and swaps in the commands of those whose manifest passes the checks;
//! a plugin that fails them is skipped with a log line, never taking lever down. A plugin
//! command cannot shadow a built-in one, or another plugin's. Plugins see a clean environment:
//! a few basics such as `PATH` and `HOME`, and only the variables their config names.
//!
//! - [`manifest`]: what a manifest says, and its checks
//! - [`run`]: running a plugin (process group, timeout, bounded output) and its reply protocol

pub mod manifest;
pub mod run;

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{Mutex, Semaphore, SemaphorePermit};

use crate::access::Role;
use crate::config::Config;

/// How long `--manifest` may take.
const MANIFEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines and bytes per line kept of a manifest.
const MANIFEST_LIMITS: (usize, usize) = (1000, 64 * 1024);
/// Plugin commands running at once; more wait their turn.
const AT_ONCE: usize = 4;
/// Variables of lever's environment every plugin sees; nothing else passes unless named.
const BASIC_ENV: &[&str] = &["PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR"];

/// One plugin: how to start it.
#[derive(Debug)]
pub struct Plugin {
    /// Its file name in the plugins folder, or its `[plugins.NAME]`.
    pub name: String,
    /// The program and its arguments (never a shell).
    pub argv: Vec<String>,
    /// Its whole environment.
    pub env: Vec<(String, String)>,
    /// Where it runs: the config's folder, so relative paths mean what they mean in the config.
    pub workdir: PathBuf,
}

/// A command a plugin provides.
#[derive(Debug)]
pub struct Command {
    pub name: String,
    pub usage: String,
    pub help: String,
    pub role: Option<Role>,
    pub timeout: Duration,
    pub plugin: Arc<Plugin>,
}

impl Command {
    /// `!name usage`, with the configured prefix.
    pub fn synopsis(&self, prefix: &str) -> String {
        crate::chat::text::synopsis(prefix, &self.name, &self.usage)
    }
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct Report {
    /// The folder scanned; `None` when plugins are off (no `[plugins]` section).
    pub dir: Option<PathBuf>,
    /// Plugins loaded, with their commands.
    pub loaded: Vec<(String, Vec<String>)>,
    /// Plugins skipped, and why.
    pub skipped: Vec<(String, String)>,
}

impl fmt::Display for Report {
    /// `plugins from /srv/lever/plugins: oncall (!oncall), runbook (!runbook); skipped: bad
    /// (its manifest is not …)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(dir) = &self.dir else {
            return f.write_str("plugins are off: the config has no [plugins] section");
        };
        let loaded: Vec<String> = self
            .loaded
            .iter()
            .map(|(plugin, commands)| format!("{plugin} ({})", commands.join(", ")))
            .collect();
        if loaded.is_empty() {
            write!(f, "no plugins loaded from {}", dir.display())?;
        } else {
            write!(f, "plugins from {}: {}", dir.display(), loaded.join(", "))?;
        }
        if !self.skipped.is_empty() {
            let skipped: Vec<String> = self
                .skipped
                .iter()
                .map(|(plugin, why)| format!("{plugin} ({why})"))
                .collect();
            write!(f, "; skipped: {}", skipped.join("; "))?;
        }
        Ok(())
    }
}

/// The plugin commands in force, swapped whole by a rescan.
pub struct Plugins {
    config: Arc<Config>,
    commands: RwLock<Arc<Vec<Arc<Command>>>>,
    /// One scan at a time: two `!reload`s must not interleave their swaps.
    scanning: Mutex<()>,
    running: Semaphore,
}

impl Plugins {
    /// No commands until the first [`Plugins::reload`].
    pub fn new(config: Arc<Config>) -> Self {
        Self {
            config,
            commands: RwLock::default(),
            scanning: Mutex::new(()),
            running: Semaphore::new(AT_ONCE),
        }
    }

    /// The plugin command called `name` (ignoring case).
    pub fn lookup(&self, name: &str) -> Option<Arc<Command>> {
        self.all()
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .cloned()
    }

    /// Every plugin command, in plugin order.
    pub fn all(&self) -> Arc<Vec<Arc<Command>>> {
        self.commands
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits for a free slot to run a plugin command in.
    pub async fn turn(&self) -> Option<SemaphorePermit<'_>> {
        self.running.acquire().await.ok()
    }

    /// Asks every plugin for its manifest again and puts the commands of those that pass in
    /// force; a command `builtin` names (it gives the built-in's own name) is refused. Each
    /// plugin loaded or skipped is logged.
    pub async fn reload(&self, builtin: fn(&str) -> Option<&'static str>) -> Report {
        let _scan = self.scanning.lock().await;
        let (report, commands) = scan(&self.config, builtin).await;
        *self.commands.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(commands);
        for (plugin, commands) in &report.loaded {
            tracing::info!(plugin, commands = commands.join(", "), "plugin loaded");
        }
        for (plugin, why) in &report.skipped {
            tracing::warn!(plugin, "plugin skipped: {why}");
        }
        report
    }
}

/// Finds the plugins, asks each for its manifest, and checks what they declare.
async fn scan(
    config: &Config,
    builtin: fn(&str) -> Option<&'static str>,
) -> (Report, Vec<Arc<Command>>) {
    let Some(settings) = &config.plugins else {
        return (Report::default(), Vec::new());
    };
    let dir = config.resolve(&settings.dir);
    let mut report = Report {
        dir: Some(dir.clone()),
        ..Report::default()
    };
    let mut found: Vec<(String, Vec<String>)> = files(&dir);
    for (name, plugin) in &settings.plugins {
        let at = found.iter().position(|(n, _)| n == name);
        match (&plugin.run, at) {
            _ if !plugin.enabled => {
                if let Some(at) = at {
                    found.remove(at);
                }
            }
            (Some(argv), Some(at)) => found[at].1 = argv.clone(),
            (Some(argv), None) => found.push((name.clone(), argv.clone())),
            (None, Some(_)) => {}
            (None, None) => report.skipped.push((
                name.clone(),
                format!(
                    "[plugins.{name}] has no run, and there is no executable file {name} in {}",
                    dir.display()
                ),
            )),
        }
    }
    let plugins: Vec<Arc<Plugin>> = found
        .into_iter()
        .map(|(name, argv)| {
            // vars_os: `vars` panics on a variable that is not UTF-8; such a one is left out.
            let lever = std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
            let env = environment(config, &name, lever);
            Arc::new(Plugin {
                name,
                argv,
                env,
                workdir: config.base_dir.clone(),
            })
        })
        .collect();
    let manifests =
        futures::future::join_all(plugins.iter().map(|plugin| manifest_of(plugin))).await;
    let mut commands: Vec<Arc<Command>> = Vec::new();
    for (plugin, manifest) in plugins.into_iter().zip(manifests) {
        match manifest.and_then(|declared| admit(&plugin, declared, &commands, builtin)) {
            Ok(mine) => {
                let names = mine.iter().map(|c| c.name.clone()).collect();
                report.loaded.push((plugin.name.clone(), names));
                commands.extend(mine);
            }
            Err(why) => report.skipped.push((plugin.name.clone(), why)),
        }
    }
    (report, commands)
}

/// The executable files in `dir`, by name, each with its argv (the file itself). A missing
/// folder is no plugins.
fn files(dir: &std::path::Path) -> Vec<(String, Vec<String>)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(dir = %dir.display(), "no plugins folder; no plugins from it");
            return Vec::new();
        }
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "cannot read the plugins folder: {}", crate::process::os_error(&e));
            return Vec::new();
        }
    };
    let mut found: Vec<(String, Vec<String>)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let path = entry.path();
            if name.starts_with('.') || name.ends_with('~') {
                return None;
            }
            if !run::is_executable(&path) {
                tracing::debug!(file = %path.display(), "not executable; not a plugin");
                return None;
            }
            Some((name, vec![path.to_string_lossy().into_owned()]))
        })
        .collect();
    found.sort();
    found
}

/// A plugin's environment: the basics from lever's (`lever`), the variables its config passes
/// by name, then those its config sets.
fn environment(
    config: &Config,
    name: &str,
    lever: impl Iterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let settings = config.plugins.as_ref().and_then(|p| p.plugins.get(name));
    let passed = settings.map(|s| s.pass_env.as_slice()).unwrap_or_default();
    let mut env: Vec<(String, String)> = Vec::new();
    let mut given: Vec<(String, String)> = Vec::new();
    for (var, value) in lever {
        if BASIC_ENV.contains(&var.as_str()) || var.starts_with("LC_") {
            env.push((var, value));
        } else if passed.contains(&var) {
            given.push((var, value));
        }
    }
    for var in passed {
        match given.iter().position(|(v, _)| v == var) {
            Some(at) => env.push(given.swap_remove(at)),
            None => tracing::warn!(
                plugin = name,
                var,
                "plugins.{name}.pass_env names a variable lever's environment does not have"
            ),
        }
    }
    for (var, value) in settings.iter().flat_map(|s| &s.env) {
        env.push((var.clone(), value.clone()));
    }
    env
}

/// Runs `PLUGIN --manifest` and parses what it prints.
async fn manifest_of(plugin: &Plugin) -> Result<Vec<manifest::Declared>, String> {
    match run::run(
        plugin,
        Some("--manifest"),
        b"",
        MANIFEST_TIMEOUT,
        MANIFEST_LIMITS,
    )
    .await
    {
        run::Ran::Succeeded { lines, more: 0 } => manifest::parse(&lines.join("\n")),
        run::Ran::Succeeded { .. } => Err(format!(
            "its manifest is longer than {} lines",
            MANIFEST_LIMITS.0
        )),
        run::Ran::Failed { status, stderr } => Err(format!(
            "--manifest failed: {status}{}",
            stderr
                .last()
                .map(|l| format!(": {}", crate::chat::text::truncate_chars(l, 200)))
                .unwrap_or_default()
        )),
        run::Ran::TimedOut => Err(format!(
            "--manifest did not answer within {} s",
            MANIFEST_TIMEOUT.as_secs()
        )),
        run::Ran::NotStarted(why) => Err(why),
    }
}

/// A plugin's commands, unless one would shadow a built-in command or another plugin's.
fn admit(
    plugin: &Arc<Plugin>,
    declared: Vec<manifest::Declared>,
    taken: &[Arc<Command>],
    builtin: fn(&str) -> Option<&'static str>,
) -> Result<Vec<Arc<Command>>, String> {
    for command in &declared {
        if let Some(name) = builtin(&command.name) {
            return Err(format!(
                "its command '{}' is the built-in !{name}; a plugin cannot replace it (rename the command)",
                command.name
            ));
        }
        if let Some(other) = taken.iter().find(|c| c.name == command.name) {
            return Err(format!(
                "its command '{}' is already plugin {}'s",
                command.name, other.plugin.name
            ));
        }
    }
    Ok(declared
        .into_iter()
        .map(|d| {
            Arc::new(Command {
                name: d.name,
                usage: d.usage,
                help: d.help,
                role: d.role,
                timeout: d.timeout,
                plugin: plugin.clone(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests;
