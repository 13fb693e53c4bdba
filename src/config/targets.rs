//! `[store]`, `[deploy]` and `[targets.NAME]`: where the deploy log lives, and what `!stage`,
//! `!deploy` and `!rollback` run for each target.

use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

use super::{duration, Invalid, Secret, WatchRule};

/// `[store]`: where the deploy log, holds and runs are kept: a SQLite file (the default), or
/// a PostgreSQL database, which outlives the host lever runs on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The SQLite file; created if missing. Default: "lever.db" beside the config file.
    /// Not used when `url` is set.
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
    /// A PostgreSQL database instead of the file: "postgres://lever@db.internal/lever". lever
    /// creates its tables on first use.
    #[serde(default)]
    pub url: Option<String>,
    /// The database password when the URL has none; best from `LEVER_STORE__PASSWORD`.
    #[serde(default)]
    pub password: Option<Secret>,
    /// With `url`: how long the active lever's lease lasts; it renews it every third of this,
    /// and a standby takes over within about this long of the active's loss. Default: "15s".
    #[serde(default = "default_lease", with = "duration")]
    pub lease: Duration,
    /// With `url`: this lever's name among those sharing the database, as the channel hears
    /// it ("lever is back (on host-b, took over from host-a)"). Default: the host name.
    #[serde(default)]
    pub node: Option<String>,
    /// How long a store operation may wait for a lock another process holds on the file
    /// before it fails with a clear answer. Default: 2s.
    #[serde(default = "default_lock_wait", with = "duration")]
    pub lock_wait: std::time::Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: default_store_path(),
            url: None,
            password: None,
            lease: default_lease(),
            node: None,
            lock_wait: default_lock_wait(),
        }
    }
}

impl StoreConfig {
    /// This lever's name among levers sharing the store: `node`, else the host name.
    pub fn node_name(&self) -> String {
        self.node.clone().unwrap_or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "lever".to_owned())
        })
    }

    /// Checks that `url`, when set, is a PostgreSQL URL.
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        // The lease matters only to levers sharing a PostgreSQL store.
        let shared = self.url.is_some();
        if shared && (self.lease < Duration::from_secs(3) || self.lease > Duration::from_secs(600))
        {
            return Err(Invalid::new("store.lease", "must be between 3s and 10m"));
        }
        if shared && self.lease < self.lock_wait * 2 {
            return Err(Invalid::new(
                "store.lease",
                "must be at least twice store.lock_wait, so a renewal that waits still ends in time",
            ));
        }
        if let Some(node) = &self.node {
            if node.is_empty() || node.len() > 64 || !super::is_word(node) {
                return Err(Invalid::new(
                    "store.node",
                    "must be one word of at most 64 characters",
                ));
            }
        }
        let Some(url) = &self.url else {
            return Ok(());
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(Invalid::new(
                "store.url",
                "must be a PostgreSQL URL such as postgres://lever@db.internal/lever (for a file, set store.path instead)",
            ));
        }
        url.parse::<tokio_postgres::Config>()
            .map_err(|e| Invalid::new("store.url", format!("is not a PostgreSQL URL ({e})")))?;
        Ok(())
    }
}

fn default_lease() -> Duration {
    Duration::from_secs(15)
}

fn default_lock_wait() -> std::time::Duration {
    crate::store::DEFAULT_LOCK_WAIT
}

fn default_store_path() -> PathBuf {
    "lever.db".into()
}

/// `[deploy]`: settings shared by every target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployConfig {
    /// A hold without a duration is recalled in the channel this often ("site held by mygrant
    /// for 3 h: db migration"); "0s" turns reminders off. Default: "1h".
    #[serde(default = "default_hold_reminder", with = "duration")]
    pub hold_reminder: Duration,
    /// How long a `!deploy` of a `confirm = true` target waits for `!confirm`. Default: "5m".
    #[serde(default = "default_confirm_within", with = "duration")]
    pub confirm_within: Duration,
}

impl Default for DeployConfig {
    fn default() -> Self {
        Self {
            hold_reminder: default_hold_reminder(),
            confirm_within: default_confirm_within(),
        }
    }
}

fn default_hold_reminder() -> Duration {
    Duration::from_secs(3600)
}
fn default_confirm_within() -> Duration {
    Duration::from_secs(300)
}

/// How much of a run is said in the channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Announce {
    /// One line when a run starts and one when it ends (`!status` has the detail).
    #[default]
    Summary,
    /// Also a line per step, like Flickr's `exporting svn.....ok (3202 ms)`.
    Steps,
}

/// `[targets.NAME]`: something lever stages and deploys. The first target is the default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Channels that hear about this target. Default: every channel in `irc.channels`.
    #[serde(default)]
    pub channels: Vec<String>,
    /// "summary" (default) or "steps".
    #[serde(default)]
    pub announce: Announce,
    /// `!deploy` shows what will ship and waits for `!confirm <code>` from the same person.
    #[serde(default)]
    pub confirm: bool,
    /// A command (argv) printing the version of a fresh stage; run after the stage steps.
    #[serde(default)]
    pub version: Option<Vec<String>>,
    /// A link to what a deploy ships, with `{from}` and `{to}` versions:
    /// `"https://git.example/compare/{from}...{to}"`.
    #[serde(default)]
    pub changes_url: Option<String>,
    /// Where steps run. Default: the config file's folder.
    #[serde(default)]
    pub workdir: Option<PathBuf>,
    /// Environment for every step of this target.
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// `!stage` runs these, in order.
    #[serde(default)]
    pub stage: Vec<StepConfig>,
    /// `!deploy` runs these, in order.
    #[serde(default)]
    pub deploy: Vec<StepConfig>,
    /// `!rollback` runs these, with the previous good version in `LEVER_VERSION`.
    #[serde(default)]
    pub rollback: Vec<StepConfig>,
    /// What runs the phases: "script" (the steps above, the default), "jenkins" (a job per
    /// phase, `jobs`), or "http" (a deploy engine at `url`).
    #[serde(default)]
    pub backend: BackendKind,
    /// With `backend = "jenkins"`: the `[jenkins.jobs]` entry each phase runs:
    /// `{ stage = "api-build", deploy = "api-deploy" }`.
    #[serde(default)]
    pub jobs: IndexMap<String, String>,
    /// With `backend = "http"`: where runs are POSTed (see the README's deploy engine section).
    #[serde(default)]
    pub url: Option<String>,
    /// With `backend = "http"`: a bearer token for the engine; better set with
    /// `LEVER_TARGETS__NAME__TOKEN`.
    #[serde(default)]
    pub token: Option<Secret>,
    /// With `backend = "jenkins"` or `"http"`: how long a run may take before lever stops
    /// following it (and asks the engine to stop). Default: "1h".
    #[serde(default = "default_remote_timeout", with = "duration")]
    pub timeout: Duration,
    /// Health rules checked after each deploy: `[{ metric = "errors", max_ratio = 2.0,
    /// for = "10m" }]` (see `[metrics]`).
    #[serde(default)]
    pub watch: Vec<WatchRule>,
    /// When `!deploy` may run: `["Mon-Thu 09:00-16:00", "Fri 09:00-12:00"]` in `timezone`;
    /// outside them only `!deploy NAME emergency <reason>`. Default: any time.
    #[serde(default)]
    pub windows: Vec<String>,
    /// The time zone of `windows` and `freezes`: "Europe/Berlin". Default: UTC.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Dated freezes: `[[targets.NAME.freezes]] from = "2026-12-20", until = "2027-01-04",
    /// reason = "holidays"` (both days included).
    #[serde(default)]
    pub freezes: Vec<super::FreezeConfig>,
}

impl TargetConfig {
    /// When the target may be deployed (checked at load, so this cannot fail then).
    pub fn schedule(&self) -> super::Schedule {
        super::Schedule::parse(&self.windows, self.timezone.as_deref(), &self.freezes)
            .unwrap_or_else(|_| {
                super::Schedule::parse(&[], None, &[]).expect("an empty schedule parses")
            })
    }
}

/// What executes a target's phases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Local steps: argv child processes.
    #[default]
    Script,
    /// A Jenkins job per phase.
    Jenkins,
    /// An HTTP deploy engine.
    Http,
}

fn default_remote_timeout() -> Duration {
    Duration::from_secs(3600)
}

/// The phases a target can run, by name.
pub const PHASES: [&str; 3] = ["stage", "deploy", "rollback"];

/// `[[targets.NAME.stage]]` (and `.deploy`, `.rollback`): one step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// What the step is called in the channel: "exporting svn".
    pub name: String,
    /// The program and its arguments: an argv, never a shell string. `{target}`, `{user}`,
    /// `{run}` and `{version}` are replaced.
    pub run: Vec<String>,
    /// The step is killed (its whole process group) after this long. Default: "10m".
    #[serde(default = "default_step_timeout", with = "duration")]
    pub timeout: Duration,
    /// Environment for this step.
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// Where it runs. Default: the target's workdir.
    #[serde(default)]
    pub workdir: Option<PathBuf>,
}

fn default_step_timeout() -> Duration {
    Duration::from_secs(600)
}

/// Words that cannot name a target, because commands read them as something else.
const RESERVED: &[&str] = &["force", "all", "every", "emergency"];

impl TargetConfig {
    /// Checks the target called `name`: its name, backend, steps and environment; its
    /// channels must be `irc_channels`.
    pub(super) fn validate(&self, name: &str, irc_channels: &[String]) -> Result<(), Invalid> {
        let key = |rest: &str| format!("targets.{name}{rest}");
        if name.is_empty()
            || name.len() > 32
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            || !name.starts_with(|c: char| c.is_ascii_lowercase())
        {
            return Err(Invalid::new(
            key(""),
            "a target name is 1 to 32 lowercase letters, digits, '-' or '_', starting with a letter",
        ));
        }
        if RESERVED.contains(&name) || humantime::parse_duration(name).is_ok() {
            return Err(Invalid::new(
                key(""),
                format!("'{name}' reads as a command word; pick another name"),
            ));
        }
        super::Schedule::parse(&self.windows, self.timezone.as_deref(), &self.freezes)
            .map_err(|(field, why)| Invalid::new(key(&format!(".{field}")), why))?;
        for (i, channel) in self.channels.iter().enumerate() {
            if !irc_channels.contains(channel) {
                return Err(Invalid::new(
                    key(&format!(".channels[{i}]")),
                    format!("'{channel}' is not one of irc.channels"),
                ));
            }
        }
        let has_steps =
            !(self.stage.is_empty() && self.deploy.is_empty() && self.rollback.is_empty());
        match self.backend {
            BackendKind::Script => {
                if self.stage.is_empty() && self.deploy.is_empty() {
                    return Err(Invalid::new(
                        key(""),
                        "has no stage or deploy steps: add [[targets.NAME.deploy]] steps",
                    ));
                }
                if !self.jobs.is_empty() || self.url.is_some() {
                    return Err(Invalid::new(
                        key(".backend"),
                        "jobs and url need backend = \"jenkins\" or \"http\"",
                    ));
                }
            }
            BackendKind::Jenkins => {
                if has_steps {
                    return Err(Invalid::new(key(".backend"), "a jenkins target runs jobs, not steps: remove its steps or use backend = \"script\""));
                }
                if self.jobs.is_empty() {
                    return Err(Invalid::new(
                        key(".jobs"),
                        "names no job: jobs = { deploy = \"<a [jenkins.jobs] name>\" }",
                    ));
                }
                if let Some(phase) = self.jobs.keys().find(|p| !PHASES.contains(&p.as_str())) {
                    return Err(Invalid::new(
                        key(&format!(".jobs.{phase}")),
                        "is not a phase: stage, deploy or rollback",
                    ));
                }
            }
            BackendKind::Http => {
                if has_steps {
                    return Err(Invalid::new(key(".backend"), "an http target's engine runs the steps: remove its steps or use backend = \"script\""));
                }
                match &self.url {
                    Some(url) if url.starts_with("http://") || url.starts_with("https://") => {}
                    Some(_) => {
                        return Err(Invalid::new(
                            key(".url"),
                            "must be an http:// or https:// URL",
                        ))
                    }
                    None => {
                        return Err(Invalid::new(
                            key(".url"),
                            "missing: backend = \"http\" needs the engine's url",
                        ))
                    }
                }
            }
        }
        if self.timeout < Duration::from_secs(1) {
            return Err(Invalid::new(key(".timeout"), "must be at least 1s"));
        }
        if let Some(version) = &self.version {
            if version.first().is_none_or(|p| p.trim().is_empty()) {
                return Err(Invalid::new(key(".version"), "must be an argv with a program, e.g. [\"git\", \"rev-parse\", \"--short\", \"HEAD\"]"));
            }
        }
        check_env(&self.env).map_err(|why| Invalid::new(key(".env"), why))?;
        for (phase, steps) in [
            ("stage", &self.stage),
            ("deploy", &self.deploy),
            ("rollback", &self.rollback),
        ] {
            for (i, step) in steps.iter().enumerate() {
                let key = key(&format!(".{phase}[{i}]"));
                if step.name.trim().is_empty() || step.name.chars().any(char::is_control) {
                    return Err(Invalid::new(
                        format!("{key}.name"),
                        "must be a short text without control characters",
                    ));
                }
                if step.run.first().is_none_or(|p| p.trim().is_empty()) {
                    return Err(Invalid::new(
                    format!("{key}.run"),
                    "must be an argv with a program: run = [\"./steps/sync.sh\", \"{target}\"] (never a shell string)",
                ));
                }
                if step.timeout < Duration::from_secs(1) {
                    return Err(Invalid::new(
                        format!("{key}.timeout"),
                        "must be at least 1s",
                    ));
                }
                check_env(&step.env).map_err(|why| Invalid::new(format!("{key}.env"), why))?;
            }
        }
        Ok(())
    }
}

fn check_env(env: &IndexMap<String, String>) -> Result<(), String> {
    for name in env.keys() {
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!("'{name}' is not a valid environment variable name"));
        }
        if name.starts_with("LEVER_") {
            return Err(format!(
                "'{name}': LEVER_* variables are set by lever itself"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(text: &str) -> TargetConfig {
        toml::from_str(text).expect("a [targets.NAME] section")
    }

    #[test]
    fn a_target_checks_its_name_channels_and_steps() {
        let steps = "[[deploy]]\nname = \"d\"\nrun = [\"true\"]\n";
        let channels = ["#ops".to_owned()];
        assert_eq!(target(steps).validate("site", &channels), Ok(()));
        assert_eq!(
            target(steps).validate("Site", &channels),
            Err(Invalid::new(
                "targets.Site",
                "a target name is 1 to 32 lowercase letters, digits, '-' or '_', starting with a letter"
            ))
        );
        assert_eq!(
            target(&format!("channels = [\"#web\"]\n{steps}")).validate("site", &channels),
            Err(Invalid::new(
                "targets.site.channels[0]",
                "'#web' is not one of irc.channels"
            ))
        );
        assert_eq!(
            target("").validate("site", &channels),
            Err(Invalid::new(
                "targets.site",
                "has no stage or deploy steps: add [[targets.NAME.deploy]] steps"
            ))
        );
    }

    #[test]
    fn a_store_url_is_a_postgresql_url() {
        let store = |url: &str| StoreConfig {
            url: Some(url.into()),
            ..StoreConfig::default()
        };
        assert_eq!(StoreConfig::default().validate(), Ok(()));
        assert_eq!(
            store("postgres://lever@db.internal/lever").validate(),
            Ok(())
        );
        assert_eq!(
            store("/var/lib/lever.db").validate(),
            Err(Invalid::new(
                "store.url",
                "must be a PostgreSQL URL such as postgres://lever@db.internal/lever (for a file, set store.path instead)"
            ))
        );
        let bad = store("postgres://lever@db:notaport/lever")
            .validate()
            .unwrap_err();
        assert_eq!(bad.key, "store.url");
        assert!(
            bad.message.starts_with("is not a PostgreSQL URL ("),
            "{}",
            bad.message
        );
    }

    #[test]
    fn a_lease_fits_between_its_bounds_and_twice_the_lock_wait() {
        let shared = |lease: u64, node: Option<&str>| StoreConfig {
            url: Some("postgres://lever@db/lever".into()),
            lease: Duration::from_secs(lease),
            node: node.map(str::to_owned),
            ..StoreConfig::default()
        };
        assert_eq!(shared(15, Some("host-a")).validate(), Ok(()));
        assert_eq!(
            shared(2, None).validate(),
            Err(Invalid::new("store.lease", "must be between 3s and 10m"))
        );
        assert_eq!(
            shared(3, None).validate(),
            Err(Invalid::new(
                "store.lease",
                "must be at least twice store.lock_wait, so a renewal that waits still ends in time"
            ))
        );
        assert_eq!(
            shared(15, Some("host a")).validate(),
            Err(Invalid::new(
                "store.node",
                "must be one word of at most 64 characters"
            ))
        );
        // Without a url the lease is not used, so not checked.
        let file = StoreConfig {
            lease: Duration::from_secs(1),
            ..StoreConfig::default()
        };
        assert_eq!(file.validate(), Ok(()));
    }
}
