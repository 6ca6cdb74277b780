//! kube 5 clients (typed Api, watcher, reflector, finalizer, Controller, Recorder) against the in-memory server.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, finalizer, reflector, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use serin_api::canary::Canary;
use serin_testkit::{ApiServer, Options};
use std::sync::Arc;
use std::time::Duration;

/// Polls `check` until it returns Some, or panics with `what` after 20 s.
async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn deployment(name: &str, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 80}],
                                                        "env": [{"name": "A", "value": "1"}]},
                                                       {"name": "sidecar", "image": "side:1"}]}}}
    }))
    .unwrap()
}

fn api_err(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason.clone()),
        other => panic!("expected a Status error, got {other:?}"),
    }
}

fn setup() -> (ApiServer, Client) {
    let server = ApiServer::new(Options {
        bookmark_interval: Duration::from_millis(200),
        ..Options::default()
    });
    let client = server.client();
    (server, client)
}

#[tokio::test]
async fn deployment_create_get_list_conflicts() {
    let (_server, client) = setup();
    let api: Api<Deployment> = Api::namespaced(client, "default");
    let created = api
        .create(&PostParams::default(), &deployment("web", "web:1"))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, Some(1));
    assert_eq!(meta.namespace.as_deref(), Some("default"));
    assert!(
        created.status.is_none(),
        "the create response precedes the controller's status write"
    );

    let (code, reason) = api_err(
        api.create(&PostParams::default(), &deployment("web", "web:1"))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));

    api.create(&PostParams::default(), &deployment("api", "api:1"))
        .await
        .unwrap();
    let web_only = api
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(
        web_only
            .items
            .iter()
            .map(|d| d.name_any())
            .collect::<Vec<_>>(),
        ["web"]
    );
    assert!(
        web_only
            .metadata
            .resource_version
            .as_deref()
            .is_some_and(|rv| !rv.is_empty())
    );
    let by_field = api
        .list(&ListParams::default().fields("metadata.name=api"))
        .await
        .unwrap();
    assert_eq!(by_field.items.len(), 1);
    assert_eq!(
        api.list(&ListParams::default().labels("app notin (web,api)"))
            .await
            .unwrap()
            .items
            .len(),
        0
    );

    // Optimistic concurrency: a write based on a stale resourceVersion is refused.
    let stale = api.get("web").await.unwrap();
    let mut fresh = stale.clone();
    fresh.spec.as_mut().unwrap().replicas = Some(4);
    let replaced = api
        .replace("web", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_eq!(replaced.metadata.generation, Some(2));
    let mut stale = stale;
    stale.spec.as_mut().unwrap().replicas = Some(5);
    let (code, reason) = api_err(
        api.replace("web", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));

    let (code, reason) = api_err(api.get("nope").await.unwrap_err());
    assert_eq!((code, reason.as_str()), (404, "NotFound"));

    // generateName
    let mut generated = deployment("x", "x:1");
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let g = api
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    assert!(
        g.name_any().starts_with("gen-") && g.name_any().len() == 9,
        "{}",
        g.name_any()
    );
}

#[tokio::test]
async fn every_patch_type() {
    let (server, client) = setup();
    let api: Api<Deployment> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &deployment("web", "web:1"))
        .await
        .unwrap();

    let p = json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
                   {"op": "add", "path": "/metadata/finalizers", "value": ["serin.dev/test"]}]);
    let d = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Json::<()>(serde_json::from_value(p.clone()).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(d.finalizers(), ["serin.dev/test"]);
    let (code, _) = api_err(
        api.patch(
            "web",
            &PatchParams::default(),
            &Patch::Json::<()>(serde_json::from_value(p).unwrap()),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(code, 422, "a failing JSON-patch test is 422");

    let d = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "fe"}}})),
        )
        .await
        .unwrap();
    assert_eq!(d.labels().get("tier").map(String::as_str), Some("fe"));
    assert_eq!(
        d.metadata.generation,
        Some(1),
        "metadata changes do not bump generation"
    );

    let smp = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2", "env": [{"name": "B", "value": "2"}]}]}}}});
    let d = api
        .patch("web", &PatchParams::default(), &Patch::Strategic(smp))
        .await
        .unwrap();
    let containers = &d
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers;
    assert_eq!(containers.len(), 2, "strategic merge keeps the sidecar");
    assert_eq!(containers[0].image.as_deref(), Some("web:2"));
    assert_eq!(
        containers[0]
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>(),
        ["A", "B"]
    );
    assert_eq!(d.metadata.generation, Some(2));

    let apply = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 1}});
    let d = api
        .patch(
            "web",
            &PatchParams::apply("serin-test").force(),
            &Patch::Apply(&apply),
        )
        .await
        .unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(1));
    let last = server
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "PATCH")
        .unwrap();
    assert_eq!(last.content_type, "application/apply-patch+yaml");
    assert!(
        last.query.contains("fieldManager=serin-test"),
        "{}",
        last.query
    );

    // Server-side apply creates what does not exist.
    let fresh = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"a": "b"}});
    let cms: Api<ConfigMap> = Api::default_namespaced(Client::from(api.clone()));
    let cm = cms
        .patch(
            "applied",
            &PatchParams::apply("serin-test"),
            &Patch::Apply(&fresh),
        )
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["a"], "b");
}

#[tokio::test]
async fn apply_without_field_manager_is_a_clear_400() {
    let (_server, client) = setup();
    let req = http::Request::patch("/api/v1/namespaces/default/configmaps/x")
        .header("content-type", "application/apply-patch+yaml")
        .body(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#.to_vec())
        .unwrap();
    let err = client.request_text(req).await.unwrap_err();
    let (code, _) = api_err(err);
    assert_eq!(code, 400);
}

#[tokio::test]
async fn status_subresource_and_delete_with_finalizer() {
    let (server, client) = setup();
    server.set_deployment_controller(false);
    let api: Api<Deployment> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &deployment("web", "web:1"))
        .await
        .unwrap();

    let d = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"readyReplicas": 7}, "spec": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(d.status.as_ref().unwrap().ready_replicas, Some(7));
    assert_eq!(
        d.spec.as_ref().unwrap().replicas,
        Some(3),
        "a /status write changes only .status"
    );
    assert_eq!(d.metadata.generation, Some(1));

    let d = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"readyReplicas": 1}, "spec": {"replicas": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(
        d.status.as_ref().unwrap().ready_replicas,
        Some(7),
        "a main-resource write ignores .status"
    );
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(2));
    assert_eq!(d.metadata.generation, Some(2));

    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["serin.dev/hold"]}})),
    )
    .await
    .unwrap();
    api.delete("web", &DeleteParams::default()).await.unwrap();
    let d = api.get("web").await.unwrap();
    assert!(
        d.metadata.deletion_timestamp.is_some(),
        "with a finalizer, delete only marks the object"
    );
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let (code, _) = api_err(api.get("web").await.unwrap_err());
    assert_eq!(code, 404, "removing the last finalizer removes the object");
}

#[tokio::test]
async fn deployment_controller_imitation_follows_spec_unless_paused() {
    let (server, client) = setup();
    let api: Api<Deployment> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &deployment("web", "web:1"))
        .await
        .unwrap();
    let st = api.get("web").await.unwrap().status.unwrap();
    assert_eq!(
        (
            st.observed_generation,
            st.replicas,
            st.updated_replicas,
            st.ready_replicas,
            st.available_replicas
        ),
        (Some(1), Some(3), Some(3), Some(3), Some(3))
    );

    // Paused with a new template: observedGeneration follows, no pod runs the new template.
    let smp = json!({"spec": {"paused": true, "template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}}});
    api.patch("web", &PatchParams::default(), &Patch::Strategic(smp))
        .await
        .unwrap();
    let d = api.get("web").await.unwrap();
    let st = d.status.unwrap();
    assert_eq!(st.observed_generation, d.metadata.generation);
    assert_eq!(
        (st.replicas, st.updated_replicas, st.ready_replicas),
        (Some(3), None, Some(3))
    );

    // Scaling through /scale works while paused.
    let scale = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(5));
    assert_eq!(
        api.get_scale("web")
            .await
            .unwrap()
            .status
            .unwrap()
            .selector
            .as_deref(),
        Some("app=web")
    );

    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"paused": false}})),
    )
    .await
    .unwrap();
    let st = api.get("web").await.unwrap().status.unwrap();
    assert_eq!((st.replicas, st.updated_replicas), (Some(5), Some(5)));

    server.set_deployment_controller(false);
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    let d = api.get("web").await.unwrap();
    assert_eq!(
        d.status.unwrap().replicas,
        Some(5),
        "with the imitation off, status stays as it was"
    );
}

#[tokio::test]
async fn list_pagination_with_limit_and_continue() {
    let (_server, client) = setup();
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    for i in 0..7 {
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": format!("cm-{i}")}})).unwrap(),
        )
        .await
        .unwrap();
    }
    let mut names = Vec::new();
    let mut lp = ListParams::default().limit(3);
    loop {
        let page = cms.list(&lp).await.unwrap();
        assert!(page.items.len() <= 3);
        names.extend(page.items.iter().map(|c| c.name_any()));
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    assert_eq!(names, (0..7).map(|i| format!("cm-{i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn watcher_and_reflector_see_changes_and_survive_410() {
    let (server, client) = setup();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let (reader, writer) = reflector::store::<ConfigMap>();
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen2 = seen.clone();
    let stream = reflector(writer, watcher(cms.clone(), watcher::Config::default()));
    let task = tokio::spawn(async move {
        let mut s = std::pin::pin!(stream);
        while let Some(ev) = s.next().await {
            if let Ok(ev) = ev {
                let kind = match ev {
                    watcher::Event::Apply(_) => "apply",
                    watcher::Event::Delete(_) => "delete",
                    _ => "init",
                };
                seen2.lock().unwrap().push(kind.to_string());
            }
        }
    });
    reader.wait_until_ready().await.unwrap();
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "a"}, "data": {"v": "1"}})).unwrap(),
    )
    .await
    .unwrap();
    wait_for("ADDED in the reflector", async || {
        reader.get(&reflector::ObjectRef::new("a").within("default"))
    })
    .await;
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await
    .unwrap();
    wait_for("MODIFIED in the reflector", async || {
        reader
            .get(&reflector::ObjectRef::new("a").within("default"))
            .filter(|c| c.data.as_ref().unwrap()["v"] == "2")
    })
    .await;
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    wait_for("DELETED in the reflector", async || {
        reader.is_empty().then_some(())
    })
    .await;
    let kinds = seen.lock().unwrap().clone();
    assert_eq!(
        kinds.iter().filter(|k| *k != "init").collect::<Vec<_>>(),
        ["apply", "apply", "delete"]
    );

    task.abort();

    // A fresh watch from an old resourceVersion gets ERROR 410 in the stream.
    server.compact();
    let req = http::Request::get(
        "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=2&timeoutSeconds=1",
    )
    .body(Vec::new())
    .unwrap();
    let text = client.request_text(req).await.unwrap();
    assert!(
        text.contains("\"ERROR\"") && text.contains("\"code\":410") && text.contains("Expired"),
        "{text}"
    );

    // A watcher whose watch ends (1 s timeout, no bookmarks) resumes from a now-expired RV: 410, relist, correct.
    let (reader2, writer2) = reflector::store::<ConfigMap>();
    let cfg = watcher::Config::default().timeout(1).disable_bookmarks();
    let stream2 = reflector(writer2, watcher(cms.clone(), cfg)).applied_objects();
    let t2 = tokio::spawn(async move {
        let mut s = std::pin::pin!(stream2);
        while s.next().await.is_some() {}
    });
    reader2.wait_until_ready().await.unwrap();
    let lists = |server: &ApiServer| {
        server
            .requests()
            .iter()
            .filter(|r| {
                r.method == "GET"
                    && r.path.ends_with("/configmaps")
                    && !r.query.contains("watch=true")
            })
            .count()
    };
    let lists_before = lists(&server);
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), "default");
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap(),
        )
        .await
        .unwrap();
    server.compact();
    wait_for("a relist after 410", async || {
        (lists(&server) > lists_before).then_some(())
    })
    .await;
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap(),
    )
    .await
    .unwrap();
    wait_for("c in the second reflector", async || {
        reader2.get(&reflector::ObjectRef::new("c").within("default"))
    })
    .await;
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "d"}})).unwrap(),
    )
    .await
    .unwrap();
    wait_for("d after the relist", async || {
        reader2.get(&reflector::ObjectRef::new("d").within("default"))
    })
    .await;
    t2.abort();
}

#[tokio::test]
async fn watch_resumes_and_bookmarks_and_410_forces_relist() {
    let (server, client) = setup();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "a"}})).unwrap(),
    )
    .await
    .unwrap();
    let rv = server.resource_version();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await
    .unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    // Replay from rv: MODIFIED then DELETED, then at least one bookmark before the 1 s timeout.
    let req = http::Request::get(format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=1"))
        .body(Vec::new())
        .unwrap();
    let text = client.request_text(req).await.unwrap();
    let types: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(&types[..2], ["MODIFIED", "DELETED"], "{text}");
    assert!(
        types[2..].iter().all(|t| t == "BOOKMARK") && types.len() > 2,
        "{types:?}"
    );
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        assert!(
            v["object"]["metadata"]["resourceVersion"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "{l}"
        );
    }
    // A label-selector watch sees an object that stops matching as DELETED.
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "l", "labels": {"k": "v"}}})).unwrap(),
    )
    .await
    .unwrap();
    let rv = server.resource_version();
    cms.patch(
        "l",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"k": "w"}}})),
    )
    .await
    .unwrap();
    let req = http::Request::get(format!(
        "/api/v1/configmaps?watch=true&resourceVersion={rv}&labelSelector=k%3Dv&timeoutSeconds=1"
    ))
    .body(Vec::new())
    .unwrap();
    let text = client.request_text(req).await.unwrap();
    assert!(
        text.lines().next().unwrap().contains("\"DELETED\""),
        "{text}"
    );

    server.compact();
    let req = http::Request::get(format!(
        "/api/v1/configmaps?watch=true&resourceVersion={rv}"
    ))
    .body(Vec::new())
    .unwrap();
    let text = client.request_text(req).await.unwrap();
    let v: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        (
            v["type"].as_str(),
            v["object"]["code"].as_u64(),
            v["object"]["reason"].as_str()
        ),
        (Some("ERROR"), Some(410), Some("Expired"))
    );
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct FinErr(#[from] Box<finalizer::Error<kube::Error>>);

#[tokio::test]
async fn runtime_finalizer_adds_and_removes() {
    let (_server, client) = setup();
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "f"}})).unwrap(),
    )
    .await
    .unwrap();
    let cleaned = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let run = |cleaned: Arc<std::sync::atomic::AtomicBool>| {
        let cms = cms.clone();
        async move {
            let obj = Arc::new(cms.get("f").await?);
            finalizer(&cms, "serin.dev/cleanup", obj, |ev| async move {
                if let finalizer::Event::Cleanup(_) = ev {
                    cleaned.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                Ok::<_, kube::Error>(Action::await_change())
            })
            .await
            .map_err(|e| FinErr(Box::new(e)))
            .map_err(|e| kube::Error::Service(Box::new(e)))
        }
    };
    run(cleaned.clone()).await.unwrap();
    assert_eq!(
        cms.get("f").await.unwrap().finalizers(),
        ["serin.dev/cleanup"]
    );
    cms.delete("f", &DeleteParams::default()).await.unwrap();
    run(cleaned.clone()).await.unwrap();
    assert!(cleaned.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(api_err(cms.get("f").await.unwrap_err()).0, 404);
}

#[tokio::test]
async fn controller_loop_reconciles_configmaps() {
    let (_server, client) = setup();
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    async fn reconcile(
        cm: Arc<ConfigMap>,
        api: Arc<Api<ConfigMap>>,
    ) -> Result<Action, kube::Error> {
        if cm.data.as_ref().and_then(|d| d.get("reconciled")).is_none() {
            api.patch(
                &cm.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"reconciled": "yes"}})),
            )
            .await?;
        }
        Ok(Action::await_change())
    }
    let ctl = Controller::new(cms.clone(), watcher::Config::default())
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_millis(100)),
            Arc::new(cms.clone()),
        )
        .for_each(|_| async {});
    let task = tokio::spawn(ctl);
    for n in ["one", "two"] {
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": n}})).unwrap(),
        )
        .await
        .unwrap();
    }
    for n in ["one", "two"] {
        wait_for("reconciled", async || {
            cms.get(n).await.ok().filter(|c| {
                c.data
                    .as_ref()
                    .is_some_and(|d| d.contains_key("reconciled"))
            })
        })
        .await;
    }
    task.abort();
}

#[tokio::test]
async fn crds_serve_canaries_with_status_and_table() {
    let (server, client) = setup();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in serin_api::crd::crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let crd = crds.get("canaries.flagger.app").await.unwrap();
    let established = crd
        .status
        .unwrap()
        .conditions
        .unwrap()
        .iter()
        .any(|c| c.type_ == "Established" && c.status == "True");
    assert!(established);

    let canaries: Api<Canary> = Api::namespaced(client.clone(), "prod");
    let canary: Canary = serde_json::from_value(json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": "web"},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "service": {"port": 80},
                 "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10}}
    }))
    .unwrap();
    canaries
        .create(&PostParams::default(), &canary)
        .await
        .unwrap();
    canaries
        .patch_status("web", &PatchParams::apply("serin").force(), &Patch::Apply(json!({"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "status": {"phase": "Progressing", "canaryWeight": 20}})))
        .await
        .unwrap();
    let raw = server
        .object("flagger.app/v1beta1", "Canary", "prod", "web")
        .unwrap();
    assert_eq!(raw["status"]["canaryWeight"], 20);
    assert_eq!(raw["metadata"]["generation"], 1);

    let req = http::Request::get("/apis/flagger.app/v1beta1/namespaces/prod/canaries")
        .header(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(Vec::new())
        .unwrap();
    let table: Value = serde_json::from_str(&client.request_text(req).await.unwrap()).unwrap();
    assert_eq!(table["kind"], "Table");
    let cols: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    let declared: Vec<String> = crd_columns(&serin_api::crd::crds()[0]);
    assert_eq!(cols[0], "Name");
    for d in &declared {
        assert!(cols.contains(&d.as_str()), "{d} missing from {cols:?}");
    }
    let row = &table["rows"][0]["cells"];
    assert_eq!(row[0], "web");
    let weight_col = cols.iter().position(|c| *c == "Weight").unwrap();
    assert_eq!(row[weight_col], 20);

    // Deleting the CRD removes its objects and stops serving the kind.
    crds.delete("canaries.flagger.app", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_err(canaries.get("web").await.unwrap_err()).0, 404);
}

fn crd_columns(crd: &CustomResourceDefinition) -> Vec<String> {
    crd.spec.versions[0]
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect()
}

#[tokio::test]
async fn recorder_events_show_in_core_event_lists() {
    let (_server, client) = setup();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "web"}})).unwrap(),
        )
        .await
        .unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "serin".into(),
            instance: None,
        },
    );
    let ev = Event {
        type_: EventType::Warning,
        reason: "Synced".into(),
        note: Some("Rolling back default/web: failed checks threshold reached".into()),
        action: "Rollback".into(),
        secondary: None,
    };
    recorder.publish(&ev, &cm.object_ref(&())).await.unwrap();
    recorder.publish(&ev, &cm.object_ref(&())).await.unwrap();
    let core: Api<CoreEvent> = Api::namespaced(client, "default");
    let list = core
        .list(
            &ListParams::default().fields("involvedObject.name=web,involvedObject.kind=ConfigMap"),
        )
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1, "the repeat is a series on one event");
    let e = &list.items[0];
    assert_eq!(e.reason.as_deref(), Some("Synced"));
    assert!(e.message.as_deref().unwrap().contains("Rolling back"));
    assert_eq!(e.count, Some(2));
}

#[tokio::test]
async fn fault_injection_and_request_log() {
    let (server, client) = setup();
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap(),
    )
    .await
    .unwrap();
    server.clear_requests();
    server.inject_fault(
        Some(http::Method::GET),
        "/api/v1/namespaces/default/configmaps/x",
        503,
        1,
    );
    let (code, reason) = api_err(cms.get("x").await.unwrap_err());
    assert_eq!((code, reason.as_str()), (503, "ServiceUnavailable"));
    cms.get("x").await.unwrap();
    cms.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "b"}})),
    )
    .await
    .unwrap();
    let log = server.requests();
    assert_eq!(log.len(), 3);
    assert_eq!(server.request_count(), 3);
    assert_eq!(
        (log[2].method.as_str(), log[2].content_type.as_str()),
        ("PATCH", "application/merge-patch+json")
    );
}
