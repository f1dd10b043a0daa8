//! The secret access key (SK).

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A secret access key (SK), wiped from memory on drop.
///
/// It has no `Display`, and its `Debug` output is redacted, so it cannot leak through a log line
/// or an error message by accident. Equality runs in constant time.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<String>);

impl SecretKey {
    /// Wraps an SK.
    pub fn new(sk: String) -> Self {
        Self(Zeroizing::new(sk))
    }

    /// The SK itself, for the few places that need its bytes (HMAC, storage).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for SecretKey {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let sk = SecretKey::new("SKtestSKtestSKtestSKtestSKtestSKtest0001".to_owned());
        assert_eq!(format!("{sk:?}"), "SecretKey(<redacted>)");
        assert_eq!(format!("{sk:#?}"), "SecretKey(<redacted>)");
        assert_eq!(sk.expose(), "SKtestSKtestSKtestSKtestSKtestSKtest0001");
    }

    #[test]
    fn equality() {
        let a = SecretKey::new("abc".to_owned());
        assert_eq!(a, SecretKey::new("abc".to_owned()));
        assert_ne!(a, SecretKey::new("abd".to_owned()));
        assert_ne!(a, SecretKey::new("abcd".to_owned()));
        assert_ne!(a, SecretKey::new(String::new()));
    }
}
