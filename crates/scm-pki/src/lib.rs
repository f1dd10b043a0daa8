//! scm-pki: the PKI core of OpenSCM.
//!
//! - [`seal`]: the master key and AES-256-GCM encryption of private keys at rest;
//! - [`key`]: key algorithms, key generation and PEM/PKCS#8 import/export;
//! - [`csr`]: parsing and verifying certificate signing requests;
//! - [`ca`]: the built-in two-level ECDSA P-256 CA and leaf issuance;
//! - [`crl`]: certificate revocation lists signed by the CA, and reading them;
//! - [`cert`]: reading certificates and splitting PEM chains;
//! - [`name`]: the rules for DNS names in certificates ([`DnsName`]);
//! - [`pkcs12`]: writing PKCS#12 files (key + chain under a password);
//! - [`import`]: checking an imported certificate, its chain and its key against each other;
//! - [`chain`]: an imported chain checked by its signatures, and whether it reaches a certificate
//!   the server trusts ([`TrustAnchors`]).
//!
//! All cryptography is done by aws-lc-rs (directly or through rcgen). Private key material
//! is wiped on drop where this crate holds it and never appears in `Debug` output or errors.
#![deny(missing_docs)]

pub mod ca;
pub mod cert;
pub mod crl;
// --- import ---
pub mod chain;
pub mod csr;
mod error;
// --- import ---
pub mod import;
pub mod key;
pub mod name;
pub mod pkcs12;
pub mod seal;
#[cfg(test)]
mod test_util;
mod util;

pub use ca::{
    GeneratedCa, IssuedCertificate, Issuer, LeafKey, LeafRequest, ServingHost, SubjectFields,
    generate_ca,
};
pub use cert::{
    CertificateInfo, parse_certificate_der, parse_certificate_pem, pem_blocks, subject_alt_hosts,
};
pub use crl::{CrlInfo, CrlReason, CrlRequest, RevokedEntry, crl_pem, parse_crl_der};
pub use csr::{ParsedCsr, csr_der, generate_csr};
pub use error::PkiError;
// --- import ---
pub use chain::{ChainTrust, TrustAnchors};
pub use import::{ImportError, ImportedCertificate, parse_import};
pub use key::{KeyAlgorithm, PrivateKey};
pub use name::{DnsName, NameError};
pub use seal::MasterKey;
