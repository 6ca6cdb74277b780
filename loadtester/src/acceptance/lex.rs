//! Finds what a shell would do in a command line before it is split into words: a command line
//! with nothing but words and `|` runs the same natively as under `sh -c`; anything else would
//! need a shell, and the part that would is named.

use super::NeedsShell;

/// The command line cut at its unquoted `|` (quoted text is left for `shell_words`).
pub fn pipeline(cmd: &str) -> Result<Vec<&str>, NeedsShell> {
    let bytes = cmd.as_bytes();
    let (mut segments, mut start, mut i) = (Vec::new(), 0, 0);
    let (mut single, mut double) = (false, false);
    while i < bytes.len() {
        let c = bytes[i];
        let refuse = move |why: &'static str| Err(NeedsShell::new(token_at(cmd, i), why));
        // Command substitution is refused even where a shell would leave it alone (inside single
        // quotes): no acceptance check needs it, and it is what an injection attempt looks like.
        if c == b'`' || (c == b'$' && bytes.get(i + 1) == Some(&b'(')) {
            return refuse("command substitution");
        }
        if single {
            single = c != b'\'';
        } else if double {
            match c {
                b'"' => double = false,
                b'\\' => i += 1,
                b'$' => return refuse("a variable expansion"),
                _ => {}
            }
        } else {
            match c {
                b'\'' => single = true,
                b'"' => double = true,
                b'\\' => i += 1,
                b'$' => return refuse("a variable expansion"),
                b';' => return refuse("a command separator"),
                b'&' if bytes.get(i + 1) == Some(&b'&') => return refuse("a command list (&&)"),
                b'&' => return refuse("a background job (&)"),
                b'|' if bytes.get(i + 1) == Some(&b'|') => return refuse("a command list (||)"),
                b'|' => {
                    segments.push(&cmd[start..i]);
                    start = i + 1;
                }
                b'>' | b'<' => return refuse("a redirection"),
                b'(' | b')' => return refuse("a subshell"),
                b'{' if brace_expansion(&token_at(cmd, i)) => return refuse("a brace expansion"),
                b'\n' | b'\r' => {
                    return Err(NeedsShell::new("\\n".into(), "a second command line"));
                }
                b'#' if i == 0 || bytes[i - 1].is_ascii_whitespace() => {
                    return refuse("a comment");
                }
                b'~' if i == 0 || bytes[i - 1].is_ascii_whitespace() => {
                    return refuse("a home-directory expansion");
                }
                _ => {}
            }
        }
        i += 1;
    }
    segments.push(&cmd[start..]);
    Ok(segments)
}

/// `{a,b}` and `{1..3}` expand in bash; `%{http_code}` does not.
fn brace_expansion(token: &str) -> bool {
    token
        .split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
        .is_some_and(|(inner, _)| inner.contains(',') || inner.contains(".."))
}

/// The whitespace-delimited part of `cmd` around byte `i`, to name in a refusal.
fn token_at(cmd: &str, i: usize) -> String {
    let i = i.min(cmd.len());
    let start = cmd[..i]
        .rfind(char::is_whitespace)
        .map(|p| p + 1)
        .unwrap_or(0);
    let end = cmd[i..]
        .find(char::is_whitespace)
        .map(|p| p + i)
        .unwrap_or(cmd.len());
    let part = &cmd[start..end];
    if part.chars().count() > 40 {
        part.chars().take(40).collect::<String>() + "…"
    } else {
        part.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(cmd: &str) -> String {
        pipeline(cmd).unwrap_err().part
    }

    #[test]
    fn pipes_split_outside_quotes() {
        assert_eq!(
            pipeline("curl -s http://a/ | grep -E 'a|b'").unwrap(),
            vec!["curl -s http://a/ ", " grep -E 'a|b'"]
        );
        assert_eq!(
            pipeline("curl -d 'a=1&b=2;c' -H \"A: b\" x").unwrap().len(),
            1
        );
    }

    #[test]
    fn shell_syntax_is_named() {
        assert_eq!(part("curl x; rm -rf /"), "x;");
        assert_eq!(part("curl x && id"), "&&");
        assert_eq!(part("curl x || id"), "||");
        assert_eq!(part("curl x 2>&1"), "2>&1");
        assert_eq!(part("curl -o /tmp/x x > out"), ">");
        assert_eq!(part("curl \"http://x/$(id)\""), "\"http://x/$(id)\"");
        assert_eq!(part("curl 'x/`id`'"), "'x/`id`'");
        assert_eq!(part("curl $HOST"), "$HOST");
        assert_eq!(part("curl x &"), "&");
        assert_eq!(part("curl x\nid"), "\\n");
        assert_eq!(part("curl http://x/{a,b}"), "http://x/{a,b}");
        assert!(pipeline("curl -w %{http_code} x").is_ok());
    }

    #[test]
    fn escaped_and_quoted_metacharacters_are_data() {
        assert!(pipeline(r"curl -H 'A: x;y' x\;y").is_ok());
        assert!(pipeline(r#"curl -d "a\"b" x"#).is_ok());
    }
}
