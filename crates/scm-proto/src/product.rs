//! The product model: what a certificate was bought as (brand, type, domain type), spelled as the
//! API spells it. Parsing matches exactly after trimming surrounding spaces (the v2 page's own
//! example sends `"OV_SSL_CERT "`).

use std::fmt;

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $( $(#[$vdoc:meta])* $variant:ident = $wire:literal, )* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )*
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$(Self::$variant),*];

            /// The wire spelling.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)*
                }
            }

            /// Parses the wire spelling (surrounding spaces ignored).
            pub fn parse(s: &str) -> Option<Self> {
                let s = s.trim();
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }

            /// Every spelling, in declaration order (the `enum` of the OpenAPI schemas).
            pub fn wire_names() -> Vec<&'static str> {
                Self::ALL.iter().map(|v| v.as_str()).collect()
            }

            /// The spellings, comma-separated, for error messages.
            pub fn listed(values: &[Self]) -> String {
                values.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// Certificate brand (the CA the real service resells).
    Brand {
        /// GeoTrust.
        GeoTrust = "GEOTRUST",
        /// GlobalSign.
        GlobalSign = "GLOBALSIGN",
        /// Symantec (DigiCert).
        Symantec = "SYMANTEC",
        /// CFCA.
        Cfca = "CFCA",
        /// TrustAsia.
        TrustAsia = "TRUSTASIA",
        /// vTrus.
        Vtrus = "VTRUS",
    }
);

wire_enum!(
    /// Certificate type (validation level).
    CertType {
        /// Domain validated.
        DvSsl = "DV_SSL_CERT",
        /// Domain validated, basic.
        DvSslBasic = "DV_SSL_CERT_BASIC",
        /// Extended validation.
        EvSsl = "EV_SSL_CERT",
        /// Extended validation, pro.
        EvSslPro = "EV_SSL_CERT_PRO",
        /// Organisation validated.
        OvSsl = "OV_SSL_CERT",
        /// Organisation validated, pro.
        OvSslPro = "OV_SSL_CERT_PRO",
    }
);

impl CertType {
    /// The types the v2 purchase page offers.
    pub const V2: &'static [CertType] = &[Self::OvSsl, Self::EvSsl];

    /// Whether the organisation must be validated (the OV and EV products), so the application
    /// must name the company.
    pub const fn is_organisation_validated(self) -> bool {
        !matches!(self, Self::DvSsl | Self::DvSslBasic)
    }
}

wire_enum!(
    /// How many names a certificate carries, and of what kind.
    DomainType {
        /// One name, not a wildcard.
        Single = "SINGLE_DOMAIN",
        /// Several names.
        Multi = "MULTI_DOMAIN",
        /// One wildcard name.
        Wildcard = "WILDCARD",
    }
);

wire_enum!(
    /// Kind of the primary name of a multi-domain certificate.
    PrimaryDomainType {
        /// An ordinary name.
        Single = "SINGLE_DOMAIN",
        /// A wildcard name.
        Wildcard = "WILDCARD_DOMAIN",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for t in CertType::ALL {
            assert_eq!(CertType::parse(t.as_str()), Some(*t));
        }
        assert_eq!(CertType::parse("OV_SSL_CERT "), Some(CertType::OvSsl));
        assert_eq!(CertType::parse("ov_ssl_cert"), None);
        assert!(CertType::OvSslPro.is_organisation_validated());
        assert!(!CertType::DvSslBasic.is_organisation_validated());
        assert_eq!(Brand::parse("GLOBALSIGN"), Some(Brand::GlobalSign));
        assert_eq!(DomainType::parse("WILDCARD"), Some(DomainType::Wildcard));
        assert_eq!(
            PrimaryDomainType::parse("WILDCARD_DOMAIN"),
            Some(PrimaryDomainType::Wildcard)
        );
    }
}
