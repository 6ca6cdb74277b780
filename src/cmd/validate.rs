//! `serin validate`: static checks of Canary, MetricTemplate and AlertProvider manifests.
//!
//! Exit codes: 0 no errors (warnings allowed), 1 errors, 2 a file could not be read or parsed.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;
use serde_json::Value;
use serin_api::validate::{self, Diagnostic, Kind, MAX_INPUT_BYTES, ParseError, Severity};

#[derive(clap::Args)]
#[command(
    after_help = "Output lines: file:document:field.path: error|warning: message\n\
Exit codes: 0 no errors (warnings allowed), 1 errors, 2 a file cannot be read or parsed, \
is empty or is over 16 MiB"
)]
pub struct Args {
    /// Manifest file (YAML, multi-document, or JSON); repeat for more; `-` reads stdin.
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true, num_args = 1..)]
    files: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: Output,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

/// One file that could not be read or parsed.
#[derive(Serialize)]
struct Unreadable {
    file: String,
    line: Option<u64>,
    column: Option<u64>,
    message: String,
}

/// One finding, located in a file and document.
#[derive(Serialize)]
struct Finding {
    file: String,
    /// 1-based index among the file's non-empty documents.
    document: usize,
    kind: Option<&'static str>,
    name: Option<String>,
    #[serde(flatten)]
    diagnostic: Diagnostic,
}

#[derive(Serialize)]
struct Report {
    findings: Vec<Finding>,
    unreadable: Vec<Unreadable>,
    files: usize,
    documents: usize,
    validated: usize,
    skipped: usize,
    errors: usize,
    warnings: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut unreadable = Vec::new();
    // (file, index in file, document) for every document of every readable file.
    let mut docs: Vec<(String, usize, Value)> = Vec::new();
    for file in &args.files {
        let name = if file == "-" {
            "<stdin>"
        } else {
            file.as_str()
        };
        match read(file).and_then(|text| validate::parse_stream(&text)) {
            Ok(parsed) if parsed.is_empty() => unreadable.push(Unreadable {
                file: name.into(),
                line: None,
                column: None,
                message: "no documents: the file is empty; give a file with Canary, \
                          MetricTemplate or AlertProvider manifests"
                    .into(),
            }),
            Ok(parsed) => docs.extend(
                parsed
                    .into_iter()
                    .enumerate()
                    .map(|(i, d)| (name.to_string(), i + 1, d)),
            ),
            Err(err) => unreadable.push(Unreadable {
                file: name.into(),
                line: err.line,
                column: err.column,
                message: err.message,
            }),
        }
    }

    let values: Vec<&Value> = docs.iter().map(|(_, _, d)| d).collect();
    let labels: Vec<String> = docs
        .iter()
        .map(|(file, i, _)| format!("{file} document {i}"))
        .collect();
    let results = validate::validate_documents_labeled(&values, &labels);
    let mut findings = Vec::new();
    let mut skipped = 0;
    for ((file, index, doc), diagnostics) in docs.iter().zip(results) {
        let kind = Kind::of(doc);
        if kind.is_none() {
            skipped += 1;
            if doc.get("kind").and_then(Value::as_str).is_none() {
                findings.push(Finding {
                    file: file.clone(),
                    document: *index,
                    kind: None,
                    name: None,
                    diagnostic: Diagnostic::error(
                        "kind",
                        "missing: not a Kubernetes object; add apiVersion: flagger.app/v1beta1 \
                         and kind: Canary, MetricTemplate or AlertProvider",
                    ),
                });
            }
            continue;
        }
        let name = doc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(String::from);
        findings.extend(diagnostics.into_iter().map(|diagnostic| Finding {
            file: file.clone(),
            document: *index,
            kind: kind.map(Kind::as_str),
            name: name.clone(),
            diagnostic,
        }));
    }

    let count = |s: Severity| {
        findings
            .iter()
            .filter(|f| f.diagnostic.severity == s)
            .count()
    };
    let report = Report {
        errors: count(Severity::Error),
        warnings: count(Severity::Warning),
        files: args.files.len(),
        documents: docs.len(),
        validated: docs.len() - skipped,
        skipped,
        findings,
        unreadable,
    };
    match args.output {
        Output::Text => print_text(&report),
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(ExitCode::from(if !report.unreadable.is_empty() {
        2
    } else if report.errors > 0 {
        1
    } else {
        0
    }))
}

fn print_text(report: &Report) {
    for u in &report.unreadable {
        let at = match (u.line, u.column) {
            (Some(l), Some(c)) => format!("{l}:{c}:"),
            (Some(l), None) => format!("{l}:"),
            _ => String::new(),
        };
        eprintln!("{}:{at} error: cannot read: {}", u.file, u.message);
    }
    for f in &report.findings {
        let path = if f.diagnostic.path.is_empty() {
            "."
        } else {
            &f.diagnostic.path
        };
        println!(
            "{}:{}:{}: {}: {}",
            f.file,
            f.document,
            path,
            f.diagnostic.severity.as_str(),
            f.diagnostic.message
        );
    }
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut summary = format!(
        "{} in {}: {}, {}",
        plural(report.validated, "manifest"),
        plural(report.files, "file"),
        plural(report.errors, "error"),
        plural(report.warnings, "warning"),
    );
    if report.skipped > 0 {
        summary.push_str(&format!(
            " ({} of other kinds skipped)",
            plural(report.skipped, "document")
        ));
    }
    if !report.unreadable.is_empty() {
        summary.push_str(&format!(
            "; {} could not be read",
            plural(report.unreadable.len(), "file")
        ));
    }
    println!("{summary}");
}

/// Reads a file (or stdin for `-`) as UTF-8 text, refusing inputs above the size limit before
/// reading them whole.
fn read(file: &str) -> Result<String, ParseError> {
    let fail = |message: String| ParseError {
        line: None,
        column: None,
        message,
    };
    let too_big = |size: u64| {
        fail(format!(
            "{size} bytes is over the limit of {} MiB for one file; split the manifests into \
             smaller files",
            MAX_INPUT_BYTES / (1024 * 1024)
        ))
    };
    let limit = MAX_INPUT_BYTES as u64;
    let mut bytes = Vec::new();
    if file == "-" {
        std::io::stdin()
            .lock()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(format!("cannot read stdin: {e}")))?;
        if bytes.len() as u64 > limit {
            return Err(fail(format!(
                "stdin is over the limit of {} MiB; split the manifests into smaller files",
                MAX_INPUT_BYTES / (1024 * 1024)
            )));
        }
    } else {
        let path = Path::new(file);
        let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot open: {e}")))?;
        if meta.is_dir() {
            return Err(fail(
                "is a directory: pass the manifest files, e.g. -f dir/*.yaml".into(),
            ));
        }
        if meta.len() > limit {
            return Err(too_big(meta.len()));
        }
        std::fs::File::open(path)
            .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
            .map_err(|e| fail(format!("cannot read: {e}")))?;
        if bytes.len() as u64 > limit {
            return Err(too_big(bytes.len() as u64));
        }
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        ParseError {
            line: Some(line),
            column: None,
            message: format!(
                "not UTF-8 text (invalid byte at offset {}): expected a YAML or JSON manifest",
                valid.len()
            ),
        }
    })
}
