//! report.html is self-contained, escapes hostile evidence, and opens in headless Chromium
//! (Debian's `chromium`, which scripts/install-deps installs): the rendered DOM shows the matrix
//! with one coloured cell per pair, and a screenshot is taken. Without Chromium this test FAILS:
//! it must not pass by skipping.

mod common;

use breakout_harness::report::{self, Format};
use common::sample_report;
use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        for name in ["chromium", "chromium-browser"] {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "chromium is not installed, so the HTML report cannot be checked: `apt-get install chromium` \
         (scripts/install-deps does it)"
    );
}

/// Runs headless Chromium on `page` with extra flags; returns stdout.
fn headless(page: &Path, extra: &[&str], profile: &Path) -> String {
    let output = Command::new("timeout")
        .arg("120")
        .arg(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("starting chromium");
    assert!(
        output.status.success(),
        "chromium failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("the DOM dump is UTF-8")
}

#[test]
fn html_is_self_contained_and_escapes_evidence() {
    let html = report::render(&sample_report(), Format::Html);
    assert!(html.starts_with("<!DOCTYPE html>"));
    for external in [
        "http://", "https://", "<script", "<link", "src=", "@import", "url(",
    ] {
        assert!(
            !html.contains(external),
            "the report must not load `{external}`"
        );
    }
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        html.contains("\\u{1b}[31m"),
        "control characters shown as escapes"
    );
    // The matrix comes before the environment (above the fold), with a sticky header, the
    // positive control labelled, and a verdict filter made of radio buttons and CSS.
    assert!(
        html.find("<h2 id=\"matrix\">").unwrap() < html.find("<h2 id=\"environment\">").unwrap()
    );
    assert!(html.contains("position: sticky"));
    // The layer stack of every probe, inline.
    assert!(
        html.contains("<figure class=\"stack\"><svg "),
        "no inline layer stack"
    );
    assert!(
        html.contains("<th class=\"control\">none<span>positive control (no layers)</span></th>")
    );
    for filter in ["f-all", "f-escaped", "f-depth1", "f-unattributed", "f-grey"] {
        assert!(
            html.contains(&format!("<label for=\"{filter}\">")),
            "{filter}"
        );
    }
    // The environment block and per-probe evidence and ablation runs are there.
    assert!(html.contains("<h2 id=\"environment\">Environment</h2>"));
    assert!(html.contains("kernel.kptr_restrict"));
    assert!(html.contains("Vulnerable: Clear CPU buffers attempted, no microcode"));
    assert!(html
        .contains("<td>strict keeping CAP_SYS_PTRACE</td><td>pid-ns, caps</td><td>blocked</td>"));
    assert!(html.contains("<code>ptrace(PTRACE_PEEKDATA, 812)</code>"));
    assert!(html.contains("sandbox setup failed at mount-ns: pivot_root"));
    assert!(html.contains("pids.max hits 12"));
}

/// A run whose result channel carried forged lines says so first, in report.html and report.md.
#[test]
fn a_tampered_channel_leads_the_reports() {
    let mut report_data = sample_report();
    assert!(!report::render(&report_data, Format::Html).contains("Not trusted"));
    report_data.channel_problems =
        vec!["two results came back for ptrace-outside under strict (escaped, then <b>blocked</b>): neither is trusted".to_string()];
    let html = report::render(&report_data, Format::Html);
    let at = html.find("<h2 id=\"not-trusted\">").expect("the section");
    assert!(at < html.find("<h2 id=\"matrix\">").unwrap());
    assert!(html.contains("then &lt;b&gt;blocked&lt;/b&gt;"));
    let md = report::render(&report_data, Format::Markdown);
    assert!(md.find("#### Not trusted").unwrap() < md.find("two results came back").unwrap());
}

#[test]
fn html_opens_in_headless_chromium_and_shows_the_matrix() {
    let report = sample_report();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, report::render(&report, Format::Html)).unwrap();

    let dom = headless(&page, &["--dump-dom"], &dir.path().join("profile-dom"));
    let cells = dom.matches("<td class=\"cell ").count();
    assert_eq!(cells, 16, "4 probes x 4 configurations in the rendered DOM");
    assert_eq!(dom.matches("class=\"cell escaped\"").count(), 3);
    // Depth 1: a layer without which it escapes (hostname under namespaces and, combined, under
    // strict; fork-bomb under strict) and the inferred single layer under bwrap.
    assert_eq!(dom.matches("class=\"cell depth1\"").count(), 4);
    assert_eq!(dom.matches("class=\"cell absent\"").count(), 1);
    assert!(dom.contains("<table class=\"matrix\">"));
    assert!(dom.contains("blocked: pid-ns, caps(CAP_SYS_PTRACE), seccomp(ptrace)"));
    assert!(
        !dom.contains("<script>alert(1)"),
        "no injected element in the DOM"
    );

    let shot = std::env::var_os("BREAKOUT_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().join("report.png"));
    headless(
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,1400",
            "--hide-scrollbars",
        ],
        &dir.path().join("profile-shot"),
    );
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(
        png.len() > 20_000,
        "a real rendering, not a blank page ({} bytes)",
        png.len()
    );
}
