//! Issuers: the built-in CA and ACME certificate authorities, and which of them each product
//! (brand) is issued by, in order of preference.

pub mod acme;
