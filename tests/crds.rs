//! `serin crds` and the chart's copy of it.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const CHART_CRDS: &str = "charts/serin/crds/crds.yaml";

#[test]
fn chart_copy_equals_generated_crds() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(CHART_CRDS);
    let chart = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        chart == serin_api::crd::crds_yaml(),
        "{CHART_CRDS} differs from the CRDs the code generates; run \
         `cargo run -- crds > {CHART_CRDS}`"
    );
}

#[test]
fn serin_crds_prints_three_crds_with_status_and_columns() {
    let out = Command::new(env!("CARGO_BIN_EXE_serin"))
        .arg("crds")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let crds: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let kinds: Vec<&str> = crds
        .iter()
        .map(|c| c["spec"]["names"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Canary", "MetricTemplate", "AlertProvider"]);
    for crd in &crds {
        assert_eq!(crd["kind"], "CustomResourceDefinition");
        assert_eq!(crd["spec"]["group"], "flagger.app");
        assert_eq!(crd["spec"]["names"]["categories"][0], "all");
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["name"], "v1beta1");
        assert_eq!(version["subresources"]["status"], serde_json::json!({}));
        assert_eq!(
            version["schema"]["openAPIV3Schema"]["type"], "object",
            "structural schema"
        );
    }
    let columns: Vec<(&str, &str, i64)> =
        crds[0]["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap(),
                    c["jsonPath"].as_str().unwrap(),
                    c["priority"].as_i64().unwrap_or(0),
                )
            })
            .collect();
    for want in [
        ("Status", ".status.phase", 0),
        ("Weight", ".status.canaryWeight", 0),
        ("LastTransitionTime", ".status.lastTransitionTime", 0),
        ("FailedChecks", ".status.failedChecks", 1),
        ("StepWeight", ".spec.analysis.stepWeight", 1),
        ("MaxWeight", ".spec.analysis.maxWeight", 1),
    ] {
        assert!(columns.contains(&want), "missing {want:?} in {columns:?}");
    }
}
