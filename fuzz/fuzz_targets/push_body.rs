//! Push bodies (v2 `cert/{id}/push`, v3 `certificates/{id}/push`): the API's JSON body parser,
//! then the service and region checks of each version.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scm_api::fuzzing;

fuzz_target!(|body: &[u8]| {
    let _ = fuzzing::v2_push(body);
    let _ = fuzzing::v3_push(body);
});
