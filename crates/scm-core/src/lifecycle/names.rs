//! The names a certificate may carry, beyond their syntax ([`DnsName`]): the rules the issuer
//! enforces before anything is stored.

use scm_pki::DnsName;

use crate::DomainError;
use crate::lifecycle::validation::Method;

/// Checks `names` for an application proven by `method`: a wildcard only with `DNS` (a file on
/// one web server cannot prove control of every name under it).
pub fn check_names(names: &[DnsName], method: Method) -> Result<(), DomainError> {
    for n in names {
        if n.is_wildcard() && method != Method::Dns {
            return Err(DomainError::DomainMismatch(format!(
                "{n}: a wildcard name can only be validated with DNS"
            )));
        }
    }
    Ok(())
}
