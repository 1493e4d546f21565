//! `cargo xtask kotlin-deps`: the supply-chain check of the Kotlin test
//! project (`bindings/kotlin/pom.xml`), which cargo-deny cannot see. It
//! checks that every dependency and plugin names one exact version (no
//! ranges, SNAPSHOT, LATEST or RELEASE, nothing left to Maven's defaults) and
//! that the only repository is Maven Central. Licences and advisories of the
//! Kotlin dependencies are not checked (there is no offline database for
//! them here); they are test and benchmark tools, never shipped in an app.

use std::collections::BTreeMap;

use crate::bindings::workspace;

const CENTRAL: &str = "https://repo.maven.apache.org/maven2";

/// The text of every `<tag>…</tag>` in `xml`.
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        found.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    found
}

/// Problems with the pom's pins and sources, empty when it passes.
pub fn problems(pom: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let properties: BTreeMap<&str, &str> = elements(pom, "properties")
        .first()
        .map(|p| {
            p.split("</")
                .filter_map(|kv| kv.rsplit_once('>'))
                .filter_map(|(k, v)| k.rsplit_once('<').map(|(_, k)| (k, v.trim())))
                .collect()
        })
        .unwrap_or_default();
    for kind in ["dependency", "plugin"] {
        for block in elements(pom, kind) {
            let name = elements(block, "artifactId")
                .first()
                .copied()
                .unwrap_or("?");
            let Some(version) = elements(block, "version").first().copied() else {
                problems.push(format!("{kind} {name} has no version"));
                continue;
            };
            let resolved = version
                .strip_prefix("${")
                .and_then(|v| v.strip_suffix('}'))
                .and_then(|p| properties.get(p).copied())
                .unwrap_or(version);
            let pinned = !resolved.is_empty()
                && resolved
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                && !["SNAPSHOT", "LATEST", "RELEASE"]
                    .iter()
                    .any(|w| resolved.contains(w));
            if !pinned {
                problems.push(format!(
                    "{kind} {name}: `{version}` is not one exact version"
                ));
            }
        }
    }
    for url in elements(pom, "url") {
        if url.trim() != CENTRAL {
            problems.push(format!("repository {url} is not Maven Central"));
        }
    }
    if elements(pom, "url").is_empty() {
        problems.push("the pom must name Maven Central as its only repository".into());
    }
    problems
}

pub fn run() -> Result<(), String> {
    let path = workspace().join("bindings").join("kotlin").join("pom.xml");
    let pom = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let found = problems(&pom);
    if found.is_empty() {
        println!("kotlin-deps: every version pinned, Maven Central only");
        Ok(())
    } else {
        Err(found.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_projects_pom_passes() {
        let pom =
            std::fs::read_to_string(workspace().join("bindings/kotlin/pom.xml")).expect("pom");
        assert_eq!(problems(&pom), Vec::<String>::new());
    }

    #[test]
    fn ranges_snapshots_and_other_repositories_are_refused() {
        let pom = format!(
            "<properties><v>1.0-SNAPSHOT</v></properties>\
             <repositories><repository><url>https://jitpack.io</url></repository></repositories>\
             <dependency><artifactId>a</artifactId><version>[1.0,2.0)</version></dependency>\
             <dependency><artifactId>b</artifactId><version>${{v}}</version></dependency>\
             <dependency><artifactId>c</artifactId></dependency>\
             <plugin><artifactId>d</artifactId><version>LATEST</version></plugin>\
             <url>{CENTRAL}</url>"
        );
        assert_eq!(problems(&pom).len(), 5, "{:?}", problems(&pom));
    }
}
