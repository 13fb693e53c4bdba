//! `[jenkins]`: where `!build` reaches Jenkins, and `[jenkins.jobs.NAME]`, the only jobs it may
//! start (no job name typed in chat reaches Jenkins unless it is configured here).

use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

use super::{duration, Invalid, Secret};

/// `[jenkins]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JenkinsConfig {
    /// Jenkins' root URL: "https://ci.example.com/" (a context path such as "/jenkins/" is
    /// kept). Required.
    pub url: String,
    /// The Jenkins user whose API token lever uses (HTTP Basic). Without user and token lever
    /// calls Jenkins anonymously.
    #[serde(default)]
    pub user: Option<String>,
    /// That user's API token (not the password: API-token requests need no CSRF crumb).
    /// Better set with `LEVER_JENKINS__TOKEN`.
    #[serde(default)]
    pub token: Option<Secret>,
    /// How often lever asks Jenkins about a queued or running build. Default: "5s".
    #[serde(default = "default_poll_interval", with = "duration")]
    pub poll_interval: Duration,
    /// How long a build may take, queue included, before lever stops following it (the build
    /// itself is left alone). Default: "2h".
    #[serde(default = "default_timeout", with = "duration")]
    pub timeout: Duration,
    /// The jobs `!build` may start, by the name used in chat.
    #[serde(default)]
    pub jobs: IndexMap<String, JenkinsJob>,
}

/// `[jenkins.jobs.NAME]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JenkinsJob {
    /// The job's path in Jenkins; folders with `/`: "team/app" is `/job/team/job/app/`.
    /// Default: the NAME.
    #[serde(default)]
    pub job: Option<String>,
    /// The parameter names that may be given in chat (`!build NAME KEY=value`); anything else
    /// is refused. With any, lever triggers `buildWithParameters` (Jenkins fills in the
    /// defaults of those not given); without, `build`.
    #[serde(default)]
    pub params: Vec<String>,
    /// The channels where `!build NAME` may be used. Default: all of `irc.channels`.
    #[serde(default)]
    pub channels: Vec<String>,
}

impl JenkinsJob {
    /// Most parameters a job may declare (and `!build` accept).
    pub const MAX_PARAMS: usize = 20;

    /// The job's path in Jenkins for the job named `name` in chat: its segments, in order.
    pub fn path<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.job.as_deref().unwrap_or(name).split('/')
    }
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(5)
}

fn default_timeout() -> Duration {
    Duration::from_secs(2 * 3600)
}

impl JenkinsConfig {
    /// Checks URL, credentials, intervals and every job (whose channels must be `channels`).
    pub(super) fn validate(&self, channels: &[String]) -> Result<(), Invalid> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| {
            Invalid::new("jenkins.url", format!("'{}' is not a URL ({e})", self.url))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Invalid::new(
                "jenkins.url",
                "must be an http:// or https:// URL",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Invalid::new(
                "jenkins.url",
                "must not carry credentials: put the user in [jenkins] user and the token in \
                 LEVER_JENKINS__TOKEN",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Invalid::new(
                "jenkins.url",
                "must be Jenkins' root URL, without ? or #",
            ));
        }
        match (&self.user, &self.token) {
            (Some(_), None) => {
                return Err(Invalid::new(
                    "jenkins.token",
                    "missing: user is set (set LEVER_JENKINS__TOKEN to the user's API token)",
                ))
            }
            (None, Some(_)) => {
                return Err(Invalid::new("jenkins.user", "missing: token is set"));
            }
            (Some(user), Some(token)) => {
                if user.is_empty() || user.contains(|c: char| c == ':' || c.is_control()) {
                    return Err(Invalid::new(
                        "jenkins.user",
                        "must be a user name without ':' or control characters",
                    ));
                }
                if token.expose().is_empty() {
                    return Err(Invalid::new(
                        "jenkins.token",
                        "is empty (set LEVER_JENKINS__TOKEN to the user's API token)",
                    ));
                }
                if token.expose().contains(char::is_control) {
                    return Err(Invalid::new(
                        "jenkins.token",
                        "must be an API token without control characters",
                    ));
                }
            }
            (None, None) => {}
        }
        if self.poll_interval < Duration::from_millis(100) {
            return Err(Invalid::new(
                "jenkins.poll_interval",
                "must be at least 100ms",
            ));
        }
        if self.timeout < self.poll_interval {
            return Err(Invalid::new(
                "jenkins.timeout",
                "must be at least jenkins.poll_interval",
            ));
        }
        for (name, job) in &self.jobs {
            job.validate(name, channels)?;
        }
        Ok(())
    }
}

impl JenkinsJob {
    /// Checks the job named `name` in chat: its path, parameters and channels.
    fn validate(&self, name: &str, channels: &[String]) -> Result<(), Invalid> {
        let key = |field: &str| format!("jenkins.jobs.{name}{field}");
        if name.is_empty()
            || name.contains(|c: char| c.is_whitespace() || c.is_control() || c == '=')
        {
            return Err(Invalid::new(
                key(""),
                "a job name must be one word, without '='",
            ));
        }
        for segment in self.path(name) {
            if segment.is_empty()
                || segment == "."
                || segment == ".."
                || segment.contains(char::is_control)
            {
                let path = self.job.as_deref().unwrap_or(name);
                let (field, whose) = if self.job.is_some() {
                    (".job", "")
                } else {
                    ("", " (the job path defaults to the name)")
                };
                return Err(Invalid::new(
                    key(field),
                    format!("'{path}' is not a job path like \"app\" or \"team/app\"{whose}"),
                ));
            }
        }
        if self.params.len() > JenkinsJob::MAX_PARAMS {
            return Err(Invalid::new(
                key(".params"),
                format!("at most {} parameters", JenkinsJob::MAX_PARAMS),
            ));
        }
        for (i, param) in self.params.iter().enumerate() {
            if param.is_empty()
                || param.contains(|c: char| c.is_whitespace() || c.is_control() || c == '=')
            {
                return Err(Invalid::new(
                    key(&format!(".params[{i}]")),
                    format!("'{param}' is not a parameter name (one word, without '=')"),
                ));
            }
            if self.params[..i].contains(param) {
                return Err(Invalid::new(
                    key(&format!(".params[{i}]")),
                    format!("'{param}' is listed twice"),
                ));
            }
        }
        for (i, channel) in self.channels.iter().enumerate() {
            if !channels.contains(channel) {
                return Err(Invalid::new(
                    key(&format!(".channels[{i}]")),
                    format!("'{channel}' is not one of irc.channels"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::PathBuf;
    use std::time::Duration;

    fn parse(jenkins: &str) -> Result<Config, String> {
        let text = format!("[irc]\nserver = \"h\"\nchannels = [\"#ops\"]\n{jenkins}");
        Config::from_toml(&text, "test.toml", PathBuf::from(".")).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_jobs() {
        let cfg = parse(
            "[jenkins]\nurl = \"https://ci.example/jenkins/\"\nuser = \"lever\"\ntoken = \"t0k\"\n\
             [jenkins.jobs.app]\nparams = [\"BRANCH\"]\n\
             [jenkins.jobs.web]\njob = \"team/web\"\nchannels = [\"#ops\"]\n",
        )
        .unwrap();
        let jenkins = cfg.jenkins.as_ref().unwrap();
        assert_eq!(jenkins.poll_interval, Duration::from_secs(5));
        assert_eq!(jenkins.timeout, Duration::from_secs(7200));
        let app = &jenkins.jobs["app"];
        assert_eq!(app.path("app").collect::<Vec<_>>(), ["app"]);
        assert_eq!(
            jenkins.jobs["web"].path("web").collect::<Vec<_>>(),
            ["team", "web"]
        );
        assert!(!format!("{cfg:?}").contains("t0k"));
    }

    #[test]
    fn errors_name_the_key() {
        let e = |text: &str| parse(text).unwrap_err();
        assert_eq!(
            e("[jenkins]\n"),
            "test.toml: jenkins.url: missing (required)"
        );
        assert!(e("[jenkins]\nurl = \"ftp://x\"\n").contains("jenkins.url: must be an http"));
        assert!(e("[jenkins]\nurl = \"http://u:p@x/\"\n").contains("must not carry credentials"));
        assert!(e("[jenkins]\nurl = \"http://x\"\nuser = \"u\"\n")
            .contains("jenkins.token: missing: user is set (set LEVER_JENKINS__TOKEN"));
        assert!(
            e("[jenkins]\nurl = \"http://x\"\npoll_interval = \"1ms\"\n")
                .contains("jenkins.poll_interval: must be at least 100ms")
        );
        assert!(
            e("[jenkins]\nurl = \"http://x\"\n[jenkins.jobs.a]\nparam = []\n")
                .contains("jenkins.jobs.a.param: unknown field")
        );
        assert!(
            e("[jenkins]\nurl = \"http://x\"\n[jenkins.jobs.a]\njob = \"t//a\"\n")
                .contains("jenkins.jobs.a.job: 't//a' is not a job path")
        );
        assert!(
            e("[jenkins]\nurl = \"http://x\"\n[jenkins.jobs.a]\nparams = [\"A\", \"A\"]\n")
                .contains("jenkins.jobs.a.params[1]: 'A' is listed twice")
        );
        assert!(
            e("[jenkins]\nurl = \"http://x\"\n[jenkins.jobs.a]\nchannels = [\"#dev\"]\n")
                .contains("jenkins.jobs.a.channels[0]: '#dev' is not one of irc.channels")
        );
    }
}
