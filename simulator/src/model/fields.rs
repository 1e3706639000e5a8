//! Reading fields out of a request payload with the CALLERROR a real charger would answer
//! when one is missing or of the wrong type. The gateway validates what it sends, so these
//! errors only show up when a peer misbehaves or validation is off.

use serde_json::{Map, Value};
use voltgate_ocpp::ErrorCode;

use super::clock::Millis;

/// A request the charger refuses with a CALLERROR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: ErrorCode,
    pub description: String,
}

impl Fault {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Fault {
        Fault {
            code,
            description: description.into(),
        }
    }
}

pub type Obj = Map<String, Value>;

pub fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Obj, Fault> {
    value.as_object().ok_or_else(|| {
        Fault::new(
            ErrorCode::TypeConstraintViolation,
            format!("{what} must be an object"),
        )
    })
}

fn missing(key: &str) -> Fault {
    Fault::new(
        ErrorCode::OccurrenceConstraintViolation,
        format!("{key} is required"),
    )
}

fn wrong_type(key: &str, expected: &str) -> Fault {
    Fault::new(
        ErrorCode::TypeConstraintViolation,
        format!("{key} must be {expected}"),
    )
}

pub fn opt_int(o: &Obj, key: &str) -> Result<Option<i64>, Fault> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| wrong_type(key, "an integer")),
    }
}

pub fn req_int(o: &Obj, key: &str) -> Result<i64, Fault> {
    opt_int(o, key)?.ok_or_else(|| missing(key))
}

pub fn opt_num(o: &Obj, key: &str) -> Result<Option<f64>, Fault> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| wrong_type(key, "a number")),
    }
}

pub fn req_num(o: &Obj, key: &str) -> Result<f64, Fault> {
    opt_num(o, key)?.ok_or_else(|| missing(key))
}

pub fn opt_str<'a>(o: &'a Obj, key: &str) -> Result<Option<&'a str>, Fault> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_str()
            .map(Some)
            .ok_or_else(|| wrong_type(key, "a string")),
    }
}

pub fn req_str<'a>(o: &'a Obj, key: &str) -> Result<&'a str, Fault> {
    opt_str(o, key)?.ok_or_else(|| missing(key))
}

pub fn opt_obj<'a>(o: &'a Obj, key: &str) -> Result<Option<&'a Obj>, Fault> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_object()
            .map(Some)
            .ok_or_else(|| wrong_type(key, "an object")),
    }
}

pub fn req_obj<'a>(o: &'a Obj, key: &str) -> Result<&'a Obj, Fault> {
    opt_obj(o, key)?.ok_or_else(|| missing(key))
}

pub fn opt_array<'a>(o: &'a Obj, key: &str) -> Result<Option<&'a Vec<Value>>, Fault> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_array()
            .map(Some)
            .ok_or_else(|| wrong_type(key, "an array")),
    }
}

pub fn req_array<'a>(o: &'a Obj, key: &str) -> Result<&'a Vec<Value>, Fault> {
    opt_array(o, key)?.ok_or_else(|| missing(key))
}

pub fn opt_bool(o: &Obj, key: &str) -> Result<Option<bool>, Fault> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_bool()
            .map(Some)
            .ok_or_else(|| wrong_type(key, "a boolean")),
    }
}

/// An optional RFC 3339 timestamp.
pub fn opt_time(o: &Obj, key: &str) -> Result<Option<Millis>, Fault> {
    match opt_str(o, key)? {
        None => Ok(None),
        Some(text) => Millis::parse_rfc3339(text).map(Some).ok_or_else(|| {
            Fault::new(
                ErrorCode::PropertyConstraintViolation,
                format!("{key} must be an RFC 3339 date-time"),
            )
        }),
    }
}

/// A connector or EVSE number: a non-negative integer that fits in `u32`.
pub fn as_index(value: i64, key: &str) -> Result<u32, Fault> {
    u32::try_from(value).map_err(|_| {
        Fault::new(
            ErrorCode::PropertyConstraintViolation,
            format!("{key} must not be negative"),
        )
    })
}

/// Whether `location` looks like a URL a charger could upload to or download from.
pub fn is_transfer_url(location: &str) -> bool {
    let Some((scheme, rest)) = location.split_once("://") else {
        return false;
    };
    matches!(
        scheme.to_ascii_lowercase().as_str(),
        "http" | "https" | "ftp" | "ftps" | "sftp"
    ) && !rest.is_empty()
        && !rest.starts_with('/')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn missing_and_wrong_types_map_to_ocpp_codes() {
        let v =
            json!({"a": 1, "b": "x", "c": {"d": true}, "t": "2024-01-01T00:00:00Z", "bad": "noon"});
        let o = object(&v, "payload").unwrap();
        assert_eq!(req_int(o, "a").unwrap(), 1);
        assert_eq!(
            req_int(o, "zz").unwrap_err().code,
            ErrorCode::OccurrenceConstraintViolation
        );
        assert_eq!(
            req_int(o, "b").unwrap_err().code,
            ErrorCode::TypeConstraintViolation
        );
        assert_eq!(req_str(o, "b").unwrap(), "x");
        assert_eq!(opt_bool(req_obj(o, "c").unwrap(), "d").unwrap(), Some(true));
        assert!(opt_time(o, "t").unwrap().is_some());
        assert_eq!(
            opt_time(o, "bad").unwrap_err().code,
            ErrorCode::PropertyConstraintViolation
        );
        assert_eq!(
            object(&json!([]), "payload").unwrap_err().code,
            ErrorCode::TypeConstraintViolation
        );
        assert!(as_index(-1, "connectorId").is_err());
    }

    #[test]
    fn transfer_urls() {
        assert!(is_transfer_url("https://files.example.com/fw.bin"));
        assert!(is_transfer_url("ftp://host/x"));
        assert!(!is_transfer_url("file:///etc/passwd"));
        assert!(!is_transfer_url("https://"));
        assert!(!is_transfer_url("not a url"));
    }
}
