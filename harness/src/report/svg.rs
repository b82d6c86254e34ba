//! Pictures as self-contained SVG (no fonts, scripts or network assets): the layer stack of one
//! probe, with a column per configuration of a run, telling apart the layers that block it alone
//! (sufficient), those without which it escapes (necessary: drawn with a heavy border), those
//! switched on that stopped nothing by themselves, and those off. For slides
//! (`breakout explain PROBE --svg FILE`) and for embedding in HTML reports.

use crate::model::{ProbeResult, RunReport};
use breakout_attacks::{Layer, ProbeMeta, Verdict};
use std::fmt::Write;

const LABEL_W: usize = 150;
const COL_W: usize = 118;
const ROW_H: usize = 22;
const TOP: usize = 76;

/// Colours (and a word for each, so a grey-scale print still reads).
const SUFFICIENT: &str = "#2e7d32";
const ON: &str = "#b0bec5";
const OFF: &str = "#ffffff";
const NOT_CANDIDATE: &str = "#eceff1";
const ESCAPED: &str = "#c62828";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// What one column shows.
struct Column<'a> {
    title: String,
    layers_on: Vec<Layer>,
    result: Option<&'a ProbeResult>,
}

/// The layer stack of `meta`: one column per configuration of `results` that ran the probe, or
/// a single column of candidates when there is no run.
pub fn layer_stack(meta: &ProbeMeta, results: Option<&RunReport>) -> String {
    let mut columns: Vec<Column> = Vec::new();
    if let Some(report) = results {
        for r in report.results.iter().filter(|r| r.probe == meta.id) {
            let layers_on = report
                .profiles
                .iter()
                .find(|p| p.name == r.profile)
                .map(|p| p.layers.clone())
                .unwrap_or_default();
            columns.push(Column {
                title: short(&r.profile),
                layers_on,
                result: Some(r),
            });
        }
    }
    if columns.is_empty() {
        columns.push(Column {
            title: "candidates".into(),
            layers_on: meta.layers.to_vec(),
            result: None,
        });
    }
    let width = LABEL_W + COL_W * columns.len() + 20;
    let height = TOP + ROW_H * Layer::ALL.len() + 108;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" role="img" aria-label="layers that stop {id}">"##,
        id = esc(meta.id)
    );
    let _ = writeln!(
        out,
        r##"<rect width="{width}" height="{height}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        out,
        r##"<text x="10" y="20" font-size="15" font-weight="bold">{}</text><text x="10" y="38" fill="#455a64">{}</text>"##,
        esc(meta.id),
        esc(meta.title)
    );
    for (c, col) in columns.iter().enumerate() {
        let x = LABEL_W + c * COL_W;
        let (verdict, colour) = match col.result.map(|r| r.verdict) {
            Some(Verdict::Escaped) => ("ESCAPED", ESCAPED),
            Some(Verdict::Blocked) => ("blocked", SUFFICIENT),
            Some(Verdict::Inconclusive) => ("inconclusive", "#6d4c41"),
            Some(Verdict::Skipped) => ("skipped", "#6d4c41"),
            None => ("", "#000000"),
        };
        let _ = writeln!(
            out,
            r##"<text x="{tx}" y="58" text-anchor="middle" font-weight="bold">{}</text><text x="{tx}" y="72" text-anchor="middle" fill="{colour}">{verdict}</text>"##,
            esc(&col.title),
            tx = x + COL_W / 2 - 4
        );
    }
    for (i, layer) in Layer::ALL.iter().enumerate() {
        let y = TOP + i * ROW_H;
        let candidate = meta.layers.contains(layer);
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" text-anchor="end" fill="{}">{}</text>"##,
            LABEL_W - 10,
            y + 15,
            if candidate { "#000000" } else { "#90a4ae" },
            layer.name()
        );
        for (c, col) in columns.iter().enumerate() {
            let x = LABEL_W + c * COL_W;
            let on = col.layers_on.contains(layer);
            let attribution = col.result.and_then(|r| r.attribution.as_ref());
            let sufficient = attribution.is_some_and(|a| a.sufficient.contains(layer));
            let necessary = attribution.is_some_and(|a| a.necessary.contains(layer));
            let (fill, word, text_fill) = if sufficient {
                (SUFFICIENT, "blocks alone", "#ffffff")
            } else if on && candidate && col.result.is_some() {
                (ON, "on", "#263238")
            } else if on && candidate {
                (ON, "candidate", "#263238")
            } else if on {
                (NOT_CANDIDATE, "on", "#90a4ae")
            } else {
                (OFF, "", "#90a4ae")
            };
            let stroke = if necessary { "#000000" } else { "#cfd8dc" };
            let stroke_w = if necessary { 3 } else { 1 };
            let word = if necessary && sufficient {
                "necessary, alone"
            } else if necessary {
                "necessary"
            } else {
                word
            };
            let _ = writeln!(
                out,
                r##"<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="3" fill="{fill}" stroke="{stroke}" stroke-width="{stroke_w}"><title>{} under {}: {}</title></rect><text x="{tx}" y="{ty}" text-anchor="middle" font-size="10" fill="{text_fill}">{word}</text>"##,
                layer.name(),
                esc(&col.title),
                if word.is_empty() { "off" } else { word },
                w = COL_W - 8,
                h = ROW_H - 4,
                tx = x + COL_W / 2 - 4,
                ty = y + 13,
            );
        }
    }
    let ly = TOP + ROW_H * Layer::ALL.len() + 14;
    let legend = [
        (SUFFICIENT, "#cfd8dc", 1, "blocks it alone (sufficient)"),
        (
            ON,
            "#000000",
            3,
            "heavy border: without it, it escapes (necessary)",
        ),
        (ON, "#cfd8dc", 1, "on, a candidate, stops nothing alone"),
        (
            NOT_CANDIDATE,
            "#cfd8dc",
            1,
            "on, not a candidate of this probe (not ablated)",
        ),
        (OFF, "#cfd8dc", 1, "off"),
    ];
    for (i, (fill, stroke, sw, text)) in legend.iter().enumerate() {
        let y = ly + i * 17;
        let _ = writeln!(
            out,
            r##"<rect x="10" y="{y}" width="22" height="12" rx="2" fill="{fill}" stroke="{stroke}" stroke-width="{sw}"/><text x="40" y="{}" font-size="11">{text}</text>"##,
            y + 10
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" font-size="10" fill="#90a4ae" text-anchor="end">grey names: not among the probe's candidate layers</text>"##,
        width - 10,
        height - 8
    );
    out.push_str("</svg>\n");
    out
}

/// A profile name fit for a column: a path becomes its file stem.
fn short(profile: &str) -> String {
    let name = std::path::Path::new(profile)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| profile.to_string());
    if name.len() > 16 {
        format!("{}…", &name[..15])
    } else {
        name
    }
}

/// The namespaces a process can be in, with the layer that gives the payload a new one.
const NAMESPACES: [(&str, Layer); 7] = [
    ("user", Layer::UserNs),
    ("pid", Layer::PidNs),
    ("mnt", Layer::MountNs),
    ("net", Layer::NetNs),
    ("ipc", Layer::IpcNs),
    ("uts", Layer::UtsNs),
    ("cgroup", Layer::CgroupNs),
];

/// The process picture of a run, once per report: for each of our configurations, the outside
/// (the guest's init, the orchestrator, the victims the probes aim at) and the sandbox (the
/// supervisor and the payload), with the namespaces each one is in and the payload's outside
/// uid. What it draws follows from the configuration's layers (runtime/src/plan.rs): the
/// supervisor unshares the namespaces and forks the payload into them; the outside stays in the
/// guest's own. External runtimes are left out: their process trees are their own.
pub fn process_picture(report: &RunReport) -> String {
    const BOX_W: usize = 300;
    const ROW: usize = 16;
    let ours: Vec<&crate::model::ProfileInfo> = report
        .profiles
        .iter()
        .filter(|p| p.runtime == "breakout")
        .collect();
    let rows = NAMESPACES.len() + 3;
    let box_h = ROW * rows + 34;
    let width = 20 + (BOX_W + 20) * ours.len().max(1);
    let outside_h = ROW * 3 + 30;
    let height = 52 + outside_h + 14 + box_h + 20;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" role="img" aria-label="processes and their namespaces">"##
    );
    let _ = writeln!(
        out,
        r##"<rect width="{width}" height="{height}" fill="#ffffff"/><text x="10" y="20" font-size="15" font-weight="bold">Processes and their namespaces</text><text x="10" y="38" fill="#455a64">outside: the guest's init, the orchestrator, the victims; inside: what each configuration gives the payload</text>"##
    );
    for (c, p) in ours.iter().enumerate() {
        let x = 20 + c * (BOX_W + 20);
        let on = |l: Layer| p.layers.contains(&l);
        // The outside: always the guest's own namespaces.
        let y0 = 52;
        let _ = writeln!(
            out,
            r##"<rect x="{x}" y="{y0}" width="{BOX_W}" height="{outside_h}" rx="6" fill="#eceff1" stroke="#90a4ae"/><text x="{tx}" y="{ty}" font-weight="bold">{name}: outside</text>"##,
            tx = x + 8,
            ty = y0 + 16,
            name = esc(&p.name)
        );
        let outside = [
            "init (pid 1), the orchestrator: root",
            "victims: root, and the sandbox's outside uid",
            "every namespace: the guest's own",
        ];
        for (i, line) in outside.iter().enumerate() {
            let _ = writeln!(
                out,
                r##"<text x="{}" y="{}">{}</text>"##,
                x + 12,
                y0 + 36 + i * ROW,
                esc(line)
            );
        }
        // The sandbox: the supervisor and the payload.
        let y1 = y0 + outside_h + 14;
        let isolated = NAMESPACES.iter().filter(|(_, l)| on(*l)).count();
        let fill = if isolated == 0 { "#ffcdd2" } else { "#e8f5e9" };
        let _ = writeln!(
            out,
            r##"<rect x="{x}" y="{y1}" width="{BOX_W}" height="{box_h}" rx="6" fill="{fill}" stroke="#66bb6a"/><text x="{tx}" y="{ty}" font-weight="bold">supervisor → payload</text>"##,
            tx = x + 8,
            ty = y1 + 16
        );
        let uid = if on(Layer::Uid) || on(Layer::UserNs) {
            "payload: an unprivileged outside uid"
        } else {
            "payload: the outside's root (uid 0)"
        };
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}">{}</text>"##,
            x + 12,
            y1 + 36,
            esc(uid)
        );
        for (i, (ns, layer)) in NAMESPACES.iter().enumerate() {
            let (word, colour) = if on(*layer) {
                ("its own", "#2e7d32")
            } else {
                ("the outside's (shared)", "#c62828")
            };
            let _ = writeln!(
                out,
                r##"<text x="{}" y="{}">{ns}: <tspan fill="{colour}">{word}</tspan></text>"##,
                x + 12,
                y1 + 36 + (i + 1) * ROW
            );
        }
        let _ = writeln!(
            out,
            r##"<line x1="{lx}" y1="{a}" x2="{lx}" y2="{b}" stroke="#546e7a" stroke-dasharray="4 3"/>"##,
            lx = x + BOX_W / 2,
            a = y0 + outside_h,
            b = y1
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_without_a_run_shows_the_candidates() {
        let meta = breakout_attacks::probe("signal-outside").unwrap().meta();
        let svg = layer_stack(meta, None);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("candidate</text>").count(), meta.layers.len());
        assert!(
            !svg.contains("http://") || svg.matches("http://").count() == 1,
            "only the xmlns"
        );
    }
}
