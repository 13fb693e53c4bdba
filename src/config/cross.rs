//! Checks that tie one section to another's settings (beyond naming a channel or a target,
//! which sections check themselves, given the names). `Config::validate` calls each where its
//! refusal has always been reported, so the first error of a config stays the same.

use super::{Config, Invalid, TargetConfig};

impl Config {
    /// `[targets.NAME] jobs` run `[jenkins.jobs]` entries.
    pub(super) fn target_jobs_are_jenkins_jobs(
        &self,
        name: &str,
        target: &TargetConfig,
    ) -> Result<(), Invalid> {
        for (phase, job) in &target.jobs {
            let known = self
                .jenkins
                .as_ref()
                .is_some_and(|j| j.jobs.contains_key(job));
            if !known {
                return Err(Invalid::new(
                    format!("targets.{name}.jobs.{phase}"),
                    format!("'{job}' is not a [jenkins.jobs] entry"),
                ));
            }
        }
        Ok(())
    }

    /// `[dashboard]` lets people act on the deploy page, which `[http]` serves.
    pub(super) fn dashboard_is_served(&self) -> Result<(), Invalid> {
        if self.http.is_none() {
            return Err(Invalid::new(
                "dashboard",
                "needs [http] listen: the deploy page is served by lever's HTTP side",
            ));
        }
        Ok(())
    }

    /// `alerts.lines_per_minute` against `[irc]`'s throttle: more alert lines than the throttle
    /// can say would only pile up in the outbox.
    pub(super) fn alerts_fit_the_throttle(&self) -> Result<(), Invalid> {
        let irc = &self.irc;
        if irc.line_interval.is_zero() {
            return Ok(());
        }
        let sayable = (60.0 / irc.line_interval.as_secs_f64()) as usize + irc.burst as usize;
        if self.alerts.lines_per_minute > sayable {
            return Err(Invalid::new(
                "alerts.lines_per_minute",
                format!("is more than irc.line_interval lets lever say in a minute ({sayable})"),
            ));
        }
        Ok(())
    }

    /// `[targets.NAME] watch` rules read `[metrics.queries]`; each rule is checked here, with
    /// the queries it may name.
    pub(super) fn watch_rules_name_queries(&self) -> Result<(), Invalid> {
        for (name, target) in &self.targets {
            for (i, rule) in target.watch.iter().enumerate() {
                rule.validate(&format!("targets.{name}.watch[{i}]"), &self.metrics.queries)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::config::{Config, ConfigError};

    fn refusal(text: &str) -> (String, String) {
        let text = format!("[irc]\nserver = \"h\"\nchannels = [\"#ops\"]\n{text}");
        match Config::from_toml(&text, "test.toml", PathBuf::from(".")) {
            Err(ConfigError::Invalid { key, message, .. }) => (key, message),
            other => panic!("not refused as invalid: {other:?}"),
        }
    }

    fn pair(key: &str, message: &str) -> (String, String) {
        (key.to_owned(), message.to_owned())
    }

    #[test]
    fn a_jenkins_target_names_configured_jobs() {
        assert_eq!(
            refusal(
                "[targets.site]\nbackend = \"jenkins\"\njobs = { deploy = \"app\" }\n\
                 [jenkins]\nurl = \"http://ci\"\n[jenkins.jobs.web]\n"
            ),
            pair(
                "targets.site.jobs.deploy",
                "'app' is not a [jenkins.jobs] entry"
            )
        );
    }

    #[test]
    fn alert_lines_fit_what_the_throttle_can_say() {
        // One line per 10s plus the default burst of 4: 10 a minute.
        let irc = "line_interval = \"10s\"\n";
        assert_eq!(
            refusal(&format!("{irc}[alerts]\nlines_per_minute = 11\n")),
            pair(
                "alerts.lines_per_minute",
                "is more than irc.line_interval lets lever say in a minute (10)"
            )
        );
        let text = format!("[irc]\nserver = \"h\"\n{irc}[alerts]\nlines_per_minute = 10\n");
        assert!(Config::from_toml(&text, "test.toml", PathBuf::from(".")).is_ok());
    }

    #[test]
    fn watch_rules_name_a_query() {
        assert_eq!(
            refusal(
                "[targets.site]\nwatch = [{ metric = \"errors\", max_ratio = 2.0, for = \"10m\" }]\n\
                 [[targets.site.deploy]]\nname = \"d\"\nrun = [\"x\"]\n"
            ),
            pair(
                "targets.site.watch[0].metric",
                "'errors' is not a [metrics.queries] entry"
            )
        );
    }
}
