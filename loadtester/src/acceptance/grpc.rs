//! `grpc_health_probe` natively: one `grpc.health.v1.Health/Check` call over cleartext HTTP/2,
//! with the probe's flags and exit statuses (1 bad arguments, 2 cannot connect, 3 the RPC failed,
//! 4 not serving).
//!
//! The two messages are encoded by hand rather than generated: `HealthCheckRequest` is one
//! string field and `HealthCheckResponse` one enum field, a few bytes each, and protobuf code
//! generation would add a build step and two crates for them.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::{NeedsShell, Outcome, Refused, bad};

#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    addr: String,
    service: String,
    connect_timeout: Duration,
    rpc_timeout: Duration,
    user_agent: String,
    headers: Vec<(String, String)>,
}

fn duration(flag: &str, v: &str) -> Result<Duration, Refused> {
    serin_api::duration::parse(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            bad(
                "grpc_health_probe",
                flag,
                format!("expected a duration like 1s, got '{v}'"),
            )
        })
}

impl Probe {
    /// Go's flag syntax: `-addr=x`, `-addr x`, `--addr=x`; `-v` is accepted and ignored.
    pub fn parse(args: &[String]) -> Result<Probe, Refused> {
        let mut p = Probe {
            addr: String::new(),
            service: String::new(),
            connect_timeout: Duration::from_secs(1),
            rpc_timeout: Duration::from_secs(1),
            user_agent: "grpc_health_probe".into(),
            headers: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let Some(name) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                return Err(NeedsShell::new(
                    arg.clone(),
                    "an argument grpc_health_probe does not take",
                )
                .into());
            };
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (name, None),
            };
            if name == "v" {
                continue;
            }
            let flag = format!("-{name}");
            if !matches!(
                name,
                "addr"
                    | "service"
                    | "connect-timeout"
                    | "rpc-timeout"
                    | "user-agent"
                    | "rpc-header"
            ) {
                let why = if name.starts_with("tls") || name == "alts" || name.starts_with("spiffe")
                {
                    "TLS to the gRPC server, which serin's native probe does not do"
                } else {
                    "a grpc_health_probe flag serin does not run natively"
                };
                return Err(NeedsShell::new(flag, why).into());
            }
            let v = inline
                .or_else(|| it.next().cloned())
                .ok_or_else(|| bad("grpc_health_probe", &flag, "needs a value"))?;
            match name {
                "addr" => p.addr = v,
                "service" => p.service = v,
                "connect-timeout" => p.connect_timeout = duration(&flag, &v)?,
                "rpc-timeout" => p.rpc_timeout = duration(&flag, &v)?,
                "user-agent" => p.user_agent = v,
                _ => match v.split_once(':') {
                    Some((k, val)) => p
                        .headers
                        .push((k.trim().to_string(), val.trim().to_string())),
                    None => {
                        return Err(bad(
                            "grpc_health_probe",
                            &flag,
                            format!("'{v}' is not 'name: value'"),
                        ));
                    }
                },
            }
        }
        if p.addr.is_empty() {
            return Err(bad(
                "grpc_health_probe",
                "-addr",
                "not given: -addr=host:port",
            ));
        }
        Ok(p)
    }

    pub async fn run(&self) -> Outcome {
        let fail = |status, output: String| Outcome {
            status,
            output: output + "\n",
        };
        let sender = match tokio::time::timeout(self.connect_timeout, self.connect()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return fail(
                    2,
                    format!("error: failed to connect service at {:?}: {e}", self.addr),
                );
            }
            Err(_) => {
                return fail(
                    2,
                    format!(
                        "timeout: failed to connect service {:?} within {}",
                        self.addr,
                        serin_api::duration::format(self.connect_timeout)
                    ),
                );
            }
        };
        match tokio::time::timeout(self.rpc_timeout, self.check(sender)).await {
            Err(_) => fail(
                3,
                format!(
                    "timeout: health rpc did not complete within {}",
                    serin_api::duration::format(self.rpc_timeout)
                ),
            ),
            Ok(Err(e)) => fail(3, format!("error: health rpc failed: {e}")),
            Ok(Ok(1)) => Outcome {
                status: 0,
                output: "status: SERVING\n".into(),
            },
            Ok(Ok(s)) => fail(
                4,
                format!("service unhealthy (responded with {:?})", status_name(s)),
            ),
        }
    }

    async fn connect(
        &self,
    ) -> Result<hyper::client::conn::http2::SendRequest<Full<Bytes>>, String> {
        let tcp = tokio::net::TcpStream::connect(&self.addr)
            .await
            .map_err(|e| e.to_string())?;
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        Ok(sender)
    }

    /// One unary call; the serving status, or why the RPC failed.
    async fn check(
        &self,
        mut sender: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    ) -> Result<u64, String> {
        let mut req =
            http::Request::post(format!("http://{}/grpc.health.v1.Health/Check", self.addr))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .header("user-agent", &self.user_agent)
                .header("grpc-timeout", format!("{}m", self.rpc_timeout.as_millis()));
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(Full::new(frame(&request(&self.service))))
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        if resp.status() != http::StatusCode::OK {
            return Err(format!("HTTP status {}", resp.status()));
        }
        let head = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        // A failed call may put its status in the headers alone ("Trailers-Only").
        let trailers = body.trailers().cloned().unwrap_or(head);
        let code = trailers
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("missing");
        if code != "0" {
            let msg = trailers
                .get("grpc-message")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            return Err(match code {
                "12" => "this server does not implement the grpc health protocol (grpc.health.v1.Health): Unimplemented".into(),
                _ => format!("rpc error: code = {code} desc = {msg}"),
            });
        }
        response_status(&body.to_bytes()).ok_or_else(|| "malformed HealthCheckResponse".into())
    }
}

fn status_name(s: u64) -> &'static str {
    match s {
        0 => "UNKNOWN",
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "unrecognised status",
    }
}

/// `HealthCheckRequest { string service = 1; }`.
fn request(service: &str) -> Vec<u8> {
    if service.is_empty() {
        return Vec::new();
    }
    let mut m = vec![0x0a];
    varint(service.len() as u64, &mut m);
    m.extend_from_slice(service.as_bytes());
    m
}

/// gRPC's length-prefixed message: no compression, 4-byte big-endian length.
fn frame(message: &[u8]) -> Bytes {
    let mut f = vec![0u8];
    f.extend_from_slice(&(message.len() as u32).to_be_bytes());
    f.extend_from_slice(message);
    Bytes::from(f)
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*i)?;
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

/// `HealthCheckResponse { ServingStatus status = 1; }` from one framed message; unknown fields
/// are skipped, an absent status is UNKNOWN (0), as protobuf defaults it.
fn response_status(body: &[u8]) -> Option<u64> {
    let (&[0], len) = (body.get(..1)?, body.get(1..5)?) else {
        return None;
    };
    let len = u32::from_be_bytes(len.try_into().ok()?) as usize;
    let msg = body.get(5..5 + len)?;
    let (mut i, mut status) = (0, 0);
    while i < msg.len() {
        let key = read_varint(msg, &mut i)?;
        match key & 7 {
            0 => {
                let v = read_varint(msg, &mut i)?;
                if key >> 3 == 1 {
                    status = v;
                }
            }
            1 => i += 8,
            2 => {
                let len = read_varint(msg, &mut i)? as usize;
                i += len;
            }
            5 => i += 4,
            _ => return None,
        }
    }
    (i == msg.len()).then_some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(cmd: &str) -> Result<Probe, Refused> {
        Probe::parse(&shell_words::split(cmd).unwrap())
    }

    #[test]
    fn flags_in_go_syntax() {
        let p = parse("-connect-timeout=2s -addr podinfo:9999 --service=web -v").unwrap();
        assert_eq!(
            (p.addr.as_str(), p.service.as_str()),
            ("podinfo:9999", "web")
        );
        assert_eq!(p.connect_timeout, Duration::from_secs(2));
        assert_eq!(parse("-tls -addr=x:1").unwrap_err().part(), "-tls");
        assert_eq!(parse("-gzip -addr=x:1").unwrap_err().part(), "-gzip");
        assert_eq!(parse("-service=x").unwrap_err().part(), "-addr");
        assert_eq!(
            parse("-addr=x:1 -rpc-timeout=soon").unwrap_err().part(),
            "-rpc-timeout"
        );
    }

    #[test]
    fn messages_round_trip() {
        assert_eq!(request("web"), vec![0x0a, 3, b'w', b'e', b'b']);
        assert_eq!(&frame(&[8, 1])[..], &[0, 0, 0, 0, 2, 8, 1]);
        assert_eq!(response_status(&[0, 0, 0, 0, 2, 8, 1]), Some(1));
        assert_eq!(response_status(&[0, 0, 0, 0, 0]), Some(0));
        assert_eq!(
            response_status(&[0, 0, 0, 0, 5, 0x12, 1, b'x', 8, 2]),
            Some(2)
        );
        assert_eq!(response_status(&[1, 0, 0, 0, 0]), None);
        assert_eq!(response_status(&[0, 0, 0, 0, 3, 8, 1]), None);
    }
}
