//! The crate's integration tests, in one binary so they link once.

mod commands;
mod frames;
mod responses;
mod tolerance;
mod validation;
mod versions_and_actions;
mod views;

use std::sync::OnceLock;

use voltgate_ocpp::Validator;

/// One compiled validator shared by every test.
fn validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| Validator::new().expect("embedded schemas compile"))
}
