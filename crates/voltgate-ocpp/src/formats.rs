//! The `date-time` and `uri` string formats, checked exactly as the schema validator checks
//! them, so that operator input accepted here always yields a payload the schemas accept.

use std::sync::OnceLock;

use serde_json::{json, Value};

type Checker = OnceLock<Option<jsonschema::Validator>>;

/// Whether `text` conforms to `format`; `false` if the one-line checker schema would not build.
fn conforms(cell: &'static Checker, format: &'static str, text: &str) -> bool {
    let compiled = cell.get_or_init(|| {
        jsonschema::draft4::options()
            .should_validate_formats(true)
            .build(&json!({ "type": "string", "format": format }))
            .ok()
    });
    compiled
        .as_ref()
        .is_some_and(|c| c.is_valid(&Value::String(text.to_owned())))
}

/// Whether `text` is an RFC 3339 date-time as the schemas' `date-time` format requires.
pub(crate) fn is_date_time(text: &str) -> bool {
    static CHECKER: Checker = OnceLock::new();
    conforms(&CHECKER, "date-time", text)
}

/// Whether `text` is an absolute URI as the schemas' `uri` format requires.
pub(crate) fn is_uri(text: &str) -> bool {
    static CHECKER: Checker = OnceLock::new();
    conforms(&CHECKER, "uri", text)
}
