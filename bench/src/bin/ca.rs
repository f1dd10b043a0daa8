//! CA benchmark (moved here from a unit test of scm-pki): EC P-256 leaves signed by the built-in
//! CA per second, with and without generating each leaf's key, on one and on all cores, beside
//! raw aws-lc-rs P-256 signatures per second (the ceiling) measured in the same run.
//!
//! `cargo run --release -p openscm-bench --bin ca -- [--count N]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::Instant;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use scm_pki::{
    DnsName, Issuer, KeyAlgorithm, LeafKey, LeafRequest, PrivateKey, SubjectFields, generate_ca,
};
use time::{Duration, OffsetDateTime};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn issue(issuer: &Issuer, dns: &[DnsName], key: &PrivateKey) {
    let now = OffsetDateTime::now_utc();
    issuer
        .issue(&LeafRequest {
            dns_names: dns,
            subject: SubjectFields {
                organization: Some("Bench"),
                ..SubjectFields::default()
            },
            not_before: now,
            not_after: now + Duration::days(90),
            public_key: LeafKey::Generated(key),
        })
        .unwrap();
}

fn main() {
    let n: usize = arg("--count").and_then(|s| s.parse().ok()).unwrap_or(2000);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let ca = generate_ca("Bench", OffsetDateTime::now_utc()).unwrap();
    let issuer =
        Arc::new(Issuer::from_pem(&ca.intermediate_cert_pem, &ca.intermediate_key).unwrap());
    let dns: Vec<DnsName> = ["bench.test", "www.bench.test"]
        .iter()
        .map(|n| DnsName::parse(n).unwrap())
        .collect();
    let rate = |d: std::time::Duration| n as f64 / d.as_secs_f64();

    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let raw = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
    let start = Instant::now();
    for _ in 0..n {
        raw.sign(&rng, &[7u8; 600]).unwrap();
    }
    let ceiling = rate(start.elapsed());

    let key = PrivateKey::generate(KeyAlgorithm::EcP256).unwrap();
    let start = Instant::now();
    for _ in 0..n {
        issue(&issuer, &dns, &key);
    }
    let sign_only = rate(start.elapsed());

    let start = Instant::now();
    for _ in 0..n {
        issue(
            &issuer,
            &dns,
            &PrivateKey::generate(KeyAlgorithm::EcP256).unwrap(),
        );
    }
    let with_keygen = rate(start.elapsed());

    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..cores {
            let (issuer, dns) = (Arc::clone(&issuer), &dns);
            s.spawn(move || {
                for _ in 0..n / cores {
                    issue(
                        &issuer,
                        dns,
                        &PrivateKey::generate(KeyAlgorithm::EcP256).unwrap(),
                    );
                }
            });
        }
    });
    let all_cores = rate(start.elapsed());

    println!(
        "OpenSCM CA benchmark: EC P-256 leaves signed by the built-in CA per second ({n} leaves, \
         {cores} cores used), beside raw signatures; machine: {}",
        openscm_bench::machine()
    );
    println!("  ceiling: raw aws-lc-rs P-256 signatures, 1 core    {ceiling:>10.0} /s");
    println!(
        "  leaf signed (key given), 1 core                    {sign_only:>10.0} /s   {:>5.1}% of ceiling",
        100.0 * sign_only / ceiling
    );
    println!("  key generated + leaf signed, 1 core               {with_keygen:>10.0} /s");
    println!("  key generated + leaf signed, {cores} cores             {all_cores:>10.0} /s");
}
