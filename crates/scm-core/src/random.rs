//! Random identifiers and secrets from the system CSPRNG (aws-lc-rs).

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use scm_proto::{AccessKeyId, DomainId, ProjectId};

use crate::DomainError;

/// `N` random bytes.
pub fn bytes<const N: usize>() -> Result<[u8; N], DomainError> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| DomainError::internal("system random generator failed"))?;
    Ok(out)
}

/// A new account id.
pub fn domain_id() -> Result<DomainId, DomainError> {
    Ok(DomainId::from_random(bytes()?))
}

/// A new project id.
pub fn project_id() -> Result<ProjectId, DomainError> {
    Ok(ProjectId::from_random(bytes()?))
}

/// A new access key id.
pub fn access_key() -> Result<AccessKeyId, DomainError> {
    Ok(AccessKeyId::from_random(bytes()?))
}

/// A new 40-character secret key (letters and digits, like Huawei's), 238 bits of entropy.
pub fn secret_key() -> Result<String, DomainError> {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // Rejection sampling keeps the distribution uniform (248 = 4 * 62).
    let mut out = String::with_capacity(40);
    while out.len() < 40 {
        for b in bytes::<64>()? {
            if b < 248
                && out.len() < 40
                && let Some(c) = ALPHABET.get(usize::from(b % 62))
            {
                out.push(char::from(*c));
            }
        }
    }
    Ok(out)
}

/// A new opaque bearer token: `OSCM` + 64 hex characters (256 bits).
pub fn token() -> Result<String, DomainError> {
    Ok(format!("OSCM{}", hex::encode(bytes::<32>()?)))
}
