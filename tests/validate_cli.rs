//! `serin validate` end to end: the real binary on the fixtures and on bad input.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn serin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_serin"))
}

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn validate(files: &[&Path], extra: &[&str]) -> (i32, String, String) {
    let mut cmd = serin();
    cmd.arg("validate");
    for f in files {
        cmd.arg("-f").arg(f);
    }
    let out = cmd.args(extra).output().unwrap();
    result(out)
}

fn validate_stdin(input: &[u8]) -> (i32, String, String) {
    let mut child = serin()
        .args(["validate", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // The command may stop reading early (size limit); a broken pipe is then expected.
    let _ = stdin.write_all(input);
    drop(stdin);
    result(child.wait_with_output().unwrap())
}

fn result(out: Output) -> (i32, String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    (out.status.code().expect("exit code"), stdout, stderr)
}

#[test]
fn seeds_pass_with_exit_0() {
    let files = fixtures("seeds");
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let (code, stdout, stderr) = validate(&paths, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains(": 0 errors"), "{stdout}");
}

#[test]
fn shared_seeds_pass_with_exit_0() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/seeds");
    if !shared.is_dir() {
        eprintln!("{} absent; skipped", shared.display());
        return;
    }
    let files: Vec<PathBuf> = std::fs::read_dir(&shared)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let (code, stdout, stderr) = validate(&paths, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

/// Each invalid fixture alone: the line `file:1:path: severity:` is printed, and the exit code
/// is 1 for errors, 0 for warnings only.
#[test]
fn each_invalid_fixture_prints_its_path_and_exit_code() {
    for file in fixtures("invalid") {
        let text = std::fs::read_to_string(&file).unwrap();
        let expect = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .unwrap();
        let (severity, path) = expect.split_once(' ').unwrap();
        let (code, stdout, stderr) = validate(&[&file], &[]);
        let line = format!("{}:1:{path}: {severity}: ", file.display());
        assert!(
            stdout.contains(&line),
            "missing {line:?} in\n{stdout}{stderr}"
        );
        let want = if severity == "error" { 1 } else { 0 };
        assert_eq!(code, want, "{}: {stdout}", file.display());
    }
}

#[test]
fn typo_is_caught_with_suggestion() {
    let (code, stdout, _) = validate_stdin(
        b"apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: web}\nspec:\n  \
          targetRef: {kind: Deployment, name: web}\n  service: {port: 80}\n  analysis:\n    \
          interval: 1m\n    stepweight: 10\n",
    );
    assert_eq!(code, 1);
    assert!(
        stdout.contains(
            "<stdin>:1:spec.analysis.stepweight: error: unknown field, did you mean stepWeight?"
        ),
        "{stdout}"
    );
}

#[test]
fn json_output_is_machine_readable() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/invalid/wrong-type-step-weight.yaml");
    let (code, stdout, _) = validate(&[&file], &["-o", "json"]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["errors"], 1);
    let finding = &report["findings"][0];
    assert_eq!(finding["path"], "spec.analysis.stepWeight");
    assert_eq!(finding["severity"], "error");
    assert_eq!(finding["kind"], "Canary");
    assert_eq!(finding["document"], 1);
    assert_eq!(finding["message"], "expected integer, got string \"ten\"");
}

#[test]
fn json_input_and_other_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mixed.json");
    std::fs::write(
        &file,
        r#"[{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}},
            {"apiVersion": "flagger.app/v1beta1", "kind": "AlertProvider",
             "metadata": {"name": "chat"}, "spec": {"type": "slack"}}]"#,
    )
    .unwrap();
    let (code, stdout, _) = validate(&[&file], &[]);
    assert_eq!(code, 1, "{stdout}");
    let line = format!("{}:2:spec.address: error: missing", file.display());
    assert!(stdout.contains(&line), "{stdout}");
    assert!(
        stdout.contains("1 document of other kinds skipped"),
        "{stdout}"
    );
}

/// A templateRef is resolved across the files of one run; alone, the Canary gets a warning.
#[test]
fn cross_file_template_ref() {
    let dir = tempfile::tempdir().unwrap();
    let seed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seeds/web-canary.yaml"),
    )
    .unwrap();
    let (template, canary) = seed.split_once("\n---\n").unwrap();
    let (t, c) = (
        dir.path().join("template.yaml"),
        dir.path().join("canary.yaml"),
    );
    std::fs::write(&t, template).unwrap();
    std::fs::write(&c, canary).unwrap();

    let (code, stdout, _) = validate(&[&c], &[]);
    assert_eq!(code, 0, "a warning does not fail: {stdout}");
    assert!(
        stdout.contains(
            "canary.yaml:1:spec.analysis.metrics[0].templateRef.name: warning: MetricTemplate \
             prod/error-rate is not among the validated documents"
        ),
        "{stdout}"
    );
    let (code, stdout, _) = validate(&[&t, &c], &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("0 errors, 0 warnings"), "{stdout}");
}

#[test]
fn bad_input_exits_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let deep = "- ".repeat(3000);
    let cases: [(&str, &[u8], &str); 6] = [
        (
            "empty.yaml",
            b"",
            "empty.yaml: error: cannot read: no documents",
        ),
        ("prose.txt", b"just some words\n", "not a manifest"),
        (
            "garbage.bin",
            &[0x89, 0xff, 0xfe, 0x00, 0x13, 0x80],
            "not UTF-8 text",
        ),
        (
            "nul.yaml",
            b"kind: Canary\n\0\0\0",
            "nul.yaml:2: error: cannot read: binary data",
        ),
        (
            "broken.yaml",
            b"kind: Canary\nspec:\n  a: [1, 2\n  b: {\n",
            "broken.yaml:",
        ),
        ("deep.yaml", deep.as_bytes(), "nested deeper than 64 levels"),
    ];
    for (name, content, want) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, content).unwrap();
        let (code, stdout, stderr) = validate(&[&file], &[]);
        assert_eq!(code, 2, "{name}: {stdout}{stderr}");
        assert!(stderr.contains(want), "{name}: want {want:?} in {stderr}");
    }
    let (code, _, stderr) = validate(&[&dir.path().join("missing.yaml")], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot open"), "{stderr}");
}

/// A parse error names its line.
#[test]
fn parse_error_has_the_line() {
    let (code, _, stderr) =
        validate_stdin(b"apiVersion: v1\nkind: Canary\nmetadata:\n  name: [x\n");
    assert_eq!(code, 2);
    let line: u64 = stderr
        .strip_prefix("<stdin>:")
        .and_then(|s| s.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no line number in {stderr}"));
    assert!((4..=5).contains(&line), "{stderr}");
}

/// 50 MiB, generated here: refused by size before parsing, from a file and from stdin.
#[test]
fn huge_input_is_refused() {
    let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: filler}\ndata: {a: b}\n---\n";
    let big = doc.repeat(50 * 1024 * 1024 / doc.len() + 1);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("huge.yaml");
    std::fs::write(&file, &big).unwrap();
    let (code, _, stderr) = validate(&[&file], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("over the limit of 16 MiB"), "{stderr}");
    let (code, _, stderr) = validate_stdin(big.as_bytes());
    assert_eq!(code, 2);
    assert!(stderr.contains("over the limit of 16 MiB"), "{stderr}");
}

/// One unreadable file does not hide the findings of the others, and the exit code is 2.
#[test]
fn unreadable_file_among_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "").unwrap();
    let bad =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid/threshold-zero.yaml");
    let (code, stdout, _) = validate(&[&bad, &empty], &[]);
    assert_eq!(code, 2);
    assert!(
        stdout.contains("spec.analysis.threshold: error"),
        "{stdout}"
    );
}
