//! `--format html`: one self-contained page. Checked as text (no script,
//! nothing fetched, the verdict and the timeline there) and, where Debian's
//! Chromium is installed or can be (as root, from the package registry),
//! rendered headless: a screenshot, the DOM, no console message (the
//! page's Content-Security-Policy forbids every request, so one would be a
//! console error) and no request beyond the file itself in Chromium's net
//! log (but the browser's own calls to Google's services).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn page(args: &[&str], name: &str) -> (PathBuf, String) {
    let path = scratch("html").join(name);
    let mut all = args.to_vec();
    all.extend(["--format", "html", "--output", path.to_str().unwrap()]);
    let out = kpcap(&all);
    assert!(out.status.code().is_some_and(|c| c < 2), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "the page goes to --output");
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

fn incident_page() -> (PathBuf, String) {
    page(
        &[
            "analyze",
            &testdata("incident-before.pcapng"),
            "--cluster",
            &testdata("incident-cluster"),
        ],
        "incident.html",
    )
}

/// Nothing in the page makes a browser fetch anything.
fn self_contained(text: &str) {
    let lower = text.to_lowercase();
    for banned in [
        "<script", "<link", "<img", "<iframe", "@import", "url(", "src=", "href=",
    ] {
        assert!(!lower.contains(banned), "the page holds {banned}");
    }
    let addresses = lower.matches("http://").count() + lower.matches("https://").count();
    let svg_namespaces = lower.matches("http://www.w3.org/2000/svg").count();
    assert_eq!(addresses, svg_namespaces, "only the SVG namespace is a URL");
}

#[test]
fn the_incident_page_is_self_contained_with_its_verdict_and_timeline() {
    let (_, text) = incident_page();
    assert!(text.starts_with("<!DOCTYPE html>"));
    self_contained(&text);
    assert!(text.contains("<h3 class=\"verdict failure\">Verdict: FAILURE</h3>"));
    assert!(text.contains("Pod egress is not masqueraded"));
    assert!(text.contains("<figure class=\"timeline\"><svg"));
    assert!(text.contains("unanswered SYNs</text>"));
    assert!(text.contains(">15 in all, at most 3</text>"));
    assert!(
        text.contains("default-src 'none'"),
        "a policy forbids any request"
    );
    assert!(text.contains(
        "<details><summary>[failure] 10.42.1.17 -&gt; 140.82.112.33 tcp/443 (5 items)</summary>"
    ));
    assert!(text.contains("<td>ens19</td>"), "the egress interfaces");
}

#[test]
fn diff_draws_both_timelines() {
    let (_, text) = page(
        &[
            "diff",
            &testdata("incident-before.pcapng"),
            &testdata("incident-after.pcapng"),
        ],
        "diff.html",
    );
    self_contained(&text);
    assert_eq!(text.matches("<figure class=\"timeline\">").count(), 2);
    let before = text.find("before: ").expect("the before timeline");
    let after = text.find("after: ").expect("the after timeline");
    assert!(before < after);
    assert!(text.contains("Verdict: RESOLVED"));
}

#[test]
fn several_nodes_scan_and_flows_make_pages_too() {
    let nodes = testdata("incident-nodes");
    let (captures, cluster) = incident_nodes();
    let mut args = vec!["analyze", "--cluster", &cluster];
    args.extend(captures.iter().map(String::as_str));
    let (_, text) = page(&args, "nodes.html");
    self_contained(&text);
    assert_eq!(text.matches("<figure class=\"timeline\">").count(), 3);
    assert!(text.contains("Across nodes: FAILURE"));
    assert!(text.contains("<td>k3s-cp</td><td>control-plane</td>"));
    let (_, scan) = page(&["scan", "-q", &nodes], "scan.html");
    self_contained(&scan);
    assert!(scan.contains("<h2>kpcap scan</h2>"));
}

/// A busy node's capture makes a page of a bounded size: buckets adapt,
/// item lists are capped.
#[test]
fn a_busy_capture_makes_a_small_page() {
    let dir = scratch("html-busy");
    let capture = dir.join("busy.pcap");
    let made = kpcap(&[
        "synth",
        "--scenario",
        "busy",
        "--size",
        "128M",
        "-o",
        capture.to_str().unwrap(),
    ]);
    assert!(made.status.success());
    let (_, text) = page(&["analyze", capture.to_str().unwrap()], "busy.html");
    assert!(text.len() < 1 << 20, "{} bytes", text.len());
    assert!(text.contains("<figure class=\"timeline\">"));
    std::fs::remove_file(capture).ok();
}

/// Debian's Chromium, installed if missing and this runs as root; None
/// (with a printed reason) where it cannot be.
fn chromium(test: &str) -> Option<PathBuf> {
    let found = || {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    };
    if let Some(path) = found() {
        return Some(path);
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .is_some_and(|o| o.stdout.starts_with(b"0"));
    if root {
        let quiet = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        let _ = quiet(&["update", "-qq"]) && quiet(&["install", "-y", "-qq", "chromium"]);
    }
    let path = found();
    if path.is_none() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "{test}: skipped: Chromium is not installed and could not be (apt-get install chromium)"
        );
    }
    path
}

/// Chromium headless on `page`, as the machine's notes say it runs here:
/// its stdout, stderr and the URLs of its net log.
fn render(browser: &Path, page: &Path, extra: &[&str]) -> (String, String, Vec<String>, Duration) {
    let dir = scratch("chromium");
    let net_log = dir.join("net.json");
    let profile = tempfile::tempdir().unwrap();
    let mut args = vec![
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--enable-logging=stderr".into(),
        "--v=0".into(),
        format!("--user-data-dir={}", profile.path().display()),
        format!("--log-net-log={}", net_log.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(format!("file://{}", page.display()));
    let started = Instant::now();
    let out = Command::new(browser)
        .args(&args)
        .output()
        .expect("chromium runs");
    let took = started.elapsed();
    let log = std::fs::read_to_string(&net_log).unwrap_or_default();
    let urls: Vec<String> = log
        .split("\"url\":\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect();
    (stdout(&out), stderr(&out), urls, took)
}

#[test]
fn chromium_renders_the_incident_page_without_errors_or_requests() {
    let Some(browser) = chromium("chromium_renders_the_incident_page") else {
        return;
    };
    let (path, _) = incident_page();
    let (dom, log, urls, _) = render(&browser, &path, &["--dump-dom"]);
    assert!(dom.contains("Verdict: FAILURE"), "{log}");
    assert!(dom.contains("<svg"));
    assert!(!log.contains("CONSOLE"), "console messages: {log}");
    // The browser's own services (time, accounts, component updates) ask
    // Google whatever page is open; the page asks nothing.
    let browser_services = |u: &str| {
        let host = u
            .split("://")
            .nth(1)
            .unwrap_or("")
            .split('/')
            .next()
            .unwrap_or("");
        host.ends_with(".google.com") || host.ends_with(".googleapis.com")
    };
    let fetched: Vec<&String> = urls
        .iter()
        .filter(|u| {
            !u.starts_with("file://") && !u.starts_with("data:") && !u.starts_with("chrome")
        })
        .filter(|u| !browser_services(u))
        .collect();
    assert!(fetched.is_empty(), "requests: {fetched:?}");
    let shot = scratch("chromium").join("incident.png");
    let (_, log, _, _) = render(
        &browser,
        &path,
        &[
            "--hide-scrollbars",
            "--window-size=1280,2400",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}): {log}"));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 50_000,
        "{} bytes",
        png.len()
    );
}
