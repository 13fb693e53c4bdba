//! The folders of src/ are layers, and a module never imports from a layer above its own (the
//! `# Layout` in src/lib.rs draws them). This test reads every source file and checks each
//! `crate::<folder>` it names against the order below, so a new upward arrow fails here with
//! the file that drew it. Unit tests (`#[cfg(test)]` code and `tests.rs` files) may reach up:
//! they build a whole bot to test one part.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Bottom first: each may import from those before it, never from those after.
const LAYERS: &[&str] = &[
    "chat", "infra", "process", "access", "store", "config", "events", "irc", "jenkins", "deploy",
    "flags", "alerts", "metrics", "plugins", "bot", "commands", "http", "app",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `crate::<name>` roots a piece of source names.
fn roots(code: &str) -> BTreeSet<String> {
    code.match_indices("crate::")
        .map(|(i, m)| {
            code[i + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let rank = |name: &str| LAYERS.iter().position(|l| *l == name);

    let mut problems = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel.iter().next().unwrap().to_string_lossy();
        let top = top.trim_end_matches(".rs");
        if matches!(top, "lib" | "main") || rel.ends_with("tests.rs") {
            continue;
        }
        let Some(own) = rank(top) else {
            problems.push(format!("src/{top} is in no layer: add it to LAYERS"));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for name in roots(code) {
            if name == top {
                continue;
            }
            match rank(&name) {
                None => problems.push(format!(
                    "{} names crate::{name}, which is in no layer",
                    rel.display()
                )),
                Some(theirs) if theirs > own => problems.push(format!(
                    "{} (layer {top}) imports crate::{name}, a layer above it",
                    rel.display()
                )),
                Some(_) => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The check itself: a name after `crate::` is found, and only the root of the path counts.
#[test]
fn roots_are_the_first_name_after_crate() {
    let code = "use crate::chat::text::{a, b};\nlet x = crate::store::json::hold(h); // crate::";
    assert_eq!(
        roots(code).into_iter().collect::<Vec<_>>(),
        ["chat", "store"]
    );
}
