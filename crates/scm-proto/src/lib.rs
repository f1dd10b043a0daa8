//! Wire types of the Huawei Cloud SCM HTTP API as OpenSCM serves it: request and response bodies,
//! identifiers, the stable error codes and the operation names.
//!
//! Nothing here does I/O. Request bodies are deserialised leniently (every field optional, raw JSON
//! kept where the type must be checked by hand) so that the domain layer can name the offending
//! field in its `SCM.0005` error; response bodies emit every documented key, `null` when unset,
//! because that is what the real service does and what the official SDKs expect.
#![deny(missing_docs)]

pub mod codes;
pub mod csr;
pub mod deploy;
pub mod ids;
// --- import ---
pub mod import;
pub mod lifecycle;
pub mod notices;
pub mod operation;
pub mod product;
pub mod status;
pub mod tags;
pub mod v2;
pub mod v3;

pub use codes::{ErrorBody, ErrorCode};
pub use ids::{
    AccessKeyId, CertificateId, CsrId, DomainId, IdError, OrderId, ProjectId, RequestId,
};
pub use operation::{Method, Operation, Scope};
pub use product::{Brand, CertType, DomainType, PrimaryDomainType};
pub use status::CertificateStatus;
