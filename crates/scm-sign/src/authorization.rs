//! The `Authorization` header.

use crate::{ALGORITHM, SignError};

/// A parsed `SDK-HMAC-SHA256` `Authorization` header value.
///
/// Borrowed from the header value, so parsing allocates only the list of names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization<'a> {
    /// The access key (AK) that identifies the secret key.
    pub access_key: &'a str,
    /// Lower-case names of the signed headers, in the order they were signed.
    pub signed_headers: Vec<&'a str>,
    /// The HMAC-SHA256 signature.
    pub signature: [u8; 32],
}

impl<'a> Authorization<'a> {
    /// Parses `SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<a;b;…>, Signature=<64 lower-case hex>`.
    ///
    /// The layout is the one the SDKs emit, matched strictly (the regular expression
    /// `^SDK-HMAC-SHA256 Access=([^,]+), SignedHeaders=([^,]+), Signature=([0-9a-f]+)$`): exactly
    /// one space after each comma, no other parameters. Every signed header name must be a
    /// non-empty, lower-case HTTP token; the list need not be sorted.
    ///
    /// Another scheme (such as `SDK-HMAC-SM3` or `Bearer`) gives
    /// [`SignError::UnsupportedAlgorithm`]; anything else that does not fit gives
    /// [`SignError::MalformedAuthorization`].
    pub fn parse(value: &'a str) -> Result<Self, SignError> {
        let (scheme, params) = value.split_once(' ').unwrap_or((value, ""));
        if scheme.is_empty() {
            return Err(SignError::MalformedAuthorization);
        }
        if scheme != ALGORITHM {
            return Err(SignError::UnsupportedAlgorithm);
        }

        let access = params
            .strip_prefix("Access=")
            .ok_or(SignError::MalformedAuthorization)?;
        let (access_key, rest) = next_param(access, " SignedHeaders=")?;
        let (signed_headers, rest) = next_param(rest, " Signature=")?;

        Ok(Self {
            access_key,
            signed_headers: signed_headers
                .split(';')
                .map(|name| match is_lower_case_token(name) {
                    true => Ok(name),
                    false => Err(SignError::MalformedAuthorization),
                })
                .collect::<Result<_, _>>()?,
            signature: parse_signature(rest)?,
        })
    }
}

/// Splits off a non-empty, comma-free parameter value, and checks that the next parameter
/// starts with `next` right after the comma.
fn next_param<'a>(s: &'a str, next: &str) -> Result<(&'a str, &'a str), SignError> {
    let (value, rest) = s.split_once(',').ok_or(SignError::MalformedAuthorization)?;
    if value.is_empty() {
        return Err(SignError::MalformedAuthorization);
    }
    let rest = rest
        .strip_prefix(next)
        .ok_or(SignError::MalformedAuthorization)?;
    Ok((value, rest))
}

/// Decodes exactly 64 lower-case hex digits.
fn parse_signature(hex: &str) -> Result<[u8; 32], SignError> {
    // `hex` also accepts upper case, which the SDKs never send.
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(SignError::MalformedAuthorization);
    }
    let mut signature = [0u8; 32];
    hex::decode_to_slice(hex, &mut signature).map_err(|_| SignError::MalformedAuthorization)?;
    Ok(signature)
}

/// Whether `name` is a non-empty RFC 9110 token without upper-case letters.
///
/// Restricting names to tokens keeps `:` and control characters out of the canonical request
/// and out of error messages.
fn is_lower_case_token(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "4f82e441ac568dcea36a4411fa20204cbcfaa0050876294ba76f341b70abda56";

    #[test]
    fn parses_sdk_header() {
        let value = format!(
            "SDK-HMAC-SHA256 Access=AKTESTAKTESTAKTEST01, SignedHeaders=content-type;host;user-agent;x-domain-id;x-sdk-date, Signature={SIG}"
        );
        let auth = Authorization::parse(&value).unwrap();
        assert_eq!(auth.access_key, "AKTESTAKTESTAKTEST01");
        assert_eq!(
            auth.signed_headers,
            [
                "content-type",
                "host",
                "user-agent",
                "x-domain-id",
                "x-sdk-date"
            ]
        );
        assert_eq!(hex::encode(auth.signature), SIG);
    }

    #[test]
    fn keeps_unsorted_order() {
        let value =
            format!("SDK-HMAC-SHA256 Access=AK, SignedHeaders=x-sdk-date;host, Signature={SIG}");
        let auth = Authorization::parse(&value).unwrap();
        assert_eq!(auth.signed_headers, ["x-sdk-date", "host"]);
    }

    #[test]
    fn other_schemes_are_unsupported() {
        for value in [
            format!("SDK-HMAC-SM3 Access=AK, SignedHeaders=host, Signature={SIG}"),
            format!("sdk-hmac-sha256 Access=AK, SignedHeaders=host, Signature={SIG}"),
            "V11-HMAC-SHA256 Credential=AK/20240102/cn-north-4/scm, SignedHeaders=host, Signature=00".to_owned(),
            "Bearer token".to_owned(),
            "Basic".to_owned(),
        ] {
            assert_eq!(
                Authorization::parse(&value),
                Err(SignError::UnsupportedAlgorithm),
                "{value:?}"
            );
        }
    }

    #[test]
    fn rejects_malformed_values() {
        let upper = SIG.to_ascii_uppercase();
        let short = &SIG[..62];
        let long = format!("{SIG}00");
        for value in [
            String::new(),
            " SDK-HMAC-SHA256 Access=AK".to_owned(),
            "SDK-HMAC-SHA256".to_owned(),
            "SDK-HMAC-SHA256 ".to_owned(),
            // Spacing other than exactly one space after each comma.
            format!("SDK-HMAC-SHA256 Access=AK,SignedHeaders=host, Signature={SIG}"),
            format!("SDK-HMAC-SHA256 Access=AK, SignedHeaders=host,Signature={SIG}"),
            format!("SDK-HMAC-SHA256 Access=AK,  SignedHeaders=host, Signature={SIG}"),
            format!("SDK-HMAC-SHA256  Access=AK, SignedHeaders=host, Signature={SIG}"),
            format!("SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature={SIG} "),
            format!("SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature={SIG}\n"),
            // Missing, empty, reordered or extra parameters.
            format!("SDK-HMAC-SHA256 SignedHeaders=host, Signature={SIG}"),
            format!("SDK-HMAC-SHA256 Access=, SignedHeaders=host, Signature={SIG}"),
            format!("SDK-HMAC-SHA256 Access=AK, SignedHeaders=, Signature={SIG}"),
            format!("SDK-HMAC-SHA256 Access=AK, Signature={SIG}"),
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=".to_owned(),
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host".to_owned(),
            format!("SDK-HMAC-SHA256 SignedHeaders=host, Access=AK, Signature={SIG}"),
            format!("SDK-HMAC-SHA256 Access=A,K, SignedHeaders=host, Signature={SIG}"),
            format!("SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature={SIG}, Extra=1"),
            // Bad signed-header names.
            format!("SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;;x-sdk-date, Signature={SIG}"),
            format!("SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;, Signature={SIG}"),
            format!("SDK-HMAC-SHA256 Access=AK, SignedHeaders=;host, Signature={SIG}"),
            format!("SDK-HMAC-SHA256 Access=AK, SignedHeaders=Host;x-sdk-date, Signature={SIG}"),
            format!("SDK-HMAC-SHA256 Access=AK, SignedHeaders=host; x-sdk-date, Signature={SIG}"),
            format!("SDK-HMAC-SHA256 Access=AK, SignedHeaders=ho:st, Signature={SIG}"),
            // Bad signatures.
            format!("SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature={upper}"),
            format!("SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature={short}"),
            format!("SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature={long}"),
            format!(
                "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature={}g",
                &SIG[..63]
            ),
        ] {
            assert_eq!(
                Authorization::parse(&value),
                Err(SignError::MalformedAuthorization),
                "{value:?}"
            );
        }
    }
}
