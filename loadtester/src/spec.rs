//! What one attack does, and the parser of hey's command line into it.
//!
//! hey's flags are Go `flag` flags: single dash, long names (`-disable-keepalive`), `-f v` or
//! `-f=v`, parsing stops at the first argument that is not a flag. The same parser serves the
//! terminal (`serin loadtest`) and the service (`metadata.cmd`), so both accept exactly hey's syntax.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One HTTP request of an attack. hey has one; a goose scenario has several, chosen by weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestSpec {
    pub method: String,
    pub url: String,
    /// Headers in order; `Host` is sent as the request's authority override.
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// Relative frequency among the attack's requests (goose transaction weight).
    pub weight: u32,
    /// When set, any other status fails the request; otherwise a status ≥ 500 does.
    pub expect_status: Option<u16>,
}

/// When the attack ends.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// `-n`: this many requests in total.
    Requests(u64),
    /// `-z`: stop issuing requests after this long (in-flight requests finish).
    Duration(#[serde(with = "secs_f64")] Duration),
}

/// Everything an attack needs; serialised as JSON to the worker process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttackSpec {
    pub requests: Vec<RequestSpec>,
    /// `-c`: workers (goose users) in the closed model; cap on requests in flight in the open one.
    pub concurrency: u32,
    pub stop: Stop,
    /// `-q`: requests per second per worker (hey semantics: total = c × q).
    pub qps_per_worker: Option<f64>,
    /// `--rate`: open model, requests per second in total whatever the latency.
    pub rate: Option<f64>,
    /// `-t`: per-request timeout; `None` waits forever (hey's `-t 0`).
    #[serde(with = "opt_secs_f64")]
    pub timeout: Option<Duration>,
    pub disable_keepalive: bool,
    pub disable_compression: bool,
    pub disable_redirects: bool,
    pub http2: bool,
}

/// Output format of the terminal command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Output {
    #[default]
    Text,
    Json,
}

/// A parsed command line: the attack plus serin's own verdict/output flags.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub spec: AttackSpec,
    /// `--max-error-rate`: fraction in [0, 1] (a value > 1 is read as a percentage).
    pub max_error_rate: Option<f64>,
    pub output: Output,
    /// `-D`: the body is read from this file by the caller (the service refuses it).
    pub body_file: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    #[error("{flag}: {message}")]
    Flag { flag: String, message: String },
    #[error("{0}")]
    Usage(String),
}

fn flag_err(flag: &str, message: impl Into<String>) -> SpecError {
    SpecError::Flag {
        flag: format!("-{flag}"),
        message: message.into(),
    }
}

const BOOL_FLAGS: &[&str] = &[
    "h2",
    "disable-keepalive",
    "disable-compression",
    "disable-redirects",
];
const VALUE_FLAGS: &[&str] = &[
    "n",
    "c",
    "q",
    "z",
    "m",
    "H",
    "h",
    "d",
    "D",
    "T",
    "t",
    "A",
    "a",
    "U",
    "host",
    "cpus",
    "rate",
    "max-error-rate",
    "output",
];

/// Usage text in hey's words, plus serin's additions.
pub const USAGE: &str = "Usage: serin loadtest [options...] <url>

Options (hey's flags):
  -n  Number of requests to run. Default is 200.
  -c  Number of workers to run concurrently. Total number of requests cannot
      be smaller than the concurrency level. Default is 50.
  -q  Rate limit, in queries per second (QPS) per worker. Default is no rate limit.
  -z  Duration of application to send requests. When duration is reached,
      application stops and exits. If duration is specified, n is ignored.
      Examples: -z 10s -z 3m.
  -m  HTTP method, one of GET, POST, PUT, DELETE, HEAD, OPTIONS, PATCH.
  -H  Custom HTTP header. You can specify as many as needed by repeating the flag.
      For example, -H \"Accept: text/html\" -H \"Content-Type: application/xml\" .
  -t  Timeout for each request in seconds. Default is 20, use 0 for infinite.
  -A  HTTP Accept header.
  -d  HTTP request body.
  -D  HTTP request body from file. For example, /home/user/file.txt or ./file.txt.
  -T  Content-type, defaults to \"text/html\".
  -U  User-Agent.
  -a  Basic authentication, username:password.
  -host  HTTP Host header.
  -disable-compression  Disable compression.
  -disable-keepalive    Disable keep-alive, prevents re-use of TCP connections between different HTTP requests.
  -disable-redirects    Disable following of HTTP redirects.
  -h2   Enable HTTP/2 (prior knowledge, as hey's -h2 over cleartext).
  -cpus Accepted for compatibility and ignored.

serin's additions:
  --rate R             Open model: R requests/s in total whatever the latency (-c caps requests in flight).
  --max-error-rate P   Exit 1 when the failed fraction exceeds P (0.05 or 5%).
  --output json        Print the summary as JSON instead of text.

A request fails on a connection error, a timeout or a status >= 500; failed requests stay in every figure.";

/// Parses hey's arguments (without the program name).
pub fn parse_hey_args<S: AsRef<str>>(args: &[S]) -> Result<Command, SpecError> {
    let mut n: Option<u64> = None;
    let mut c: u32 = 50;
    let mut q: Option<f64> = None;
    let mut z: Option<Duration> = None;
    let mut method = "GET".to_string();
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut body: Option<String> = None;
    let mut body_file: Option<String> = None;
    let mut content_type = "text/html".to_string();
    let mut timeout_secs: u64 = 20;
    let mut accept: Option<String> = None;
    let mut auth: Option<(String, String)> = None;
    let mut user_agent: Option<String> = None;
    let mut host: Option<String> = None;
    let mut rate: Option<f64> = None;
    let mut max_error_rate: Option<f64> = None;
    let mut output = Output::Text;
    let (mut h2, mut no_keepalive, mut no_compression, mut no_redirects) =
        (false, false, false, false);

    let mut i = 0;
    let mut positional: Vec<&str> = Vec::new();
    while i < args.len() {
        let arg = args[i].as_ref();
        if !positional.is_empty() || !arg.starts_with('-') || arg == "-" {
            positional.push(arg);
            i += 1;
            continue;
        }
        if arg == "--" {
            positional.extend(args[i + 1..].iter().map(|a| a.as_ref()));
            break;
        }
        let stripped = arg.strip_prefix("--").unwrap_or(&arg[1..]);
        let (name, inline) = match stripped.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (stripped, None),
        };
        if name == "help" {
            return Err(SpecError::Usage(USAGE.to_string()));
        }
        if BOOL_FLAGS.contains(&name) {
            let on = match inline {
                None | Some("true") | Some("1") => true,
                Some("false") | Some("0") => false,
                Some(v) => {
                    return Err(flag_err(name, format!("expected true or false, got '{v}'")));
                }
            };
            match name {
                "h2" => h2 = on,
                "disable-keepalive" => no_keepalive = on,
                "disable-compression" => no_compression = on,
                _ => no_redirects = on,
            }
            i += 1;
            continue;
        }
        if !VALUE_FLAGS.contains(&name) {
            return Err(unknown_flag(name));
        }
        let value = match inline {
            Some(v) => {
                i += 1;
                v.to_string()
            }
            None => {
                let Some(v) = args.get(i + 1) else {
                    return Err(flag_err(name, "missing value"));
                };
                i += 2;
                v.as_ref().to_string()
            }
        };
        match name {
            "n" => n = Some(parse_int(name, &value)?),
            "c" => c = parse_int::<u32>(name, &value)?,
            "q" => q = Some(parse_number(name, &value)?),
            "z" => {
                let d = serin_api::duration::parse(&value).map_err(|e| {
                    flag_err(
                        name,
                        format!("expected a duration like 10s or 1m, got '{value}' ({e})"),
                    )
                })?;
                z = Some(d);
            }
            "m" => method = value.to_ascii_uppercase(),
            "H" | "h" => headers.push(parse_header(name, &value)?),
            "d" => body = Some(value),
            "D" => body_file = Some(value),
            "T" => content_type = value,
            "t" => timeout_secs = parse_int(name, &value)?,
            "A" => accept = Some(value),
            "a" => match value.split_once(':') {
                Some((u, p)) => auth = Some((u.to_string(), p.to_string())),
                None => {
                    return Err(flag_err(
                        name,
                        format!("expected username:password, got '{value}'"),
                    ));
                }
            },
            "U" => user_agent = Some(value),
            "host" => host = Some(value),
            "cpus" => {
                parse_int::<u32>(name, &value)?;
            }
            "rate" => rate = Some(parse_number(name, &value)?),
            "max-error-rate" => max_error_rate = Some(parse_error_rate(&value)?),
            _ => {
                output = match value.as_str() {
                    "json" => Output::Json,
                    "text" => Output::Text,
                    v => {
                        return Err(SpecError::Flag {
                            flag: "--output".into(),
                            message: format!("expected json or text, got '{v}'"),
                        });
                    }
                }
            }
        }
    }

    let url = match positional.as_slice() {
        [url] => *url,
        [] => {
            return Err(SpecError::Usage(format!(
                "missing the target URL\n\n{USAGE}"
            )));
        }
        [_, extra, ..] => {
            return Err(SpecError::Usage(format!(
                "one URL expected after the flags, also got '{extra}' (flags go before the URL)"
            )));
        }
    };
    let parsed = url::Url::parse(url).map_err(|e| {
        SpecError::Usage(format!(
            "'{url}' is not a URL ({e}); write it as http://host:port/path"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(SpecError::Usage(format!(
            "'{url}': only http and https URLs can be load tested"
        )));
    }

    if c == 0 {
        return Err(flag_err("c", "must be at least 1"));
    }
    if c > MAX_CONCURRENCY {
        return Err(flag_err(
            "c",
            format!("{c} workers is out of range: at most {MAX_CONCURRENCY}"),
        ));
    }
    if let Some(q) = q
        && q < 0.0
    {
        return Err(flag_err("q", "must not be negative"));
    }
    // hey's -q 0 means no limit; otherwise a rate must give a period the ticker can keep.
    if let Some(q) = q.filter(|q| *q > 0.0) {
        check_rate("-q", q)?;
    }
    if let Some(r) = rate {
        check_rate("--rate", r)?;
    }
    if rate.is_some() && q.is_some_and(|q| q > 0.0) {
        return Err(SpecError::Usage(
            "--rate (total, open model) and -q (per worker) cannot be combined; pick one".into(),
        ));
    }
    let stop = match z {
        Some(d) if d.is_zero() => return Err(flag_err("z", "must be greater than 0")),
        Some(d) => Stop::Duration(d),
        None => {
            let n = n.unwrap_or(200);
            if n == 0 {
                return Err(flag_err("n", "must be at least 1"));
            }
            if rate.is_none() && n < u64::from(c) {
                return Err(SpecError::Usage(format!(
                    "-n cannot be less than -c ({n} < {c}); lower -c or raise -n"
                )));
            }
            Stop::Requests(n)
        }
    };

    // hey's order: its content type on every request (a GET included), then -H (Set: the
    // last value of a name wins), then -A, -U, -a, -host.
    let mut set: Vec<(String, String)> = vec![("Content-Type".into(), content_type)];
    let mut put = |k: &str, v: String| {
        set.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
        set.push((k.to_string(), v));
    };
    for (k, v) in headers {
        put(&k, v);
    }
    if let Some(a) = accept {
        put("Accept", a);
    }
    if let Some(ua) = user_agent {
        put("User-Agent", ua);
    }
    if let Some((u, p)) = auth {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        put("Authorization", format!("Basic {token}"));
    }
    if let Some(h) = host {
        put("Host", h);
    }
    let headers = set;

    Ok(Command {
        spec: AttackSpec {
            requests: vec![RequestSpec {
                method,
                url: url.to_string(),
                headers,
                body,
                weight: 1,
                expect_status: None,
            }],
            concurrency: c,
            stop,
            qps_per_worker: q.filter(|q| *q > 0.0),
            rate,
            timeout: (timeout_secs > 0).then(|| Duration::from_secs(timeout_secs)),
            disable_keepalive: no_keepalive,
            disable_compression: no_compression,
            disable_redirects: no_redirects,
            http2: h2,
        },
        max_error_rate,
        output,
        body_file,
    })
}

/// More workers than this are a typo or an attack (each holds memory and a connection).
pub const MAX_CONCURRENCY: u32 = 100_000;

/// Slowest rate: one request a day. Fastest: one a microsecond (hey's ticker resolution).
pub const MIN_RATE: f64 = 1.0 / 86_400.0;
pub const MAX_RATE: f64 = 1e6;

/// Refuses a rate whose period cannot be scheduled (`-q 1e-300` would overflow the timer).
pub fn check_rate(flag: &str, r: f64) -> Result<(), SpecError> {
    if (MIN_RATE..=MAX_RATE).contains(&r) {
        return Ok(());
    }
    // 1e-300 in full decimals would be three hundred characters.
    let shown = if r == 0.0 || (1e-4..1e9).contains(&r.abs()) {
        format!("{r}")
    } else {
        format!("{r:e}")
    };
    Err(SpecError::Flag {
        flag: flag.into(),
        message: format!(
            "{shown} requests per second is out of range: give a rate between one a day ({MIN_RATE:.6}) and {MAX_RATE}"
        ),
    })
}

fn unknown_flag(name: &str) -> SpecError {
    let known = BOOL_FLAGS.iter().chain(VALUE_FLAGS);
    let best = known
        .map(|k| (strsim::levenshtein(k, name), *k))
        .min()
        .filter(|(d, _)| *d <= 2);
    let hint = match (name, best) {
        ("x", _) => " (proxies are not supported)".to_string(),
        ("o", _) => " (use --output json)".to_string(),
        (_, Some((_, k))) => format!(" (did you mean -{k}?)"),
        _ => String::new(),
    };
    SpecError::Usage(format!(
        "unknown flag -{name}{hint}; see serin loadtest -help"
    ))
}

fn parse_int<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, SpecError> {
    value
        .parse()
        .map_err(|_| flag_err(flag, format!("expected a whole number, got '{value}'")))
}

fn parse_number(flag: &str, value: &str) -> Result<f64, SpecError> {
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| flag_err(flag, format!("expected a number, got '{value}'")))
}

/// Accepts `0.05`, `5%` or `5` (a bare value above 1 is a percentage).
pub fn parse_error_rate(value: &str) -> Result<f64, SpecError> {
    let err = || SpecError::Flag {
        flag: "--max-error-rate".into(),
        message: format!("expected a fraction like 0.05 or a percentage like 5%, got '{value}'"),
    };
    let (text, pct) = match value.strip_suffix('%') {
        Some(t) => (t, true),
        None => (value, false),
    };
    let v: f64 = text
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(err)?;
    let v = if pct || v > 1.0 { v / 100.0 } else { v };
    if !(0.0..=1.0).contains(&v) {
        return Err(err());
    }
    Ok(v)
}

fn parse_header(flag: &str, value: &str) -> Result<(String, String), SpecError> {
    let bad = || flag_err(flag, format!("expected \"Name: value\", got '{value}'"));
    let (k, v) = value.split_once(':').ok_or_else(bad)?;
    let k = k.trim();
    let v = v.trim();
    if k.is_empty()
        || v.is_empty()
        || !k
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    {
        return Err(bad());
    }
    Ok((k.to_string(), v.to_string()))
}

mod secs_f64 {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

mod opt_secs_f64 {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<f64>::deserialize(d)? {
            Some(v) => Duration::try_from_secs_f64(v)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Command, SpecError> {
        parse_hey_args(&shell_words::split(s).unwrap())
    }

    #[test]
    fn flaggers_seed_command() {
        let c = parse("-z 1m -q 10 -c 2 http://podinfo-canary.test:9898/").unwrap();
        assert_eq!(c.spec.concurrency, 2);
        assert_eq!(c.spec.qps_per_worker, Some(10.0));
        assert_eq!(c.spec.stop, Stop::Duration(Duration::from_secs(60)));
        assert_eq!(c.spec.requests[0].url, "http://podinfo-canary.test:9898/");
        assert_eq!(c.spec.timeout, Some(Duration::from_secs(20)));
    }

    #[test]
    fn defaults_are_heys() {
        let c = parse("http://x/").unwrap();
        assert_eq!(c.spec.stop, Stop::Requests(200));
        assert_eq!(c.spec.concurrency, 50);
        assert_eq!(c.spec.requests[0].method, "GET");
        assert!(
            c.spec.requests[0]
                .headers
                .contains(&("Content-Type".into(), "text/html".into()))
        );
    }

    #[test]
    fn go_flag_forms_and_bools() {
        let c = parse("-n=10 -c=5 -m post -d hi -T application/json -H 'X-A: 1' -h2 -disable-keepalive -disable-redirects=true -disable-compression -t 0 -a u:p -host h.example -A text/plain http://x/").unwrap();
        let r = &c.spec.requests[0];
        assert_eq!(c.spec.stop, Stop::Requests(10));
        assert_eq!(r.method, "POST");
        assert_eq!(r.body.as_deref(), Some("hi"));
        assert!(r.headers.contains(&("X-A".into(), "1".into())));
        assert!(
            r.headers
                .contains(&("Content-Type".into(), "application/json".into()))
        );
        assert!(
            r.headers
                .contains(&("Authorization".into(), "Basic dTpw".into()))
        );
        assert!(r.headers.contains(&("Host".into(), "h.example".into())));
        assert!(
            c.spec.http2
                && c.spec.disable_keepalive
                && c.spec.disable_redirects
                && c.spec.disable_compression
        );
        assert_eq!(c.spec.timeout, None);
    }

    #[test]
    fn later_headers_replace_earlier_ones() {
        let c =
            parse("-H 'Content-Type: application/xml' -H 'X-A: 1' -H 'x-a: 2' http://x/").unwrap();
        let h = &c.spec.requests[0].headers;
        assert_eq!(
            h.iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .count(),
            1
        );
        assert!(h.contains(&("Content-Type".into(), "application/xml".into())));
        assert!(h.contains(&("x-a".into(), "2".into())) && !h.iter().any(|(_, v)| v == "1"));
    }

    #[test]
    fn z_overrides_n() {
        let c = parse("-n 5 -c 10 -z 2s http://x/").unwrap();
        assert_eq!(c.spec.stop, Stop::Duration(Duration::from_secs(2)));
    }

    #[test]
    fn serin_flags() {
        let c = parse("--rate 500 -z 10s --max-error-rate 5% --output json http://x/").unwrap();
        assert_eq!(c.spec.rate, Some(500.0));
        assert_eq!(c.max_error_rate, Some(0.05));
        assert_eq!(c.output, Output::Json);
        assert_eq!(
            parse("-max-error-rate=0.1 http://x/")
                .unwrap()
                .max_error_rate,
            Some(0.1)
        );
    }

    #[test]
    fn errors_name_the_flag() {
        let msg = |s: &str| parse(s).unwrap_err().to_string();
        assert_eq!(msg("-q x http://x/"), "-q: expected a number, got 'x'");
        assert_eq!(
            msg("-n ten http://x/"),
            "-n: expected a whole number, got 'ten'"
        );
        assert!(msg("-z forever http://x/").starts_with("-z: expected a duration"));
        assert!(msg("-H nocolon http://x/").starts_with("-H: expected \"Name: value\""));
        assert!(msg("-a nopass http://x/").starts_with("-a: expected username:password"));
        assert!(msg("-n 2 -c 5 http://x/").contains("-n cannot be less than -c"));
        assert!(msg("-c 0 http://x/").starts_with("-c: must be at least 1"));
        assert!(msg("-cc 3 http://x/").contains("unknown flag -cc"));
        assert!(msg("-disable-keepalivee http://x/").contains("did you mean -disable-keepalive"));
        assert!(msg("-n 3").contains("missing the target URL"));
        assert!(msg("-n").contains("-n: missing value"));
        assert!(msg("not-a-url").contains("is not a URL"));
        assert!(msg("ftp://x/").contains("only http and https"));
        assert!(msg("http://x/ http://y/").contains("one URL expected"));
        assert!(msg("--rate 5 -q 1 http://x/").contains("cannot be combined"));
        assert!(
            msg("-q 1e-300 -z 1s http://x/")
                .starts_with("-q: 1e-300 requests per second is out of range")
        );
        assert!(msg("-q 2e6 http://x/").starts_with("-q: "));
        assert!(msg("--rate 1e-300 -z 1s http://x/").starts_with("--rate: "));
        assert!(msg("--rate 0 -z 1s http://x/").starts_with("--rate: 0 requests per second"));
        assert!(msg("--max-error-rate lots http://x/").starts_with("--max-error-rate:"));
        assert!(msg("--output xml http://x/").starts_with("--output: expected json or text"));
    }

    #[test]
    fn spec_round_trips_as_json() {
        let c = parse("-z 1.5s -q 2 -c 3 -t 0 http://x/").unwrap();
        let json = serde_json::to_string(&c.spec).unwrap();
        let back: AttackSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c.spec);
    }
}
