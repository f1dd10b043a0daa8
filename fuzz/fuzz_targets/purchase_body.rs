//! Purchase bodies (v2 `cert/purchase`, v3 `certificates/buy`): the API's JSON body parser, then
//! `PurchaseSpec::parse` with the v2 and the v3 rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scm_api::fuzzing;
use scm_core::purchase::ApiVersion;

fuzz_target!(|body: &[u8]| {
    let _ = fuzzing::purchase(body, ApiVersion::V2);
    let _ = fuzzing::purchase(body, ApiVersion::V3);
});
