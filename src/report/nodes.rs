//! The cluster section of `analyze` over several nodes' captures: a row per
//! node, the captures' clocks, the verdict across nodes, and the paths of
//! failed connections between nodes. JSON is the `cluster` object of the
//! analyze document; NDJSON one line per node, cause, clock and path.

use super::analyze::{block, paint, render_cause, short_list, status_tone, CauseText};
use super::output::{fields, markdown_text, ndjson_line, title, Layout, Report};
use crate::detect::verdict::Status;
use crate::nodes::{ClusterReport, PathGroup};
use crate::time::Timestamp;
use serde_json::json;
use std::fmt::Write;

impl Report for ClusterReport {
    fn table(&self, layout: &Layout) -> String {
        render(self, layout)
    }

    fn ndjson(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let summary = json!({
            "type": "cluster",
            "status": self.status,
            "nodes": self.nodes.len(),
            "causes": self.causes.len(),
            "paths": self.paths.len(),
            "not_compared": self.not_compared,
        });
        ndjson_line(out, &summary)?;
        let tagged = |kind: &str, value: serde_json::Value| {
            let mut value = value;
            value["type"] = json!(kind);
            value
        };
        for node in &self.nodes {
            ndjson_line(out, &tagged("node", json!(node)))?;
        }
        for clock in &self.clocks {
            ndjson_line(out, &tagged("clock", json!(clock)))?;
        }
        for cause in &self.causes {
            ndjson_line(out, &tagged("cluster_cause", json!(cause)))?;
        }
        for path in &self.paths {
            ndjson_line(out, &tagged("path", json!(path)))?;
        }
        Ok(())
    }
}

pub fn render(report: &ClusterReport, layout: &Layout) -> String {
    let status = match report.status {
        Status::Clean => {
            "CLEAN: every node's capture was judged clean and nothing differs between them"
        }
        Status::Inconclusive => {
            "INCONCLUSIVE: nothing found, but not everything could be compared (see the last cause)"
        }
        Status::Warning => "WARNING",
        Status::Failure => "FAILURE",
    };
    let captured = report.nodes.iter().filter(|n| !n.files.is_empty()).count();
    let mut out = if layout.markdown {
        format!(
            "\n## Across nodes: {} ({} nodes, {captured} captured)\n",
            markdown_text(status),
            report.nodes.len()
        )
    } else {
        format!(
            "\nCLUSTER   {} ({} nodes, {captured} captured)\n",
            paint(status, status_tone(report.status), layout),
            report.nodes.len()
        )
    };
    out += &title("NODES", layout);
    let headers = [
        "node",
        "role",
        "capture",
        "egress NICs",
        "masqueraded",
        "pods unmasqueraded",
        "pods SNATed",
        "failed SYNs",
        "DNS timeouts",
        "verdict",
    ];
    out += &block(
        &report.nodes,
        &Layout {
            limit: 0,
            ..*layout
        },
        "  none\n",
        &headers,
        |n| {
            let seen = n.seen.as_ref();
            let nics = seen.map(|s| s.egress_nics.join(", "));
            let unmasqueraded = seen.map(|s| short_list(&s.pods_unmasqueraded, 3));
            let snated = seen.map(|s| short_list(&s.pods_masqueraded, 3));
            vec![
                n.name.clone(),
                n.role.clone(),
                short_list(&n.files, 2),
                nics.unwrap_or_default(),
                n.masquerading().label().to_string(),
                unmasqueraded.unwrap_or_default(),
                snated.unwrap_or_default(),
                seen.map_or("-".into(), |s| s.failed_syns.to_string()),
                seen.map_or("-".into(), |s| s.dns_timeouts.to_string()),
                n.status().map_or("-", |s| s.label()).to_string(),
            ]
        },
    );
    if report.clocks.len() > 1 {
        let clocks: Vec<String> = (report.clocks.iter().enumerate())
            .map(|(i, c)| match (i, c.offset_ns) {
                (0, _) => format!("{} ({}) is the reference", c.file, c.node),
                (_, Some(_)) => format!(
                    "{} ({}) {} ({} connections seen in both)",
                    c.file,
                    c.node,
                    c.label(),
                    c.matched_flows
                ),
                (_, None) => format!(
                    "{} ({}) unknown (no connection seen in both)",
                    c.file, c.node
                ),
            })
            .collect();
        out += &fields(&format!("clocks    {}\n", clocks.join("; ")), layout);
    }
    out += &title("VERDICT ACROSS NODES", layout);
    if report.causes.is_empty() {
        out += "  no cause: the nodes' captures agree\n";
    }
    for cause in &report.causes {
        out += &render_cause(CauseText::from(cause), layout);
    }
    let start = report.start.unwrap_or_default();
    out += &title(
        "PATHS BETWEEN NODES (failed connections followed across the captures)",
        layout,
    );
    if !report.paths_followed {
        for note in &report.notes {
            let _ = writeln!(out, "  not followed: {note}");
        }
        return out;
    }
    let headers = [
        "conclusion",
        "client",
        "client node",
        "server",
        "server node",
        "port",
        "conns",
        "first",
        "where it died",
    ];
    out += &block(
        &report.paths,
        layout,
        "  none\n",
        &headers,
        |p: &PathGroup| {
            vec![
                p.conclusion.label().to_string(),
                p.client.to_string(),
                p.client_node.clone().unwrap_or_default(),
                p.server.to_string(),
                p.server_node.clone().unwrap_or_default(),
                format!("{}/{}", p.protocol, p.port),
                p.connections.to_string(),
                relative(p.first, start),
                p.said.clone(),
            ]
        },
    );
    if report.paths_left_out > 0 {
        let _ = writeln!(
            out,
            "... {} more path groups left out of the report",
            report.paths_left_out
        );
    }
    out
}

fn relative(t: Timestamp, start: Timestamp) -> String {
    format!("+{:.3}s", t.since(start) as f64 / 1e9)
}
