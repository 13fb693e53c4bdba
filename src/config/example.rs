//! The built-in example: `bot.toml` and its step scripts, compiled into the binary, so `lever
//! console` shows a whole stage and deploy on a machine with nothing else.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// The example's step scripts, by path relative to its config.
const FILES: &[(&str, &str)] = &[
    ("steps/act.sh", include_str!("../../steps/act.sh")),
    ("steps/version.sh", include_str!("../../steps/version.sh")),
];

/// Writes the example's steps to lever's data folder (`$XDG_DATA_HOME/lever/example`, or
/// `~/.local/share/lever/example`) and returns it; the example's store lives there too.
pub fn install() -> io::Result<PathBuf> {
    let folder = data_home()?.join("lever").join("example");
    for (path, text) in FILES {
        let file = folder.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if std::fs::read_to_string(&file).ok().as_deref() != Some(*text) {
            std::fs::write(&file, text)?;
        }
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))?;
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
