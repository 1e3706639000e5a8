//! Holds the gateway to its own API description: every answer the suite receives through [`Api`]
//! must be one `gateway/openapi.json` documents for that route, method and status, and its JSON
//! body must match the documented schema. An answer the document does not describe fails the
//! test that received it, so the document cannot drift from what the gateway really says.
//!
//! Paths no route serves (and methods a route does not take) are answered by the gateway's
//! fallbacks; their bodies must still be the documented `Error` object.
//!
//! [`Api`]: crate::Api

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};

const DOCUMENT: &str = include_str!("../gateway/openapi.json");

/// What an answer must be, as a JSON pointer into the document to the schema of its body, or
/// `None` when the documented answer has no body.
#[derive(Debug, PartialEq)]
pub struct Expectation {
    pub route: String,
    pub content_type: Option<String>,
    pub schema_pointer: Option<String>,
}

fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::from_str(DOCUMENT).expect("gateway/openapi.json is JSON"))
}

/// The documented route template `path` falls under: the one with the most literal segments
/// among those that match segment by segment (`{name}` matches any one segment).
pub fn route_of(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    let paths = document()["paths"].as_object()?;
    paths
        .keys()
        .filter_map(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (part, segment) in parts.iter().zip(&segments) {
                if part.starts_with('{') && part.ends_with('}') {
                    if segment.is_empty() {
                        return None;
                    }
                } else if part == segment {
                    literal += 1;
                } else {
                    return None;
                }
            }
            Some((literal, template))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, template)| template.clone())
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Follows a `$ref` to a reusable response (`#/components/responses/...`) to its pointer.
fn resolve_response(pointer: String) -> Result<String, String> {
    let response = document()
        .pointer(&pointer)
        .ok_or_else(|| format!("{pointer} is not in openapi.json"))?;
    match response.get("$ref").and_then(Value::as_str) {
        Some(target) => Ok(target.trim_start_matches('#').to_string()),
        None => Ok(pointer),
    }
}

/// What the document says `method path` answers with `status`; an error says why the answer is
/// not documented.
pub fn expectation(method: &str, path: &str, status: u16) -> Result<Expectation, String> {
    let method = method.to_ascii_lowercase();
    let Some(route) = route_of(path) else {
        return Ok(fallback("(no route)"));
    };
    let operation = format!("/paths/{}/{method}", escape(&route));
    if document().pointer(&operation).is_none() {
        return Ok(fallback(&route));
    }
    let responses = document()
        .pointer(&format!("{operation}/responses"))
        .and_then(Value::as_object)
        .ok_or_else(|| format!("{method} {route} has no responses in openapi.json"))?;
    let key = [
        status.to_string(),
        format!("{}XX", status / 100),
        "default".into(),
    ]
    .into_iter()
    .find(|key| responses.contains_key(key))
    .ok_or_else(|| {
        format!(
            "{} {route} answered {status}, which openapi.json does not document (it lists {:?})",
            method.to_uppercase(),
            responses.keys().collect::<Vec<_>>()
        )
    })?;
    let response = resolve_response(format!("{operation}/responses/{}", escape(&key)))?;
    let content = document()
        .pointer(&format!("{response}/content"))
        .and_then(Value::as_object);
    let Some((content_type, media)) = content.and_then(|content| content.iter().next()) else {
        return Ok(Expectation {
            route,
            content_type: None,
            schema_pointer: None,
        });
    };
    let schema_pointer = media
        .get("schema")
        .map(|_| format!("{response}/content/{}/schema", escape(content_type)));
    Ok(Expectation {
        route,
        content_type: Some(content_type.clone()),
        schema_pointer,
    })
}

/// Answers of the gateway's fallbacks (no route, method not allowed, body limits) are errors.
fn fallback(route: &str) -> Expectation {
    Expectation {
        route: route.to_string(),
        content_type: Some("application/json".into()),
        schema_pointer: Some("/components/schemas/Error".into()),
    }
}

/// A validator for the schema at `pointer`, compiled once per pointer with the whole document as
/// its root so `#/components/...` references resolve.
fn validator(pointer: &str) -> Arc<jsonschema::Validator> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    cache
        .entry(pointer.to_string())
        .or_insert_with(|| {
            let mut root = document().clone();
            let map = root.as_object_mut().expect("the document is an object");
            map.insert(
                "$schema".into(),
                json!("https://json-schema.org/draft/2020-12/schema"),
            );
            // A URI fragment: braces of path templates must be percent-encoded.
            let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
            map.insert("$ref".into(), json!(format!("#{fragment}")));
            Arc::new(
                jsonschema::validator_for(&root)
                    .unwrap_or_else(|err| panic!("schema {pointer} does not compile: {err}")),
            )
        })
        .clone()
}

/// Checks one answer against the document; the error names what does not match.
pub fn check_answer(
    method: &str,
    path: &str,
    status: u16,
    content_type: Option<&str>,
    text: &str,
) -> Result<(), String> {
    let expected = expectation(method, path, status)?;
    let what = format!("{method} {path} ({}) -> {status}", expected.route);
    let Some(documented_type) = &expected.content_type else {
        return if text.is_empty() {
            Ok(())
        } else {
            Err(format!("{what}: documented without a body, got {text:?}"))
        };
    };
    let served_type = content_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    if served_type != documented_type {
        return Err(format!(
            "{what}: served as {served_type:?}, documented as {documented_type:?}"
        ));
    }
    let Some(pointer) = &expected.schema_pointer else {
        return Ok(());
    };
    if documented_type != "application/json" {
        return Ok(());
    }
    let body: Value = serde_json::from_str(text)
        .map_err(|err| format!("{what}: body is not JSON ({err}): {text:?}"))?;
    let errors: Vec<String> = validator(pointer)
        .iter_errors(&body)
        .map(|err| format!("{} at {}", err, err.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{what}: body does not match {pointer}: {}\nbody: {text}",
            errors.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_prefer_literal_segments() {
        assert_eq!(
            route_of("/api/v1/chargers/CP-1/approve").as_deref(),
            Some("/api/v1/chargers/{id}/approve")
        );
        assert_eq!(
            route_of("/api/v1/chargers/CP-1").as_deref(),
            Some("/api/v1/chargers/{id}")
        );
        assert_eq!(route_of("/api/v1/nothing/here"), None);
    }

    #[test]
    fn answers_are_held_to_the_document() {
        let charger = json!({"error": "x"}).to_string();
        assert!(
            check_answer(
                "GET",
                "/api/v1/chargers/CP-1",
                404,
                Some("application/json"),
                &charger
            )
            .is_err(),
            "an error body without its documented fields is refused"
        );
        assert!(check_answer(
            "GET",
            "/api/v1/chargers/CP-1",
            418,
            Some("application/json"),
            "{}"
        )
        .unwrap_err()
        .contains("does not document"));
        assert!(check_answer("GET", "/metrics", 200, Some("application/json"), "{}").is_err());
    }
}
