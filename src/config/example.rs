//! The built-in example: `bot.toml`, its step scripts and its plugins, compiled into the binary,
//! so `lever console` shows a whole stage and deploy (and `!runbook`) on a machine with nothing
//! else.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// The example's files, by path relative to its config, and whether each is a program.
const FILES: &[(&str, &str, bool)] = &[
    ("steps/act.sh", include_str!("../../steps/act.sh"), true),
    (
        "steps/version.sh",
        include_str!("../../steps/version.sh"),
        true,
    ),
    (
        "plugins/runbook",
        include_str!("../../plugins/runbook"),
        true,
    ),
    ("plugins/oncall", include_str!("../../plugins/oncall"), true),
    (
        "plugins/runbooks.toml",
        include_str!("../../plugins/runbooks.toml"),
        false,
    ),
    (
        "plugins/oncall.txt",
        include_str!("../../plugins/oncall.txt"),
        false,
    ),
];

/// Writes the example's steps and plugins to lever's data folder (`$XDG_DATA_HOME/lever/example`, or
/// `~/.local/share/lever/example`) and returns it; the example's store lives there too.
pub fn install() -> io::Result<PathBuf> {
    let folder = data_home()?.join("lever").join("example");
    for (path, text, program) in FILES {
        let file = folder.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if std::fs::read_to_string(&file).ok().as_deref() != Some(*text) {
            std::fs::write(&file, text)?;
        }
        // Only programs are executable: an executable file in plugins/ is taken for a plugin.
        let mode = if *program { 0o755 } else { 0o644 };
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(folder)
}

fn data_home() -> io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local").join("share")),
        None => Err(io::Error::new(
            io::ErrorKind::NotFound,
            "neither XDG_DATA_HOME nor HOME is set",
        )),
    }
}
