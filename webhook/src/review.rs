//! The `admission.k8s.io/v1` AdmissionReview envelope, read and written by hand: only the fields
//! the webhook uses are parsed, and the response carries `patch` as base64 text with
//! `patchType: JSONPatch`, the way the API server expects it.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The API versions of AdmissionReview this server answers; the response echoes the request's.
pub const SUPPORTED_API_VERSIONS: [&str; 2] = ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"];

/// Why a request body is not a usable AdmissionReview (answered with HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("request body is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("request body is not valid JSON: it is not UTF-8 text ({0})")]
    Utf8(#[from] std::str::Utf8Error),
    #[error(
        "apiVersion {0:?} is not supported: send an AdmissionReview of admission.k8s.io/v1 (set admissionReviewVersions: [\"v1\"] in the webhook configuration)"
    )]
    ApiVersion(String),
    #[error("kind {0:?} is not AdmissionReview")]
    Kind(String),
    #[error("the AdmissionReview has no request: the field `request` is required")]
    NoRequest,
    #[error("request.uid is empty: the field `request.uid` is required")]
    NoUid,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound(deserialize = "Old: Deserialize<'de>, Obj: Deserialize<'de>"))]
struct Envelope<Old, Obj> {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    request: Option<AdmissionRequest<Old, Obj>>,
}

/// Group, version and kind of the object under review.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
}

/// CREATE, UPDATE, DELETE or CONNECT.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
    /// An operation this server does not know of; allowed untouched.
    #[serde(other)]
    Other,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
            Operation::Other => "OTHER",
        }
    }
}

/// The part of `request` the webhook reads. `Old` is how `oldObject` is read: `Value`, or
/// `serde::de::IgnoredAny` where it is not needed (`/mutate`), which skips it without building it.
/// `Obj` is how `object` is read: `Value`, or `serin_api::hold::WorkloadView` (`/mutate`), which
/// borrows from the body only what the hold decision reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound(deserialize = "Old: Deserialize<'de>, Obj: Deserialize<'de>"))]
pub struct AdmissionRequest<Old = Value, Obj = Value> {
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub kind: GroupVersionKind,
    pub operation: Operation,
    #[serde(default)]
    pub sub_resource: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub object: Option<Obj>,
    #[serde(default)]
    pub old_object: Option<Old>,
}

/// A review as `/mutate` reads it: `oldObject` skipped, `object` borrowed from the body.
pub type MutateReview<'a> = Review<serde::de::IgnoredAny, serin_api::hold::WorkloadView<'a>>;
/// The request of a [`MutateReview`].
pub type MutateRequest<'a> =
    AdmissionRequest<serde::de::IgnoredAny, serin_api::hold::WorkloadView<'a>>;

/// A parsed review: the request plus the apiVersion to answer with.
#[derive(Debug)]
pub struct Review<Old = Value, Obj = Value> {
    pub api_version: String,
    pub request: AdmissionRequest<Old, Obj>,
}

impl<'a, Old: Deserialize<'a>, Obj: Deserialize<'a>> Review<Old, Obj> {
    /// Parses and checks an AdmissionReview body; `Old` and `Obj` may borrow from it.
    pub fn parse(body: &'a [u8]) -> Result<Review<Old, Obj>, ReviewError> {
        // One UTF-8 check of the whole body up front lets serde_json take every string as
        // already checked, instead of checking each one as it is read.
        let envelope: Envelope<Old, Obj> = serde_json::from_str(std::str::from_utf8(body)?)?;
        if !SUPPORTED_API_VERSIONS.contains(&envelope.api_version.as_str()) {
            return Err(ReviewError::ApiVersion(envelope.api_version));
        }
        if envelope.kind != "AdmissionReview" {
            return Err(ReviewError::Kind(envelope.kind));
        }
        let request = envelope.request.ok_or(ReviewError::NoRequest)?;
        if request.uid.is_empty() {
            return Err(ReviewError::NoUid);
        }
        Ok(Review {
            api_version: envelope.api_version,
            request,
        })
    }
}

/// One JSON Patch operation (RFC 6902); the webhook only ever needs `add`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PatchOp {
    pub op: &'static str,
    pub path: &'static str,
    pub value: Value,
}

/// The answer to one review.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    pub allowed: bool,
    pub patch: Vec<PatchOp>,
    pub warnings: Vec<String>,
    /// For a denial: the message kubectl prints.
    pub message: Option<String>,
}

impl Verdict {
    pub fn allow() -> Verdict {
        Verdict {
            allowed: true,
            ..Verdict::default()
        }
    }

    pub fn deny(message: String) -> Verdict {
        Verdict {
            allowed: false,
            message: Some(message),
            ..Verdict::default()
        }
    }

    /// The label value of the `verdict` metric.
    pub fn label(&self) -> &'static str {
        match (self.allowed, self.patch.is_empty()) {
            (false, _) => "denied",
            (true, false) => "patched",
            (true, true) => "allowed",
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseEnvelope<'a> {
    api_version: &'a str,
    kind: &'static str,
    response: Response<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Response<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Status<'a>>,
}

#[derive(Serialize)]
struct Status<'a> {
    code: u16,
    reason: &'static str,
    message: &'a str,
}

/// Serialises the AdmissionReview response for `review`.
pub fn response_body(api_version: &str, uid: &str, verdict: &Verdict) -> Vec<u8> {
    let patch = (!verdict.patch.is_empty()).then(|| {
        let json = serde_json::to_vec(&verdict.patch).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(json)
    });
    let status = verdict.message.as_deref().map(|message| Status {
        code: 422,
        reason: "Invalid",
        message,
    });
    let envelope = ResponseEnvelope {
        api_version,
        kind: "AdmissionReview",
        response: Response {
            uid,
            allowed: verdict.allowed,
            patch_type: patch.as_ref().map(|_| "JSONPatch"),
            patch,
            warnings: &verdict.warnings,
            status,
        },
    };
    serde_json::to_vec(&envelope).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patch_is_base64_json_patch() {
        let verdict = Verdict {
            allowed: true,
            patch: vec![PatchOp {
                op: "add",
                path: "/spec/paused",
                value: json!(true),
            }],
            warnings: vec!["held".into()],
            message: None,
        };
        let body: Value =
            serde_json::from_slice(&response_body("admission.k8s.io/v1", "u1", &verdict)).unwrap();
        assert_eq!(body["response"]["uid"], "u1");
        assert_eq!(body["response"]["patchType"], "JSONPatch");
        let patch = base64::engine::general_purpose::STANDARD
            .decode(body["response"]["patch"].as_str().unwrap())
            .unwrap();
        let patch: Value = serde_json::from_slice(&patch).unwrap();
        assert_eq!(
            patch,
            json!([{"op": "add", "path": "/spec/paused", "value": true}])
        );
        assert_eq!(body["response"]["warnings"], json!(["held"]));
        assert!(body["response"].get("status").is_none());
    }

    #[test]
    fn denial_carries_status() {
        let body: Value = serde_json::from_slice(&response_body(
            "admission.k8s.io/v1",
            "u2",
            &Verdict::deny("bad".into()),
        ))
        .unwrap();
        assert_eq!(body["response"]["allowed"], false);
        assert_eq!(body["response"]["status"]["code"], 422);
        assert_eq!(body["response"]["status"]["message"], "bad");
        assert!(body["response"].get("patch").is_none());
    }

    #[test]
    fn body_that_is_not_utf8_is_refused() {
        let mut body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"UPDATE","name":"#.to_vec();
        body.extend_from_slice(b"\"w\xffb\"}}");
        let err = Review::<Value>::parse(&body).unwrap_err();
        assert!(matches!(err, ReviewError::Utf8(_)), "{err}");
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }

    #[test]
    fn skipped_members_are_still_checked_as_json() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"UPDATE","object":{"status":{"replicas":3,]}}}}"#;
        assert!(matches!(
            MutateReview::parse(body),
            Err(ReviewError::Json(_))
        ));
    }

    #[test]
    fn parse_rejects_what_is_not_a_review() {
        assert!(matches!(
            Review::<Value>::parse(b"{"),
            Err(ReviewError::Json(_))
        ));
        assert!(matches!(
            Review::<Value>::parse(br#"{"apiVersion":"v1","kind":"AdmissionReview"}"#),
            Err(ReviewError::ApiVersion(_))
        ));
        assert!(matches!(
            Review::<Value>::parse(
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#
            ),
            Err(ReviewError::NoRequest)
        ));
        assert!(matches!(
            Review::<Value>::parse(
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"","operation":"CREATE"}}"#
            ),
            Err(ReviewError::NoUid)
        ));
        let ok = Review::<Value>::parse(
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","operation":"PATCH"}}"#,
        )
        .unwrap();
        assert_eq!(ok.request.operation, Operation::Other);
    }
}
