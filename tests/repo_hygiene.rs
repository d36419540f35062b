//! What the repository promises its users outside the code: bench figures a reader can
//! trace to a commit, and a suite that installs what it needs.

use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// README's bench figures say which commit they measured and when ("At `7866a57`
/// (2026-12-02)"), so that a reader can check them out and run them again; the history of
/// runs lives in docs/benchmarks.md, dated the same way.
#[test]
fn bench_figures_name_their_commit_and_date() {
    let readme = read("README.md");
    let benches = &readme[readme
        .find("## Benchmarks")
        .expect("README has a Benchmarks section")..];
    let mut undated = Vec::new();
    for paragraph in benches.split("\n\n").filter(|p| p.starts_with("**")) {
        if !(names_a_commit(paragraph) && names_a_date(paragraph)) {
            undated.push(paragraph.lines().next().unwrap_or_default().to_string());
        }
    }
    assert!(
        undated.is_empty(),
        "bench figures without a commit and a date: {undated:?}"
    );
    assert!(benches.contains("docs/benchmarks.md"));
    let history = read("docs/benchmarks.md");
    for heading in history.lines().filter(|l| l.starts_with("## ")) {
        assert!(
            names_a_commit(heading) && names_a_date(heading),
            "docs/benchmarks.md: {heading:?} names no commit and date"
        );
    }
}

/// A commit in backquotes: seven to forty hex digits.
fn names_a_commit(text: &str) -> bool {
    text.split('`').skip(1).step_by(2).any(|quoted| {
        (7..=40).contains(&quoted.len()) && quoted.chars().all(|c| c.is_ascii_hexdigit())
    })
}

/// A date written YYYY-MM-DD.
fn names_a_date(text: &str) -> bool {
    text.as_bytes().windows(10).any(|w| {
        w.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
    })
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
