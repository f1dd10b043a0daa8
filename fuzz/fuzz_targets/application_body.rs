//! Application forms (v2 `save`/`complete`, v3 `apply`): the API's JSON body parser, then
//! `ApplicationForm::parse` for v2 and v3, OV/EV or not; a form accepted is stored and read back
//! (v2 `save`, then `complete`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scm_api::fuzzing;
use scm_core::application::ApplicationForm;
use scm_core::purchase::ApiVersion;

fuzz_target!(|body: &[u8]| {
    for version in [ApiVersion::V2, ApiVersion::V3] {
        for organisation_validated in [false, true] {
            if let Ok(form) = fuzzing::application(body, version, organisation_validated) {
                let back = ApplicationForm::from_record(&form.to_record().unwrap()).unwrap();
                assert_eq!(back.names(), form.names());
            }
        }
    }
});
