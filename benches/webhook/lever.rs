//! lever under load: its release binary at the production log level with `[http]` taking the
//! hook token, the default IRC throttle, and `[alerts]` defaults unless a cap is given.

use std::time::{Duration, Instant};

use crate::rig::real_lever;
use crate::rig::support::{
    bot_config, exchange, free_port, raw_request, start_serving_http, Lever,
};
use crate::{CAP_DEFAULT, TOKEN};

/// lever running, with its HTTP side on `http_port`.
pub struct ServingLever {
    lever: Lever,
    pub http_port: u16,
}

impl ServingLever {
    /// Starts lever and waits until `/readyz` says it is registered on IRC.
    pub fn start(irc_port: u16, lines_per_minute: Option<usize>) -> ServingLever {
        let (lever, http_port, ()) = start_serving_http(|http| {
            (
                real_lever(&lever_config(irc_port, http, lines_per_minute)),
                (),
            )
        });
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if matches!(get(http_port, "/readyz"), Ok((200, _))) {
                return ServingLever { lever, http_port };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("lever did not become ready:\n{}", lever.log());
    }

    pub fn pid(&self) -> u32 {
        self.lever.pid()
    }

    pub fn alive(&mut self) -> bool {
        self.lever.running()
    }

    pub fn log(&self) -> String {
        self.lever.log()
    }

    /// `lever_outbox_depth` and `lever_outbox_dropped` from `/metrics`.
    pub fn outbox(&self) -> (f64, f64) {
        let (_, text) = get(self.http_port, "/metrics").expect("GET /metrics");
        let gauge = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name) && !l.starts_with('#'))
                .and_then(|l| l.split_whitespace().last())
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN)
        };
        (gauge("lever_outbox_depth"), gauge("lever_outbox_dropped"))
    }

    /// SIGTERM with a short wait, then SIGKILL (a full outbox would take its whole flush time).
    pub fn stop(mut self, within: Duration) {
        self.lever.stop(within);
    }
}

/// `GET path` on lever's HTTP side: status and body.
fn get(port: u16, path: &str) -> Result<(u16, String), String> {
    let request = raw_request(port, "GET", path, &[], b"");
    exchange(port, &request, Duration::from_secs(30)).map(|reply| (reply.status, reply.body))
}

fn lever_config(irc_port: u16, http_port: u16, lines_per_minute: Option<usize>) -> String {
    // lever's default throttle, spelled out (the rig's bot_config turns it off otherwise).
    let mut rest = format!("[http]\nlisten = \"127.0.0.1:{http_port}\"\ntoken = \"{TOKEN}\"\n");
    let mut throttle = "burst = 4\nline_interval = \"1s\"";
    if let Some(n) = lines_per_minute {
        rest.push_str(&format!("\n[alerts]\nlines_per_minute = {n}\n"));
        // lever refuses a cap its throttle could never say; the huge cap goes with no throttle.
        if n > 64 {
            throttle = "burst = 4\nline_interval = \"0s\"";
        }
    }
    bot_config(irc_port, throttle, &rest)
}

/// Checks that the config the bench gives lever really has the defaults the bench claims.
pub fn check_config(irc_port: u16) {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = lever_config(irc_port, free_port(), None);
    let config = lever::config::Config::from_toml(&text, "bench bot.toml", dir.path().into())
        .unwrap_or_else(|e| panic!("bench config: {e}\n{text}"));
    assert_eq!(config.irc.burst, 4);
    assert_eq!(config.irc.line_interval, Duration::from_secs(1));
    assert_eq!(config.alerts.lines_per_group, 4);
    assert_eq!(config.alerts.lines_per_minute, CAP_DEFAULT);
    let http = config.http.as_ref().expect("[http]");
    assert_eq!(http.body_limit, 1024 * 1024);
}
