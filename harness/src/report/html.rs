//! A self-contained HTML report (no external assets: inline CSS, no scripts): the matrix first
//! (sticky header, `none` labelled as the positive control, a verdict filter made of radio
//! buttons and CSS), the environment folded below it, a heatmap coloured by depth (escaped red, one layer from escaping orange, no single
//! layer off lets it out green, unexplained violet,
//! inconclusive and skipped grey), then per probe its technique, oracle, and per profile the
//! evidence and the ablation runs.

use super::cell::{cell_text, layer_label, Shade, Tally};
use super::environment;
use super::escape::markup as esc;
use super::matrix::Matrix;
use crate::model::{verdict_name, ProbeResult, RunReport};
use breakout_attacks::Layer;
use std::fmt::Write;

const STYLE: &str = r#"
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #1d1d1f; }
h1 { font-size: 1.4em; } h2 { font-size: 1.2em; margin-top: 1.6em; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: .6em 0; }
th, td { border: 1px solid #bbb; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #eee; }
table.matrix { width: 100%; }
table.matrix tbody th { white-space: nowrap; }
table.matrix thead th { position: sticky; top: 0; z-index: 2; box-shadow: 0 1px 0 #bbb; }
figure.processes svg, figure.stack svg { max-width: 100%; height: auto; }
table.matrix th.control span { display: block; font-weight: normal; font-size: .8em; color: #555; }
.filter { margin: .4em 0; line-height: 2; }
.filter label { margin-right: .4em; padding: .15em .6em; border: 1px solid #999; border-radius: 1em; cursor: pointer; white-space: nowrap; }
#f-all:checked ~ .filter label[for=f-all], #f-escaped:checked ~ .filter label[for=f-escaped],
#f-depth1:checked ~ .filter label[for=f-depth1], #f-unattributed:checked ~ .filter label[for=f-unattributed],
#f-grey:checked ~ .filter label[for=f-grey] { background: #1d1d1f; color: #fff; }
#f-escaped:checked ~ table.matrix tbody tr:not(:has(td.escaped)),
#f-depth1:checked ~ table.matrix tbody tr:not(:has(td.depth1)),
#f-unattributed:checked ~ table.matrix tbody tr:not(:has(td.unattributed)),
#f-grey:checked ~ table.matrix tbody tr:not(:has(td.inconclusive, td.skipped)) { display: none; }
table.matrix td.cell { font-size: .85em; min-width: 6em; overflow-wrap: anywhere; }
table.matrix td.cell a { color: inherit; text-decoration: none; display: block; }
td.escaped { background: #d32f2f; color: #fff; font-weight: bold; }
td.depth1 { background: #f57c00; color: #000; }
td.depth2 { background: #43a047; color: #fff; }
td.unattributed { background: #ce93d8; color: #000; }
td.inconclusive, td.skipped { background: #9e9e9e; color: #000; }
td.absent { background: #fff; color: #999; }
.legend span { display: inline-block; padding: .15em .5em; margin: .1em; border: 1px solid #bbb; }
.legend span.escaped { background: #d32f2f; color: #fff; } .legend span.depth1 { background: #f57c00; }
.legend span.depth2 { background: #43a047; color: #fff; }
.legend span.unattributed { background: #ce93d8; } .legend span.grey { background: #9e9e9e; }
pre { background: #f6f6f6; padding: .5em; white-space: pre-wrap; word-break: break-all; }
code { background: #f2f2f2; padding: 0 .2em; }
details { margin: .4em 0 .4em 1em; } summary { cursor: pointer; }
.muted { color: #666; }
"#;

/// A run on one kernel, with what tells its ids and titles apart in a report of several.
struct Part {
    report: RunReport,
    /// "-k0", "-k1", ... in a run on several kernels; empty otherwise.
    suffix: String,
    /// " on kernel RELEASE" in a run on several kernels; empty otherwise.
    label: String,
}

fn parts(report: &RunReport) -> Vec<Part> {
    if !report.multi_kernel() {
        return vec![Part {
            report: report.clone(),
            suffix: String::new(),
            label: String::new(),
        }];
    }
    report
        .kernel_releases()
        .iter()
        .enumerate()
        .map(|(i, k)| Part {
            report: report.on_kernel(k),
            suffix: format!("-k{i}"),
            label: format!(" on kernel {k}"),
        })
        .collect()
}

pub fn render(report: &RunReport) -> String {
    render_with(report, false)
}

/// The report of a comparison: where the configurations differ comes first.
pub fn render_compared(report: &RunReport) -> String {
    render_with(report, true)
}

fn differences_section(out: &mut String, report: &RunReport) {
    let differing = super::matrix::disagreements(report);
    let Some(first) = differing.first() else {
        out.push_str("<h2 id=\"differences\">Where they differ</h2>\n<p>Nowhere: every probe has the same verdict under each configuration.</p>\n");
        return;
    };
    let _ = writeln!(
        out,
        "<h2 id=\"differences\">Where they differ ({} probe(s))</h2>\n<table class=\"differences\">\n<tr><th>probe</th>",
        differing.len()
    );
    for (profile, _) in &first.cells {
        let _ = write!(out, "<th>{}</th>", esc(profile));
    }
    out.push_str("</tr>\n");
    for d in &differing {
        let _ = write!(
            out,
            "<tr><th><a href=\"#probe-{}\">{}</a></th>",
            esc(&d.probe),
            esc(&d.label())
        );
        for (_, text) in &d.cells {
            let _ = write!(out, "<td>{}</td>", esc(text));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn render_with(report: &RunReport, compared: bool) -> String {
    let matrix = Matrix::of(report);
    let parts = parts(report);
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        out,
        "<title>breakout report</title>\n<style>{STYLE}</style>\n</head>\n<body>"
    );
    let _ = writeln!(
        out,
        "<h1>breakout report</h1>\n<p class=\"muted\">breakout {} · results schema {} · {} results · time {} (boot {}, probe runs {}, ablation {})</p>",
        esc(&report.breakout_version),
        report.schema_version,
        report.results.len(),
        seconds(report.timings.total_ms),
        seconds(report.timings.boot_ms),
        seconds(report.timings.probes_ms),
        seconds(report.timings.ablation_ms)
    );
    if !report.channel_problems.is_empty() {
        // Before everything: it says the rest is not trusted.
        out.push_str("<h2 id=\"not-trusted\">Not trusted: the result channel was written to by something other than the orchestrator, or damaged</h2>\n<ul>\n");
        for p in &report.channel_problems {
            let _ = writeln!(out, "<li>{}</li>", esc(p));
        }
        out.push_str("</ul>\n");
    }
    if compared {
        differences_section(&mut out, report);
    }
    // The matrix is what a reader came for: above the fold, the environment folded after it.
    matrix_section(&mut out, &parts);
    if report.multi_kernel() {
        differs_by_kernel(&mut out, report);
    }
    for part in &parts {
        environment_section(&mut out, part);
    }
    workloads_section(&mut out, report);
    configurations_section(&mut out, report);
    // Once per run: who runs where (the sandbox's processes, the outside's, their namespaces).
    let _ = writeln!(
        out,
        "<h2>Processes</h2>\n<figure class=\"processes\">{}</figure>",
        super::svg::process_picture(report).replacen(
            " xmlns=\"http://www.w3.org/2000/svg\"",
            "",
            1
        )
    );
    out.push_str("<h2>Probes</h2>\n");
    for probe in &matrix.probes {
        probe_section(&mut out, probe, &parts);
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// The cells whose verdict or layers differ by kernel, each kernel's cell side by side.
fn differs_by_kernel(out: &mut String, report: &RunReport) {
    let kernels = report.kernel_releases();
    let differences = super::matrix::kernel_differences(report);
    let _ = writeln!(
        out,
        "<h2 id=\"differs-by-kernel\">Differs by kernel ({} cell(s))</h2>",
        differences.len()
    );
    if differences.is_empty() {
        out.push_str("<p>Every cell is the same on every kernel.</p>\n");
        return;
    }
    out.push_str("<table>\n<tr><th>probe</th><th>configuration</th>");
    for k in &kernels {
        let _ = write!(out, "<th>{}</th>", esc(k));
    }
    out.push_str("</tr>\n");
    for d in &differences {
        let _ = write!(
            out,
            "<tr><td><a href=\"#probe-{0}\">{0}</a></td><td>{1}</td>",
            esc(&d.probe),
            esc(&d.profile)
        );
        for (_, cell) in &d.cells {
            let _ = write!(out, "<td>{}</td>", esc(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn environment_section(out: &mut String, part: &Part) {
    let env = &part.report.environment;
    let _ = writeln!(
        out,
        "<h2 id=\"environment{}\">Environment{}</h2>\n<details><summary>{} · LSMs {}</summary>\n<table>\n<tr><th>kernel</th><td>{}</td></tr>",
        part.suffix,
        esc(&part.label),
        esc(&environment::headline(env)),
        esc(&environment::lsms(env)),
        esc(&env.kernel)
    );
    for (name, value) in &env.sysctls {
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td><code>{}</code></td></tr>",
            esc(name),
            esc(value)
        );
    }
    out.push_str("</table>\n");
    let _ = writeln!(
        out,
        "<details><summary>CPU vulnerabilities: {}</summary>\n<table>",
        esc(&environment::vulnerabilities_summary(env))
    );
    for (name, status) in &env.vulnerabilities {
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td>{}</td></tr>",
            esc(name),
            esc(status)
        );
    }
    out.push_str("</table>\n</details>\n</details>\n");
}

fn matrix_section(out: &mut String, parts: &[Part]) {
    out.push_str(
        "<h2 id=\"matrix\">Matrix</h2>\n<input type=\"radio\" name=\"filter\" id=\"f-all\" checked hidden>\
<input type=\"radio\" name=\"filter\" id=\"f-escaped\" hidden>\
<input type=\"radio\" name=\"filter\" id=\"f-depth1\" hidden>\
<input type=\"radio\" name=\"filter\" id=\"f-unattributed\" hidden>\
<input type=\"radio\" name=\"filter\" id=\"f-grey\" hidden>\n\
<p class=\"filter\">Show probes with: <label for=\"f-all\">any verdict</label>\
<label for=\"f-escaped\">an escape</label><label for=\"f-depth1\">a block one layer from escaping</label>\
<label for=\"f-unattributed\">an unexplained block</label>\
<label for=\"f-grey\">an inconclusive or skipped result</label></p>\n",
    );
    // One table per kernel, all siblings of the filter's inputs (the CSS filters them all).
    for part in parts {
        if !part.label.is_empty() {
            let _ = writeln!(out, "<h3>Matrix{}</h3>", esc(&part.label));
        }
        matrix_table(out, &part.report, &Matrix::of(&part.report), &part.suffix);
    }
    matrix_legend(out);
}

fn matrix_table(out: &mut String, report: &RunReport, matrix: &Matrix, suffix: &str) {
    out.push_str("<table class=\"matrix\">\n<thead><tr><th>probe</th>");
    for profile in &matrix.profiles {
        let inferred = report
            .profiles
            .iter()
            .any(|p| p.name == *profile && p.inferred);
        let control = crate::model::configuration_without_layers(report, profile);
        let _ = write!(
            out,
            "<th{}>{}{}</th>",
            if control { " class=\"control\"" } else { "" },
            esc(profile),
            if inferred {
                " <span class=\"muted\">(inferred)</span>"
            } else if control {
                "<span>positive control (no layers)</span>"
            } else {
                ""
            }
        );
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for probe in &matrix.probes {
        let _ = write!(
            out,
            "<tr><th><a href=\"#probe-{}\">{}</a></th>",
            esc(probe),
            esc(probe)
        );
        for profile in &matrix.profiles {
            match matrix.cell(probe, profile) {
                Some(r) => {
                    let _ = write!(
                        out,
                        "<td class=\"cell {}\" title=\"{}\"><a href=\"#r-{}-{}{suffix}\">{}</a></td>",
                        Shade::of(r).key(),
                        esc(&r.reason),
                        esc(profile),
                        esc(probe),
                        esc(&cell_text(r))
                    );
                }
                None => out.push_str("<td class=\"cell absent\">not run</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n<tfoot><tr><th>summary</th>");
    for profile in &matrix.profiles {
        let t = Tally::of(matrix.column(profile));
        let _ = write!(
            out,
            "<td>{} escaped, {} blocked ({} one layer from escaping), {} inconclusive, {} skipped</td>",
            t.escaped,
            t.blocked,
            matrix
                .column(profile)
                .filter(|r| super::matrix::one_layer_from_escaping(r))
                .count(),
            t.inconclusive,
            t.skipped
        );
        if let Some(w) = crate::workloads::summary(&report.workloads, profile) {
            out.truncate(out.len() - "</td>".len());
            let _ = write!(out, "; {}</td>", esc(&w));
        }
    }
    out.push_str("</tr></tfoot>\n</table>\n");
}

fn matrix_legend(out: &mut String) {
    out.push_str(
        "<p class=\"legend\"><span class=\"escaped\">escaped</span>\
<span class=\"depth1\">one layer from escaping (depth 1)</span>\
<span class=\"depth2\">no single layer off lets it out (depth 2)</span>\
<span class=\"unattributed\">unexplained / not attributed</span>\
<span class=\"grey\">inconclusive or skipped</span></p>\n\
<p class=\"muted\">A cell lists the sufficient layers: each alone still blocks the probe; \
<code>!</code> marks a layer without which it escapes; combined(A+B) names the layers a block \
needs when no single one suffices (\"+ some of C|D\": it holds with all of those, not with none). \
caps(CAP_X) names the capability that, kept, lets the probe through; seccomp(call) the syscall \
the filter denied; ~ marks attribution inferred from evidence (external runtimes).</p>\n",
    );
}

/// The usability half: both halves per profile and every workload's verdict, with the failing
/// step of the broken ones.
fn workloads_section(out: &mut String, report: &RunReport) {
    let grid = crate::workloads::WorkloadGrid::of(report);
    if grid.is_empty() {
        return;
    }
    out.push_str("<h2 id=\"workloads\">Workloads: what still works</h2>\n<ul>\n");
    for profile in &grid.profiles {
        let _ = writeln!(
            out,
            "<li><b>{}</b>: {}</li>",
            esc(profile),
            esc(&crate::workloads::both_halves(report, profile))
        );
    }
    out.push_str("</ul>\n<table class=\"matrix\">\n<thead><tr><th>workload</th>");
    for profile in &grid.profiles {
        let _ = write!(out, "<th>{}</th>", esc(profile));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for w in &grid.workloads {
        let title = breakout_attacks::workloads::workload(w)
            .map(|w| w.meta.what)
            .unwrap_or("");
        let _ = write!(out, "<tr><th title=\"{}\">{}</th>", esc(title), esc(w));
        for profile in &grid.profiles {
            match grid.cell(w, profile) {
                Some(r) => {
                    let class = match r.verdict {
                        breakout_attacks::workloads::WorkloadVerdict::Works => "depth2",
                        breakout_attacks::workloads::WorkloadVerdict::Broken => "escaped",
                        breakout_attacks::workloads::WorkloadVerdict::Skipped => "skipped",
                    };
                    let _ = write!(
                        out,
                        "<td class=\"cell {class}\" title=\"{}\">{}</td>",
                        esc(&r.reason),
                        esc(&crate::workloads::cell_text(r))
                    );
                }
                None => out.push_str("<td class=\"cell absent\">not run</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n<p class=\"muted\">A workload works when its output is the one the outside computed for the attempt's fresh nonce and it exits 0; a broken one names its failing step: the syscall the filter killed, or the syscall and errno the program reported.</p>\n");
}

fn configurations_section(out: &mut String, report: &RunReport) {
    out.push_str("<h2 id=\"configurations\">Configurations</h2>\n<table>\n<tr><th>name</th><th>runtime</th><th>layers switched on</th><th>attribution</th></tr>\n");
    for p in &report.profiles {
        let layers: Vec<&str> = p.layers.iter().map(|l| l.name()).collect();
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.name),
            esc(&p.runtime),
            esc(&if layers.is_empty() {
                "none".to_string()
            } else {
                layers.join(", ")
            }),
            if p.inferred {
                "inferred from evidence (layers as the runtime's flags turn them on)"
            } else {
                "by ablation"
            }
        );
        if let Some(adapter) = crate::adapters::by_name(&p.runtime) {
            let _ = writeln!(
                out,
                "<tr><td></td><td colspan=\"3\" class=\"muted\">{}</td></tr>",
                esc(adapter.description())
            );
        }
    }
    out.push_str("</table>\n");
}

fn probe_section(out: &mut String, probe: &str, parts: &[Part]) {
    let _ = writeln!(out, "<section id=\"probe-{}\">", esc(probe));
    match crate::describe::probe_meta(probe) {
        Some(meta) => {
            let _ = writeln!(
                out,
                "<h3><code>{}</code>: {}</h3>\n<p><b>Technique.</b> {}</p>\n<p><b>Oracle.</b> {}</p>\n<p><b>Layers that can stop it:</b> {}</p>",
                esc(meta.id),
                esc(meta.title),
                esc(meta.technique),
                esc(meta.oracle),
                esc(&meta
                    .layers
                    .iter()
                    .map(|l| l.name())
                    .collect::<Vec<_>>()
                    .join(", "))
            );
            if !meta.references.is_empty() {
                let _ = writeln!(
                    out,
                    "<p><b>References:</b> {}</p>",
                    esc(&meta.references.join("; "))
                );
            }
            // The layer stack per configuration (what `explain --svg` writes), inline: an
            // HTML document needs no namespace declaration, and the report loads nothing.
            for part in parts {
                let svg = super::svg::layer_stack(meta, Some(&part.report)).replacen(
                    " xmlns=\"http://www.w3.org/2000/svg\"",
                    "",
                    1,
                );
                let _ = writeln!(
                    out,
                    "<figure class=\"stack\">{svg}<figcaption>Layers per configuration{}: filled, blocks alone; heavy border, without it the probe escapes.</figcaption></figure>",
                    esc(&part.label)
                );
            }
        }
        None => {
            let _ = writeln!(
                out,
                "<h3><code>{}</code></h3>\n<p class=\"muted\">This breakout does not know this probe (results from another version); no description.</p>",
                esc(probe)
            );
        }
    }
    for part in parts {
        let matrix = Matrix::of(&part.report);
        for profile in &matrix.profiles {
            if let Some(r) = matrix.cell(probe, profile) {
                result_details(out, r, part);
            }
        }
    }
    out.push_str("</section>\n");
}

fn result_details(out: &mut String, r: &ProbeResult, part: &Part) {
    // Escapes and blocks that hang on one layer are what a reader came for: shown unfolded.
    let open = match Shade::of(r) {
        Shade::Escaped | Shade::Depth(1) => " open",
        _ => "",
    };
    let _ = writeln!(
        out,
        "<details id=\"r-{}-{}{}\"{open}><summary><b>{}</b>{}: {} ({} ms)</summary>\n<p>Oracle: {}</p>",
        esc(&r.profile),
        esc(&r.probe),
        part.suffix,
        esc(&r.profile),
        esc(&part.label),
        esc(&cell_text(r)),
        r.duration_ms,
        esc(&r.reason)
    );
    if let Some(a) = &r.attribution {
        let names = |ls: &[Layer]| {
            if ls.is_empty() {
                "none".to_string()
            } else {
                ls.iter()
                    .map(|l| layer_label(*l, a))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let _ = writeln!(
            out,
            "<table>\n<tr><th>sufficient (each alone blocks)</th><td>{}</td></tr>\n<tr><th>necessary (without it, escaped)</th><td>{}</td></tr>\n<tr><th>depth</th><td>{}</td></tr>\n<tr><th>candidates explain the block</th><td>{}</td></tr>\n<tr><th>method</th><td>{}</td></tr>",
            esc(&names(&a.sufficient)),
            esc(&names(&a.necessary)),
            a.depth,
            if a.candidates_complete { "yes" } else { "no" },
            if a.inferred { "inferred from evidence" } else { "ablation" }
        );
        if !a.caps_detail.is_empty() {
            let _ = writeln!(
                out,
                "<tr><th>capabilities that, kept, let it through</th><td>{}</td></tr>",
                esc(&a.caps_detail.join(", "))
            );
        }
        if !a.seccomp_denied.is_empty() {
            let _ = writeln!(
                out,
                "<tr><th>syscalls the filter denied</th><td>{}</td></tr>",
                esc(&a.seccomp_denied.join(", "))
            );
        }
        out.push_str("</table>\n");
        if !a.ablation_runs.is_empty() {
            out.push_str(
                "<table>\n<tr><th>ablation run</th><th>layers on</th><th>verdict</th></tr>\n",
            );
            for run in &a.ablation_runs {
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&run.description),
                    esc(&run
                        .layers
                        .iter()
                        .map(|l| l.name())
                        .collect::<Vec<_>>()
                        .join(", ")),
                    verdict_name(run.verdict)
                );
            }
            out.push_str("</table>\n");
        }
    }
    let ev = &r.evidence;
    if !ev.steps.is_empty() {
        out.push_str(
            "<table>\n<tr><th>step</th><th>syscall</th><th>result</th><th>data</th></tr>\n",
        );
        for s in &ev.steps {
            let result = match (s.result, s.errno) {
                (_, Some(errno)) => format!(
                    "-1 {}",
                    s.errno_name
                        .clone()
                        .unwrap_or_else(|| format!("errno {errno}"))
                ),
                (Some(v), None) => v.to_string(),
                (None, None) => String::new(),
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(&s.action),
                esc(&s.syscall),
                esc(&result),
                esc(s.data.as_deref().unwrap_or(""))
            );
        }
        out.push_str("</table>\n");
    }
    let mut facts = Vec::new();
    if let Some(exit) = ev.exit {
        facts.push(format!("payload ended: {}", super::exit_text(exit)));
    }
    if ev.timed_out {
        facts.push("timed out".to_string());
    }
    if let Some(f) = &ev.setup_failure {
        facts.push(format!(
            "sandbox setup failed at {}: {} errno {}",
            f.step, f.syscall, f.errno
        ));
    }
    if let Some(c) = &ev.cgroup {
        facts.push(format!(
            "cgroup: oom {}, oom_kill {}, memory.max hits {}, pids.max hits {}, memory.peak {}, pids.peak {}, cpu nr_throttled {}",
            c.oom,
            c.oom_kill,
            c.memory_max_hits,
            c.pids_max_hits,
            c.memory_peak.map_or("n/a".to_string(), |v| v.to_string()),
            c.pids_peak.map_or("n/a".to_string(), |v| v.to_string()),
            c.cpu_nr_throttled
        ));
    }
    if !facts.is_empty() {
        out.push_str("<ul>\n");
        for f in facts {
            let _ = writeln!(out, "<li>{}</li>", esc(&f));
        }
        out.push_str("</ul>\n");
    }
    if !ev.stderr_tail.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>stderr (tail)</summary><pre>{}</pre></details>",
            esc(&ev.stderr_tail)
        );
    }
    out.push_str("</details>\n");
}

fn seconds(ms: u64) -> String {
    format!("{}.{:01} s", ms / 1000, (ms % 1000) / 100)
}
