//! Identifier newtypes. Each can only hold a well-formed value: parse with `TryFrom<&str>` /
//! `FromStr`, or build from random bytes or a timestamp.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed {kind}")]
pub struct IdError {
    /// Which identifier kind was expected.
    pub kind: &'static str,
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn hex32(bytes: [u8; 16]) -> String {
    let mut out = String::with_capacity(32);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                let check: fn(&str) -> bool = $check;
                if check(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(IdError { kind: $kind })
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                let check: fn(&str) -> bool = $check;
                if check(&s) {
                    Ok(Self(s))
                } else {
                    Err(IdError { kind: $kind })
                }
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::try_from(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

string_id!(
    /// Certificate id: `scs` followed by a 13-digit millisecond Unix timestamp, e.g. `scs1481110651012`.
    CertificateId,
    "certificate id",
    |s| s.len() == 16 && s.starts_with("scs") && s.bytes().skip(3).all(|b| b.is_ascii_digit())
);

impl CertificateId {
    /// The id for a millisecond timestamp; `None` outside the 13-digit range.
    pub fn from_millis(ms: u64) -> Option<Self> {
        if (1_000_000_000_000..=9_999_999_999_999).contains(&ms) {
            Some(Self(format!("scs{ms}")))
        } else {
            None
        }
    }

    /// The millisecond timestamp the id carries.
    pub fn millis(&self) -> u64 {
        self.0.get(3..).and_then(|d| d.parse().ok()).unwrap_or(0)
    }
}

string_id!(
    /// Order id: `CS` + `yyMMddHHmm` (UTC+8) + 5 upper-case alphanumerics, e.g. `CS1803192259ROA8U`.
    OrderId,
    "order id",
    |s| s.len() == 17
        && s.starts_with("CS")
        && s.bytes().skip(2).take(10).all(|b| b.is_ascii_digit())
        && s.bytes().skip(12).all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
);

impl OrderId {
    /// Builds an order id from its minute stamp (`yyMMddHHmm`, UTC+8) and five random bytes.
    pub fn new(minute_stamp: &str, random: [u8; 5]) -> Option<Self> {
        const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut s = String::with_capacity(17);
        s.push_str("CS");
        s.push_str(minute_stamp);
        for b in random {
            let idx = usize::from(b) % ALPHABET.len();
            s.push(char::from(*ALPHABET.get(idx)?));
        }
        Self::try_from(s.as_str()).ok()
    }
}

string_id!(
    /// Account (Huawei "domain") id: 32 lower-case hex characters.
    DomainId,
    "domain id",
    |s| s.len() == 32 && is_lower_hex(s)
);

impl DomainId {
    /// A new id from 16 random bytes.
    pub fn from_random(bytes: [u8; 16]) -> Self {
        Self(hex32(bytes))
    }
}

string_id!(
    /// Project id: 32 lower-case hex characters.
    ProjectId,
    "project id",
    |s| s.len() == 32 && is_lower_hex(s)
);

impl ProjectId {
    /// A new id from 16 random bytes.
    pub fn from_random(bytes: [u8; 16]) -> Self {
        Self(hex32(bytes))
    }
}

string_id!(
    /// Request id sent in `X-Request-Id`: 32 lower-case hex characters.
    RequestId,
    "request id",
    |s| s.len() == 32 && is_lower_hex(s)
);

impl RequestId {
    /// A new id from 16 random bytes.
    pub fn from_random(bytes: [u8; 16]) -> Self {
        Self(hex32(bytes))
    }
}

string_id!(
    /// Access key id (AK): 20 upper-case letters and digits, like Huawei's.
    AccessKeyId,
    "access key",
    |s| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
);

impl AccessKeyId {
    /// A new access key from 20 random bytes.
    pub fn from_random(bytes: [u8; 20]) -> Self {
        const ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let s = bytes
            .iter()
            .filter_map(|b| ALPHABET.get(usize::from(*b) % ALPHABET.len()))
            .map(|b| char::from(*b))
            .collect();
        Self(s)
    }
}

// --- csr ---
string_id!(
    /// CSR id (CreateCsr, UploadCsr, the `{id}` of the CSR routes): 32 lower-case hex characters,
    /// random (the reference documents UploadCsr's `id` as exactly 32 characters).
    CsrId,
    "CSR id",
    |s| s.len() == 32 && is_lower_hex(s)
);

impl CsrId {
    /// A new id from 16 random bytes.
    pub fn from_random(bytes: [u8; 16]) -> Self {
        Self(hex32(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_ids() {
        assert!(CertificateId::try_from("scs1481110651012").is_ok());
        assert!(CertificateId::try_from("scs148111065101").is_err());
        assert!(CertificateId::try_from("scs148111065101x").is_err());
        assert!(CertificateId::try_from("SCS1481110651012").is_err());
        let id = CertificateId::from_millis(1_481_110_651_012).unwrap();
        assert_eq!(id.as_str(), "scs1481110651012");
        assert_eq!(id.millis(), 1_481_110_651_012);
        assert!(CertificateId::from_millis(999).is_none());
    }

    #[test]
    fn order_ids() {
        assert!(OrderId::try_from("CS1803192259ROA8U").is_ok());
        assert!(OrderId::try_from("CS20052117270N7V9").is_ok());
        assert!(OrderId::try_from("CS1803192259roa8u").is_err());
        let id = OrderId::new("2611231530", [0, 1, 35, 36, 255]).unwrap();
        assert_eq!(id.as_str().len(), 17);
    }

    #[test]
    fn hex_ids() {
        let d = DomainId::from_random([0xab; 16]);
        assert_eq!(d.as_str(), "abababababababababababababababab");
        assert!(DomainId::try_from("ABABABABABABABABABABABABABABABAB").is_err());
        assert!(ProjectId::try_from("0123456789abcdef0123456789abcdef").is_ok());
        let ak = AccessKeyId::from_random([7; 20]);
        assert!(AccessKeyId::try_from(ak.as_str()).is_ok());
    }

    #[test]
    fn csr_ids() {
        let id = CsrId::from_random([0x0f; 16]);
        assert_eq!(id.as_str(), "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f");
        assert!(CsrId::try_from("0123456789abcdef0123456789abcdef").is_ok());
        assert!(CsrId::try_from("0123456789ABCDEF0123456789ABCDEF").is_err());
        assert!(CsrId::try_from("0123456789abcdef").is_err());
        assert!(CsrId::try_from("scs1700000000000").is_err());
    }
}
