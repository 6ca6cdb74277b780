//! The manifests under `tests/fixtures/`: every seed validates without errors, and every
//! invalid fixture is flagged at the field path its header names.
//!
//! An invalid fixture starts with `# expect: <error|warning> <field.path>` and
//! `# message contains: <text>`; one fixture per rule.

use std::path::{Path, PathBuf};

use serin_api::validate::{Severity, validate_stream};

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "json"))
        .collect();
    files.sort();
    files
}

fn assert_no_errors(files: &[PathBuf]) {
    assert!(!files.is_empty(), "no seed manifests found");
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        let found = validate_stream(&text)
            .unwrap_or_else(|e| panic!("{}: cannot parse: {e}", file.display()));
        let errors: Vec<_> = found
            .iter()
            .filter(|(_, d)| d.severity == Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
    }
}

#[test]
fn seeds_have_no_errors() {
    assert_no_errors(&fixtures("seeds"));
}

#[test]
fn valid_fixtures_have_no_errors() {
    assert_no_errors(&fixtures("valid"));
}

/// The shared seed directory of the project, when this checkout sits next to it.
#[test]
fn shared_seeds_have_no_errors() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/seeds");
    if !shared.is_dir() {
        eprintln!("{} absent; skipped", shared.display());
        return;
    }
    let files: Vec<PathBuf> = std::fs::read_dir(&shared)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    assert_no_errors(&files);
}

struct Expectation {
    severity: Severity,
    path: String,
    contains: String,
}

fn expectation(file: &Path, text: &str) -> Expectation {
    let header = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .unwrap_or_else(|| panic!("{}: no `{key}` header", file.display()))
            .to_string()
    };
    let expect = header("# expect:");
    let (severity, path) = expect
        .split_once(' ')
        .expect("`# expect: <severity> <path>`");
    Expectation {
        severity: match severity {
            "error" => Severity::Error,
            "warning" => Severity::Warning,
            other => panic!("{}: unknown severity {other}", file.display()),
        },
        path: path.to_string(),
        contains: header("# message contains:"),
    }
}

#[test]
fn each_invalid_fixture_is_flagged_at_its_path() {
    let files = fixtures("invalid");
    assert!(
        files.len() >= 40,
        "one fixture per rule: found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let want = expectation(file, &text);
        let found = validate_stream(&text)
            .unwrap_or_else(|e| panic!("{}: cannot parse: {e}", file.display()));
        let hit = found.iter().any(|(doc, d)| {
            *doc == 1
                && d.severity == want.severity
                && d.path == want.path
                && d.message.contains(&want.contains)
        });
        if !hit {
            failures.push(format!(
                "{}: expected {:?} at {} containing {:?}, got {found:#?}",
                file.display(),
                want.severity,
                want.path,
                want.contains
            ));
        }
        // A warning-only rule must not block: such fixtures carry no error at all.
        if want.severity == Severity::Warning {
            let errors: Vec<_> = found.iter().filter(|(_, d)| d.is_error()).collect();
            if !errors.is_empty() {
                failures.push(format!("{}: {errors:#?}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every message says how to fix the problem, so none is a bare "invalid".
#[test]
fn messages_are_actionable() {
    for file in fixtures("invalid") {
        let text = std::fs::read_to_string(&file).unwrap();
        for (_, d) in validate_stream(&text).unwrap() {
            assert!(
                d.message.len() > 20,
                "{}: terse message {d:?}",
                file.display()
            );
            assert!(!d.path.is_empty(), "{}: no path in {d:?}", file.display());
        }
    }
}
