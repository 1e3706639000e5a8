//! Reads arbitrary bytes as an OCPP-J text frame. Whatever parses must write back to text that
//! parses to the same frame; whatever fails must yield an error code and a reply that reads back
//! as a CALLERROR (a reply echoes an over-long message id as received, which only that check
//! refuses).

#![no_main]

use libfuzzer_sys::fuzz_target;
use voltgate_ocpp::{Frame, FrameErrorKind, OcppVersion};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Frame::parse(text) {
        Ok(frame) => {
            let written = frame.to_text();
            assert_eq!(Frame::parse(&written), Ok(frame), "round trip of {written}");
        }
        Err(error) => {
            for version in OcppVersion::ALL {
                let _ = error.code(version).as_str(version);
                if let Some(reply) = error.reply(version) {
                    match Frame::parse(&reply.to_text()) {
                        Ok(read_back) => assert_eq!(read_back, reply),
                        Err(e) => assert!(matches!(e.kind, FrameErrorKind::MessageIdTooLong(_))),
                    }
                }
            }
        }
    }
});
