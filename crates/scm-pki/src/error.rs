//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in `scm-pki`.
///
/// Variants are coarse on purpose: each maps onto one API error the caller reports.
/// No variant ever carries key material; `UnsupportedKey` and `InvalidName` carry only
/// descriptions of public values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// The CSR is not PEM, not a `CERTIFICATE REQUEST` block, or not valid PKCS#10 DER.
    #[error("the certificate signing request is not a valid PEM-encoded PKCS#10 request")]
    BadCsrPem,
    /// The CSR parses but its self-signature does not verify (or uses an unsupported
    /// signature algorithm).
    #[error("the certificate signing request signature does not verify")]
    BadCsrSignature,
    /// The key is of a type or size this crate does not accept (the text names it).
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    /// The private key is not a parseable, unencrypted PEM/PKCS#8/PKCS#1/SEC1 key.
    #[error("the private key is not a valid unencrypted PEM private key")]
    BadKeyPem,
    /// The certificate is not a parseable PEM/DER X.509 certificate.
    #[error("the certificate is not a valid PEM-encoded X.509 certificate")]
    BadCertificatePem,
    /// A name to put in a certificate is not a valid DNS name or IP address (the text names it).
    #[error("invalid certificate name: {0}")]
    InvalidName(String),
    /// An issuance request is inconsistent (the text says how).
    #[error("invalid issuance request: {0}")]
    InvalidRequest(&'static str),
    /// A private key does not belong to the certificate it was paired with.
    #[error("the private key does not match the certificate's public key")]
    KeyMismatch,
    /// A certificate that must be a CA certificate is not one.
    #[error("the certificate is not a CA certificate")]
    NotCa,
    /// A cryptographic primitive failed (the text names the operation).
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
    /// The master key file could not be created or loaded.
    #[error("master key file {}: {reason}", path.display())]
    MasterKeyFile {
        /// The file in question.
        path: PathBuf,
        /// What is wrong with it (never its content).
        reason: String,
    },
    /// Encrypting data under the master key failed.
    #[error("sealing data under the master key failed")]
    Seal,
    /// Sealed data could not be decrypted: wrong master key, wrong binding (aad),
    /// unknown format version or corrupted ciphertext.
    #[error("sealed data could not be opened (wrong key, wrong binding or corrupted)")]
    Open,
}
