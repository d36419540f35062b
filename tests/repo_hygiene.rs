//! What the repository promises its users outside the code (issue 15, points 11 and 14).

use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// README and the docs date figures by commit and date, not by a running number of the work
/// period that measured them; the history of bench runs lives in docs/benchmarks.md.
#[test]
fn figures_are_dated_by_commit_not_by_work_period() {
    let mut places = Vec::new();
    let docs = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")).unwrap();
    let mut files: Vec<String> = docs
        .map(|e| format!("docs/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|f| f.ends_with(".md"))
        .collect();
    files.push("README.md".into());
    for file in &files {
        for (n, line) in read(file).lines().enumerate() {
            let lower = line.to_lowercase();
            let numbered = lower.match_indices("session").any(|(i, _)| {
                let rest = lower[i + "session".len()..].trim_start_matches(['s', '-', ' ']);
                rest.starts_with(|c: char| c.is_ascii_digit())
            });
            if numbered || lower.contains("this session") {
                places.push(format!("{file}:{}: {line}", n + 1));
            }
        }
    }
    assert!(places.is_empty(), "{}", places.join("\n"));
    assert!(read("README.md").contains("docs/benchmarks.md"));
}

/// `.ci/run` on a stock Debian 12 installs what the suite runs: the SMTP server's venv, the
/// unit checks' systemd-analyze, xmlsec1, PostgreSQL 15, and the openssl command.
#[test]
fn install_deps_names_every_package_the_suite_uses() {
    let script = read(".ci/install-deps");
    for package in [
        "libxmlsec1-dev",
        "libclang-dev",
        "pkg-config",
        "xmlsec1",
        "postgresql-15",
        "python3-venv",
        "systemd",
        "openssl",
    ] {
        assert!(
            script
                .lines()
                .filter(|l| l.trim_start().starts_with("want") || l.contains("want+="))
                .any(|l| l
                    .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
                    .any(|w| w == package)),
            "{package} is not installed by .ci/install-deps"
        );
    }
}
