//! PEM certificates and chains: `pem_blocks` splits a bundle, `parse_certificate_pem` reads the
//! first block and then each block of the chain on its own.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scm_pki::{parse_certificate_pem, pem_blocks};

fuzz_target!(|text: &str| {
    let _ = parse_certificate_pem(text);
    for block in pem_blocks(text, "CERTIFICATE") {
        // A block is canonical (or verbatim when it does not decode): splitting it again gives
        // the block itself.
        assert_eq!(pem_blocks(&block, "CERTIFICATE"), [block.as_str()]);
        let _ = parse_certificate_pem(&block);
    }
});
