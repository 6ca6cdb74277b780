//! `curl` with the flags acceptance checks use, on reqwest. Exit statuses and what is written
//! to stdout follow curl's, so a `| grep` after it sees the same text.

use std::time::{Duration, Instant};

use super::{NeedsShell, Refused, bad};

/// Flags taking a value, short and long (`-d x`, `-dx`, `--data x`, `--data=x`).
const WITH_VALUE: &[&str] = &[
    "-X",
    "--request",
    "-H",
    "--header",
    "-d",
    "--data",
    "--data-raw",
    "--data-binary",
    "--json",
    "-o",
    "--output",
    "-w",
    "--write-out",
    "-u",
    "--user",
    "-A",
    "--user-agent",
    "-m",
    "--max-time",
    "--connect-timeout",
    "--retry",
    "--url",
];
const SWITCHES: &[&str] = &[
    "-s",
    "--silent",
    "-S",
    "--show-error",
    "-f",
    "--fail",
    "-L",
    "--location",
    "-k",
    "--insecure",
    "-I",
    "--head",
];

/// One `%{variable}` or literal piece of `-w`.
#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Text(String),
    Var(&'static str),
}

const VARS: &[&str] = &[
    "http_code",
    "response_code",
    "url_effective",
    "content_type",
    "size_download",
    "time_total",
];

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Curl {
    url: String,
    method: Option<String>,
    headers: Vec<(String, String)>,
    data: Vec<String>,
    json: bool,
    fail: bool,
    silent: bool,
    show_error: bool,
    follow: bool,
    insecure: bool,
    head: bool,
    discard: bool,
    write_out: Vec<Piece>,
    user: Option<(String, Option<String>)>,
    user_agent: Option<String>,
    max_time: Option<Duration>,
    connect_timeout: Option<Duration>,
    retry: u32,
}

/// What curl would have produced.
pub struct CurlOutput {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

fn flag_error(flag: &str) -> Refused {
    NeedsShell::new(flag.to_string(), "a curl flag serin does not run natively").into()
}

/// Splits `-sd x` into (`-s`), (`-d`, `x`); `--data=x` into (`--data`, `x`).
fn flags(args: &[String]) -> Result<Vec<(String, Option<String>)>, Refused> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (format!("--{n}"), Some(v.to_string())),
                None => (arg.clone(), None),
            };
            if SWITCHES.contains(&name.as_str()) && inline.is_none() {
                out.push((name, None));
            } else if WITH_VALUE.contains(&name.as_str()) {
                let v = inline.or_else(|| it.next().cloned());
                out.push((
                    name.clone(),
                    Some(v.ok_or_else(|| bad("curl", &name, "needs a value"))?),
                ));
            } else {
                return Err(flag_error(arg));
            }
        } else if arg.starts_with('-') && arg.len() > 1 {
            for (i, c) in arg[1..].char_indices() {
                let name = format!("-{c}");
                if SWITCHES.contains(&name.as_str()) {
                    out.push((name, None));
                } else if WITH_VALUE.contains(&name.as_str()) {
                    let rest = &arg[1 + i + c.len_utf8()..];
                    let v = if rest.is_empty() {
                        it.next().cloned()
                    } else {
                        Some(rest.to_string())
                    };
                    out.push((
                        name.clone(),
                        Some(v.ok_or_else(|| bad("curl", &name, "needs a value"))?),
                    ));
                    break;
                } else {
                    return Err(flag_error(&name));
                }
            }
        } else {
            out.push(("--url".into(), Some(arg.clone())));
        }
    }
    Ok(out)
}

fn seconds(flag: &str, v: &str) -> Result<Duration, Refused> {
    v.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| bad("curl", flag, format!("expected seconds, got '{v}'")))
}

fn no_file(flag: &str, v: &str) -> Result<(), Refused> {
    match v.strip_prefix('@') {
        Some(_) => Err(NeedsShell::new(format!("{flag} {v}"), "reads a local file").into()),
        None => Ok(()),
    }
}

impl Curl {
    pub fn parse(args: &[String]) -> Result<Curl, Refused> {
        let mut c = Curl::default();
        for (flag, value) in flags(args)? {
            let v = value.unwrap_or_default();
            match flag.as_str() {
                "-s" | "--silent" => c.silent = true,
                "-S" | "--show-error" => c.show_error = true,
                "-f" | "--fail" => c.fail = true,
                "-L" | "--location" => c.follow = true,
                "-k" | "--insecure" => c.insecure = true,
                "-I" | "--head" => c.head = true,
                "-X" | "--request" => c.method = Some(v),
                "-H" | "--header" => c.header(&v)?,
                "-d" | "--data" | "--data-binary" => {
                    no_file(&flag, &v)?;
                    c.data.push(v);
                }
                "--data-raw" => c.data.push(v),
                "--json" => {
                    no_file(&flag, &v)?;
                    c.json = true;
                    c.data.push(v);
                }
                "-o" | "--output" if v == "/dev/null" => c.discard = true,
                "-o" | "--output" if v == "-" => {}
                "-o" | "--output" => {
                    return Err(NeedsShell::new(format!("{flag} {v}"), "writes a file").into());
                }
                "-w" | "--write-out" => c.write_out = write_out(&v)?,
                "-u" | "--user" => {
                    c.user = Some(match v.split_once(':') {
                        Some((u, p)) => (u.to_string(), Some(p.to_string())),
                        None => (v, None),
                    })
                }
                "-A" | "--user-agent" => c.user_agent = Some(v),
                "-m" | "--max-time" => c.max_time = Some(seconds(&flag, &v)?),
                "--connect-timeout" => c.connect_timeout = Some(seconds(&flag, &v)?),
                "--retry" => {
                    c.retry = v
                        .parse()
                        .map_err(|_| bad("curl", &flag, format!("expected a count, got '{v}'")))?
                }
                _ => c.url(&v)?,
            }
        }
        if c.url.is_empty() {
            return Err(bad("curl", "URL", "no URL given"));
        }
        Ok(c)
    }

    fn header(&mut self, v: &str) -> Result<(), Refused> {
        no_file("-H", v)?;
        let Some((name, value)) = v.split_once(':') else {
            return Err(bad("curl", "-H", format!("'{v}' is not 'Name: value'")));
        };
        // `-H 'Name:'` removes a header curl would send; nothing to remove here.
        if !value.trim().is_empty() {
            self.headers
                .push((name.trim().to_string(), value.trim().to_string()));
        }
        Ok(())
    }

    fn url(&mut self, v: &str) -> Result<(), Refused> {
        if !self.url.is_empty() {
            return Err(NeedsShell::new(v.to_string(), "a second URL").into());
        }
        // curl guesses http:// for a URL without a scheme.
        let full = if v.contains("://") {
            v.to_string()
        } else {
            format!("http://{v}")
        };
        match url::Url::parse(&full) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {
                self.url = full;
                Ok(())
            }
            _ => Err(bad("curl", v, "not an http(s) URL")),
        }
    }
}

/// `-w` text: `%{var}`, `%%`, and the escapes `\n`, `\r`, `\t`, `\\`.
fn write_out(v: &str) -> Result<Vec<Piece>, Refused> {
    no_file("-w", v)?;
    let (mut out, mut text, mut rest) = (Vec::new(), String::new(), v);
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match (c, rest.chars().next()) {
            ('%', Some('%')) | ('\\', Some('\\')) => {
                text.push(c);
                rest = &rest[1..];
            }
            ('\\', Some(e @ ('n' | 'r' | 't'))) => {
                text.push(match e {
                    'n' => '\n',
                    'r' => '\r',
                    _ => '\t',
                });
                rest = &rest[1..];
            }
            ('%', Some('{')) => {
                let Some((name, after)) = rest[1..].split_once('}') else {
                    return Err(bad("curl", "-w", format!("unterminated %{{ in '{v}'")));
                };
                let Some(var) = VARS.iter().find(|k| **k == name).copied() else {
                    return Err(NeedsShell::new(
                        format!("%{{{name}}}"),
                        format!(
                            "a -w variable serin does not write; it writes {}",
                            VARS.join(", ")
                        ),
                    )
                    .into());
                };
                out.push(Piece::Text(std::mem::take(&mut text)));
                out.push(Piece::Var(var));
                rest = after;
            }
            _ => text.push(c),
        }
    }
    out.push(Piece::Text(text));
    Ok(out)
}

/// Statuses curl retries on with `--retry`.
fn transient(code: u16) -> bool {
    matches!(code, 408 | 429 | 500 | 502 | 503 | 504)
}

/// curl's exit status for a transfer error.
fn exit_code(e: &reqwest::Error) -> (i32, &'static str) {
    let chain = format!("{e:?}").to_ascii_lowercase();
    if e.is_timeout() {
        (28, "Operation timed out")
    } else if chain.contains("dns error") || chain.contains("failed to lookup") {
        (6, "Could not resolve host")
    } else if chain.contains("certificate") || chain.contains("invalidcertificate") {
        (60, "SSL certificate problem")
    } else if e.is_connect() {
        (7, "Failed to connect")
    } else if e.is_redirect() {
        (47, "Maximum redirects followed")
    } else {
        (56, "Failure when receiving data from the peer")
    }
}

impl Curl {
    fn client(&self) -> Result<reqwest::Client, reqwest::Error> {
        let redirects = if self.follow {
            reqwest::redirect::Policy::limited(50)
        } else {
            reqwest::redirect::Policy::none()
        };
        let mut b = reqwest::Client::builder()
            .redirect(redirects)
            .danger_accept_invalid_certs(self.insecure)
            .user_agent(
                self.user_agent
                    .clone()
                    .unwrap_or_else(|| "curl/8 (serin-loadtester)".into()),
            );
        if let Some(t) = self.connect_timeout {
            b = b.connect_timeout(t);
        }
        if let Some(t) = self.max_time {
            b = b.timeout(t);
        }
        b.build()
    }

    fn request(&self, client: &reqwest::Client) -> reqwest::RequestBuilder {
        let default = match (self.head, self.data.is_empty()) {
            (true, _) => "HEAD",
            (false, false) => "POST",
            _ => "GET",
        };
        let method = self
            .method
            .as_deref()
            .unwrap_or(default)
            .to_ascii_uppercase();
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut r = client
            .request(method, &self.url)
            .header("accept", if self.json { "application/json" } else { "*/*" });
        let has = |n: &str| self.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
        if !self.data.is_empty() {
            if !has("content-type") {
                let ct = if self.json {
                    "application/json"
                } else {
                    "application/x-www-form-urlencoded"
                };
                r = r.header("content-type", ct);
            }
            r = r.body(self.data.join(if self.json { "" } else { "&" }));
        }
        for (k, v) in &self.headers {
            r = r.header(k.as_str(), v.as_str());
        }
        if let Some((user, pass)) = &self.user {
            r = r.basic_auth(user, pass.as_ref());
        }
        r
    }

    pub async fn run(&self) -> CurlOutput {
        let started = Instant::now();
        let client = match self.client() {
            Ok(c) => c,
            Err(e) => return self.failed(2, &format!("Failed initialization: {e}"), None),
        };
        let mut delay = Duration::from_secs(1);
        let mut left = self.retry;
        loop {
            let result = self.request(&client).send().await;
            let again = match &result {
                Ok(r) => transient(r.status().as_u16()),
                Err(e) => e.is_timeout(),
            };
            if again && left > 0 {
                left -= 1;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(600));
                continue;
            }
            return match result {
                Ok(r) => self.render(r, started).await,
                Err(e) => {
                    let (code, what) = exit_code(&e);
                    self.failed(code, &format!("{what}: {e}"), None)
                }
            };
        }
    }

    /// A run that ended with an error: curl writes the message only when not silent (or -S).
    fn failed(&self, status: i32, msg: &str, write: Option<String>) -> CurlOutput {
        let stderr = if !self.silent || self.show_error {
            format!("curl: ({status}) {msg}\n")
        } else {
            String::new()
        };
        CurlOutput {
            status,
            stdout: write.unwrap_or_default().into_bytes(),
            stderr,
        }
    }

    async fn render(&self, r: reqwest::Response, started: Instant) -> CurlOutput {
        let code = r.status().as_u16();
        let url = r.url().to_string();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let head = self.head.then(|| head_text(&r));
        let body = match r.bytes().await {
            Ok(b) => b,
            Err(e) => {
                let (status, what) = exit_code(&e);
                return self.failed(status, &format!("{what}: {e}"), None);
            }
        };
        let vars = |name: &str| match name {
            "http_code" | "response_code" => format!("{code:03}"),
            "url_effective" => url.clone(),
            "content_type" => content_type.clone(),
            "size_download" => body.len().to_string(),
            _ => format!("{:.6}", started.elapsed().as_secs_f64()),
        };
        let written: String = self
            .write_out
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.clone(),
                Piece::Var(v) => vars(v),
            })
            .collect();
        if self.fail && code >= 400 {
            return self.failed(
                22,
                &format!("The requested URL returned error: {code}"),
                Some(written),
            );
        }
        let mut stdout = match (head, self.discard) {
            (_, true) => Vec::new(),
            (Some(h), false) => h.into_bytes(),
            (None, false) => body.to_vec(),
        };
        stdout.extend_from_slice(written.as_bytes());
        CurlOutput {
            status: 0,
            stdout,
            stderr: String::new(),
        }
    }
}

/// What `curl -I` prints: the status line and the headers.
fn head_text(r: &reqwest::Response) -> String {
    let version = match r.version() {
        reqwest::Version::HTTP_2 => "HTTP/2",
        reqwest::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let mut out = format!("{version} {}\r\n", r.status());
    for (k, v) in r.headers() {
        out.push_str(&format!(
            "{k}: {}\r\n",
            String::from_utf8_lossy(v.as_bytes())
        ));
    }
    out + "\r\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(cmd: &str) -> Result<Curl, Refused> {
        Curl::parse(&shell_words::split(cmd).unwrap())
    }

    #[test]
    fn combined_short_flags_take_values() {
        let c = parse("-sd 'test' -sH 'Host: app.example.com' -XPUT -o/dev/null http://x/token")
            .unwrap();
        assert!(c.silent && c.discard);
        assert_eq!(c.data, vec!["test"]);
        assert_eq!(
            c.headers,
            vec![("Host".to_string(), "app.example.com".to_string())]
        );
        assert_eq!(c.method.as_deref(), Some("PUT"));
        assert_eq!(c.url, "http://x/token");
        assert_eq!(
            parse("--max-time=2.5 x").unwrap().max_time,
            Some(Duration::from_millis(2500))
        );
        assert_eq!(parse("podinfo:9898/").unwrap().url, "http://podinfo:9898/");
    }

    #[test]
    fn write_out_variables() {
        assert_eq!(
            write_out(r"%{http_code}\n").unwrap(),
            vec![
                Piece::Text(String::new()),
                Piece::Var("http_code"),
                Piece::Text("\n".into())
            ]
        );
        assert_eq!(
            parse("-w '%{ssl_verify_result}' x").unwrap_err().part(),
            "%{ssl_verify_result}"
        );
    }

    #[test]
    fn unsupported_and_file_flags_are_named() {
        assert_eq!(parse("--compressed x").unwrap_err().part(), "--compressed");
        assert_eq!(parse("-sv x").unwrap_err().part(), "-v");
        assert_eq!(parse("-o /tmp/out x").unwrap_err().part(), "-o /tmp/out");
        assert_eq!(
            parse("-d @/etc/passwd x").unwrap_err().part(),
            "-d @/etc/passwd"
        );
        assert_eq!(parse("x y").unwrap_err().part(), "y");
        assert_eq!(parse("-m soon x").unwrap_err().part(), "-m");
        assert_eq!(parse("-s").unwrap_err().part(), "URL");
        assert_eq!(
            parse("file:///etc/passwd").unwrap_err().part(),
            "file:///etc/passwd"
        );
    }
}
