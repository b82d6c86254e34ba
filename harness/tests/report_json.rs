//! results.json validates against docs/results-schema.json (the `jsonschema` crate), round-trips,
//! and bad files are refused with a message naming the file and what is wrong.

mod common;

use breakout_harness::model::RunReport;
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
    other_version["schema_version"] = 2.into();
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
            "old.json has results schema_version 7; this breakout reads version {} (see docs/results-schema.md)",
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
