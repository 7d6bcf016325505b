//! The layers of docs/design.md, checked: no module imports from a layer
//! above its own.

use std::path::Path;

/// The layer of a top-level module (a file or folder under src/).
fn layer(module: &str) -> Option<u8> {
    Some(match module {
        "capture" | "cluster" | "decode" | "interface" | "topology" | "time" | "error"
        | "synth" | "ops" | "prefetch" => 0,
        "observe" => 1,
        "flow" | "pipeline" => 2,
        "detect" => 3,
        "analysis" => 4,
        "scan" | "diff" | "nodes" => 5,
        "report" => 6,
        "main" | "cli" | "app" | "fuzzing" | "lib" => 7,
        _ => return None,
    })
}

/// The top-level modules named by `crate::` paths in `text`.
fn crate_imports(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `kpcap_crate::`, not ours
        }
        let rest = &text[at + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.push(name);
        }
    }
    found
}

/// The library's `crate::` and the binary's `kpcap::` both name modules.
fn imports(text: &str) -> Vec<String> {
    let mut all = crate_imports(text);
    all.extend(crate_imports(&text.replace("kpcap::", "crate::")));
    all
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_from_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.components().next().unwrap().as_os_str();
        let module = top.to_str().unwrap().trim_end_matches(".rs").to_string();
        let own = layer(&module).unwrap_or_else(|| {
            panic!("{module}: a new top-level module; give it a layer here and in docs/design.md")
        });
        let text = std::fs::read_to_string(file).unwrap();
        for target in imports(&text) {
            let Some(theirs) = layer(&target) else {
                continue; // `crate::Something` re-exported at the root, or a macro
            };
            if theirs > own {
                upward.push(format!(
                    "{} (layer {own}) imports {target} (layer {theirs})",
                    relative.display()
                ));
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(
        upward.is_empty(),
        "imports that run upward:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_reader_finds_imports_and_layers_catch_upward_ones() {
    let text = "use crate::report::Output;\nlet x = crate::detect::Severity::Info; my_crate::x";
    assert_eq!(crate_imports(text), ["report", "detect"]);
    assert!(layer("detect").unwrap() < layer("report").unwrap());
    assert_eq!(imports("use kpcap::scan::Digest;"), ["scan"]);
}
