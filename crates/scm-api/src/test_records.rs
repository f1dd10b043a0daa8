//! Records the unit tests of this crate's views and pages are built from.

use scm_proto::{Brand, CertType, CertificateId, CertificateStatus, DomainType, OrderId};
use scm_store::{CertificateRecord, IssuedRecord};

/// A certificate record of `status`, not issued, bought as a one-year GLOBALSIGN DV_SSL_CERT for
/// one name.
pub(crate) fn record(name: &str, status: CertificateStatus) -> CertificateRecord {
    CertificateRecord {
        id: CertificateId::try_from("scs1764770000000").unwrap(),
        domain_id: "0123456789abcdef0123456789abcdef".parse().unwrap(),
        project_id: "0123456789abcdef0123456789abcdef".parse().unwrap(),
        order_id: OrderId::new("2612031500", [1, 2, 3, 4, 5]).unwrap(),
        name: name.into(),
        status,
        product: scm_store::Product {
            brand: Brand::GlobalSign,
            cert_type: CertType::DvSsl,
            domain_type: DomainType::Single,
            effective_time: 1,
            domain_numbers: 1,
            primary_domain_type: None,
            single_domain_number: None,
            wildcard_domain_number: None,
            enterprise_project_id: "0".into(),
        },
        description: String::new(),
        tags_json: "[]".into(),
        application: None,
        issued: None,
        created_ms: 0,
        updated_ms: 0,
        issuer: None,
        chain_trust: None,
        revocation: None,
        lifecycle: scm_store::LifecycleRecord::default(),
    }
}

/// An issued version with serial `serial`, valid from 0 until `not_after_ms`, from the CA
/// `ca_id`.
pub(crate) fn issued_record(serial: &str, not_after_ms: i64, ca_id: Option<&str>) -> IssuedRecord {
    IssuedRecord {
        certificate_pem: String::new(),
        chain_pem: String::new(),
        private_key_sealed: None,
        serial_hex: serial.into(),
        fingerprint: "f".repeat(40),
        signature_algorithm: "SHA256WITHECDSA".into(),
        issued_ms: 0,
        not_before_ms: 0,
        not_after_ms,
        ca_id: ca_id.map(str::to_owned),
    }
}
