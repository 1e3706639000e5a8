//! Embeds the vendored OCPP JSON schemas: writes a table of `include_str!`s, one row per schema
//! file under `schemas/v16` and `schemas/v201`, so the library carries every schema in its binary
//! and never reads the file system at run time.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

/// One schema directory: its folder name, the Rust path of its `OcppVersion`, and the suffix the
/// request schemas carry in their file name (1.6 names requests after the bare action).
struct SchemaDir {
    folder: &'static str,
    version: &'static str,
    request_suffix: &'static str,
}

const DIRS: [SchemaDir; 2] = [
    SchemaDir {
        folder: "v16",
        version: "OcppVersion::V16",
        request_suffix: "",
    },
    SchemaDir {
        folder: "v201",
        version: "OcppVersion::V201",
        request_suffix: "Request",
    },
];

fn main() {
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_owned());
    let schema_root = Path::new(&manifest_dir).join("schemas");
    println!("cargo:rerun-if-changed=schemas");

    let mut rows = String::new();
    for dir in &DIRS {
        let folder = schema_root.join(dir.folder);
        let mut names: Vec<String> = fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", folder.display()))
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".json"))
            .collect();
        names.sort();
        for name in names {
            let stem = name.trim_end_matches(".json");
            let (action, direction) = match stem.strip_suffix("Response") {
                Some(action) => (action, "Direction::Response"),
                None => match stem.strip_suffix(dir.request_suffix) {
                    Some(action) => (action, "Direction::Request"),
                    None => panic!("schema file {name} is neither a request nor a response"),
                },
            };
            let path = folder.join(&name);
            let _ = writeln!(
                rows,
                "    EmbeddedSchema {{ version: {}, action: {:?}, direction: {}, file: {:?}, text: include_str!({:?}) }},",
                dir.version,
                action,
                direction,
                format!("{}/{}", dir.folder, name),
                path.display().to_string(),
            );
        }
    }

    let generated =
        format!("pub(crate) static EMBEDDED_SCHEMAS: &[EmbeddedSchema] = &[\n{rows}];\n");
    let out_dir = env::var("OUT_DIR").unwrap_or_else(|_| panic!("OUT_DIR is not set"));
    let out = Path::new(&out_dir).join("embedded_schemas.rs");
    fs::write(&out, generated).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}
