//! The `admission.k8s.io/v1` AdmissionReview envelope, read and written with kube's admission
//! types. The objects under review stay `serde_json::Value`s: the decisions read a few members of
//! them and the validation walks them as JSON.
//!
//! A body that is not an AdmissionReview gets HTTP 400 (there is no uid to answer). A review whose
//! request is malformed in a way the API server never sends (an object that is an array, no
//! `kind`, an unknown operation) is denied with a message, so nothing unexpected is let through.

use base64::Engine as _;
use json_patch::{AddOperation, Patch, PatchOperation, RemoveOperation, jsonptr::PointerBuf};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use serde_json::{Value, json};

/// The API versions of AdmissionReview this server answers; the response echoes the request's.
pub const SUPPORTED_API_VERSIONS: [&str; 2] = ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"];
/// The operations of `admission.k8s.io/v1`.
pub const OPERATIONS: [&str; 4] = ["CREATE", "UPDATE", "DELETE", "CONNECT"];
/// At most this many problems are listed in one denial or as warnings: a Canary with 40,000
/// invalid metrics must not make a 12 MB answer the API server then has to carry.
pub const MAX_LISTED: usize = 20;
/// And each is cut at this many bytes (a problem may quote the user's input).
pub const MAX_ITEM_BYTES: usize = 1024;

/// Why a request body gets no AdmissionReview answer (HTTP 400), or gets a denial without being
/// decided (HTTP 200, `allowed: false`).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("request body is not valid JSON: {0}")]
    Json(serde_json::Error),
    #[error(
        "apiVersion {0:?} is not supported: send an AdmissionReview of admission.k8s.io/v1 (set admissionReviewVersions: [\"v1\"] in the webhook configuration)"
    )]
    ApiVersion(String),
    #[error("kind {0:?} is not AdmissionReview")]
    Kind(String),
    #[error("the AdmissionReview has no request: the field `request` (an object) is required")]
    NoRequest,
    #[error("request.uid is empty: the field `request.uid` is required")]
    NoUid,
    #[error("request.operation must be a string: CREATE, UPDATE, DELETE or CONNECT")]
    Operation,
    #[error("the AdmissionReview's request is malformed: {0}")]
    Request(serde_json::Error),
    /// A review the API server would never send: answered with a denial carrying `message`.
    #[error("{message}")]
    Denied {
        api_version: String,
        uid: String,
        message: String,
    },
}

/// A review as read: kube's request (without `object` and `oldObject`) and the objects as JSON.
#[derive(Debug)]
pub struct Review {
    pub request: AdmissionRequest<DynamicObject>,
    pub object: Option<Value>,
    pub old_object: Option<Value>,
}

impl Review {
    /// Parses and checks an AdmissionReview body.
    pub fn parse(body: &[u8]) -> Result<Review, ReviewError> {
        let mut review: Value = serde_json::from_slice(body).map_err(ReviewError::Json)?;
        let text = |value: &Value, key: &str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let api_version = text(&review, "apiVersion");
        if !SUPPORTED_API_VERSIONS.contains(&api_version.as_str()) {
            return Err(ReviewError::ApiVersion(api_version));
        }
        let kind = text(&review, "kind");
        if kind != "AdmissionReview" {
            return Err(ReviewError::Kind(kind));
        }
        let Some(request) = review.get_mut("request").and_then(Value::as_object_mut) else {
            return Err(ReviewError::NoRequest);
        };
        let uid = request
            .get("uid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if uid.is_empty() {
            return Err(ReviewError::NoUid);
        }
        let deny = |message: String| ReviewError::Denied {
            api_version: api_version.clone(),
            uid: uid.clone(),
            message,
        };
        let operation = match request.get("operation") {
            Some(Value::String(operation)) => operation.clone(),
            _ => return Err(ReviewError::Operation),
        };
        if request.get("kind").is_none_or(Value::is_null) {
            return Err(deny(
                "serin: the review has no request.kind: the webhook decides by the kind of the object".into(),
            ));
        }
        if !OPERATIONS.contains(&operation.as_str()) {
            return Err(deny(format!(
                "serin: operation {operation:?} is unknown: expected one of {}",
                OPERATIONS.join(", ")
            )));
        }
        for member in ["object", "oldObject"] {
            match request.get(member) {
                None | Some(Value::Null | Value::Object(_)) => {}
                Some(other) => {
                    return Err(deny(format!(
                        "serin: request.{member} is {}, not an object",
                        json_type(other)
                    )));
                }
            }
        }
        let object = request.remove("object").filter(|o| !o.is_null());
        let old_object = request.remove("oldObject").filter(|o| !o.is_null());
        // Go reads `null` as the zero value (`"name": null` is ""); kube's types refuse it.
        request.retain(|_, value| !value.is_null());
        // The API server always sends these; the webhook reads neither, so a review written by
        // hand (curl, tests) may leave them out.
        request
            .entry("resource")
            .or_insert_with(|| json!({"group": "", "version": "", "resource": ""}));
        request.entry("userInfo").or_insert_with(|| json!({}));
        let review: AdmissionReview<DynamicObject> =
            serde_json::from_value(review).map_err(ReviewError::Request)?;
        let request = review.try_into().map_err(|_| ReviewError::NoRequest)?;
        Ok(Review {
            request,
            object,
            old_object,
        })
    }

    /// The name of the operation (`CREATE`), for messages and metrics.
    pub fn operation(&self) -> &'static str {
        use kube::core::admission::Operation;
        match self.request.operation {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }

    /// Whether this is a CREATE or UPDATE of the object itself (not of a subresource).
    pub fn writes_object(&self) -> bool {
        use kube::core::admission::Operation;
        matches!(
            self.request.operation,
            Operation::Create | Operation::Update
        ) && self
            .request
            .sub_resource
            .as_deref()
            .unwrap_or("")
            .is_empty()
    }

    /// The namespace of the object under review: the request's, else the object's own, else
    /// `default`.
    pub fn namespace(&self) -> &str {
        self.request
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .or_else(|| self.object_str("/metadata/namespace"))
            .unwrap_or("default")
    }

    /// The name of the object under review: its own, else the request's (`generateName` on
    /// CREATE leaves the object without one).
    pub fn name(&self) -> &str {
        self.object_str("/metadata/name")
            .filter(|n| !n.is_empty())
            .unwrap_or(&self.request.name)
    }

    fn object_str(&self, pointer: &str) -> Option<&str> {
        self.object.as_ref()?.pointer(pointer)?.as_str()
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The answer to one review.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    pub allowed: bool,
    pub patch: Vec<PatchOperation>,
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

    /// The response to `request`: kube's envelope, with the request's apiVersion and uid.
    pub fn into_review(
        self,
        request: &AdmissionRequest<DynamicObject>,
    ) -> AdmissionReview<DynamicObject> {
        let mut response = AdmissionResponse::from(request);
        if !self.warnings.is_empty() {
            response.warnings = Some(bounded(self.warnings, "warnings"));
        }
        if let Some(message) = self.message.filter(|_| !self.allowed) {
            response = response.deny(message);
            response.result.code = 422;
            response.result.reason = "Invalid".into();
        } else if !self.patch.is_empty() {
            response = match response.clone().with_patch(Patch(self.patch)) {
                Ok(patched) => patched,
                Err(err) => response.deny(format!("serin: cannot write the patch: {err}")),
            };
        }
        response.into_review()
    }
}

/// The response body. `patch` is written as the API documents it, base64 text: kube writes the
/// bytes as a JSON array of numbers (kube-rs #1781), which Go decodes too, at four times the size
/// and only by a quirk of its decoder.
pub fn to_json(review: &AdmissionReview<DynamicObject>) -> Result<Vec<u8>, serde_json::Error> {
    let mut value = serde_json::to_value(review)?;
    let patch = review.response.as_ref().and_then(|r| r.patch.as_ref());
    if let (Some(patch), Some(slot)) = (patch, value.pointer_mut("/response/patch")) {
        *slot = Value::String(base64::engine::general_purpose::STANDARD.encode(patch));
    }
    serde_json::to_vec(&value)
}

/// The denial of a review that could not be decided ([`ReviewError::Denied`]).
pub fn denial(api_version: &str, uid: &str, message: &str) -> AdmissionReview<DynamicObject> {
    let mut response = AdmissionResponse::invalid(message);
    response.uid = uid.to_string();
    response.types.api_version = api_version.to_string();
    response.result.code = 400;
    response.into_review()
}

/// `items` cut to [`MAX_LISTED`] entries of at most [`MAX_ITEM_BYTES`], the cut ones counted
/// in a last entry ("and 39980 more errors").
pub fn bounded(mut items: Vec<String>, what: &str) -> Vec<String> {
    let more = items.len().saturating_sub(MAX_LISTED);
    items.truncate(MAX_LISTED);
    for item in &mut items {
        if item.len() > MAX_ITEM_BYTES {
            let mut end = MAX_ITEM_BYTES;
            while !item.is_char_boundary(end) {
                end -= 1;
            }
            item.truncate(end);
            item.push('…');
        }
    }
    if more > 0 {
        items.push(format!("and {more} more {what}"));
    }
    items
}

/// The JSON Patch operation of a hold decision.
pub fn patch_op(op: serin_api::hold::HoldOp) -> Result<PatchOperation, String> {
    let path = PointerBuf::parse(op.path).map_err(|err| format!("{}: {err}", op.path))?;
    Ok(match op.op {
        "remove" => PatchOperation::Remove(RemoveOperation { path }),
        _ => PatchOperation::Add(AddOperation {
            path,
            value: op.value,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(request: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})).unwrap()
    }

    fn answer(review: AdmissionReview<DynamicObject>) -> Value {
        serde_json::from_slice(&to_json(&review).unwrap()).unwrap()
    }

    #[test]
    fn patch_and_warnings_are_answered() {
        let body = review(json!({"uid": "u1", "operation": "UPDATE",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"}}));
        let parsed = Review::parse(&body).unwrap();
        let verdict = Verdict {
            allowed: true,
            patch: vec![PatchOperation::Add(AddOperation {
                path: PointerBuf::parse("/spec/paused").unwrap(),
                value: json!(true),
            })],
            warnings: vec!["held".into()],
            message: None,
        };
        let body = answer(verdict.into_review(&parsed.request));
        assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(body["response"]["uid"], "u1");
        assert_eq!(body["response"]["patchType"], "JSONPatch");
        let patch = base64::engine::general_purpose::STANDARD
            .decode(body["response"]["patch"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&patch).unwrap(),
            json!([{"op": "add", "path": "/spec/paused", "value": true}])
        );
        assert_eq!(body["response"]["warnings"], json!(["held"]));
    }

    #[test]
    fn denial_carries_status() {
        let body = review(json!({"uid": "u2", "operation": "CREATE",
            "kind": {"group": "flagger.app", "version": "v1beta1", "kind": "Canary"}}));
        let parsed = Review::parse(&body).unwrap();
        let body = answer(Verdict::deny("bad".into()).into_review(&parsed.request));
        assert_eq!(body["response"]["allowed"], false);
        assert_eq!(body["response"]["status"]["code"], 422);
        assert_eq!(body["response"]["status"]["message"], "bad");
        assert!(body["response"].get("patch").is_none());
    }

    #[test]
    fn parse_rejects_what_is_not_a_review() {
        let parse = |text: &str| Review::parse(text.as_bytes()).unwrap_err();
        assert!(matches!(parse("{"), ReviewError::Json(_)));
        assert!(matches!(
            parse(r#"{"apiVersion":"v1","kind":"AdmissionReview"}"#),
            ReviewError::ApiVersion(_)
        ));
        assert!(matches!(
            parse(r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#),
            ReviewError::NoRequest
        ));
        assert!(matches!(
            parse(
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"","operation":"CREATE"}}"#
            ),
            ReviewError::NoUid
        ));
    }

    #[test]
    fn shapes_the_api_server_never_sends_are_denied() {
        let gvk = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
        for (request, needle) in [
            (
                json!({"uid": "u", "operation": "PATCH", "kind": gvk}),
                "operation \"PATCH\" is unknown",
            ),
            (
                json!({"uid": "u", "operation": "CREATE"}),
                "no request.kind",
            ),
            (
                json!({"uid": "u", "operation": "CREATE", "kind": gvk, "object": [1]}),
                "request.object is an array",
            ),
            (
                json!({"uid": "u", "operation": "UPDATE", "kind": gvk, "object": {}, "oldObject": "x"}),
                "request.oldObject is a string",
            ),
            (
                json!({"uid": "u", "operation": "CREATE", "kind": gvk, "object": 3}),
                "request.object is a number",
            ),
        ] {
            match Review::parse(&review(request)) {
                Err(ReviewError::Denied { uid, message, .. }) => {
                    assert_eq!(uid, "u");
                    assert!(message.contains(needle), "{message}");
                }
                other => panic!("{needle}: {other:?}"),
            }
        }
    }

    #[test]
    fn long_lists_are_cut_and_counted() {
        let items: Vec<String> = (0..40_000).map(|i| format!("error {i}")).collect();
        let cut = bounded(items, "errors");
        assert_eq!(cut.len(), MAX_LISTED + 1);
        assert_eq!(
            cut[MAX_LISTED],
            format!("and {} more errors", 40_000 - MAX_LISTED)
        );
        let long = bounded(vec!["é".repeat(MAX_ITEM_BYTES)], "errors");
        assert!(long[0].len() <= MAX_ITEM_BYTES + "…".len());
    }
}
