//! Writing PKCS#12 (`.p12`) files: a private key with its certificate chain, under a password.
//!
//! The layout is what OpenSSL 3 `openssl pkcs12 -export` writes by default, so that OpenSSL 3
//! and Java 17 `keytool` read it:
//!
//! - an `encryptedData` safe holding one `certBag` per certificate (leaf first), encrypted with
//!   PBES2 (PBKDF2-HMAC-SHA256, 2048 iterations, 8-byte salt; AES-256-CBC);
//! - a `data` safe holding a `pkcs8ShroudedKeyBag` (the PKCS#8 key encrypted the same way);
//! - a MAC over both: HMAC-SHA256 with its key from the PKCS#12 key derivation (RFC 7292
//!   appendix B, SHA-256, 2048 iterations, over the BMPString password).
//!
//! The leaf's certificate bag and the key bag carry the same `localKeyId` (the SHA-1 of the
//! leaf, as OpenSSL computes it) and `friendlyName`, which is how readers pair them into one
//! private-key entry. The DER is written by the small writer below: no second ASN.1 crate for
//! what is a fixed structure.

use aws_lc_rs::cipher::{
    AES_256, AES_CBC_IV_LEN, EncryptionContext, PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::{digest, hmac, pbkdf2};
use zeroize::{Zeroize, Zeroizing};

use crate::PkiError;

/// Iterations of both key derivations: OpenSSL's `PKCS12_DEFAULT_ITER`.
pub const ITERATIONS: u32 = 2048;
const SALT_LEN: usize = 8;
const PBKDF2_ITERATIONS: std::num::NonZeroU32 = match std::num::NonZeroU32::new(ITERATIONS) {
    Some(n) => n,
    None => std::num::NonZeroU32::MIN,
};

// Object identifiers, as DER content bytes.
const OID_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
const OID_ENCRYPTED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x06];
const OID_PKCS8_SHROUDED_KEY_BAG: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x02,
];
const OID_CERT_BAG: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x03,
];
const OID_X509_CERTIFICATE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x16, 0x01];
const OID_FRIENDLY_NAME: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x14];
const OID_LOCAL_KEY_ID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x15];
const OID_PBES2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d];
const OID_PBKDF2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c];
const OID_HMAC_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x09];
const OID_AES256_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a];
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];

/// What goes into a PKCS#12 file.
pub struct Pkcs12Input<'a> {
    /// The private key, PKCS#8 DER (as [`crate::PrivateKey::pkcs8_der`]).
    pub pkcs8_key: &'a [u8],
    /// The leaf certificate, DER.
    pub leaf_der: &'a [u8],
    /// The chain above the leaf, DER, nearest issuer first.
    pub chain_der: &'a [Vec<u8>],
    /// The entry's name (`friendlyName`; keytool's alias).
    pub friendly_name: &'a str,
}

/// Writes a PKCS#12 file (DER) protected by `password`, with fresh random salts and IVs.
pub fn write_pkcs12(input: &Pkcs12Input<'_>, password: &str) -> Result<Vec<u8>, PkiError> {
    let rng = SystemRandom::new();
    let mut fresh = |n: usize| -> Result<Vec<u8>, PkiError> {
        let mut out = vec![0u8; n];
        rng.fill(&mut out)
            .map_err(|_| PkiError::Crypto("random bytes"))?;
        Ok(out)
    };

    let local_key_id = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, input.leaf_der);
    let leaf_attributes = attributes(input.friendly_name, local_key_id.as_ref());

    // The certificates: leaf (with attributes), then the chain.
    let mut cert_bags = Vec::new();
    cert_bags.extend(cert_bag(input.leaf_der, Some(&leaf_attributes)));
    for der in input.chain_der {
        cert_bags.extend(cert_bag(der, None));
    }
    let cert_safe = sequence(&cert_bags);
    let (cert_alg, cert_ciphertext) = pbes2_encrypt(&cert_safe, password, &mut fresh)?;
    let encrypted_data = sequence(
        &[
            integer(0),
            sequence(
                &[
                    oid(OID_DATA),
                    cert_alg,
                    // [0] IMPLICIT OCTET STRING, primitive.
                    tlv(0x80, &cert_ciphertext),
                ]
                .concat(),
            ),
        ]
        .concat(),
    );
    let certs_info = content_info(OID_ENCRYPTED_DATA, &encrypted_data);

    // The key.
    let (key_alg, key_ciphertext) = pbes2_encrypt(input.pkcs8_key, password, &mut fresh)?;
    let shrouded = sequence(&[key_alg, octet_string(&key_ciphertext)].concat());
    let key_bag = sequence(
        &[
            oid(OID_PKCS8_SHROUDED_KEY_BAG),
            explicit(0, &shrouded),
            leaf_attributes,
        ]
        .concat(),
    );
    let key_safe = sequence(&key_bag);
    let key_info = content_info(OID_DATA, &octet_string(&key_safe));

    let auth_safe = sequence(&[certs_info, key_info].concat());

    // The MAC over the authenticated safe's content.
    let mac_salt = fresh(SALT_LEN)?;
    let mac_key = pkcs12_kdf_sha256(password, &mac_salt, 3, ITERATIONS);
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &mac_key[..]), &auth_safe);
    let mac_data = sequence(
        &[
            sequence(&[algorithm(OID_SHA256, &null()), octet_string(tag.as_ref())].concat()),
            octet_string(&mac_salt),
            integer(ITERATIONS),
        ]
        .concat(),
    );

    Ok(sequence(
        &[
            integer(3),
            content_info(OID_DATA, &octet_string(&auth_safe)),
            mac_data,
        ]
        .concat(),
    ))
}

/// `friendlyName` and `localKeyId` as a `SET OF Attribute`.
fn attributes(friendly_name: &str, local_key_id: &[u8]) -> Vec<u8> {
    let bmp: Vec<u8> = friendly_name
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    let name = sequence(&[oid(OID_FRIENDLY_NAME), set(&tlv(0x1e, &bmp))].concat());
    let id = sequence(&[oid(OID_LOCAL_KEY_ID), set(&octet_string(local_key_id))].concat());
    // DER orders a SET OF by its encodings.
    let (a, b) = if name <= id { (name, id) } else { (id, name) };
    set(&[a, b].concat())
}

fn cert_bag(der: &[u8], attributes: Option<&[u8]>) -> Vec<u8> {
    let bag = sequence(&[oid(OID_X509_CERTIFICATE), explicit(0, &octet_string(der))].concat());
    sequence(
        &[
            oid(OID_CERT_BAG),
            explicit(0, &bag),
            attributes.unwrap_or_default().to_vec(),
        ]
        .concat(),
    )
}

fn content_info(content_type: &[u8], content: &[u8]) -> Vec<u8> {
    sequence(&[oid(content_type), explicit(0, content)].concat())
}

/// Encrypts with PBES2 (PBKDF2-HMAC-SHA256 + AES-256-CBC); answers the AlgorithmIdentifier and
/// the ciphertext.
fn pbes2_encrypt(
    plaintext: &[u8],
    password: &str,
    fresh: &mut impl FnMut(usize) -> Result<Vec<u8>, PkiError>,
) -> Result<(Vec<u8>, Vec<u8>), PkiError> {
    let salt = fresh(SALT_LEN)?;
    let iv_bytes = fresh(AES_CBC_IV_LEN)?;
    let mut key = Zeroizing::new([0u8; 32]);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        PBKDF2_ITERATIONS,
        &salt,
        password.as_bytes(),
        &mut key[..],
    );
    let iv: [u8; AES_CBC_IV_LEN] = iv_bytes
        .as_slice()
        .try_into()
        .map_err(|_| PkiError::Crypto("IV length"))?;
    let cipher = UnboundCipherKey::new(&AES_256, &key[..])
        .and_then(PaddedBlockEncryptingKey::cbc_pkcs7)
        .map_err(|_| PkiError::Crypto("AES-256-CBC key"))?;
    let mut data = plaintext.to_vec();
    cipher
        .less_safe_encrypt(&mut data, EncryptionContext::Iv128(iv.into()))
        .map_err(|_| PkiError::Crypto("AES-256-CBC encryption"))?;

    let kdf_params = sequence(
        &[
            octet_string(&salt),
            integer(ITERATIONS),
            algorithm(OID_HMAC_SHA256, &null()),
        ]
        .concat(),
    );
    let params = sequence(
        &[
            algorithm(OID_PBKDF2, &kdf_params),
            algorithm(OID_AES256_CBC, &octet_string(&iv_bytes)),
        ]
        .concat(),
    );
    Ok((algorithm(OID_PBES2, &params), data))
}

/// The PKCS#12 key derivation (RFC 7292 appendix B.2) with SHA-256, for 32 bytes of key
/// (`id` 3: MAC key). The password is a BMPString with its two-byte terminator.
fn pkcs12_kdf_sha256(password: &str, salt: &[u8], id: u8, iterations: u32) -> Zeroizing<Vec<u8>> {
    const V: usize = 64; // SHA-256 block size
    let mut pass: Zeroizing<Vec<u8>> = Zeroizing::new(
        password
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .chain([0, 0])
            .collect(),
    );
    let fill = |src: &[u8]| -> Vec<u8> {
        if src.is_empty() {
            return Vec::new();
        }
        let len = V * src.len().div_ceil(V);
        src.iter().copied().cycle().take(len).collect()
    };
    let mut input = Zeroizing::new(vec![id; V]);
    input.extend(fill(salt));
    input.extend(fill(&pass));
    pass.zeroize();
    // 32 bytes of key = one hash output: one block A_1 is all that is needed.
    let mut a = digest::digest(&digest::SHA256, &input).as_ref().to_vec();
    for _ in 1..iterations {
        let next = digest::digest(&digest::SHA256, &a);
        a.zeroize();
        a = next.as_ref().to_vec();
    }
    Zeroizing::new(a)
}

// ---------------------------------------------------------------- a small DER writer

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

fn sequence(content: &[u8]) -> Vec<u8> {
    tlv(0x30, content)
}

fn set(content: &[u8]) -> Vec<u8> {
    tlv(0x31, content)
}

fn octet_string(content: &[u8]) -> Vec<u8> {
    tlv(0x04, content)
}

fn oid(content: &[u8]) -> Vec<u8> {
    tlv(0x06, content)
}

fn null() -> Vec<u8> {
    vec![0x05, 0x00]
}

fn explicit(number: u8, content: &[u8]) -> Vec<u8> {
    tlv(0xa0 | number, content)
}

fn algorithm(algorithm_oid: &[u8], params: &[u8]) -> Vec<u8> {
    sequence(&[oid(algorithm_oid), params.to_vec()].concat())
}

/// A non-negative INTEGER.
fn integer(value: u32) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes
        .iter()
        .take_while(|b| **b == 0)
        .count()
        .min(bytes.len() - 1);
    let mut content = bytes.get(skip..).unwrap_or_default().to_vec();
    if content.first().is_some_and(|b| b & 0x80 != 0) {
        content.insert(0, 0);
    }
    tlv(0x02, &content)
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::cipher::{DecryptionContext, PaddedBlockDecryptingKey};
    use x509_parser::der_parser::ber::BerObjectContent;
    use x509_parser::der_parser::der::parse_der;

    use super::*;
    use crate::test_util;

    #[test]
    fn der_lengths_and_integers() {
        assert_eq!(tlv(0x04, &[1, 2]), [0x04, 2, 1, 2]);
        let long = tlv(0x04, &[0; 200]);
        assert_eq!(long.get(..3), Some(&[0x04, 0x81, 200][..]));
        let longer = tlv(0x04, &[0; 300]);
        assert_eq!(longer.get(..4), Some(&[0x04, 0x82, 0x01, 0x2c][..]));
        assert_eq!(integer(0), [0x02, 1, 0]);
        assert_eq!(integer(3), [0x02, 1, 3]);
        assert_eq!(integer(128), [0x02, 2, 0, 128]);
        assert_eq!(integer(2048), [0x02, 2, 0x08, 0x00]);
    }

    /// RFC 7292 B.2 with SHA-256, spelled out step by step for one block (D = ID x 64, then the
    /// salt and the BMPString password each repeated to 64 bytes, hashed `iterations` times).
    /// OpenSSL's own KDF checks the same code in `openssl_reads_it_and_refuses_a_wrong_password`
    /// (it verifies the MAC).
    #[test]
    fn the_pkcs12_kdf_follows_its_definition() {
        let salt = [0x0a, 0x58, 0xcf, 0x64, 0x53, 0x0d, 0x82, 0x3f];
        let mut d = vec![3u8; 64];
        let s: Vec<u8> = salt.iter().copied().cycle().take(64).collect();
        let p_raw = [0, b's', 0, b'm', 0, b'e', 0, b'g', 0, 0];
        let p: Vec<u8> = p_raw.iter().copied().cycle().take(64).collect();
        d.extend(s);
        d.extend(p);
        let once = digest::digest(&digest::SHA256, &d);
        assert_eq!(&pkcs12_kdf_sha256("smeg", &salt, 3, 1)[..], once.as_ref());
        let twice = digest::digest(&digest::SHA256, once.as_ref());
        assert_eq!(&pkcs12_kdf_sha256("smeg", &salt, 3, 2)[..], twice.as_ref());
    }

    /// A key, its leaf and the intermediate that signed it (DER).
    fn sample() -> (crate::PrivateKey, Vec<u8>, Vec<u8>) {
        use crate::{DnsName, Issuer, KeyAlgorithm, LeafKey, LeafRequest, SubjectFields};
        let now = time::OffsetDateTime::now_utc();
        let ca = crate::generate_ca("P12", now).unwrap();
        let issuer = Issuer::from_pem(&ca.intermediate_cert_pem, &ca.intermediate_key).unwrap();
        let key = crate::PrivateKey::generate(KeyAlgorithm::EcP256).unwrap();
        let names = [DnsName::parse("www.shop.test").unwrap()];
        let leaf = issuer
            .issue(&LeafRequest {
                dns_names: &names,
                subject: SubjectFields::default(),
                not_before: now,
                not_after: now + time::Duration::days(30),
                public_key: LeafKey::Generated(&key),
            })
            .unwrap();
        let inter = crate::parse_certificate_pem(&ca.intermediate_cert_pem).unwrap();
        (key, leaf.der, inter.der)
    }

    #[test]
    fn the_key_bag_decrypts_to_the_key_and_the_mac_verifies() {
        let (key, leaf, ca) = sample();
        let chain = vec![ca];
        let p12 = write_pkcs12(
            &Pkcs12Input {
                pkcs8_key: key.pkcs8_der(),
                leaf_der: &leaf,
                chain_der: &chain,
                friendly_name: "www.shop.test",
            },
            "pa55 word",
        )
        .unwrap();
        let (rest, pfx) = parse_der(&p12).unwrap();
        assert!(rest.is_empty());
        let items = pfx.as_sequence().unwrap();
        assert_eq!(items[0].as_u32().unwrap(), 3);
        // authSafe: ContentInfo(data) -> [0] -> OCTET STRING
        let auth_info = items[1].as_sequence().unwrap();
        let BerObjectContent::Unknown(any) = &auth_info[1].content else {
            panic!("explicit tag expected")
        };
        let (_, octets) = parse_der(any.data).unwrap();
        let auth_safe = octets.as_slice().unwrap();
        // MAC
        let mac = items[2].as_sequence().unwrap();
        let digest_info = mac[0].as_sequence().unwrap();
        let tag = digest_info[1].as_slice().unwrap();
        let salt = mac[1].as_slice().unwrap();
        assert_eq!(mac[2].as_u32().unwrap(), ITERATIONS);
        let mac_key = pkcs12_kdf_sha256("pa55 word", salt, 3, ITERATIONS);
        hmac::verify(
            &hmac::Key::new(hmac::HMAC_SHA256, &mac_key[..]),
            auth_safe,
            tag,
        )
        .unwrap();
        let wrong = pkcs12_kdf_sha256("wrong", salt, 3, ITERATIONS);
        assert!(
            hmac::verify(
                &hmac::Key::new(hmac::HMAC_SHA256, &wrong[..]),
                auth_safe,
                tag
            )
            .is_err()
        );

        // The key safe: SafeContents -> SafeBag -> [0] EncryptedPrivateKeyInfo.
        let (_, safes) = parse_der(auth_safe).unwrap();
        let safes = safes.as_sequence().unwrap();
        assert_eq!(safes.len(), 2);
        let key_info = safes[1].as_sequence().unwrap();
        let BerObjectContent::Unknown(any) = &key_info[1].content else {
            panic!()
        };
        let (_, key_octets) = parse_der(any.data).unwrap();
        let (_, key_safe) = parse_der(key_octets.as_slice().unwrap()).unwrap();
        let bag = key_safe.as_sequence().unwrap()[0].as_sequence().unwrap();
        let BerObjectContent::Unknown(any) = &bag[1].content else {
            panic!()
        };
        let (_, epki) = parse_der(any.data).unwrap();
        let epki = epki.as_sequence().unwrap();
        let alg = epki[0].as_sequence().unwrap();
        let params = alg[1].as_sequence().unwrap();
        let kdf = params[0].as_sequence().unwrap()[1].as_sequence().unwrap();
        let salt = kdf[0].as_slice().unwrap();
        let iv = params[1].as_sequence().unwrap()[1].as_slice().unwrap();
        let mut k = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            std::num::NonZeroU32::new(ITERATIONS).unwrap(),
            salt,
            b"pa55 word",
            &mut k,
        );
        let dec = PaddedBlockDecryptingKey::cbc_pkcs7(UnboundCipherKey::new(&AES_256, &k).unwrap())
            .unwrap();
        let mut data = epki[1].as_slice().unwrap().to_vec();
        let iv: [u8; 16] = iv.try_into().unwrap();
        let plain = dec
            .decrypt(&mut data, DecryptionContext::Iv128(iv.into()))
            .unwrap();
        assert_eq!(plain, key.pkcs8_der());
    }

    /// OpenSSL 3 reads the file back with the password (certificate, chain and key), and
    /// refuses a wrong password.
    #[test]
    fn openssl_reads_it_and_refuses_a_wrong_password() {
        let (key, leaf, ca) = sample();
        let chain = vec![ca.clone()];
        let p12 = write_pkcs12(
            &Pkcs12Input {
                pkcs8_key: key.pkcs8_der(),
                leaf_der: &leaf,
                chain_der: &chain,
                friendly_name: "www.shop.test",
            },
            "s3cret",
        )
        .unwrap();
        let dir = test_util::TempDir::new("p12");
        let path = dir.write("x.p12", &p12);
        let path = path.to_str().unwrap();
        let out = test_util::openssl(&["pkcs12", "-in", path, "-passin", "pass:s3cret", "-nodes"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(text.matches("BEGIN CERTIFICATE").count(), 2, "{text}");
        assert!(text.contains("friendlyName: www.shop.test"), "{text}");
        assert!(text.contains("localKeyID:"), "{text}");
        let key_pem = pem::parse_many(text.as_bytes())
            .unwrap()
            .into_iter()
            .find(|p| p.tag() == "PRIVATE KEY")
            .unwrap();
        assert_eq!(key_pem.contents(), key.pkcs8_der());

        let out = test_util::openssl(&["pkcs12", "-in", path, "-passin", "pass:wrong", "-nodes"]);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .to_lowercase()
                .contains("mac verify"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
