//! The query of `GET /v3/scm/certificates`: decoded into pairs, then checked into a list request.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|query: &str| {
    let _ = scm_api::fuzzing::list_query(Some(query));
});
