//! The CLI drives the core through `transport::Client` alone, as the apps
//! will: no `with_account`, no `Account` and none of its calls, no store
//! dump. The compiler checks this when the CLI is built by itself; built
//! with the whole workspace, the scenario tests switch the core's `testing`
//! feature on for everyone, so this test reads the sources.

use std::path::Path;

/// What reaches inside the core: calls, and the `Account` type itself.
const FORBIDDEN: [&str; 3] = ["with_account", "dump_database", "Account"];

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read source");
            out.push((path.display().to_string(), text));
        }
    }
}

#[test]
fn the_cli_uses_only_the_client_facade() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 20, "the CLI's sources were found");
    let mut found = Vec::new();
    for (path, text) in &files {
        for (n, line) in text.lines().enumerate() {
            // Code only: what a comment says is not a call.
            let code = line.split("//").next().unwrap_or_default();
            let words = code.split(|c: char| !c.is_alphanumeric() && c != '_');
            if words.into_iter().any(|w| FORBIDDEN.contains(&w)) {
                found.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the CLI reaches inside the core:\n{}",
        found.join("\n")
    );
}
