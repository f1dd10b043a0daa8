//! Small shared helpers: OIDs, PEM encoding, fingerprints, name checks.

use aws_lc_rs::digest;
use zeroize::Zeroizing;

pub(crate) const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
pub(crate) const OID_RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
pub(crate) const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
pub(crate) const OID_P256: &str = "1.2.840.10045.3.1.7";
pub(crate) const OID_P384: &str = "1.3.132.0.34";

/// PEM with LF line endings and 64-column lines, whatever the platform (public data only;
/// see [`pem_encode_secret`]).
pub(crate) fn pem_encode(tag: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// PEM for secret DER (private keys), identical in format to [`pem_encode`].
///
/// Built by hand in one exactly-sized, wiped-on-drop buffer: a general-purpose encoder
/// leaves intermediate base64 copies and reallocated fragments of the secret on the heap.
pub(crate) fn pem_encode_secret(tag: &str, der: &[u8]) -> Zeroizing<String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const LINE: usize = 64;
    let begin = format!("-----BEGIN {tag}-----\n");
    let end = format!("-----END {tag}-----\n");
    let b64_len = der.len().div_ceil(3) * 4;
    let capacity = begin.len() + b64_len + b64_len.div_ceil(LINE) + end.len();
    let mut out = Zeroizing::new(String::with_capacity(capacity));
    out.push_str(&begin);
    let mut column = 0;
    for chunk in der.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let group = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        // A chunk of n bytes yields n + 1 significant characters, the rest is padding.
        for i in 0..4 {
            let c = if i <= chunk.len() {
                let sextet = (group >> (18 - 6 * i)) & 0x3f;
                ALPHABET.get(sextet as usize).copied().unwrap_or(b'=')
            } else {
                b'='
            };
            out.push(char::from(c));
            column += 1;
            if column == LINE {
                out.push('\n');
                column = 0;
            }
        }
    }
    if column > 0 {
        out.push('\n');
    }
    out.push_str(&end);
    out
}

/// Lower-case hex SHA-1 of `der` (40 characters), as certificate fingerprints are shown.
pub(crate) fn sha1_hex(der: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref())
}

/// Lower-case hex of a DER INTEGER's magnitude, without the sign-padding zero bytes.
pub(crate) fn serial_hex(raw: &[u8]) -> String {
    let first_nonzero = raw.iter().position(|&b| b != 0);
    match first_nonzero {
        Some(i) => hex::encode(raw.get(i..).unwrap_or_default()),
        None => "00".to_owned(),
    }
}

/// A readable name for a public-key algorithm OID we do not support.
pub(crate) fn key_type_name(oid: &str) -> String {
    match oid {
        "1.3.101.112" => "Ed25519".to_owned(),
        "1.3.101.113" => "Ed448".to_owned(),
        "1.2.840.10040.4.1" => "DSA".to_owned(),
        OID_RSASSA_PSS => "RSASSA-PSS key".to_owned(),
        other => format!("key type {other}"),
    }
}

/// Number of significant bits in a big-endian unsigned integer.
pub(crate) fn bit_len(be: &[u8]) -> usize {
    match be.iter().position(|&b| b != 0) {
        Some(i) => {
            let lead = be.get(i).copied().unwrap_or(0);
            (be.len() - i - 1) * 8 + (8 - lead.leading_zeros() as usize)
        }
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_pem_matches_pem_crate() {
        for len in 1..200usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            assert_eq!(
                pem_encode_secret("PRIVATE KEY", &data).as_str(),
                pem_encode("PRIVATE KEY", &data),
                "length {len}"
            );
        }
    }

    #[test]
    fn serials_and_bits() {
        assert_eq!(serial_hex(&[0x00, 0x8f, 0x01]), "8f01");
        assert_eq!(serial_hex(&[0x00]), "00");
        assert_eq!(bit_len(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_len(&[0x01]), 1);
        assert_eq!(bit_len(&[]), 0);
    }
}
