//! results.json validates against docs/results-schema.json (the `jsonschema` crate), round-trips,
//! and bad files are refused with a message naming the file and what is wrong.

mod common;

use breakout_harness::model::{RunReport, SCHEMA_VERSION};
use breakout_harness::report::{self, json, Format};
use common::sample_report;

fn schema() -> jsonschema::Validator {
    let text = include_str!("../../docs/results-schema.json");
    let schema: serde_json::Value = serde_json::from_str(text).expect("the schema is JSON");
    jsonschema::draft202012::new(&schema).expect("the schema is a valid draft 2020-12 schema")
}

fn errors(validator: &jsonschema::Validator, value: &serde_json::Value) -> Vec<String> {
    validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn sample_results_validate_against_the_schema() {
    let text = report::render(&sample_report(), Format::Json);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let problems = errors(&schema(), &value);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn joint_capability_groups_validate() {
    let mut report = sample_report();
    for r in &mut report.results {
        if let Some(a) = &mut r.attribution {
            a.caps_detail = vec![
                "CAP_SYS_PTRACE+CAP_SYS_ADMIN".to_string(),
                "CAP_BPF".to_string(),
            ];
        }
    }
    let value = serde_json::to_value(&report).unwrap();
    let problems = errors(&schema(), &value);
    assert!(problems.is_empty(), "{problems:#?}");
    let mut bad = value;
    bad["results"][1]["attribution"]["caps_detail"][0] = "SYS_PTRACE".into();
    assert!(
        !errors(&schema(), &bad).is_empty(),
        "names without CAP_ are refused"
    );
}

#[test]
fn launch_timings_validate_and_round_trip() {
    use breakout_harness::model::{LaunchMedians, LaunchTimings};
    let mut report = sample_report();
    let medians = |launches| LaunchMedians {
        launches,
        arrange_ms: 1.5,
        launch_ms: 140.2,
        judge_ms: 0.3,
        total_ms: 142.0,
    };
    report.timings.launches = Some(LaunchTimings {
        probes: medians(176),
        ablation: medians(1120),
    });
    let value = serde_json::to_value(&report).unwrap();
    let problems = errors(&schema(), &value);
    assert!(problems.is_empty(), "{problems:#?}");
    let back: RunReport = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(back.timings.launches, report.timings.launches);
    let mut bad = value;
    bad["timings"]["launches"]["probes"]["median_ms"] = 1.into();
    assert!(
        !errors(&schema(), &bad).is_empty(),
        "unknown fields are refused"
    );
}

#[test]
fn an_empty_run_validates_too() {
    let mut report = sample_report();
    report.results.clear();
    report.profiles.clear();
    report.environment = Default::default();
    let value = serde_json::to_value(&report).unwrap();
    let problems = errors(&schema(), &value);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_schema_rejects_what_the_model_cannot_hold() {
    let validator = schema();
    let good = serde_json::to_value(sample_report()).unwrap();
    let mut bad_verdict = good.clone();
    bad_verdict["results"][0]["verdict"] = "maybe".into();
    assert!(!errors(&validator, &bad_verdict).is_empty());
    let mut bad_layer = good.clone();
    bad_layer["profiles"][1]["layers"][0] = "pid_ns".into();
    assert!(!errors(&validator, &bad_layer).is_empty());
    let mut unknown_field = good.clone();
    unknown_field["results"][0]["surprise"] = 1.into();
    assert!(!errors(&validator, &unknown_field).is_empty());
    let mut other_version = good;
    other_version["schema_version"] = (SCHEMA_VERSION + 1).into();
    assert!(!errors(&validator, &other_version).is_empty());
}

#[test]
fn the_schema_version_is_the_models() {
    let text = include_str!("../../docs/results-schema.json");
    let schema: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        schema["properties"]["schema_version"]["const"],
        serde_json::json!(breakout_harness::model::SCHEMA_VERSION)
    );
    let doc = include_str!("../../docs/results-schema.md");
    assert!(
        doc.contains(&format!(
            "schema_version: {}",
            breakout_harness::model::SCHEMA_VERSION
        )),
        "docs/results-schema.md names the current version"
    );
}

/// The schema's layer enum is the runtime's table of layers, in the same order.
#[test]
fn the_schema_names_every_layer() {
    let text = include_str!("../../docs/results-schema.json");
    let schema: serde_json::Value = serde_json::from_str(text).expect("the schema is JSON");
    let in_schema: Vec<&str> = schema["$defs"]["layer"]["enum"]
        .as_array()
        .expect("$defs.layer.enum is a list")
        .iter()
        .map(|v| v.as_str().expect("layer names are strings"))
        .collect();
    let known: Vec<&str> = breakout_runtime::Layer::ALL.map(|l| l.name()).to_vec();
    assert_eq!(
        in_schema, known,
        "docs/results-schema.json $defs.layer.enum"
    );
}

#[test]
fn json_round_trips() {
    let report = sample_report();
    let text = json::render(&report);
    let back: RunReport = json::parse(&text, "test").unwrap();
    assert_eq!(json::render(&back), text);
}

#[test]
fn other_versions_are_refused_by_name() {
    let mut value = serde_json::to_value(sample_report()).unwrap();
    value["schema_version"] = 7.into();
    let err = json::parse(&value.to_string(), "old.json").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "old.json has results schema_version 7; this breakout reads versions 1 to {} (see docs/results-schema.md)",
            breakout_harness::model::SCHEMA_VERSION
        )
    );
}

#[test]
fn malformed_files_name_the_field_and_line() {
    let err = json::parse("{\"schema_version\": 1}", "r.json").unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("r.json is not a breakout results file: missing field"),
        "{text}"
    );
    let err = json::parse("{\"schema_version\": 1,\n  \"results\": [", "r.json").unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
    let err = json::load(std::path::Path::new("/nonexistent/results.json")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read results file /nonexistent/results.json"),
        "{err}"
    );
}

/// The committed baseline is schema 1: it loads, and what version 2 added is filled in from it
/// (the kernel release, the candidates, the depth as now defined), with no selection recorded.
#[test]
fn the_committed_schema_1_baseline_loads_and_reads_as_version_2() {
    use breakout_attacks::Layer;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../baselines/default.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let original: serde_json::Value = serde_json::from_str(&text).unwrap();
    if original["schema_version"] != 1 {
        // Regenerated with this version: nothing to upgrade.
        return;
    }
    let report = json::load(&path).unwrap();
    assert_eq!(report.selection, None);
    assert!(!report.covered().recorded);
    assert!(report.covered().ablation);
    assert!(
        report.environment.kernel_release.starts_with("6.1.0-"),
        "{}",
        report.environment.kernel_release
    );
    let cell = |probe: &str, profile: &str| {
        report
            .results
            .iter()
            .find(|r| r.probe == probe && r.profile == profile)
            .unwrap()
    };
    // Three layers each block alone, but strict without pid-ns escapes: one layer away.
    let signal = cell("signal-same-uid", "strict")
        .attribution
        .as_ref()
        .unwrap();
    assert_eq!(signal.depth, 1);
    assert_eq!(
        breakout_harness::report::cell::cell_text(cell("signal-same-uid", "strict")),
        "blocked: user-ns, pid-ns!, caps(CAP_KILL)"
    );
    // No layer alone suffices; new-session is needed and holds with some of the others.
    let tiocsti = cell("tiocsti", "strict").attribution.as_ref().unwrap();
    assert_eq!(
        tiocsti.candidates,
        vec![
            Layer::UserNs,
            Layer::Uid,
            Layer::Caps,
            Layer::Seccomp,
            Layer::NewSession
        ]
    );
    assert_eq!(tiocsti.depth, 1);
    assert_eq!(
        breakout_harness::report::cell::cell_text(cell("tiocsti", "strict")),
        "blocked: combined(new-session + some of user-ns|uid|caps|seccomp)"
    );
    // Every depth agrees with "one layer from escaping" and with the colour.
    for r in &report.results {
        if let Some(a) = &r.attribution {
            let one = breakout_harness::report::matrix::one_layer_from_escaping(r);
            assert_eq!(
                one,
                !a.necessary.is_empty(),
                "{} under {}",
                r.probe,
                r.profile
            );
            assert_eq!(
                breakout_harness::report::cell::Shade::of(r).key() == "depth1",
                one,
                "{} under {}",
                r.probe,
                r.profile
            );
        }
    }
}
