//! Measures the per-message cost the gateway pays on every charger frame: reading the OCPP-J
//! text and validating the CALL payload against its schema, and the same through the lenient
//! tolerance layer, for valid messages and for messages with real firmware's deviations.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use voltgate_ocpp::{Frame, OcppVersion, Tolerance, Validator};

const CASES: &[(OcppVersion, &str, &str)] = &[
    (
        OcppVersion::V16,
        "Heartbeat",
        r#"[2,"hb-1","Heartbeat",{}]"#,
    ),
    (
        OcppVersion::V16,
        "StatusNotification",
        r#"[2,"sn-1","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Charging","timestamp":"2024-05-01T12:00:00Z"}]"#,
    ),
    (
        OcppVersion::V16,
        "MeterValues",
        r#"[2,"mv-1","MeterValues",{"connectorId":1,"transactionId":42,"meterValue":[{"timestamp":"2024-05-01T12:00:00Z","sampledValue":[{"value":"12345.6","measurand":"Energy.Active.Import.Register","unit":"Wh","context":"Sample.Periodic"},{"value":"7200","measurand":"Power.Active.Import","unit":"W"},{"value":"31.9","measurand":"Current.Import","unit":"A","phase":"L1"}]}]}]"#,
    ),
    (
        OcppVersion::V201,
        "Heartbeat",
        r#"[2,"hb-1","Heartbeat",{}]"#,
    ),
    (
        OcppVersion::V201,
        "StatusNotification",
        r#"[2,"sn-1","StatusNotification",{"timestamp":"2024-05-01T12:00:00Z","connectorStatus":"Occupied","evseId":1,"connectorId":1}]"#,
    ),
    (
        OcppVersion::V201,
        "MeterValues",
        r#"[2,"mv-1","MeterValues",{"evseId":1,"meterValue":[{"timestamp":"2024-05-01T12:00:00Z","sampledValue":[{"value":12345.6,"measurand":"Energy.Active.Import.Register","unitOfMeasure":{"unit":"Wh"},"context":"Sample.Periodic"},{"value":7200,"measurand":"Power.Active.Import","unitOfMeasure":{"unit":"W"}},{"value":31.9,"measurand":"Current.Import","phase":"L1"}]}]}]"#,
    ),
];

/// The same messages bent as real firmware bends them: an over-long model (Grizzl-E), and a
/// 1.6 MeterValues with a connector id as text, a zone-less timestamp, a non-standard context
/// and the unit `Hz` (four deviations, two of them normalised).
const DEVIANT: &[(OcppVersion, &str, &str)] = &[
    (
        OcppVersion::V16,
        "BootNotification",
        r#"[2,"bn-1","BootNotification",{"chargePointVendor":"United Chargers","chargePointModel":"Grizzl-E Smart 40A 1ph","chargePointSerialNumber":"GRS-4011002b9c","firmwareVersion":"05.43"}]"#,
    ),
    (
        OcppVersion::V16,
        "MeterValues",
        r#"[2,"mv-1","MeterValues",{"connectorId":"1","transactionId":42,"meterValue":[{"timestamp":"2024-05-01T12:00:00","sampledValue":[{"value":"12345.6","measurand":"Energy.Active.Import.Register","unit":"Wh","context":"Sample.Periodic"},{"value":"16.000","context":"CurrentMax","unit":"A"},{"value":"49.97","measurand":"Frequency","unit":"Hz"}]}]}]"#,
    ),
];

/// A strictly valid 1.6 BootNotification, the baseline of the deviant one.
const VALID_BOOT: &str = r#"[2,"bn-1","BootNotification",{"chargePointVendor":"United Chargers","chargePointModel":"Grizzl-E Smart","chargePointSerialNumber":"GRS-4011002b9c","firmwareVersion":"05.43"}]"#;

/// Reads the frame and checks it under `tolerance`; the number of deviations accepted, or
/// `None` when refused.
fn parse_and_check(
    validator: &Validator,
    version: OcppVersion,
    text: &str,
    tolerance: Tolerance,
) -> Option<usize> {
    match Frame::parse(text) {
        Ok(Frame::Call {
            action, payload, ..
        }) => validator
            .check_request(version, &action, payload, tolerance)
            .ok()
            .map(|accepted| accepted.deviations.len()),
        _ => None,
    }
}

fn parse_and_validate(validator: &Validator, version: OcppVersion, text: &str) -> bool {
    match Frame::parse(text) {
        Ok(Frame::Call {
            action, payload, ..
        }) => validator
            .validate_request(version, &action, &payload)
            .is_ok(),
        _ => false,
    }
}

fn codec(c: &mut Criterion) {
    let validator = match Validator::new() {
        Ok(v) => v,
        Err(e) => panic!("schemas do not compile: {e}"),
    };
    for (version, action, text) in CASES {
        assert!(
            parse_and_validate(&validator, *version, text),
            "{version} {action} must be valid"
        );
        c.bench_function(&format!("parse+validate {version} {action}"), |b| {
            b.iter(|| parse_and_validate(&validator, *version, black_box(text)))
        });
    }
    let (version, _, text) = CASES[5];
    let payload = match Frame::parse(text) {
        Ok(Frame::Call { payload, .. }) => payload,
        other => panic!("bench frame must be a CALL: {other:?}"),
    };
    c.bench_function("validate only 2.0.1 MeterValues", |b| {
        b.iter(|| {
            validator
                .validate_request(version, "MeterValues", black_box(&payload))
                .is_ok()
        })
    });
    c.bench_function("parse only 2.0.1 MeterValues", |b| {
        b.iter(|| Frame::parse(black_box(text)).is_ok())
    });

    let valid = [(OcppVersion::V16, "BootNotification", VALID_BOOT), CASES[2]];
    for (version, action, text) in valid {
        assert_eq!(
            parse_and_check(&validator, version, text, Tolerance::Lenient),
            Some(0),
            "{version} {action} must be valid"
        );
        c.bench_function(
            &format!("parse+check lenient valid {version} {action}"),
            |b| {
                b.iter(|| parse_and_check(&validator, version, black_box(text), Tolerance::Lenient))
            },
        );
    }
    for (version, action, text) in DEVIANT {
        assert!(
            parse_and_check(&validator, *version, text, Tolerance::Lenient).is_some_and(|n| n > 0),
            "{version} {action} must be accepted with deviations"
        );
        assert_eq!(
            parse_and_check(&validator, *version, text, Tolerance::Strict),
            None,
            "{version} {action} must be refused strictly"
        );
        c.bench_function(
            &format!("parse+check lenient deviant {version} {action}"),
            |b| {
                b.iter(|| {
                    parse_and_check(&validator, *version, black_box(text), Tolerance::Lenient)
                })
            },
        );
        c.bench_function(
            &format!("parse+check strict deviant {version} {action}"),
            |b| {
                b.iter(|| parse_and_check(&validator, *version, black_box(text), Tolerance::Strict))
            },
        );
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
