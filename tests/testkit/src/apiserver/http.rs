//! Request routing: discovery, the resource paths of kube-apiserver, list/watch/get and the write pipeline.

use super::Shared;
use super::admission::{self, Attributes};
use super::discovery;
use super::error::{ApiError, ApiResult};
use super::openapi;
use super::patch::{self, PatchKind};
use super::registry::ResourceType;
use super::schema::FieldValidation;
use super::selector::{FieldSelector, LabelSelector};
use super::store::{Change, EventType, meta_str};
use super::table;
use super::write::{self, Outcome, Target, Verb};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

const MAX_BODY: usize = 32 * 1024 * 1024;

fn json_response(code: u16, body: &Value, warnings: &[String]) -> Response {
    let mut resp = (
        StatusCode::from_u16(code).unwrap_or(StatusCode::OK),
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(body).unwrap_or_default(),
    )
        .into_response();
    for w in warnings {
        // A quoted-string, as kube-apiserver writes it: `299 - "unknown field \"spec.x\""`.
        let text = format!("299 - \"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

pub async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query: HashMap<String, String> =
        parts.uri.query().map(url_decode_pairs).unwrap_or_default();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if let Some(code) = shared.record(
        &parts.method,
        &path,
        parts.uri.query().unwrap_or_default(),
        &content_type,
    ) {
        return ApiError::from_code(
            code,
            format!("injected fault: {} {path} → {code}", parts.method),
        )
        .into_response();
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::bad_request(format!("reading the request body: {e}")).into_response();
        }
    };
    match route(
        &shared,
        &parts.method,
        &path,
        &query,
        &parts.headers,
        &content_type,
        body,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn url_decode_pairs(q: &str) -> HashMap<String, String> {
    fn dec(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                },
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect()
}

struct ResourcePath {
    group: String,
    version: String,
    ns: Option<String>,
    plural: String,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_resource(
    shared: &Shared,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Option<ResourcePath> {
    let mk = |ns: Option<&str>, plural: &str, tail: &[&str]| -> Option<ResourcePath> {
        let (name, sub) = match tail {
            [] => (None, None),
            [n] => (Some(n.to_string()), None),
            [n, s] => (Some(n.to_string()), Some(s.to_string())),
            _ => return None,
        };
        Some(ResourcePath {
            group: group.into(),
            version: version.into(),
            ns: ns.map(str::to_string),
            plural: plural.into(),
            name,
            sub,
        })
    };
    match rest {
        ["namespaces", ns, plural, tail @ ..] => {
            let namespaced = shared
                .store
                .lock()
                .expect("store lock")
                .registry
                .get(group, version, plural)
                .is_some_and(|t| t.namespaced);
            if namespaced {
                mk(Some(ns), plural, tail)
            } else {
                mk(None, "namespaces", &rest[1..])
            }
        }
        [plural, tail @ ..] => mk(None, plural, tail),
        [] => None,
    }
}

async fn route(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    content_type: &str,
    body: Bytes,
) -> ApiResult<Response> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let not_found =
        || ApiError::not_found("the server could not find the requested resource", path);
    let reg = || shared.store.lock().expect("store lock").registry.clone();
    let ok = |v: Value| Ok(json_response(200, &v, &[]));
    let rp = match segs.as_slice() {
        ["version"] => return ok(discovery::version()),
        ["healthz" | "readyz" | "livez"] => return Ok((StatusCode::OK, "ok").into_response()),
        ["api"] => return ok(discovery::core_versions()),
        ["openapi", "v3"] => return ok(openapi::root(&reg())),
        ["openapi", "v3", "api", v] => {
            return openapi::gv_doc(&reg(), "", v).map_or_else(|| Err(not_found()), ok);
        }
        ["openapi", "v3", "apis", g, v] => {
            return openapi::gv_doc(&reg(), g, v).map_or_else(|| Err(not_found()), ok);
        }
        ["apis"] => return ok(discovery::group_list(&reg())),
        ["api", v] => {
            return discovery::resource_list(&reg(), "", v).map_or_else(|| Err(not_found()), ok);
        }
        ["apis", g] => return discovery::group(&reg(), g).map_or_else(|| Err(not_found()), ok),
        ["apis", g, v] => {
            return discovery::resource_list(&reg(), g, v).map_or_else(|| Err(not_found()), ok);
        }
        ["api", v, rest @ ..] => parse_resource(shared, "", v, rest),
        ["apis", g, v, rest @ ..] => parse_resource(shared, g, v, rest),
        _ => None,
    }
    .ok_or_else(not_found)?;
    let rt = shared
        .store
        .lock()
        .expect("store lock")
        .registry
        .get(&rp.group, &rp.version, &rp.plural)
        .cloned()
        .ok_or_else(not_found)?;
    if rp.ns.is_some() && !rt.namespaced {
        return Err(not_found());
    }
    match rp.sub.as_deref() {
        None => {}
        Some("status") if rt.status => {}
        Some("scale") if rt.scale => {}
        Some(_) => return Err(not_found()),
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let as_table = table::wants_table(accept).then(|| {
        query
            .get("includeObject")
            .cloned()
            .unwrap_or_else(|| "Metadata".into())
    });
    let ns = rp.ns.clone().unwrap_or_default();
    // Only writes take the parameter; reads ignore it, as kube-apiserver's do.
    let field_validation = match *method {
        Method::POST | Method::PUT | Method::PATCH => {
            FieldValidation::parse(query.get("fieldValidation").map(String::as_str))
                .map_err(ApiError::bad_request)?
        }
        _ => FieldValidation::default(),
    };
    let Some(name) = rp.name.clone() else {
        return match *method {
            Method::GET if matches!(query.get("watch").map(String::as_str), Some("true" | "1")) => {
                watch(shared.clone(), rt, rp.ns, query, as_table)
            }
            Method::GET => list(shared, &rt, rp.ns.as_deref(), query, as_table),
            Method::POST => {
                let obj = parse_json(&body)?;
                write(
                    shared,
                    Target {
                        rt,
                        ns,
                        name: String::new(),
                        sub: None,
                        field_validation,
                    },
                    Verb::Create(obj),
                )
                .await
            }
            Method::DELETE => delete_collection(shared, &rt, rp.ns.as_deref(), query),
            _ => Err(ApiError::method_not_allowed(format!(
                "{method} is not supported on a collection here"
            ))),
        };
    };
    let target = Target {
        rt: rt.clone(),
        ns: ns.clone(),
        name: name.clone(),
        sub: rp.sub.clone(),
        field_validation,
    };
    match *method {
        Method::GET => {
            let key = super::store::key_of(&rt, &ns, &name);
            let obj = shared
                .store
                .lock()
                .expect("store lock")
                .get(&key)
                .cloned()
                .ok_or_else(|| ApiError::not_found(&rt.qualified(), &name))?;
            if rp.sub.as_deref() == Some("scale") {
                return ok(write::scale_of(&obj));
            }
            let obj = for_version(&rt, obj);
            match as_table {
                Some(inc) => ok(table::table(
                    &rt,
                    std::slice::from_ref(&obj),
                    meta_str(&obj, "resourceVersion"),
                    None,
                    &inc,
                )),
                None => ok(obj),
            }
        }
        Method::PUT => write(shared, target, Verb::Update(parse_json(&body)?)).await,
        Method::PATCH => {
            let kind = PatchKind::from_content_type(content_type)?;
            let body = patch::parse_body(kind, &body)?;
            write(
                shared,
                target,
                Verb::Patch {
                    kind,
                    body,
                    field_manager: query.get("fieldManager").cloned(),
                },
            )
            .await
        }
        Method::DELETE if rp.sub.is_none() => {
            let opts = if body.is_empty() {
                None
            } else {
                Some(parse_json(&body)?)
            };
            write(shared, target, Verb::Delete(opts)).await
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "{method} is not supported here"
        ))),
    }
}

fn parse_json(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body).or_else(|e| {
        // kubectl and kube-rs send JSON; accept YAML too for curl users.
        std::str::from_utf8(body)
            .ok()
            .and_then(|s| serde_saphyr::from_str::<Value>(s).ok())
            .filter(Value::is_object)
            .ok_or_else(|| {
                ApiError::bad_request(format!("the request body is not a JSON object: {e}"))
            })
    })
}

/// Objects are stored once per group/resource; each served version shows its own apiVersion (no conversion).
fn for_version(rt: &ResourceType, mut obj: Value) -> Value {
    obj["apiVersion"] = json!(rt.api_version());
    obj
}

async fn write(shared: &Arc<Shared>, mut target: Target, verb: Verb) -> ApiResult<Response> {
    for _ in 0..10 {
        let prepared = {
            let mut store = shared.store.lock().expect("store lock");
            write::prepare(&mut store, &mut target, &verb)?
        };
        let mut new = prepared.new.clone();
        let mut warnings = prepared.warnings.clone();
        if !prepared.configs.is_empty() {
            let services = shared.services.lock().expect("services lock").clone();
            let attrs = Attributes {
                operation: prepared.operation,
                rt: &target.rt,
                sub: target.sub.as_deref(),
                namespace: &target.ns,
                name: &target.name,
                old: prepared.old.as_ref(),
                uid_seed: shared.next_uid_seed(),
            };
            warnings
                .extend(admission::admit(&prepared.configs, &services, &attrs, &mut new).await?);
        }
        let outcome = {
            let mut store = shared.store.lock().expect("store lock");
            write::commit(&mut store, &target, prepared, new)?
        };
        if let Outcome::Done(code, obj) = outcome {
            let body = if target.sub.as_deref() == Some("scale") {
                write::scale_of(&obj)
            } else {
                for_version(&target.rt, obj)
            };
            return Ok(json_response(code, &body, &warnings));
        }
    }
    Err(ApiError::conflict(&target.rt.qualified(), &target.name))
}

/// DELETE on a collection: every object matching the selectors, without admission calls.
fn delete_collection(
    shared: &Arc<Shared>,
    rt: &ResourceType,
    ns: Option<&str>,
    query: &HashMap<String, String>,
) -> ApiResult<Response> {
    let lsel = LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))?;
    let fsel = FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or(""))?;
    let mut store = shared.store.lock().expect("store lock");
    let keys: Vec<super::store::ObjKey> = store
        .objects
        .iter()
        .filter(|((g, p, n, _), o)| {
            *g == rt.group
                && *p == rt.plural
                && ns.is_none_or(|ns| ns == n)
                && lsel.matches(o)
                && fsel.matches(o)
        })
        .map(|(k, _)| k.clone())
        .collect();
    let items: Vec<Value> = keys
        .iter()
        .filter_map(|k| store.delete(k))
        .map(|o| for_version(rt, o))
        .collect();
    let rv = store.rv.to_string();
    Ok(json_response(
        200,
        &json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": {"resourceVersion": rv}, "items": items}),
        &[],
    ))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    rv: u64,
    after: (String, String),
}

fn list(
    shared: &Arc<Shared>,
    rt: &ResourceType,
    ns: Option<&str>,
    query: &HashMap<String, String>,
    as_table: Option<String>,
) -> ApiResult<Response> {
    let lsel = LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))?;
    let fsel = FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or(""))?;
    let limit = match query.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => l.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!(
                "limit: invalid value {l:?}: must be a non-negative integer"
            ))
        })?,
        None => 0,
    };
    let token = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(c) => Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| serde_json::from_slice::<ContinueToken>(&b).ok())
                .ok_or_else(|| {
                    ApiError::bad_request("continue: invalid value: not a token this server issued")
                })?,
        ),
        None => None,
    };
    let store = shared.store.lock().expect("store lock");
    let rv = token.as_ref().map_or(store.rv, |t| t.rv);
    if token.is_some() && rv < store.compacted {
        return Err(ApiError::expired(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
        ));
    }
    let mut items: Vec<(&super::store::ObjKey, &Value)> = store
        .objects
        .iter()
        .filter(|((g, p, n, _), _)| {
            *g == rt.group && *p == rt.plural && ns.is_none_or(|ns| ns == n)
        })
        .filter(|(k, _)| {
            token
                .as_ref()
                .is_none_or(|t| (k.2.clone(), k.3.clone()) > t.after)
        })
        .filter(|(_, o)| lsel.matches(o) && fsel.matches(o))
        .map(|(k, o)| (k, o.as_ref()))
        .collect();
    let mut cont = None;
    if limit > 0 && items.len() > limit {
        items.truncate(limit);
        let last = items
            .last()
            .map(|(k, _)| (k.2.clone(), k.3.clone()))
            .unwrap_or_default();
        let t = serde_json::to_vec(&ContinueToken { rv, after: last }).unwrap_or_default();
        cont = Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t));
    }
    let mut objs: Vec<Value> = items
        .into_iter()
        .map(|(_, o)| for_version(rt, o.clone()))
        .collect();
    if rt.group.is_empty() && rt.plural == "events" && token.is_none() {
        // kube-rs records events.k8s.io/v1 Events, kubectl describe lists core/v1 ones: show both there.
        objs.extend(
            store
                .list("events.k8s.io", "events", ns)
                .into_iter()
                .map(super::events::to_core)
                .filter(|e| lsel.matches(e) && fsel.matches(e)),
        );
    }
    drop(store);
    let rv = rv.to_string();
    if let Some(inc) = as_table {
        return Ok(json_response(
            200,
            &table::table(rt, &objs, &rv, cont.as_deref(), &inc),
            &[],
        ));
    }
    let mut meta = json!({"resourceVersion": rv});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    Ok(json_response(
        200,
        &json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": meta, "items": objs}),
        &[],
    ))
}

struct WatchFilter {
    rt: ResourceType,
    ns: Option<String>,
    lsel: LabelSelector,
    fsel: FieldSelector,
    as_table: Option<String>,
}

impl WatchFilter {
    fn matches(&self, o: &Value) -> bool {
        self.lsel.matches(o) && self.fsel.matches(o)
    }

    fn frame(&self, type_: &str, obj: &Value) -> Bytes {
        let obj = for_version(&self.rt, obj.clone());
        let obj = match &self.as_table {
            Some(inc) => table::table(
                &self.rt,
                std::slice::from_ref(&obj),
                meta_str(&obj, "resourceVersion"),
                None,
                inc,
            ),
            None => obj,
        };
        let mut line =
            serde_json::to_vec(&json!({"type": type_, "object": obj})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }

    /// Translates a change into what this watch sees: an object that stops matching the selector is DELETED
    /// for it, one that starts matching is ADDED.
    fn render(&self, c: &Change) -> Option<Bytes> {
        if c.group != self.rt.group
            || c.plural != self.rt.plural
            || self.ns.as_ref().is_some_and(|ns| *ns != c.namespace)
        {
            return None;
        }
        let now = self.matches(&c.object);
        let before = c.old.as_ref().is_some_and(|o| self.matches(o));
        let type_ = match (c.type_, now, before) {
            (EventType::Added, true, _) => "ADDED",
            (EventType::Deleted, true, _) => "DELETED",
            (EventType::Modified, true, true) => "MODIFIED",
            (EventType::Modified, true, false) => "ADDED",
            (EventType::Modified, false, true) => "DELETED",
            _ => return None,
        };
        Some(self.frame(type_, &c.object))
    }
}

fn error_frame(e: &ApiError) -> Bytes {
    let mut line =
        serde_json::to_vec(&json!({"type": "ERROR", "object": e.to_status()})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn watch(
    shared: Arc<Shared>,
    rt: ResourceType,
    ns: Option<String>,
    query: &HashMap<String, String>,
    as_table: Option<String>,
) -> ApiResult<Response> {
    let filter = WatchFilter {
        rt,
        ns,
        lsel: LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))?,
        fsel: FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or(""))?,
        as_table,
    };
    let from =
        match query.get("resourceVersion").filter(|s| !s.is_empty()) {
            Some(s) => Some(s.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("resourceVersion: invalid value {s:?}"))
            })?),
            None => None,
        };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let bookmarks = matches!(
        query.get("allowWatchBookmarks").map(String::as_str),
        Some("true" | "1")
    );
    let (tx, mut rx_body) = tokio::sync::mpsc::channel::<Bytes>(256);
    let mut initial = Vec::new();
    let mut expired = false;
    let (mut events, start) = {
        let store = shared.store.lock().expect("store lock");
        let events = store.subscribe();
        match from {
            None | Some(0) => {
                for ((g, p, n, _), o) in &store.objects {
                    if *g == filter.rt.group
                        && *p == filter.rt.plural
                        && filter.ns.as_ref().is_none_or(|ns| ns == n)
                        && filter.matches(o)
                    {
                        initial.push(filter.frame("ADDED", o));
                    }
                }
            }
            Some(rv) if rv < store.compacted => {
                expired = true;
                initial.push(error_frame(&ApiError::expired(format!(
                    "too old resource version: {rv} ({})",
                    store.compacted
                ))));
            }
            Some(rv) => initial.extend(
                store
                    .history
                    .iter()
                    .filter(|c| c.rv > rv)
                    .filter_map(|c| filter.render(c)),
            ),
        }
        (events, store.rv)
    };
    let bookmark_every = shared.bookmark_interval;
    tokio::spawn(async move {
        for f in initial {
            if tx.send(f).await.is_err() {
                return;
            }
        }
        if expired {
            return;
        }
        let mut last = start;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(bookmark_every);
        tick.tick().await;
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(c) => {
                        if c.rv <= last { continue; }
                        last = c.rv;
                        if let Some(f) = filter.render(&c) && tx.send(f).await.is_err() { return; }
                    }
                    Err(RecvError::Lagged(_)) => {
                        let _ = tx.send(error_frame(&ApiError::expired("watch fell behind the event log; relist"))).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick(), if bookmarks => {
                    let bm = json!({"type": "BOOKMARK", "object": {"kind": filter.rt.kind, "apiVersion": filter.rt.api_version(),
                                    "metadata": {"resourceVersion": last.to_string()}}});
                    let mut line = serde_json::to_vec(&bm).unwrap_or_default();
                    line.push(b'\n');
                    if tx.send(Bytes::from(line)).await.is_err() { return; }
                }
                _ = &mut deadline => return,
                _ = tx.closed() => return,
            }
        }
    });
    let stream = futures::stream::poll_fn(move |cx| {
        rx_body
            .poll_recv(cx)
            .map(|o| o.map(Ok::<_, std::convert::Infallible>))
    });
    Ok(Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| ApiError::internal("building the watch response").into_response()))
}
