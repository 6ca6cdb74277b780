//! The DaemonSet and StatefulSet controller imitations: the status each update strategy leads to.

use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use serin_testkit::apiserver::ApiServer;

fn template(image: &str) -> serde_json::Value {
    json!({"metadata": {"labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": image}]}})
}

async fn set(api_patch: impl std::future::Future<Output = kube::Result<()>>) {
    api_patch.await.unwrap();
}

#[tokio::test]
async fn daemonset_rolls_out_unless_on_delete() {
    let server = ApiServer::default();
    let api: Api<DaemonSet> = Api::namespaced(server.client(), "prod");
    let ds: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template("web:1"),
                 "updateStrategy": {"type": "OnDelete"}}
    }))
    .unwrap();
    api.create(&PostParams::default(), &ds).await.unwrap();
    let s = api.get("web").await.unwrap().status.unwrap();
    assert_eq!(
        (
            s.desired_number_scheduled,
            s.number_ready,
            s.updated_number_scheduled
        ),
        (3, 3, Some(3)),
        "a new DaemonSet starts with its template"
    );

    let patch = |v| {
        let api = api.clone();
        async move {
            api.patch("web", &PatchParams::default(), &Patch::Merge(v))
                .await
                .map(|_| ())
        }
    };
    set(patch(json!({"spec": {"template": template("web:2")}}))).await;
    let s = api.get("web").await.unwrap().status.unwrap();
    assert_eq!(s.updated_number_scheduled, None, "OnDelete replaces no pod");
    assert_eq!(s.number_ready, 3, "the old pods keep running");

    set(patch(
        json!({"spec": {"updateStrategy": {"type": "RollingUpdate"}}}),
    ))
    .await;
    let d = api.get("web").await.unwrap();
    let s = d.status.unwrap();
    assert_eq!(s.updated_number_scheduled, Some(3));
    assert_eq!(s.observed_generation, d.metadata.generation);

    set(patch(
        json!({"spec": {"template": {"spec": {"nodeSelector": {"x": "y"}}}}}),
    ))
    .await;
    let s = api.get("web").await.unwrap().status.unwrap();
    assert_eq!(
        (s.desired_number_scheduled, s.number_ready),
        (0, 0),
        "no node fits a nodeSelector"
    );
}

#[tokio::test]
async fn statefulset_follows_its_partition() {
    let server = ApiServer::default();
    let api: Api<StatefulSet> = Api::namespaced(server.client(), "prod");
    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "web"}},
                 "template": template("db:1")}
    }))
    .unwrap();
    api.create(&PostParams::default(), &sts).await.unwrap();
    let s = api.get("db").await.unwrap().status.unwrap();
    assert_eq!((s.replicas, s.updated_replicas), (3, Some(3)));
    assert_eq!(s.current_revision, s.update_revision);

    let patch = |v| {
        let api = api.clone();
        async move {
            api.patch("db", &PatchParams::default(), &Patch::Merge(v))
                .await
                .map(|_| ())
        }
    };
    set(patch(json!({"spec": {"template": template("db:2"),
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2147483647}}}})))
    .await;
    let s = api.get("db").await.unwrap().status.unwrap();
    assert_eq!(s.updated_replicas, None, "no ordinal reaches the partition");
    assert_ne!(s.current_revision, s.update_revision);
    set(patch(json!({"spec": {"replicas": 5}}))).await;
    let s = api.get("db").await.unwrap().status.unwrap();
    assert_eq!(
        (s.replicas, s.ready_replicas, s.updated_replicas),
        (5, Some(5), None),
        "a scale-up starts the new pods on the current revision"
    );

    set(patch(
        json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 3}}}}),
    ))
    .await;
    let s = api.get("db").await.unwrap().status.unwrap();
    assert_eq!(s.updated_replicas, Some(2), "ordinals 3 and 4");

    set(patch(
        json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}}),
    ))
    .await;
    let s = api.get("db").await.unwrap().status.unwrap();
    assert_eq!(s.updated_replicas, Some(5));
    assert_eq!(s.current_revision, s.update_revision, "rolled out");
}
