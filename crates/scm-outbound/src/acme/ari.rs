//! ACME Renewal Information (RFC 9773): the certificate identifier a CA knows a certificate by,
//! and the renewal window it suggests.

use std::time::Duration;

use data_encoding::BASE64URL_NOPAD as URL_SAFE_NO_PAD;
use scm_core::issuers::acme::RenewalWindow;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_parser::extensions::ParsedExtension;

/// The ARI CertID of a certificate (RFC 9773 §4.1): base64url of its Authority Key
/// Identifier's `keyIdentifier`, a dot, base64url of its serial number's DER content bytes
/// (with the leading zero a positive serial may need).
pub(crate) fn cert_id(cert_der: &[u8]) -> Result<String, String> {
    let (key_identifier, serial) = cert_id_parts(cert_der)?;
    Ok(cert_id_of(&key_identifier, &serial))
}

/// The two parts of the CertID, raw: the AKI `keyIdentifier` and the serial's content bytes.
pub(crate) fn cert_id_parts(cert_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|_| "the certificate is not valid DER".to_owned())?;
    let aki = cert
        .extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref(),
            _ => None,
        })
        .ok_or("the certificate has no Authority Key Identifier (keyIdentifier)")?;
    Ok((aki.0.to_vec(), cert.raw_serial().to_vec()))
}

/// The CertID of an AKI `keyIdentifier` and the serial's DER content bytes.
pub(crate) fn cert_id_of(key_identifier: &[u8], serial: &[u8]) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(key_identifier),
        URL_SAFE_NO_PAD.encode(serial)
    )
}

/// A renewalInfo answer (RFC 9773 §4.2).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RenewalInfo {
    suggested_window: SuggestedWindow,
    #[serde(rename = "explanationURL", default)]
    explanation_url: Option<String>,
}

#[derive(Deserialize)]
struct SuggestedWindow {
    start: String,
    end: String,
}

/// Reads a renewalInfo answer; `retry_after` is its `Retry-After`.
pub(crate) fn renewal_window(
    body: &[u8],
    retry_after: Option<Duration>,
) -> Result<RenewalWindow, String> {
    let info: RenewalInfo = serde_json::from_slice(body)
        .map_err(|e| format!("the renewal information is not what RFC 9773 describes: {e}"))?;
    let ms = |text: &str| {
        OffsetDateTime::parse(text, &Rfc3339)
            .ok()
            .and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok())
            .ok_or_else(|| format!("the renewal window has a bad time: {text:?}"))
    };
    let start_ms = ms(&info.suggested_window.start)?;
    let end_ms = ms(&info.suggested_window.end)?;
    if end_ms < start_ms {
        return Err("the renewal window ends before it starts".into());
    }
    Ok(RenewalWindow {
        start_ms,
        end_ms,
        retry_after,
        explanation_url: info.explanation_url,
    })
}

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, IsCa, Issuer, KeyIdMethod, KeyPair,
        SerialNumber,
    };

    use super::*;

    /// RFC 9773 §4.1's example: keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:
    /// 2C:DE:01:C8:D4 and serial 0x87654321, whose DER content is 00:87:65:43:21.
    const RFC_AKI: [u8; 20] = [
        0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0, 0xAE,
        0x2C, 0xDE, 0x01, 0xC8, 0xD4,
    ];
    const RFC_ID: &str = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE";

    #[test]
    fn the_rfc_example() {
        assert_eq!(
            cert_id_of(&RFC_AKI, &[0x00, 0x87, 0x65, 0x43, 0x21]),
            RFC_ID
        );
    }

    #[test]
    fn read_from_a_certificate_with_the_rfc_values() {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::default();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_identifier_method = KeyIdMethod::PreSpecified(RFC_AKI.to_vec());
        let ca = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(["www.shop.test".to_owned()]).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.serial_number = Some(SerialNumber::from_slice(&[0x87, 0x65, 0x43, 0x21]));
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &ca).unwrap();
        assert_eq!(cert_id(cert.der()).unwrap(), RFC_ID);

        // Without an AKI there is no CertID.
        let mut bare = CertificateParams::new(["www.shop.test".to_owned()]).unwrap();
        bare.use_authority_key_identifier_extension = false;
        let self_signed = bare.self_signed(&key).unwrap();
        assert!(
            cert_id(self_signed.der())
                .unwrap_err()
                .contains("Authority Key Identifier")
        );
        assert!(cert_id(b"junk").is_err());
    }

    #[test]
    fn the_rfc_renewal_info_example() {
        let body = br#"{
          "suggestedWindow": {
            "start": "2025-01-02T04:00:00Z",
            "end": "2025-01-03T04:00:00Z"
          },
          "explanationURL": "https://acme.example.com/docs/ari"
        }"#;
        let w = renewal_window(body, Some(Duration::from_secs(21600))).unwrap();
        assert_eq!(w.start_ms, 1_735_790_400_000);
        assert_eq!(w.end_ms, 1_735_876_800_000);
        assert_eq!(w.retry_after, Some(Duration::from_secs(21600)));
        assert_eq!(
            w.explanation_url.as_deref(),
            Some("https://acme.example.com/docs/ari")
        );
        let minimal = br#"{"suggestedWindow":{"start":"2025-01-02T04:00:00.5+02:00","end":"2025-01-02T04:00:00.5+02:00"}}"#;
        let w = renewal_window(minimal, None).unwrap();
        assert_eq!(w.start_ms, 1_735_783_200_500);
        assert_eq!(w.explanation_url, None);
        assert!(renewal_window(b"{}", None).is_err());
        let backwards =
            br#"{"suggestedWindow":{"start":"2025-01-03T04:00:00Z","end":"2025-01-02T04:00:00Z"}}"#;
        assert!(renewal_window(backwards, None).is_err());
    }
}
