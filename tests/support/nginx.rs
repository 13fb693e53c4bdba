//! nginx in front of lever, as the reverse proxy that signs people in to the deploy page: it
//! passes every request on (the event stream unbuffered) from its own address, 127.0.0.2,
//! naming the signed-in user in `X-Forwarded-User`. Here the sign-in is the test's: the user is
//! `X-Test-User` when a request names one, else the default (a browser sends none).

use std::path::Path;
use std::process::Command;

use super::daemon::Daemon;
use super::http::{exchange, raw_request};
use super::WAIT;

/// The address nginx talks to lever from: the one `[dashboard] trusted_proxies` lists.
pub const PROXY_ADDR: &str = "127.0.0.2";

pub struct Nginx {
    daemon: Daemon,
}

impl Nginx {
    /// nginx on a free loopback port, in front of lever's HTTP side on `upstream`, signing in
    /// `default_user` unless a request says `X-Test-User`.
    pub fn start(upstream: u16, default_user: &str) -> Nginx {
        let dir = tempfile::tempdir().expect("nginx folder");
        let name = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let command = |dir: &Path, port: u16| {
            let d = dir.display();
            let conf = format!(
                r#"# Run by root (as in a container) or not: its workers stay the same user.
user root;
worker_processes 1;
pid {d}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    map $http_x_test_user $signed_in {{
        ""      "{default_user}";
        default $http_x_test_user;
    }}
    server {{
        listen 127.0.0.1:{port};
        location = /__rig {{ return 200 "{name}"; }}
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_bind {PROXY_ADDR};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-User $signed_in;
            proxy_buffering off;
            proxy_read_timeout 1h;
        }}
    }}
}}
"#
            );
            std::fs::write(dir.join("nginx.conf"), conf).expect("write nginx.conf");
            let mut command = Command::new("/usr/sbin/nginx");
            command
                .args(["-g", "daemon off;", "-e", "stderr", "-p"])
                .arg(dir)
                .arg("-c")
                .arg(dir.join("nginx.conf"));
            command
        };
        assert!(
            Path::new("/usr/sbin/nginx").exists(),
            "nginx is missing: scripts/setup.sh installs nginx-light"
        );
        let daemon = Daemon::start("nginx", dir, command, |port, _| {
            // Ours, not another test's on the same port: it answers with our folder's name.
            let raw = raw_request(port, "GET", "/__rig", &[], b"");
            exchange(port, &raw, WAIT).is_ok_and(|r| r.status == 200 && r.body == name)
        });
        Nginx { daemon }
    }

    pub fn port(&self) -> u16 {
        self.daemon.port
    }
}
