//! The cell wording every renderer shares, the terminal matrix and the Markdown matrix, on the
//! synthetic report of tests/common.

mod common;

use breakout_harness::report::{self, cell, Format};
use common::{cell_of, sample_report, HOSTILE};
use rstest::rstest;

#[rstest]
#[case("ptrace-outside", "none", "ESCAPED", "escaped")]
// No layer is necessary: no single layer off lets it out, depth 2 however many suffice.
#[case("ptrace-outside", "namespaces", "blocked: user-ns, pid-ns", "depth2")]
#[case(
    "ptrace-outside",
    "strict",
    "blocked: pid-ns, caps(CAP_SYS_PTRACE), seccomp(ptrace)",
    "depth2"
)]
#[case("ptrace-outside", "bwrap", "blocked~: pid-ns", "depth1")]
#[case("hostname", "namespaces", "blocked: uts-ns", "depth1")]
// No layer suffices alone, caps and seccomp are each necessary: one layer from escaping.
#[case("hostname", "strict", "blocked: combined(caps+seccomp)", "depth1")]
#[case("hostname", "bwrap", "blocked: unexplained", "unattributed")]
#[case("fork-bomb", "namespaces", "inconclusive", "inconclusive")]
#[case("fork-bomb", "strict", "blocked: cgroup-limits", "depth1")]
#[case("io-uring", "strict", "skipped", "skipped")]
fn cell_text_and_shade(
    #[case] probe: &str,
    #[case] profile: &str,
    #[case] text: &str,
    #[case] shade: &str,
) {
    let report = sample_report();
    let r = cell_of(&report, probe, profile);
    assert_eq!(cell::cell_text(r), text);
    assert_eq!(cell::Shade::of(r).key(), shade);
}

#[test]
fn table_is_a_probes_by_profiles_matrix_without_colour_when_asked() {
    let report = sample_report();
    let text = report::table::render(&report, false);
    assert!(
        !text.contains('\x1b'),
        "no escape codes without colour:\n{text}"
    );
    let header = text
        .lines()
        .find(|l| l.starts_with("probe "))
        .expect("a header row");
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(columns, ["probe", "none", "namespaces", "strict", "bwrap"]);
    let row = text
        .lines()
        .find(|l| l.starts_with("ptrace-outside "))
        .expect("a ptrace-outside row");
    assert!(row.contains("ESCAPED"), "{row}");
    assert!(
        row.contains("blocked: pid-ns, caps(CAP_SYS_PTRACE), seccomp(ptrace)"),
        "{row}"
    );
    // Cells start at the header's column positions.
    let strict_col = header.find("strict").unwrap();
    assert_eq!(&row[strict_col..strict_col + 8], "blocked:");
    // The pair that did not run shows a dash.
    let fork = text.lines().find(|l| l.starts_with("fork-bomb ")).unwrap();
    assert!(fork.trim_end().ends_with('-'), "{fork}");
}

#[test]
fn table_states_the_environment_and_timings() {
    let text = report::render(&sample_report(), Format::Table);
    assert!(
        text.contains("kernel 6.1.0-27-cloud-amd64 x86_64, 2 CPUs, accel tcg"),
        "{text}"
    );
    assert!(text.contains("LSMs: lockdown,capability,landlock"));
    assert!(text.contains("kernel.kptr_restrict=0"));
    assert!(text.contains("1 vulnerable (mds)"));
    assert!(text.contains("74.0s total (boot 1.7s, probe runs 30.5s, ablation 41.0s)"));
    assert!(text.contains(
        "bwrap (layers inferred from its flags; attribution from evidence): user-ns, pid-ns"
    ));
    let strict = text
        .lines()
        .find(|l| l.trim_start().starts_with("strict ") && l.contains("escaped,"))
        .unwrap();
    assert!(
        strict.contains(
            "0 escaped, 3 blocked (2 one layer from escaping), 0 inconclusive, 1 skipped"
        ),
        "{strict}"
    );
}

#[test]
fn table_colours_by_depth() {
    let text = report::table::render(&sample_report(), true);
    let row = text
        .lines()
        .find(|l| l.starts_with("ptrace-outside "))
        .unwrap();
    assert!(
        row.contains("\x1b[1;31mESCAPED"),
        "escaped in bold red: {row:?}"
    );
    assert!(
        row.contains("\x1b[32mblocked: pid-ns, caps"),
        "depth 2 green: {row:?}"
    );
    let row = text.lines().find(|l| l.starts_with("hostname ")).unwrap();
    assert!(
        row.contains("\x1b[38;5;208mblocked: uts-ns"),
        "depth 1 orange: {row:?}"
    );
}

#[rstest]
#[case(None, true, true)]
#[case(Some(""), true, true)]
#[case(Some("1"), true, false)]
#[case(Some("0"), true, false)]
#[case(None, false, false)]
#[case(Some("1"), false, false)]
fn colour_follows_no_color_and_the_terminal(
    #[case] no_color: Option<&str>,
    #[case] terminal: bool,
    #[case] colour: bool,
) {
    let value = no_color.map(std::ffi::OsStr::new);
    assert_eq!(report::table::colour_enabled(value, terminal), colour);
}

#[test]
fn colour_is_off_when_stdout_is_not_a_terminal() {
    // cargo test captures stdout into a pipe.
    assert!(!report::table::colour_for_stdout());
}

#[test]
fn markdown_is_a_compact_matrix_with_safe_cells() {
    let report = sample_report();
    let text = report::render(&report, Format::Markdown);
    assert!(
        text.contains("| probe | none | namespaces | strict | bwrap |\n|---|---|---|---|---|\n"),
        "{text}"
    );
    assert!(text.contains(
        "| `ptrace-outside` | 🔴 **escaped** | 🟢 user-ns, pid-ns | 🟢 pid-ns, caps(CAP_SYS_PTRACE), seccomp(ptrace) | 🟠 pid-ns ~ |"
    ), "{text}");
    assert!(
        text.contains("| `fork-bomb` | 🔴 **escaped** | ⚪ inconclusive | 🟠 cgroup-limits | – |"),
        "{text}"
    );
    // Every table row has as many cells as the header.
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        assert_eq!(line.matches(" |").count(), 5, "{line}");
    }
    // combined (caps and seccomp each necessary, neither sufficient) and the depth-1 cell.
    assert!(text.contains(
        "- **strict**: 0 escaped, 3 blocked (2 one layer from escaping), 0 inconclusive, 1 skipped"
    ));
    assert!(text.contains("<details><summary>Environment: kernel 6.1.0-27-cloud-amd64"));
    assert!(text.contains("Attribution for bwrap is inferred from evidence"));
    // What needs a reviewer comes first, the matrix is folded after it.
    let findings = text
        .find("#### Positive controls that did not escape")
        .unwrap();
    let matrix = text.find("<details><summary>Matrix").unwrap();
    assert!(findings < matrix, "{text}");
}

#[test]
fn markdown_with_a_gate_puts_regressions_first_then_changes_then_the_folded_matrix() {
    use breakout_attacks::Verdict;
    let baseline = sample_report();
    let mut run = baseline.clone();
    for r in &mut run.results {
        match (r.probe.as_str(), r.profile.as_str()) {
            ("ptrace-outside", "namespaces") => {
                r.verdict = Verdict::Escaped;
                r.attribution = None;
            }
            ("fork-bomb", "namespaces") => {
                r.verdict = Verdict::Blocked;
                r.attribution = Some(common::attribution(&[breakout_attacks::Layer::PidNs], &[]));
            }
            _ => {}
        }
    }
    let gate = breakout_harness::suite::gate::compare(&baseline, &run);
    let text = report::render_gated(
        &run,
        Format::Markdown,
        Some((&gate, "baselines/default.json")),
    );
    let order = [
        "**Gate FAILED**",
        "#### Regressions",
        "ptrace-outside under namespaces: ESCAPED (baseline: blocked)",
        "#### Changed against the baseline",
        "fork-bomb under namespaces: inconclusive -&gt; blocked",
        "<details><summary>Matrix",
        "<details><summary>Environment",
    ];
    let mut at = 0;
    for needle in order {
        let found = text[at..]
            .find(needle)
            .unwrap_or_else(|| panic!("`{needle}` after byte {at}:\n{text}"));
        at += found + needle.len();
    }
}

#[test]
fn markdown_cells_cannot_break_the_table() {
    assert_eq!(
        report::escape::markdown_cell(HOSTILE),
        "&lt;script&gt;alert(1)&lt;/script&gt; & \"quotes\" \\| pipe \\x01\\x1b[31m"
    );
}

/// The sample report with text a hostile probe controls: a positive control's reason quoting
/// what it printed, a workload's failing step, and the guest's kernel string.
fn report_with_escape_sequences() -> breakout_harness::model::RunReport {
    let mut report = sample_report();
    for r in &mut report.results {
        if (r.probe.as_str(), r.profile.as_str()) == ("io-uring", "none") {
            r.reason = "the probe said \x1b[2J\x1b[H all clear".to_string();
        }
    }
    report.environment.kernel_release =
        format!("{}\x1b]0;owned\x07", report.environment.kernel_release);
    report
        .workloads
        .push(breakout_harness::model::WorkloadResult {
            workload: "python".to_string(),
            profile: "strict".to_string(),
            verdict: breakout_attacks::workloads::WorkloadVerdict::Broken,
            reason: "the program cleared the screen".to_string(),
            step: Some("write(1): \x1b[2J".to_string()),
            stderr_tail: "\x1b[2J".to_string(),
            duration_ms: 5,
            kernel: String::new(),
        });
    report
}

/// The only escape sequences in the terminal matrix are its own colours.
fn without_our_colours(text: &str) -> String {
    [
        "\x1b[1;31m",
        "\x1b[38;5;208m",
        "\x1b[32m",
        "\x1b[35m",
        "\x1b[2m",
        "\x1b[0m",
    ]
    .iter()
    .fold(text.to_string(), |t, code| t.replace(code, ""))
}

#[test]
fn a_probes_escape_sequences_are_shown_not_sent_by_the_table_and_markdown() {
    let report = report_with_escape_sequences();
    for colour in [false, true] {
        let table = report::table::render(&report, colour);
        assert!(
            !without_our_colours(&table).contains('\x1b'),
            "colour {colour}:\n{table}"
        );
        assert!(table.contains("\\x1b]0;owned\\x07"), "{table}");
        assert!(table.contains("BROKEN: write(1): \\x1b[2J"), "{table}");
    }
    let markdown = report::render(&report, Format::Markdown);
    assert!(!markdown.contains('\x1b'), "{markdown}");
    assert!(
        markdown.contains("the probe said \\x1b[2J\\x1b[H all clear"),
        "{markdown}"
    );
}

#[test]
fn write_all_writes_the_four_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nested/out");
    let written = report::write_all(&sample_report(), &out).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["results.json", "report.html", "junit.xml", "report.md"]
    );
    for p in &written {
        assert!(
            std::fs::metadata(p).unwrap().len() > 100,
            "{} is empty",
            p.display()
        );
    }
}

#[test]
fn write_all_names_the_directory_it_cannot_create() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = report::write_all(&sample_report(), &file.join("sub")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("cannot create the report directory") && text.contains("a-file/sub"),
        "{text}"
    );
}

#[test]
fn disagreements_list_probes_whose_verdicts_differ() {
    let report = sample_report();
    let found = report::matrix::disagreements(&report);
    let probes: Vec<&str> = found.iter().map(|d| d.probe.as_str()).collect();
    // Every probe escapes under none and not elsewhere, so all four disagree.
    assert_eq!(
        probes,
        ["ptrace-outside", "hostname", "fork-bomb", "io-uring"]
    );
    let fork = &found[2];
    assert_eq!(fork.cells[3], ("bwrap".to_string(), "not run".to_string()));
    // Without the `none` column only the probes with differing verdicts remain.
    let mut without_none = sample_report();
    without_none.results.retain(|r| r.profile != "none");
    without_none.profiles.retain(|p| p.name != "none");
    let probes: Vec<String> = report::matrix::disagreements(&without_none)
        .into_iter()
        .map(|d| d.probe)
        .collect();
    assert_eq!(probes, ["fork-bomb"]);
}

/// `breakout compare`'s report.md and report.html lead with where the configurations differ;
/// the positive control compare added on its own is left out of that section (it differs from
/// every block by design), one the user named is not.
#[test]
fn compared_reports_lead_with_where_they_differ() {
    let mut report = sample_report();
    let md = report::render_compared(&report, Format::Markdown);
    assert!(
        md.starts_with("### breakout results\n\n#### Where they differ ("),
        "{md}"
    );
    let section = &md[..md.find("<details>").unwrap()];
    assert!(section.contains("| probe | none |"), "{section}");
    let html = report::render_compared(&report, Format::Html);
    let at = |needle: &str| html.find(needle).unwrap_or_else(|| panic!("{needle}"));
    assert!(at("<h2 id=\"differences\">Where they differ") < at("<table class=\"matrix\""));
    // A run's own reports have no such section.
    assert!(!report::render(&report, Format::Markdown).contains("Where they differ"));
    assert!(!report::render(&report, Format::Html).contains("id=\"differences\""));

    report.selection.as_mut().unwrap().added_positive_control = true;
    let md = report::render_compared(&report, Format::Markdown);
    let section = &md[..md.find("<details>").unwrap()];
    assert!(!section.contains("| none |"), "{section}");
}
