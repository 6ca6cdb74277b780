//! Flagger's acceptance-test commands run natively, without a shell: `curl …` optionally piped to
//! `grep …`, and `grpc_health_probe …`. A command line is checked for shell syntax first
//! ([`lex::pipeline`]), then split into words and parsed per program; whatever would need a shell
//! (an operator, an unknown program or flag) is refused with that part named.
//!
//! Pass/fail is the exit status of the pipeline, as with Flagger's `sh -c` (no `pipefail`): the
//! last command's. `curl -s url | grep x` therefore fails only when grep finds nothing.

mod curl;
mod grep;
mod grpc;
mod lex;

use std::fmt;

pub use curl::Curl;
pub use grep::Grep;
pub use grpc::Probe;

/// What a refused command is told to do instead.
pub const REMEDY: &str = "run the loadtester with --allow-shell (off in the chart), or write it as a native command: curl … [| grep …], grpc_health_probe -addr=…, hey …";

/// A part of a command line that only a shell (or the real program) could run.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("`{part}` ({why}) needs a shell: {REMEDY}")]
pub struct NeedsShell {
    pub part: String,
    pub why: String,
}

impl NeedsShell {
    pub fn new(part: String, why: impl Into<String>) -> Self {
        NeedsShell {
            part,
            why: why.into(),
        }
    }
}

/// Why a command is not run natively.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Refused {
    #[error(transparent)]
    NeedsShell(#[from] NeedsShell),
    /// A supported flag with a value that does not parse.
    #[error("{program} {flag}: {problem}")]
    BadValue {
        program: &'static str,
        flag: String,
        problem: String,
    },
}

impl Refused {
    /// The part of the command the refusal is about, for logs.
    pub fn part(&self) -> &str {
        match self {
            Refused::NeedsShell(n) => &n.part,
            Refused::BadValue { flag, .. } => flag,
        }
    }
}

fn bad(program: &'static str, flag: &str, problem: impl Into<String>) -> Refused {
    Refused::BadValue {
        program,
        flag: flag.to_string(),
        problem: problem.into(),
    }
}

/// A command line that runs natively.
#[derive(Clone, Debug, PartialEq)]
pub enum Native {
    Curl { curl: Curl, grep: Option<Grep> },
    Probe(Probe),
}

/// The result of a run: the exit status a shell would report, and the combined output.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub status: i32,
    pub output: String,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.status == 0
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit status {}: {}", self.status, self.output.trim_end())
    }
}

/// The program a word names: `curl` or `/usr/bin/curl`.
pub fn program(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// Parses a command line into a native command, or says which part needs a shell.
pub fn parse(cmd: &str) -> Result<Native, Refused> {
    let segments = lex::pipeline(cmd)?;
    let mut commands = Vec::new();
    for segment in &segments {
        let words = shell_words::split(segment)
            .map_err(|_| NeedsShell::new(segment.trim().to_string(), "an unterminated quote"))?;
        let Some(first) = words.first() else {
            return Err(NeedsShell::new("|".into(), "an empty command in a pipeline").into());
        };
        if is_assignment(first) {
            return Err(NeedsShell::new(first.clone(), "an environment assignment").into());
        }
        commands.push(words);
    }
    match commands.as_slice() {
        [one] if program(&one[0]) == "grpc_health_probe" => {
            Ok(Native::Probe(Probe::parse(&one[1..])?))
        }
        [c] if program(&c[0]) == "curl" => Ok(Native::Curl {
            curl: Curl::parse(&c[1..])?,
            grep: None,
        }),
        [c, g] if program(&c[0]) == "curl" && program(&g[0]) == "grep" => Ok(Native::Curl {
            curl: Curl::parse(&c[1..])?,
            grep: Some(Grep::parse(&g[1..])?),
        }),
        [c, _] if program(&c[0]) == "curl" => Err(unknown(
            &commands[1][0],
            "a program piped to that is not grep",
        )),
        [c, ..] if commands.len() > 2 && program(&c[0]) == "curl" => Err(NeedsShell::new(
            segments[2].trim().to_string(),
            "a pipeline longer than curl | grep",
        )
        .into()),
        [c, ..] => Err(unknown(&c[0], "a program that does not run natively")),
        [] => Err(NeedsShell::new(String::new(), "an empty command").into()),
    }
}

/// A command line that is one command, with no shell syntax (for hey and helm, whose own
/// parsers take the words).
pub fn single_command(cmd: &str) -> Result<(), Refused> {
    match lex::pipeline(cmd)?.as_slice() {
        [_] => Ok(()),
        [_, second, ..] => {
            Err(NeedsShell::new(format!("|{second}").trim().to_string(), "a pipeline").into())
        }
        [] => Ok(()),
    }
}

fn unknown(word: &str, why: &str) -> Refused {
    NeedsShell::new(word.to_string(), why).into()
}

/// `NAME=value` before a command sets its environment in a shell.
fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

impl Native {
    /// Runs to the end; the caller bounds it with its timeout.
    pub async fn run(&self) -> Outcome {
        match self {
            Native::Probe(p) => p.run().await,
            Native::Curl { curl, grep } => {
                let out = curl.run().await;
                let Some(grep) = grep else {
                    let mut output = out.stderr;
                    output.push_str(&String::from_utf8_lossy(&out.stdout));
                    return Outcome {
                        status: out.status,
                        output,
                    };
                };
                let (status, stdout) = grep.run(&out.stdout);
                Outcome {
                    status,
                    output: out.stderr + &String::from_utf8_lossy(&stdout),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(cmd: &str) -> String {
        parse(cmd).unwrap_err().part().to_string()
    }

    #[test]
    fn flaggers_commands_parse() {
        assert!(matches!(
            parse("curl -sd 'test' http://podinfo-canary/token | grep token").unwrap(),
            Native::Curl { grep: Some(_), .. }
        ));
        assert!(matches!(
            parse("grpc_health_probe -connect-timeout=1s -addr=podinfo-canary:9999").unwrap(),
            Native::Probe(_)
        ));
        assert!(matches!(
            parse("/usr/bin/curl -s http://podinfo.test/").unwrap(),
            Native::Curl { grep: None, .. }
        ));
    }

    #[test]
    fn everything_else_names_its_part() {
        assert_eq!(refused("bats /tests/acceptance.bats"), "bats");
        assert_eq!(refused("curl -s x | jq .token"), "jq");
        assert_eq!(refused("curl -s x | grep a | grep b"), "grep b");
        assert_eq!(refused("X=1 curl x"), "X=1");
        assert_eq!(refused("curl 'x"), "curl 'x");
        assert_eq!(refused("curl x |"), "|");
        let msg = parse("curl x && rm -rf /").unwrap_err().to_string();
        assert!(msg.starts_with("`&&` (a command list (&&)) needs a shell: run the loadtester with --allow-shell (off in the chart)"), "{msg}");
    }
}
