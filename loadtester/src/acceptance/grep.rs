//! `grep` over curl's output, with GNU grep's basic (default) and extended (`-E`) regular
//! expressions translated to the `regex` crate, and grep's exit statuses (0 a line selected,
//! 1 none).

use regex::bytes::{Regex, RegexBuilder};

use super::{NeedsShell, Refused, bad};

#[derive(Clone, Debug)]
pub struct Grep {
    regex: Regex,
    invert: bool,
    quiet: bool,
    count: bool,
}

impl PartialEq for Grep {
    fn eq(&self, other: &Self) -> bool {
        self.regex.as_str() == other.regex.as_str()
            && (self.invert, self.quiet, self.count) == (other.invert, other.quiet, other.count)
    }
}

#[derive(Default)]
struct Flags {
    extended: bool,
    fixed: bool,
    ignore_case: bool,
    word: bool,
    line: bool,
    invert: bool,
    quiet: bool,
    count: bool,
}

impl Flags {
    fn set(&mut self, c: char) -> Result<(), Refused> {
        match c {
            'E' => self.extended = true,
            'F' => self.fixed = true,
            'i' => self.ignore_case = true,
            'w' => self.word = true,
            'x' => self.line = true,
            'v' => self.invert = true,
            'q' | 's' => self.quiet |= c == 'q',
            'c' => self.count = true,
            _ => {
                return Err(NeedsShell::new(
                    format!("-{c}"),
                    "a grep flag serin does not run natively",
                )
                .into());
            }
        }
        Ok(())
    }
}

impl Grep {
    pub fn parse(args: &[String]) -> Result<Grep, Refused> {
        let (mut flags, mut pattern) = (Flags::default(), None);
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let long = match arg.as_str() {
                "--quiet" | "--silent" => Some('q'),
                "--invert-match" => Some('v'),
                "--extended-regexp" => Some('E'),
                "--fixed-strings" => Some('F'),
                "--ignore-case" => Some('i'),
                "--count" => Some('c'),
                "--word-regexp" => Some('w'),
                "--line-regexp" => Some('x'),
                _ => None,
            };
            if let Some(c) = long {
                flags.set(c)?;
            } else if arg == "-e" || arg == "--regexp" {
                pattern = Some(
                    it.next()
                        .ok_or_else(|| bad("grep", arg, "needs a pattern"))?
                        .clone(),
                );
            } else if arg.starts_with("--") {
                return Err(NeedsShell::new(
                    arg.clone(),
                    "a grep flag serin does not run natively",
                )
                .into());
            } else if let Some(short) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
                short.chars().try_for_each(|c| flags.set(c))?;
            } else if pattern.is_none() {
                pattern = Some(arg.clone());
            } else {
                return Err(NeedsShell::new(
                    arg.clone(),
                    "a file for grep to read; it reads curl's output",
                )
                .into());
            }
        }
        let pattern = pattern.ok_or_else(|| bad("grep", "PATTERN", "no pattern given"))?;
        Grep::build(&pattern, flags)
    }

    fn build(pattern: &str, f: Flags) -> Result<Grep, Refused> {
        let mut re = match (f.fixed, f.extended) {
            (true, _) => regex::escape(pattern),
            (false, true) => word_edges(pattern),
            (false, false) => basic(pattern),
        };
        if f.word {
            re = format!(r"\b(?:{re})\b");
        }
        if f.line {
            re = format!("^(?:{re})$");
        }
        let regex = RegexBuilder::new(&re)
            .case_insensitive(f.ignore_case)
            .build()
            .map_err(|e| {
                bad(
                    "grep",
                    pattern,
                    format!("not a regular expression serin can run: {e}"),
                )
            })?;
        Ok(Grep {
            regex,
            invert: f.invert,
            quiet: f.quiet,
            count: f.count,
        })
    }

    /// Exit status and stdout, as grep would give them for `input`.
    pub fn run(&self, input: &[u8]) -> (i32, Vec<u8>) {
        let mut lines: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
        if input.ends_with(b"\n") || input.is_empty() {
            lines.pop();
        }
        let selected: Vec<&[u8]> = lines
            .into_iter()
            .filter(|l| self.regex.is_match(l) != self.invert)
            .collect();
        let status = if selected.is_empty() { 1 } else { 0 };
        let out = match (self.quiet, self.count) {
            (true, _) => Vec::new(),
            (false, true) => format!("{}\n", selected.len()).into_bytes(),
            (false, false) => selected
                .iter()
                .flat_map(|l| l.iter().copied().chain([b'\n']))
                .collect(),
        };
        (status, out)
    }
}

/// GNU's `\<`/`\>` word edges, which the regex crate writes `\b`.
fn word_edges(ere: &str) -> String {
    ere.replace(r"\<", r"\b").replace(r"\>", r"\b")
}

/// A basic regular expression (grep's default) as an extended one: `\(`, `\)`, `\{`, `\}`, `\|`,
/// `\+`, `\?` are operators and their unescaped forms literals; bracket expressions are copied.
fn basic(bre: &str) -> String {
    let (mut out, mut chars) = (String::new(), bre.chars().peekable());
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(op @ ('(' | ')' | '{' | '}' | '|' | '+' | '?')) => out.push(op),
                Some('<' | '>') => out.push_str(r"\b"),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push_str(r"\\"),
            },
            '(' | ')' | '{' | '}' | '|' | '+' | '?' => {
                out.push('\\');
                out.push(c);
            }
            // A leading `*` is a literal in a basic expression.
            '*' if at_start => out.push_str(r"\*"),
            '[' => bracket(&mut chars, &mut out),
            _ => out.push(c),
        }
        at_start = out.is_empty() || out.ends_with('^') || out.ends_with('(');
    }
    out
}

/// Copies a bracket expression after its `[`: a `]` first (or after `^`) is a member, and
/// `[:alpha:]` classes hold a `]` of their own.
fn bracket(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, out: &mut String) {
    out.push('[');
    if chars.peek() == Some(&'^') {
        out.push('^');
        chars.next();
    }
    if chars.peek() == Some(&']') {
        out.push_str(r"\]");
        chars.next();
    }
    while let Some(b) = chars.next() {
        match b {
            ']' => {
                out.push(']');
                return;
            }
            '[' if chars.peek() == Some(&':') => {
                out.push('[');
                for k in chars.by_ref() {
                    out.push(k);
                    if k == ']' {
                        break;
                    }
                }
            }
            // A backslash is a member of a POSIX bracket expression, not an escape.
            '\\' => out.push_str(r"\\"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grep(args: &str, input: &str) -> (i32, String) {
        let g = Grep::parse(&shell_words::split(args).unwrap()).unwrap();
        let (status, out) = g.run(input.as_bytes());
        (status, String::from_utf8(out).unwrap())
    }

    #[test]
    fn exit_status_and_output_are_greps() {
        let body = "{\n  \"token\": \"abc\",\n  \"expires_at\": \"x\"\n}\n";
        assert_eq!(grep("token", body), (0, "  \"token\": \"abc\",\n".into()));
        assert_eq!(grep("-q nope", body), (1, String::new()));
        assert_eq!(grep("-v '[{}]'", body).1.lines().count(), 2);
        assert_eq!(grep("-c -i TOKEN", body), (0, "1\n".into()));
        assert_eq!(grep("-qE 'tok(en|ens)'", body).0, 0);
        assert_eq!(grep("-F 'a.c'", "abc\n").0, 1);
        assert_eq!(grep("-x abc", "abc\nabcd").1, "abc\n");
        assert_eq!(grep("-q x", "").0, 1);
    }

    #[test]
    fn basic_expressions_translate() {
        assert_eq!(basic(r"a\(b\|c\)\+"), r"a(b|c)+");
        assert_eq!(basic("a(b)|c+?"), r"a\(b\)\|c\+\?");
        assert_eq!(basic("*x"), r"\*x");
        assert_eq!(basic("[]a]x"), r"[\]a]x");
        assert_eq!(basic("[[:digit:]]x"), "[[:digit:]]x");
        assert_eq!(basic(r"\<200\>"), r"\b200\b");
        assert_eq!(grep("'HTTP/1.[01] 200'", "HTTP/1.1 200 OK\n").0, 0);
        assert_eq!(grep("'\"status\": *\"ok\"'", "{\"status\":  \"ok\"}").0, 0);
    }

    #[test]
    fn unsupported_is_named() {
        let e = Grep::parse(&["-P".into(), "x".into()]).unwrap_err();
        assert_eq!(e.part(), "-P");
        let e = Grep::parse(&["x".into(), "/etc/passwd".into()]).unwrap_err();
        assert_eq!(e.part(), "/etc/passwd");
        let e = Grep::parse(&[r"\(a\)\1".into()]).unwrap_err();
        assert_eq!(e.part(), r"\(a\)\1");
    }
}
