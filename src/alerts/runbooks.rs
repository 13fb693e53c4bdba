//! The runbooks file (`[alerts] runbooks`): the link an alert's announcement carries when
//! Alertmanager sent no `runbook_url`. It is the file `!runbook` (plugins/runbook) answers from:
//!
//! ```toml
//! [HighErrorRate]
//! url = "https://wiki.example.com/runbooks/high-error-rate"
//! escalation = "#web-oncall"
//! topics = ["5xx", "errors"]
//! ```
//!
//! It is read again whenever it changes, so an edit needs no restart; a file that cannot be read
//! or parsed gives no links, and is logged once per change.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use indexmap::IndexMap;
use serde::Deserialize;

/// One runbook. Other keys are the plugin's business and are ignored here.
#[derive(Debug, Deserialize)]
struct Entry {
    url: String,
    #[serde(default)]
    topics: Vec<String>,
}

type Book = IndexMap<String, Entry>;

/// The runbooks file, cached until it changes.
pub struct Runbooks {
    path: Option<PathBuf>,
    /// The file's modification time when read (`None`: it could not be read), and its runbooks.
    cached: Mutex<Option<(Option<SystemTime>, Arc<Book>)>>,
}

impl Runbooks {
    /// Runbooks from `path`; `None`, no runbooks file.
    pub fn new(path: Option<PathBuf>) -> Self {
        Self {
            path,
            cached: Mutex::default(),
        }
    }

    /// The runbook URL for the alert `name`: the runbook named so, or the one with it as a topic
    /// (ignoring case).
    pub fn link(&self, name: &str) -> Option<String> {
        let book = self.current()?;
        let matches = |(title, entry): &(&String, &Entry)| {
            title.eq_ignore_ascii_case(name)
                || entry.topics.iter().any(|t| t.eq_ignore_ascii_case(name))
        };
        book.iter()
            .find(matches)
            .map(|(_, entry)| entry.url.clone())
    }

    fn current(&self) -> Option<Arc<Book>> {
        let path = self.path.as_ref()?;
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, book)) = cached.as_ref() {
            if *at == modified {
                return Some(book.clone());
            }
        }
        let book = match read(path) {
            Ok(book) => book,
            Err(why) => {
                tracing::warn!(file = %path.display(), "runbooks file unusable; alerts get no runbook links from it: {why}");
                Book::new()
            }
        };
        let book = Arc::new(book);
        *cached = Some((modified, book.clone()));
        Some(book)
    }
}

fn read(path: &std::path::Path) -> Result<Book, String> {
    let text = std::fs::read_to_string(path).map_err(|e| crate::process::os_error(&e))?;
    toml::from_str(&text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_finds_its_runbook_by_name_or_topic_and_edits_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runbooks.toml");
        let runbooks = Runbooks::new(Some(path.clone()));
        assert_eq!(runbooks.link("SiteDown"), None, "no file yet");
        std::fs::write(
            &path,
            "[SiteDown]\nurl = \"https://wiki/site-down\"\nescalation = \"page\"\n\
             [HighErrorRate]\nurl = \"https://wiki/errors\"\ntopics = [\"5xx\"]\n",
        )
        .unwrap();
        assert_eq!(
            runbooks.link("sitedown").as_deref(),
            Some("https://wiki/site-down")
        );
        assert_eq!(runbooks.link("5XX").as_deref(), Some("https://wiki/errors"));
        assert_eq!(runbooks.link("DiskFull"), None);
        std::fs::write(&path, "[DiskFull]\nurl = \"https://wiki/disk\"\n# edited\n").unwrap();
        // The edit may land within the same timestamp tick; a changed length shows it anyway
        // on most file systems, but only a changed time is promised, so set one.
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(
            runbooks.link("DiskFull").as_deref(),
            Some("https://wiki/disk")
        );
        assert_eq!(runbooks.link("SiteDown"), None);
        std::fs::write(&path, "[Broken\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later + std::time::Duration::from_secs(5))
            .unwrap();
        assert_eq!(
            runbooks.link("DiskFull"),
            None,
            "a broken file gives no links"
        );
        assert_eq!(Runbooks::new(None).link("SiteDown"), None);
    }
}
