//! CA benchmark (moved here from a unit test of scm-pki): EC P-256 leaves signed by the built-in
//! CA per second, with and without generating each leaf's key, on one and on all cores, beside
//! raw aws-lc-rs P-256 signatures per second (the ceiling) measured in the same run.
//!
//! `cargo run --release -p openscm-bench --bin ca -- [--seconds S]` (default 8: a quarter of it for
//! each of the four figures, each counted over the time it was given)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use openscm_bench::arg;
use scm_pki::{
    DnsName, Issuer, KeyAlgorithm, LeafKey, LeafRequest, PrivateKey, SubjectFields, generate_ca,
};
use time::{Duration, OffsetDateTime};

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

/// Runs `f` on `threads` threads until `budget` is spent; returns how many times per second it
/// ran, all threads together.
fn per_second(budget: StdDuration, threads: usize, f: impl Fn() + Sync) -> f64 {
    let start = Instant::now();
    let done: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0usize;
                    while n == 0 || start.elapsed() < budget {
                        f();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    done as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let seconds: f64 = arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(8.0);
    let budget = StdDuration::from_secs_f64(seconds / 4.0);
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
    println!(
        "OpenSCM CA benchmark: EC P-256 leaves signed by the built-in CA per second ({seconds} s, \
         {cores} cores), beside raw aws-lc-rs signatures measured in the same run; machine: {}",
        openscm_bench::machine()
    );

    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let raw = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
    let ceiling = per_second(budget, 1, || {
        raw.sign(&rng, &[7u8; 600]).unwrap();
    });
    let key = PrivateKey::generate(KeyAlgorithm::EcP256).unwrap();
    let sign_only = per_second(budget, 1, || issue(&issuer, &dns, &key));
    let fresh = || {
        issue(
            &issuer,
            &dns,
            &PrivateKey::generate(KeyAlgorithm::EcP256).unwrap(),
        )
    };
    let with_keygen = per_second(budget, 1, fresh);
    let all_cores = per_second(budget, cores, fresh);

    println!("  ceiling: raw aws-lc-rs P-256 signatures, 1 core    {ceiling:>10.0} /s");
    println!(
        "  leaf signed (key given), 1 core                    {sign_only:>10.0} /s   {:>5.1}% of ceiling",
        100.0 * sign_only / ceiling
    );
    println!("  key generated + leaf signed, 1 core               {with_keygen:>10.0} /s");
    println!("  key generated + leaf signed, {cores} cores             {all_cores:>10.0} /s");
}
