//! Automatic `dns-01`: TXT records published and withdrawn by RFC 2136 dynamic updates signed
//! with TSIG (RFC 8945), the domain's [`scm_core::lifecycle::probes::TxtUpdate`].
//!
//! [`txt_updater`] checks an issuer's `dns01` table and reads its TSIG secret once, at start-up,
//! without contacting the server. Each [`TxtUpdate::add_txt`] / [`TxtUpdate::remove_txt`] is then
//! one signed UPDATE message over a fresh TCP connection to the configured primary:
//!
//! - **TCP only.** Updates are rare and small; TCP needs no truncation fallback and no UDP
//!   retransmission, and a server that is down is seen at once (connection refused) rather than
//!   after a timeout.
//! - **One record at a time.** Adding appends one TXT RR to the RRset (RFC 2136 §2.5.1: other
//!   values at the name stay, a duplicate is ignored by the server); removing deletes that RR by
//!   its data (§2.5.4: a record that is not there is ignored). No prerequisites.
//! - **Answers are checked.** A success must carry a TSIG that verifies with our key (and a time
//!   within the fudge of ours); refusals are reported with their RCODE and TSIG error.
//!
//! ```toml
//! [issuers.pebble]
//! dns01 = { kind = "rfc2136", server = "127.0.0.1:53", zone = "shop.test.",
//!           tsig_key_name = "openscm.", tsig_algorithm = "hmac-sha256",
//!           tsig_secret_file = "/etc/openscm/tsig.key" }
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use data_encoding::BASE64;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::xfer::FirstAnswer;
use hickory_net::{DnsStreamHandle, NetError};
use hickory_proto::op::{
    Message, MessageType, OpCode, ResponseCode, SerialMessage, update_message,
};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::{Name, RData, Record, RecordSet, TSigVerifier, TSigner};
use scm_core::lifecycle::probes::{ProbeError, TxtUpdate};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::fsutil;

/// An issuer's `dns01` table, e.g.
/// `dns01 = { kind = "rfc2136", server = "127.0.0.1:53", zone = "shop.test.",
/// tsig_key_name = "openscm.", tsig_algorithm = "hmac-sha256", tsig_secret_file = "/etc/openscm/tsig.key" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dns01Config {
    /// Only `rfc2136`.
    pub kind: String,
    /// The primary server that accepts updates, `address:port` (an IP address: no name is
    /// looked up to find where to send updates).
    pub server: String,
    /// The zone updated (with or without the trailing dot). Only names inside it are changed.
    pub zone: String,
    /// The TSIG key's name.
    pub tsig_key_name: String,
    /// `hmac-sha256` (default) or `hmac-sha512`.
    #[serde(default = "default_algorithm")]
    pub tsig_algorithm: String,
    /// A file holding the TSIG secret (base64, or a BIND `key { ... secret "..."; };` block),
    /// readable by its owner only.
    pub tsig_secret_file: String,
    /// The TTL of the TXT records added, in seconds. Default 60.
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// How long one update may take (connecting, sending, the answer), in seconds, 1 to 300.
    /// Default 10.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
}

fn default_algorithm() -> String {
    "hmac-sha256".into()
}

fn default_ttl() -> u32 {
    60
}

fn default_timeout_seconds() -> u64 {
    10
}

/// The only `kind` there is.
const KIND: &str = "rfc2136";

/// How far the server's clock may be from ours (RFC 8945 §10 recommends 300 s; BIND's default).
const FUDGE: u16 = 300;

/// The longest TTL (RFC 2181 §8).
const MAX_TTL: u32 = 0x7fff_ffff;

/// The longest update timeout accepted, in seconds.
const MAX_TIMEOUT_SECONDS: u64 = 300;

/// The longest character-string of a TXT record (RFC 1035 §3.3).
const MAX_TXT_STRING: usize = 255;

/// The [`TxtUpdate`] of `c`, for issuer `issuer` (named in error messages, as
/// `issuers "pebble": dns01.tsig_secret_file: ...`).
///
/// Checks the table (`kind`, an `address:port` server, names, algorithm, TTL, timeout) and reads
/// the TSIG secret from `tsig_secret_file` (refused when group or others may read it). The file
/// holds the base64 secret alone, or a BIND key block as `tsig-keygen` writes it, whose name must
/// be `tsig_key_name` and whose algorithm, if given, must be `tsig_algorithm`. The server is not
/// contacted. Errors never contain the secret.
pub fn txt_updater(c: &Dns01Config, issuer: &str) -> Result<Arc<dyn TxtUpdate>, String> {
    let err = |key: &str, message: String| format!("issuers {issuer:?}: dns01.{key}: {message}");
    if c.kind != KIND {
        return Err(err(
            "kind",
            format!("{:?} is not supported (only {KIND:?})", c.kind),
        ));
    }
    let server = parse_server(&c.server).map_err(|m| err("server", m))?;
    let zone = parse_name(&c.zone).map_err(|m| err("zone", m))?;
    let key_name = parse_name(&c.tsig_key_name).map_err(|m| err("tsig_key_name", m))?;
    let algorithm = parse_algorithm(&c.tsig_algorithm).map_err(|m| err("tsig_algorithm", m))?;
    if c.ttl > MAX_TTL {
        return Err(err("ttl", format!("{} is more than {MAX_TTL}", c.ttl)));
    }
    if c.timeout_seconds == 0 || c.timeout_seconds > MAX_TIMEOUT_SECONDS {
        return Err(err(
            "timeout_seconds",
            format!(
                "{} is not between 1 and {MAX_TIMEOUT_SECONDS}",
                c.timeout_seconds
            ),
        ));
    }
    let secret_err = |m: String| {
        err(
            "tsig_secret_file",
            format!("{}: {m}", Path::new(&c.tsig_secret_file).display()),
        )
    };
    let text = fsutil::read_secret_file(Path::new(&c.tsig_secret_file))
        .map_err(|e| err("tsig_secret_file", e.to_string()))?;
    let mut secret = parse_secret(&text, &key_name, &algorithm).map_err(secret_err)?;
    // hickory keeps the key in a plain Vec for the signer's lifetime (it is not wiped on drop);
    // ours is moved there, not copied.
    let signer = TSigner::new(
        std::mem::take(&mut *secret),
        algorithm.clone(),
        key_name,
        FUDGE,
    )
    .map_err(|e| err("tsig_algorithm", e.to_string()))?;
    Ok(Arc::new(Rfc2136Updater {
        server,
        zone,
        signer,
        algorithm: algorithm.to_string(),
        ttl: c.ttl,
        timeout: Duration::from_secs(c.timeout_seconds),
    }))
}

fn parse_server(text: &str) -> Result<SocketAddr, String> {
    let hint = "is not an address:port such as 127.0.0.1:53 or [::1]:53";
    let addr: SocketAddr = text.parse().map_err(|_| format!("{text:?} {hint}"))?;
    if addr.port() == 0 {
        return Err(format!("{text:?}: port 0"));
    }
    Ok(addr)
}

/// A domain name from configuration, absolute whether or not it ends with a dot.
fn parse_name(text: &str) -> Result<Name, String> {
    if text.trim().is_empty() || text.trim() != text {
        return Err(format!("{text:?} is not a domain name"));
    }
    let mut name = Name::from_ascii(text).map_err(|e| format!("{text:?}: {e}"))?;
    name.set_fqdn(true);
    Ok(name)
}

fn parse_algorithm(text: &str) -> Result<TsigAlgorithm, String> {
    match text.to_ascii_lowercase().as_str() {
        "hmac-sha256" => Ok(TsigAlgorithm::HmacSha256),
        "hmac-sha512" => Ok(TsigAlgorithm::HmacSha512),
        _ => Err(format!(
            "{text:?} is not supported (\"hmac-sha256\" or \"hmac-sha512\")"
        )),
    }
}

/// The secret of `key_name` from the text of a secret file: a bare base64 secret, or BIND key
/// blocks (`key "name" { algorithm hmac-sha256; secret "base64"; };`, with `#`, `//` or
/// `/* */` comments). Messages name keys and algorithms, never anything that may be the secret.
fn parse_secret(
    text: &str,
    key_name: &Name,
    algorithm: &TsigAlgorithm,
) -> Result<Zeroizing<Vec<u8>>, String> {
    if !text.contains('{') {
        // Base64 may be wrapped over lines.
        let mut compact = Zeroizing::new(String::with_capacity(text.len()));
        compact.extend(text.chars().filter(|c| !c.is_ascii_whitespace()));
        return decode_secret(&compact).map_err(|m| {
            format!(
                "{m}; expected the base64 secret alone, or a BIND key block \
                 (key \"{key_name}\" {{ algorithm {algorithm}; secret \"...\"; }};)"
            )
        });
    }
    let tokens = tokenize(text)?;
    let blocks = key_blocks(&tokens)?;
    let wanted = normalized(&key_name.to_string());
    let Some(block) = blocks.iter().find(|b| normalized(b.name) == wanted) else {
        let names: Vec<String> = blocks.iter().map(|b| format!("{:?}", b.name)).collect();
        return Err(format!(
            "no key named \"{key_name}\" (the file has {})",
            names.join(", ")
        ));
    };
    if let Some(found) = block.algorithm
        && parse_algorithm(found).ok().as_ref() != Some(algorithm)
    {
        return Err(format!(
            "key \"{key_name}\" is {found:?} in the file but dns01.tsig_algorithm is \
             \"{algorithm}\""
        ));
    }
    let secret = block
        .secret
        .ok_or_else(|| format!("key \"{key_name}\" has no `secret`"))?;
    decode_secret(secret).map_err(|m| format!("key \"{key_name}\": {m}"))
}

/// Key names compare without case and without the trailing dot.
fn normalized(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Base64 into an exactly sized buffer that is wiped on drop.
fn decode_secret(text: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let invalid =
        |kind: data_encoding::DecodeKind| format!("the secret is not valid base64 ({kind})");
    let len = BASE64.decode_len(text.len()).map_err(|e| invalid(e.kind))?;
    let mut out = Zeroizing::new(vec![0u8; len]);
    let written = BASE64
        .decode_mut(text.as_bytes(), &mut out)
        .map_err(|e| invalid(e.error.kind))?;
    out.truncate(written);
    if out.is_empty() {
        return Err("the secret is empty".into());
    }
    Ok(out)
}

/// A token of BIND's configuration syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a str),
    Quoted(&'a str),
    Open,
    Close,
    Semicolon,
}

fn tokenize(text: &str) -> Result<Vec<Token<'_>>, String> {
    let mut tokens = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        let Some(first) = rest.chars().next() else {
            return Ok(tokens);
        };
        let after_first = rest.get(first.len_utf8()..).unwrap_or_default();
        if first == '#' || rest.starts_with("//") {
            rest = rest
                .find('\n')
                .and_then(|i| rest.get(i..))
                .unwrap_or_default();
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").ok_or("a /* comment is not closed")?;
            rest = rest.get(end + 2..).unwrap_or_default();
        } else if first == '"' {
            let end = after_first
                .find('"')
                .ok_or("a quoted string is not closed")?;
            tokens.push(Token::Quoted(after_first.get(..end).unwrap_or_default()));
            rest = after_first.get(end + 1..).unwrap_or_default();
        } else if let Some(token) = match first {
            '{' => Some(Token::Open),
            '}' => Some(Token::Close),
            ';' => Some(Token::Semicolon),
            _ => None,
        } {
            tokens.push(token);
            rest = after_first;
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || "{};\"#".contains(c))
                .unwrap_or(rest.len());
            tokens.push(Token::Word(rest.get(..end).unwrap_or_default()));
            rest = rest.get(end..).unwrap_or_default();
        }
    }
}

/// One `key "name" { ... };` block.
#[derive(Debug)]
struct KeyBlock<'a> {
    name: &'a str,
    algorithm: Option<&'a str>,
    secret: Option<&'a str>,
}

fn key_blocks<'a>(tokens: &[Token<'a>]) -> Result<Vec<KeyBlock<'a>>, String> {
    let mut blocks = Vec::new();
    let mut it = tokens.iter().copied();
    let shape = "expected key blocks: key \"name\" { algorithm ...; secret \"...\"; };";
    while let Some(token) = it.next() {
        if !matches!(token, Token::Word(w) if w.eq_ignore_ascii_case("key")) {
            return Err(shape.into());
        }
        let name = match it.next() {
            Some(Token::Quoted(n) | Token::Word(n)) => n,
            _ => return Err(format!("`key` without a name; {shape}")),
        };
        if it.next() != Some(Token::Open) {
            return Err(format!("key {name:?} is not followed by `{{`"));
        }
        let mut block = KeyBlock {
            name,
            algorithm: None,
            secret: None,
        };
        loop {
            let keyword = match it.next() {
                Some(Token::Close) => break,
                Some(Token::Word(w)) => w.to_ascii_lowercase(),
                _ => return Err(format!("key {name:?} is not closed with `}};`")),
            };
            // The keyword is not echoed: a misplaced secret would be in its place.
            let slot = match keyword.as_str() {
                "algorithm" => &mut block.algorithm,
                "secret" => &mut block.secret,
                _ => {
                    return Err(format!(
                        "key {name:?} has a clause other than `algorithm` and `secret`"
                    ));
                }
            };
            let value = match it.next() {
                Some(Token::Quoted(v) | Token::Word(v)) => v,
                _ => return Err(format!("`{keyword}` of key {name:?} has no value")),
            };
            if it.next() != Some(Token::Semicolon) {
                return Err(format!("`{keyword}` of key {name:?} does not end with `;`"));
            }
            *slot = Some(value);
        }
        if it.next() != Some(Token::Semicolon) {
            return Err(format!("key {name:?} does not end with `}};`"));
        }
        blocks.push(block);
    }
    if blocks.is_empty() {
        return Err(shape.into());
    }
    Ok(blocks)
}

/// RFC 2136 updates of one zone on one primary, signed with one TSIG key.
struct Rfc2136Updater {
    server: SocketAddr,
    zone: Name,
    signer: TSigner,
    /// As configured, for messages.
    algorithm: String,
    ttl: u32,
    timeout: Duration,
}

impl fmt::Debug for Rfc2136Updater {
    // Not derived: the signer holds the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rfc2136Updater")
            .field("server", &self.server)
            .field("zone", &self.zone.to_string())
            .field("tsig_key_name", &self.signer.signer_name().to_string())
            .field("tsig_algorithm", &self.algorithm)
            .field("ttl", &self.ttl)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Why an update was not applied, before the context is added.
#[derive(Debug)]
struct Failure {
    detail: String,
    transient: bool,
}

impl Failure {
    fn permanent(detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            transient: false,
        }
    }

    fn transient(detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            transient: true,
        }
    }
}

#[async_trait]
impl TxtUpdate for Rfc2136Updater {
    async fn add_txt(&self, fqdn: &str, value: &str) -> Result<(), ProbeError> {
        let what = format!("adding TXT {value:?} at {fqdn}");
        let result = async {
            let name = self.name_in_zone(fqdn)?;
            let record = Record::from_rdata(name.clone(), self.ttl, RData::TXT(txt(value)));
            // Append (§2.5.1), no prerequisite: other values at the name stay.
            let message =
                update_message::append(RecordSet::from(record), self.zone.clone(), false, false);
            self.send(message, &name).await
        }
        .await;
        self.outcome(&what, result)
    }

    async fn remove_txt(&self, fqdn: &str, value: &str) -> Result<(), ProbeError> {
        let what = format!("removing TXT {value:?} at {fqdn}");
        let result = async {
            let name = self.name_in_zone(fqdn)?;
            let record = Record::from_rdata(name.clone(), 0, RData::TXT(txt(value)));
            // Delete by data (§2.5.4): only this value; absent is ignored by the server.
            let message =
                update_message::delete_by_rdata(RecordSet::from(record), self.zone.clone(), false);
            self.send(message, &name).await
        }
        .await;
        self.outcome(&what, result)
    }
}

/// The TXT data of `value`: one character-string, or several of at most 255 bytes each for a
/// longer value (readers concatenate them). The same value always gives the same data, so that
/// removing matches what adding wrote.
fn txt(value: &str) -> TXT {
    let mut strings = Vec::new();
    let mut current = String::new();
    for c in value.chars() {
        if current.len() + c.len_utf8() > MAX_TXT_STRING {
            strings.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    strings.push(current);
    TXT::new(strings)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl Rfc2136Updater {
    fn name_in_zone(&self, fqdn: &str) -> Result<Name, Failure> {
        let name = parse_name(fqdn).map_err(Failure::permanent)?;
        if !self.zone.zone_of(&name) {
            return Err(Failure::permanent(format!(
                "{name} is not inside zone {}, the only zone this issuer's dns01 updates",
                self.zone
            )));
        }
        Ok(name)
    }

    fn outcome(&self, what: &str, result: Result<(), Failure>) -> Result<(), ProbeError> {
        match result {
            Ok(()) => {
                tracing::debug!(server = %self.server, zone = %self.zone, "{what}: done");
                Ok(())
            }
            Err(failure) => Err(ProbeError {
                reason: format!(
                    "{what} (zone {}, server {}): {}",
                    self.zone, self.server, failure.detail
                ),
                transient: failure.transient,
            }),
        }
    }

    /// Signs `message`, sends it and judges the answer.
    async fn send(&self, mut message: Message, name: &Name) -> Result<(), Failure> {
        let verifier = message
            .finalize(&self.signer, unix_now())
            .map_err(|e| Failure::permanent(format!("cannot sign the update: {e}")))?;
        let bytes = message
            .to_vec()
            .map_err(|e| Failure::permanent(format!("cannot encode the update: {e}")))?;
        let answer = match tokio::time::timeout(self.timeout, self.exchange(bytes)).await {
            Ok(answer) => answer?,
            Err(_) => {
                return Err(Failure::transient(format!(
                    "no answer within {} s",
                    self.timeout.as_secs()
                )));
            }
        };
        let context = Context {
            key: self.signer.signer_name(),
            algorithm: &self.algorithm,
            zone: &self.zone,
            name,
        };
        judge(&answer, message.id, verifier, &context)
    }

    /// One message over a new TCP connection; the answer's bytes.
    async fn exchange(&self, bytes: Vec<u8>) -> Result<Vec<u8>, Failure> {
        let (connect, mut handle) = TcpClientStream::new(
            self.server,
            None,
            Some(self.timeout),
            TokioRuntimeProvider::new(),
        );
        let stream = connect
            .await
            .map_err(|e| Failure::transient(format!("cannot connect: {}", net_error(&e))))?;
        handle
            .send(SerialMessage::new(bytes, self.server))
            .map_err(|e| Failure::transient(format!("cannot send: {}", net_error(&e))))?;
        match stream.first_answer().await {
            Ok(answer) => Ok(answer.into_parts().0),
            // The stream ended without a message (hickory reports that as a timeout; the real
            // timeout is ours, around this).
            Err(NetError::Timeout) => Err(Failure::transient(
                "the server closed the connection without answering",
            )),
            Err(e) => Err(Failure::transient(format!("no answer: {}", net_error(&e)))),
        }
    }
}

fn net_error(e: &NetError) -> String {
    match e {
        NetError::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// What an answer is judged against.
struct Context<'a> {
    key: &'a Name,
    algorithm: &'a str,
    zone: &'a Name,
    name: &'a Name,
}

/// `Ok` when `answer` says the update was applied and is signed with our key; else why not, and
/// whether trying again later may help (SERVFAIL only: the rest needs the operator).
fn judge(
    answer: &[u8],
    request_id: u16,
    verifier: Option<TSigVerifier>,
    cx: &Context<'_>,
) -> Result<(), Failure> {
    let response = Message::from_vec(answer)
        .map_err(|e| Failure::permanent(format!("the answer is not a DNS message: {e}")))?;
    if response.id != request_id
        || response.message_type != MessageType::Response
        || response.op_code != OpCode::Update
    {
        return Err(Failure::permanent(
            "the answer is not the answer to this update",
        ));
    }
    let tsig_error = response.signature().and_then(|s| s.data.error);
    let key = cx.key;
    match (response.response_code, tsig_error) {
        (ResponseCode::NoError, None) => {
            // Unsigned, or signed with another key, is not a success we can believe.
            let Some(mut verifier) = verifier else {
                return Err(Failure::permanent("the update was not signed"));
            };
            verifier.verify(answer).map(|_| ()).map_err(|e| {
                Failure::permanent(format!(
                    "the server said NOERROR but its answer's TSIG does not verify with key \
                     {key} ({e})"
                ))
            })
        }
        (ResponseCode::ServFail, None) => Err(Failure::transient(
            "SERVFAIL: the server failed to apply the update",
        )),
        (code, Some(TsigError::BadSig)) => Err(Failure::permanent(format!(
            "{}/BADSIG: the server refused the TSIG signature of key {key} (the secret in \
             dns01.tsig_secret_file is not the server's)",
            rcode_name(code)
        ))),
        (code, Some(TsigError::BadKey)) => Err(Failure::permanent(format!(
            "{}/BADKEY: the server does not know TSIG key {key} with algorithm {}",
            rcode_name(code),
            cx.algorithm
        ))),
        (code, Some(TsigError::BadTime)) => Err(Failure::permanent(format!(
            "{}/BADTIME: the server's clock and ours differ by more than {FUDGE} s (TSIG)",
            rcode_name(code)
        ))),
        (code, Some(other)) => Err(Failure::permanent(format!(
            "{}: TSIG error {}",
            rcode_name(code),
            u16::from(other)
        ))),
        (ResponseCode::NotAuth, None) => Err(Failure::permanent(format!(
            "NOTAUTH: the server is not authoritative for zone {} (or is not its primary)",
            cx.zone
        ))),
        (ResponseCode::Refused, None) => Err(Failure::permanent(format!(
            "REFUSED: key {key} may not change TXT at {} (see the zone's update-policy or \
             allow-update)",
            cx.name
        ))),
        (ResponseCode::NotZone, None) => Err(Failure::permanent(format!(
            "NOTZONE: {} is not in zone {} on the server",
            cx.name, cx.zone
        ))),
        (code, None) => Err(Failure::permanent(format!(
            "the server answered {}",
            rcode_name(code)
        ))),
    }
}

/// The mnemonic of an RCODE, as `dig` and the RFCs write it.
fn rcode_name(code: ResponseCode) -> String {
    use ResponseCode::*;
    let name = match code {
        NoError => "NOERROR",
        FormErr => "FORMERR",
        ServFail => "SERVFAIL",
        NXDomain => "NXDOMAIN",
        NotImp => "NOTIMP",
        Refused => "REFUSED",
        YXDomain => "YXDOMAIN",
        YXRRSet => "YXRRSET",
        NXRRSet => "NXRRSET",
        NotAuth => "NOTAUTH",
        NotZone => "NOTZONE",
        BADVERS => "BADVERS",
        BADSIG => "BADSIG",
        BADKEY => "BADKEY",
        BADTIME => "BADTIME",
        BADMODE => "BADMODE",
        BADNAME => "BADNAME",
        BADALG => "BADALG",
        BADTRUNC => "BADTRUNC",
        BADCOOKIE => "BADCOOKIE",
        Unknown(n) => return format!("RCODE {n}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    use hickory_proto::rr::rdata::tsig::{TSIG, make_tsig_record};

    use super::*;

    /// A secret as `tsig-keygen -a hmac-sha256` writes it (32 random bytes).
    const SECRET: &str = "4wq8Xf0ZpS8vWm2Bqg3c2m6Yb3tq0m6cT5xgK3c8h2Y=";

    fn key() -> Name {
        parse_name("openscm.").unwrap()
    }

    fn secret(text: &str) -> Result<Vec<u8>, String> {
        parse_secret(text, &key(), &TsigAlgorithm::HmacSha256).map(|s| s.to_vec())
    }

    fn decoded() -> Vec<u8> {
        decode_secret(SECRET).unwrap().to_vec()
    }

    #[test]
    fn a_bare_secret_may_be_wrapped_over_lines() {
        assert_eq!(secret(SECRET).unwrap(), decoded());
        assert_eq!(secret(&format!("{SECRET}\n")).unwrap(), decoded());
        let (a, b) = SECRET.split_at(20);
        assert_eq!(secret(&format!("  {a}\n{b}\n")).unwrap(), decoded());
        assert_eq!(decoded().len(), 32);
    }

    #[test]
    fn a_bind_key_block_as_tsig_keygen_writes_it_is_read() {
        let text =
            format!("key \"openscm.\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\";\n}};\n");
        assert_eq!(secret(&text).unwrap(), decoded());
        // The name without its dot, other case, comments, several keys, no algorithm line.
        let text = format!(
            "# made by hand\nkey other. {{ secret \"AAAA\"; }};\n/* ours: */ key \"OpenSCM\" {{ \
             // the secret\n secret \"{SECRET}\"; }};"
        );
        assert_eq!(secret(&text).unwrap(), decoded());
    }

    #[test]
    fn a_key_file_for_another_key_or_algorithm_is_refused_naming_both() {
        let text = format!("key \"other.\" {{ algorithm hmac-sha256; secret \"{SECRET}\"; }};");
        let e = secret(&text).unwrap_err();
        assert!(
            e.contains("no key named \"openscm.\"") && e.contains("\"other.\""),
            "{e}"
        );
        let text = format!("key \"openscm.\" {{ algorithm hmac-sha512; secret \"{SECRET}\"; }};");
        let e = secret(&text).unwrap_err();
        assert!(
            e.contains("\"hmac-sha512\"") && e.contains("\"hmac-sha256\""),
            "{e}"
        );
        let e = secret("key \"openscm.\" { algorithm hmac-sha256; };").unwrap_err();
        assert!(e.contains("no `secret`"), "{e}");
    }

    #[test]
    fn malformed_secrets_are_refused_without_showing_them() {
        for text in [
            "not base64!".to_owned(),
            format!("{SECRET}x"),
            "".to_owned(),
            format!("key \"openscm.\" {{ secret \"{SECRET}!!\"; }};"),
            format!("key \"openscm.\" {{ {SECRET}; }};"),
            format!("key \"openscm.\" {{ secret \"{SECRET}\" }};"),
            format!("key \"openscm.\" {{ secret \"{SECRET}\";"),
            format!("key \"openscm.\" {{ secret \"{SECRET}; }};"),
            format!("{SECRET} {{"),
        ] {
            let e = secret(&text).unwrap_err();
            assert!(!e.contains(&SECRET[..10]), "{text:?} -> {e}");
        }
        assert!(
            secret("not base64!")
                .unwrap_err()
                .contains("not valid base64")
        );
        assert!(secret("").unwrap_err().contains("empty"));
    }

    fn config(secret_file: &Path) -> Dns01Config {
        Dns01Config {
            kind: "rfc2136".into(),
            server: "127.0.0.1:53".into(),
            zone: "shop.test.".into(),
            tsig_key_name: "openscm.".into(),
            tsig_algorithm: default_algorithm(),
            tsig_secret_file: secret_file.display().to_string(),
            ttl: default_ttl(),
            timeout_seconds: default_timeout_seconds(),
        }
    }

    fn secret_file(dir: &tempfile::TempDir, text: &str, mode: u32) -> std::path::PathBuf {
        let path = dir.path().join("tsig.key");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn the_toml_table_and_its_defaults() {
        let c: Dns01Config = toml::from_str(
            "kind = \"rfc2136\"\nserver = \"127.0.0.1:53\"\nzone = \"shop.test.\"\n\
             tsig_key_name = \"openscm.\"\ntsig_secret_file = \"/etc/openscm/tsig.key\"\n",
        )
        .unwrap();
        assert_eq!(c.tsig_algorithm, "hmac-sha256");
        assert_eq!((c.ttl, c.timeout_seconds), (60, 10));
        let e = toml::from_str::<Dns01Config>("kind = \"rfc2136\"\nsecret = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }

    #[test]
    fn a_good_table_gives_an_updater_that_shows_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(&secret_file(&dir, SECRET, 0o600));
        let updater = txt_updater(&c, "pebble").unwrap();
        let shown = format!("{updater:?}");
        assert!(
            shown.contains("openscm.") && shown.contains("127.0.0.1:53"),
            "{shown}"
        );
        assert!(!shown.contains(&SECRET[..10]), "{shown}");
        let c = Dns01Config {
            tsig_algorithm: "HMAC-SHA512".into(),
            zone: "shop.test".into(),
            server: "[::1]:5353".into(),
            ..c
        };
        txt_updater(&c, "pebble").unwrap();
    }

    #[test]
    fn bad_tables_are_refused_naming_the_issuer_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let good = config(&secret_file(&dir, SECRET, 0o600));
        let cases: Vec<(Dns01Config, &str, &str)> = vec![
            (
                Dns01Config {
                    kind: "route53".into(),
                    ..good.clone()
                },
                "dns01.kind",
                "\"route53\"",
            ),
            (
                Dns01Config {
                    server: "ns1.shop.test:53".into(),
                    ..good.clone()
                },
                "dns01.server",
                "address:port",
            ),
            (
                Dns01Config {
                    server: "127.0.0.1".into(),
                    ..good.clone()
                },
                "dns01.server",
                "address:port",
            ),
            (
                Dns01Config {
                    server: "127.0.0.1:0".into(),
                    ..good.clone()
                },
                "dns01.server",
                "port 0",
            ),
            (
                Dns01Config {
                    zone: "".into(),
                    ..good.clone()
                },
                "dns01.zone",
                "not a domain name",
            ),
            (
                Dns01Config {
                    zone: "a..b".into(),
                    ..good.clone()
                },
                "dns01.zone",
                "a..b",
            ),
            (
                Dns01Config {
                    tsig_key_name: " ".into(),
                    ..good.clone()
                },
                "dns01.tsig_key_name",
                "not a domain name",
            ),
            (
                Dns01Config {
                    tsig_algorithm: "hmac-md5".into(),
                    ..good.clone()
                },
                "dns01.tsig_algorithm",
                "\"hmac-md5\"",
            ),
            (
                Dns01Config {
                    ttl: u32::MAX,
                    ..good.clone()
                },
                "dns01.ttl",
                "more than",
            ),
            (
                Dns01Config {
                    timeout_seconds: 0,
                    ..good.clone()
                },
                "dns01.timeout_seconds",
                "between 1 and 300",
            ),
            (
                Dns01Config {
                    tsig_secret_file: "/nonexistent/tsig.key".into(),
                    ..good.clone()
                },
                "dns01.tsig_secret_file",
                "/nonexistent/tsig.key",
            ),
        ];
        for (c, key, detail) in cases {
            let e = txt_updater(&c, "pebble").unwrap_err();
            assert!(
                e.starts_with(&format!("issuers \"pebble\": {key}: ")),
                "{e}"
            );
            assert!(e.contains(detail), "{e}");
        }
        let open = config(&secret_file(&dir, SECRET, 0o644));
        let e = txt_updater(&open, "pebble").unwrap_err();
        assert!(
            e.starts_with("issuers \"pebble\": dns01.tsig_secret_file: "),
            "{e}"
        );
        assert!(e.contains("chmod 600"), "{e}");
        let bad = config(&secret_file(&dir, "c2VjcmV0!", 0o600));
        let e = txt_updater(&bad, "pebble").unwrap_err();
        assert!(
            e.contains("dns01.tsig_secret_file") && e.contains("not valid base64"),
            "{e}"
        );
    }

    #[test]
    fn long_values_are_split_into_strings_of_at_most_255_bytes() {
        let value = "a".repeat(600);
        let data = txt(&value);
        let lens: Vec<usize> = data.txt_data.iter().map(|s| s.len()).collect();
        assert_eq!(lens, [255, 255, 90]);
        assert_eq!(txt("").txt_data.len(), 1);
        assert_eq!(txt("v").txt_data.len(), 1);
    }

    fn answer(code: ResponseCode, tsig_error: Option<TsigError>) -> (Vec<u8>, u16) {
        let mut m = Message::error_msg(4242, OpCode::Update, code);
        if tsig_error.is_some() {
            let tsig = TSIG::new(
                TsigAlgorithm::HmacSha256,
                unix_now(),
                FUDGE,
                Vec::new(),
                4242,
                tsig_error,
                Vec::new(),
            );
            m.set_signature(Box::new(make_tsig_record(key(), tsig)));
        }
        (m.to_vec().unwrap(), 4242)
    }

    fn judged(code: ResponseCode, tsig_error: Option<TsigError>) -> Failure {
        let (bytes, id) = answer(code, tsig_error);
        let zone = parse_name("shop.test.").unwrap();
        let name = parse_name("_acme-challenge.www.shop.test").unwrap();
        let cx = Context {
            key: &key(),
            algorithm: "hmac-sha256",
            zone: &zone,
            name: &name,
        };
        judge(&bytes, id, None, &cx).unwrap_err()
    }

    #[test]
    fn answers_are_classified_servfail_alone_being_transient() {
        let f = judged(ResponseCode::ServFail, None);
        assert!(f.transient && f.detail.contains("SERVFAIL"), "{f:?}");
        for (code, tsig, words) in [
            (
                ResponseCode::NotAuth,
                Some(TsigError::BadSig),
                ["NOTAUTH/BADSIG", "openscm."],
            ),
            (
                ResponseCode::NotAuth,
                Some(TsigError::BadKey),
                ["NOTAUTH/BADKEY", "openscm. with algorithm hmac-sha256"],
            ),
            (
                ResponseCode::NotAuth,
                Some(TsigError::BadTime),
                ["NOTAUTH/BADTIME", "clock"],
            ),
            (ResponseCode::NotAuth, None, ["NOTAUTH", "shop.test."]),
            (
                ResponseCode::Refused,
                None,
                ["REFUSED", "_acme-challenge.www.shop.test."],
            ),
            (ResponseCode::NotZone, None, ["NOTZONE", "shop.test."]),
            (ResponseCode::FormErr, None, ["FORMERR", "answered"]),
            // Unsigned success: not believed.
            (ResponseCode::NoError, None, ["not signed", ""]),
        ] {
            let f = judged(code, tsig);
            assert!(!f.transient, "{f:?}");
            for w in words {
                assert!(f.detail.contains(w), "{code:?} {tsig:?}: {f:?}");
            }
        }
        // Another message's answer.
        let (bytes, _) = answer(ResponseCode::NoError, None);
        let zone = parse_name("shop.test.").unwrap();
        let cx = Context {
            key: &key(),
            algorithm: "hmac-sha256",
            zone: &zone,
            name: &zone,
        };
        let f = judge(&bytes, 1, None, &cx).unwrap_err();
        assert!(f.detail.contains("not the answer"), "{f:?}");
        let f = judge(b"\x00\x01", 1, None, &cx).unwrap_err();
        assert!(
            !f.transient && f.detail.contains("not a DNS message"),
            "{f:?}"
        );
    }

    #[tokio::test]
    async fn names_outside_the_zone_are_refused_without_asking_the_server() {
        let dir = tempfile::tempdir().unwrap();
        // Nothing listens on this port; an attempt would fail differently.
        let c = Dns01Config {
            server: "127.0.0.1:9".into(),
            ..config(&secret_file(&dir, SECRET, 0o600))
        };
        let updater = txt_updater(&c, "pebble").unwrap();
        for name in [
            "_acme-challenge.www.shop.example",
            "test",
            "shop.test.evil",
            "a..b.shop.test",
        ] {
            let e = updater.add_txt(name, "v").await.unwrap_err();
            assert!(!e.transient, "{e:?}");
            assert!(!e.reason.contains("connect"), "{e}");
            let e = updater.remove_txt(name, "v").await.unwrap_err();
            assert!(!e.transient, "{e:?}");
        }
        let e = updater.add_txt("www.shop.example", "v").await.unwrap_err();
        assert!(e.reason.contains("not inside zone shop.test."), "{e}");
    }
}
