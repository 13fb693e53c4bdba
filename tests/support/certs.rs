//! Certificates for the TLS tests, made with openssl in a test's folder: a private CA with a
//! server certificate it signed for 127.0.0.1, and self-signed certificates (a pinned server, a
//! client's CertFP).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs openssl in `dir`; fails the test with its output if it fails.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (scripts/setup.sh installs it)");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

const EC: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// `ca.pem` (a CA) and `server.pem` / `server.key`, signed by it for the address 127.0.0.1.
pub fn ca_and_server(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca = [
        &["req", "-x509"][..],
        &EC,
        &["-days", "1", "-subj", "/CN=lever test CA"],
    ]
    .concat();
    openssl(
        dir,
        &[&ca[..], &["-keyout", "ca.key", "-out", "ca.pem"]].concat(),
    );
    let csr = [&["req"][..], &EC, &["-subj", "/CN=127.0.0.1"]].concat();
    openssl(
        dir,
        &[&csr[..], &["-keyout", "server.key", "-out", "server.csr"]].concat(),
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("san.ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// A self-signed `name.pem` / `name.key`, and its SHA-256 fingerprint as `openssl x509
/// -fingerprint -sha256` prints it (`AB:CD:…`).
pub fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf, String) {
    let subject = format!("/CN={name}");
    let (cert, key) = (format!("{name}.pem"), format!("{name}.key"));
    let args = [
        &["req", "-x509"][..],
        &EC,
        &["-days", "1", "-subj", &subject],
    ]
    .concat();
    openssl(
        dir,
        &[&args[..], &["-keyout", &key, "-out", &cert]].concat(),
    );
    let printed = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in", &cert])
        .current_dir(dir)
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&printed.stdout).to_string();
    let fingerprint = text
        .trim()
        .rsplit('=')
        .next()
        .unwrap_or_default()
        .to_owned();
    (dir.join(cert), dir.join(key), fingerprint)
}
