//! The certificate lifecycle after the order: proof of control of the names ([`validation`]),
//! the names a certificate may carry ([`names`]), the keys it is issued for ([`keys`]), and the
//! ports through which the domain checks the outside world ([`probes`]). Each job handler of
//! the lifecycle lives in the module that owns its state.

pub mod keys;
pub mod names;
pub mod probes;
