//! Automatic dns-01 ([`scm_outbound::dns::update::txt_updater`]) against a real BIND 9: each
//! test starts its own `named` ([`Named`], Debian `bind9`) on a free loopback port, serving
//! `shop.test.` with keys made by `tsig-keygen` (Debian `bind9-utils`): `openscm.` (hmac-sha256)
//! and `openscm512.` (hmac-sha512) may change TXT records anywhere in the zone, `intruder.` is
//! known but granted nothing. What the updates did is read back with our
//! [`scm_outbound::dns::TxtResolver`], and the TTL with `dig` (Debian `dnsutils`). A missing
//! program fails the test.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, OpCode, ResponseCode};
use scm_core::lifecycle::probes::{TxtLookup, TxtUpdate};
use scm_outbound::dns::update::{Dns01Config, txt_updater};
use scm_outbound::dns::{TxtResolver, TxtResolverConfig};
use scm_outbound::http::EgressPolicy;

use crate::support::named::Named;
use crate::support::require_binary;

/// A key made by `tsig-keygen`: its file as the tool wrote it, and the bare secret.
struct Key {
    name: &'static str,
    algorithm: &'static str,
    block: String,
    secret: String,
}

fn keygen(name: &'static str, algorithm: &'static str) -> Key {
    let out = Command::new(require_binary("tsig-keygen", "bind9-utils"))
        .args(["-a", algorithm, name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tsig-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let block = String::from_utf8(out.stdout).unwrap();
    let secret = block
        .split("secret \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no secret in tsig-keygen's output:\n{block}"))
        .to_owned();
    Key {
        name,
        algorithm,
        block,
        secret,
    }
}

const ZONE: &str = "$TTL 300\n\
    @   IN SOA ns.shop.test. hostmaster.shop.test. 1 3600 600 86400 60\n\
    @   IN NS  ns.shop.test.\n\
    ns  IN A   127.0.0.1\n";

/// A `named` ([`Named`]) serving `shop.test.` with three TSIG keys, two of them granted TXT
/// records anywhere in the zone; killed when dropped.
struct TsigNamed {
    server: Named,
    addr: SocketAddr,
    /// `openscm.` (hmac-sha256), granted TXT in the zone.
    sha256: Key,
    /// `openscm512.` (hmac-sha512), granted TXT in the zone.
    sha512: Key,
    /// `intruder.` (hmac-sha256), known to the server but granted nothing.
    intruder: Key,
}

impl TsigNamed {
    async fn start() -> Self {
        let sha256 = keygen("openscm.", "hmac-sha256");
        let sha512 = keygen("openscm512.", "hmac-sha512");
        let intruder = keygen("intruder.", "hmac-sha256");
        let keys = [&sha256, &sha512, &intruder]
            .map(|k| k.block.as_str())
            .concat();
        let server = Named::start_with(
            &[("shop.test", ZONE)],
            &keys,
            "update-policy { grant openscm. zonesub TXT; grant openscm512. zonesub TXT; };",
        )
        .await;
        Self {
            addr: server.addr,
            server,
            sha256,
            sha512,
            intruder,
        }
    }

    /// A secret file (mode 0600) in the server's directory.
    fn secret_file(&self, file: &str, text: &str) -> PathBuf {
        let path = self.server.dir().join(file);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// The `dns01` table of `key`, its secret given bare.
    fn config(&self, key: &Key) -> Dns01Config {
        let file = self.secret_file(&format!("{}secret", key.name), &format!("{}\n", key.secret));
        Dns01Config {
            kind: "rfc2136".into(),
            server: self.addr.to_string(),
            zone: "shop.test.".into(),
            tsig_key_name: key.name.into(),
            tsig_algorithm: key.algorithm.into(),
            tsig_secret_file: file.display().to_string(),
            ttl: 60,
            timeout_seconds: 5,
        }
    }

    fn updater(&self, config: &Dns01Config) -> Arc<dyn TxtUpdate> {
        txt_updater(config, "pebble").unwrap()
    }

    /// The TTLs and values of the TXT records at `name`, as `dig` shows them.
    fn dig(&self, name: &str) -> Vec<(u32, String)> {
        let out = Command::new(require_binary("dig", "dnsutils"))
            .args(["+noall", "+answer", "+norecurse", "-p"])
            .arg(self.addr.port().to_string())
            .arg(format!("@{}", self.addr.ip()))
            .args([name, "TXT"])
            .output()
            .unwrap();
        assert!(out.status.success(), "dig: {out:?}");
        let mut records: Vec<(u32, String)> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields[1].parse().unwrap(), fields[4..].join(" "))
            })
            .collect();
        records.sort();
        records
    }
}

fn resolver(addr: SocketAddr) -> TxtResolver {
    let config = TxtResolverConfig {
        nameservers: vec![addr],
        timeout: Duration::from_millis(500),
        ..TxtResolverConfig::default()
    };
    TxtResolver::new(&config, &EgressPolicy::default()).unwrap()
}

async fn txt(named: &TsigNamed, name: &str) -> Vec<String> {
    let mut values = resolver(named.addr).txt(name).await.unwrap();
    values.sort();
    values
}

const NONE: Vec<String> = Vec::new();

#[tokio::test]
async fn values_are_added_beside_each_other_and_removed_one_by_one() {
    let named = TsigNamed::start().await;
    let updater = named.updater(&named.config(&named.sha256));
    let name = "_acme-challenge.www.shop.test";
    assert_eq!(txt(&named, name).await, NONE);

    updater.add_txt(name, "first").await.unwrap();
    assert_eq!(txt(&named, name).await, ["first"]);
    // The default TTL, as the server holds it.
    assert_eq!(named.dig(name), [(60, "\"first\"".to_owned())]);

    // Two authorizations of one name pending at once; adding one again changes nothing; a
    // trailing dot names the same record.
    updater
        .add_txt(&format!("{name}."), "second")
        .await
        .unwrap();
    updater.add_txt(name, "first").await.unwrap();
    assert_eq!(txt(&named, name).await, ["first", "second"]);

    updater.remove_txt(name, "first").await.unwrap();
    assert_eq!(txt(&named, name).await, ["second"]);
    // Absent: not an error, and the other value stays.
    updater.remove_txt(name, "first").await.unwrap();
    updater
        .remove_txt("_acme-challenge.never.shop.test", "x")
        .await
        .unwrap();
    assert_eq!(txt(&named, name).await, ["second"]);

    updater.remove_txt(name, "second").await.unwrap();
    assert_eq!(txt(&named, name).await, NONE);

    // The zone apex is inside the zone too.
    updater.add_txt("shop.test", "apex").await.unwrap();
    assert_eq!(txt(&named, "shop.test").await, ["apex"]);
}

#[tokio::test]
async fn an_hmac_sha512_key_is_read_from_the_file_tsig_keygen_wrote() {
    let named = TsigNamed::start().await;
    let key_file = named.secret_file("openscm512.key", &named.sha512.block);
    let config = Dns01Config {
        tsig_secret_file: key_file.display().to_string(),
        ttl: 120,
        ..named.config(&named.sha512)
    };
    let updater = named.updater(&config);
    let name = "_acme-challenge.api.shop.test";
    updater.add_txt(name, "from-a-key-file").await.unwrap();
    assert_eq!(named.dig(name), [(120, "\"from-a-key-file\"".to_owned())]);
    updater.remove_txt(name, "from-a-key-file").await.unwrap();
    assert_eq!(txt(&named, name).await, NONE);

    // The same file for the hmac-sha256 key: refused at build, naming both.
    let wrong = Dns01Config {
        tsig_key_name: "openscm.".into(),
        ..config
    };
    let e = txt_updater(&wrong, "pebble").unwrap_err();
    assert!(
        e.starts_with("issuers \"pebble\": dns01.tsig_secret_file: ")
            && e.contains("no key named \"openscm.\"")
            && e.contains("\"openscm512.\""),
        "{e}"
    );
}

#[tokio::test]
async fn a_wrong_secret_is_a_lasting_tsig_failure_that_shows_no_secret() {
    let named = TsigNamed::start().await;
    // Another key's secret under our key's name.
    let wrong = named.secret_file("wrong", &named.intruder.secret);
    let config = Dns01Config {
        tsig_secret_file: wrong.display().to_string(),
        ..named.config(&named.sha256)
    };
    let name = "_acme-challenge.www.shop.test";
    let e = named.updater(&config).add_txt(name, "v").await.unwrap_err();
    assert!(!e.transient, "{e:?}");
    for word in ["NOTAUTH/BADSIG", "TSIG", "openscm.", name, "shop.test."] {
        assert!(e.reason.contains(word), "{word}: {e}");
    }
    for secret in [&named.intruder.secret, &named.sha256.secret] {
        assert!(!e.reason.contains(&secret[..12]), "{e}");
    }
    assert_eq!(txt(&named, name).await, NONE);
    let e = named
        .updater(&config)
        .remove_txt(name, "v")
        .await
        .unwrap_err();
    assert!(!e.transient && e.reason.contains("BADSIG"), "{e:?}");
}

#[tokio::test]
async fn a_key_the_server_does_not_know_or_with_another_algorithm_is_badkey() {
    let named = TsigNamed::start().await;
    let name = "_acme-challenge.www.shop.test";
    let unknown = Dns01Config {
        tsig_key_name: "stranger.".into(),
        ..named.config(&named.sha256)
    };
    let other_algorithm = Dns01Config {
        tsig_algorithm: "hmac-sha512".into(),
        ..named.config(&named.sha256)
    };
    for config in [unknown, other_algorithm] {
        let e = named.updater(&config).add_txt(name, "v").await.unwrap_err();
        assert!(!e.transient, "{e:?}");
        assert!(e.reason.contains("NOTAUTH/BADKEY"), "{e}");
        assert!(e.reason.contains(&config.tsig_key_name), "{e}");
    }
    assert_eq!(txt(&named, name).await, NONE);
}

#[tokio::test]
async fn a_key_the_zone_does_not_grant_is_refused() {
    let named = TsigNamed::start().await;
    let name = "_acme-challenge.www.shop.test";
    let e = named
        .updater(&named.config(&named.intruder))
        .add_txt(name, "v")
        .await
        .unwrap_err();
    assert!(!e.transient, "{e:?}");
    assert!(
        e.reason.contains("REFUSED") && e.reason.contains("intruder."),
        "{e}"
    );
    assert_eq!(txt(&named, name).await, NONE);
}

#[tokio::test]
async fn a_zone_the_server_does_not_serve_is_notauth() {
    let named = TsigNamed::start().await;
    let config = Dns01Config {
        zone: "elsewhere.test.".into(),
        ..named.config(&named.sha256)
    };
    let e = named
        .updater(&config)
        .add_txt("_acme-challenge.www.elsewhere.test", "v")
        .await
        .unwrap_err();
    assert!(!e.transient, "{e:?}");
    assert!(
        e.reason.contains("NOTAUTH") && e.reason.contains("elsewhere.test."),
        "{e}"
    );
}

#[tokio::test]
async fn a_name_outside_the_zone_is_refused_before_anything_is_sent() {
    let named = TsigNamed::start().await;
    let updater = named.updater(&named.config(&named.sha256));
    for name in [
        "_acme-challenge.www.shop.example",
        "shop.test.example",
        "test",
    ] {
        let e = updater.add_txt(name, "v").await.unwrap_err();
        assert!(!e.transient, "{e:?}");
        assert!(e.reason.contains("not inside zone shop.test."), "{e}");
        let e = updater.remove_txt(name, "v").await.unwrap_err();
        assert!(e.reason.contains("not inside zone shop.test."), "{e}");
    }
    // named logs each update it receives, applied or not ("client @0x... updating zone",
    // "client @0x... update failed"): none.
    let log = named.server.log();
    assert!(!log.contains("client @"), "{log}");
}

#[tokio::test]
async fn a_server_that_is_down_or_silent_is_a_transient_failure_within_the_timeout() {
    let named = TsigNamed::start().await;
    let config = Dns01Config {
        timeout_seconds: 1,
        ..named.config(&named.sha256)
    };
    let name = "_acme-challenge.www.shop.test";

    // Nothing listens: refused at once.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = Dns01Config {
        server: closed.to_string(),
        ..config.clone()
    };
    let started = Instant::now();
    let e = named.updater(&down).add_txt(name, "v").await.unwrap_err();
    assert!(e.transient, "{e:?}");
    assert!(
        e.reason.contains("cannot connect") && e.reason.contains(&closed.to_string()),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    // Accepts (the kernel's backlog) but never answers: the timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_config = Dns01Config {
        server: silent.local_addr().unwrap().to_string(),
        ..config
    };
    let started = Instant::now();
    let e = named
        .updater(&silent_config)
        .remove_txt(name, "v")
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(e.transient, "{e:?}");
    assert!(e.reason.contains("no answer within 1 s"), "{e}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn building_reads_the_secret_file_checks_its_mode_and_contacts_nobody() {
    let named = TsigNamed::start().await;
    let key_file = named.secret_file("openscm.key", &named.sha256.block);
    // A server that would see any connection.
    let watcher = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = Dns01Config {
        tsig_secret_file: key_file.display().to_string(),
        server: watcher.local_addr().unwrap().to_string(),
        ..named.config(&named.sha256)
    };
    txt_updater(&config, "pebble").unwrap();
    let contacted = tokio::time::timeout(Duration::from_millis(300), watcher.accept()).await;
    assert!(contacted.is_err(), "the build connected: {contacted:?}");

    // Readable by group and others: refused, naming the issuer, the key and the fix.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = txt_updater(&config, "pebble").unwrap_err();
    assert!(
        e.starts_with("issuers \"pebble\": dns01.tsig_secret_file: ")
            && e.contains(&key_file.display().to_string())
            && e.contains("chmod 600"),
        "{e}"
    );
    assert!(!e.contains(&named.sha256.secret[..12]), "{e}");

    // The same key file, readable by its owner only, works against the real server.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let working = Dns01Config {
        server: named.addr.to_string(),
        ..config
    };
    let name = "_acme-challenge.keyfile.shop.test";
    named
        .updater(&working)
        .add_txt(name, "bind-format")
        .await
        .unwrap();
    assert_eq!(txt(&named, name).await, ["bind-format"]);
}

/// A server on loopback that takes one update over TCP and answers `rcode`, unsigned, as a
/// forger or a broken server would (`None`: closes the connection without answering). The
/// answer is encoded by hickory; only TCP's two-byte length prefix is written here.
async fn fake_server(rcode: Option<ResponseCode>) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let len = conn.read_u16().await.unwrap();
        let mut request = vec![0; usize::from(len)];
        conn.read_exact(&mut request).await.unwrap();
        let request = Message::from_vec(&request).unwrap();
        assert!(request.signature().is_some(), "the update is not signed");
        let Some(rcode) = rcode else { return };
        let answer = Message::error_msg(request.id, OpCode::Update, rcode)
            .to_vec()
            .unwrap();
        conn.write_u16(u16::try_from(answer.len()).unwrap())
            .await
            .unwrap();
        conn.write_all(&answer).await.unwrap();
        // Let the client read before the connection goes.
        let _ = conn.read_u8().await;
    });
    addr
}

fn fake_config(dir: &tempfile::TempDir, server: SocketAddr) -> Dns01Config {
    let file = dir.path().join("secret");
    std::fs::write(&file, "c2VjcmV0LWZvci10aGUtZmFrZS1zZXJ2ZXI=\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    Dns01Config {
        kind: "rfc2136".into(),
        server: server.to_string(),
        zone: "shop.test.".into(),
        tsig_key_name: "openscm.".into(),
        tsig_algorithm: "hmac-sha256".into(),
        tsig_secret_file: file.display().to_string(),
        ttl: 60,
        timeout_seconds: 2,
    }
}

#[tokio::test]
async fn an_unsigned_success_is_not_believed_and_servfail_or_silence_is_transient() {
    let dir = tempfile::tempdir().unwrap();
    let name = "_acme-challenge.www.shop.test";
    let forged = fake_server(Some(ResponseCode::NoError)).await;
    let e = txt_updater(&fake_config(&dir, forged), "pebble")
        .unwrap()
        .add_txt(name, "v")
        .await
        .unwrap_err();
    assert!(!e.transient, "{e:?}");
    assert!(
        e.reason.contains("NOERROR") && e.reason.contains("does not verify"),
        "{e}"
    );

    let failing = fake_server(Some(ResponseCode::ServFail)).await;
    let e = txt_updater(&fake_config(&dir, failing), "pebble")
        .unwrap()
        .add_txt(name, "v")
        .await
        .unwrap_err();
    assert!(e.transient && e.reason.contains("SERVFAIL"), "{e:?}");

    let closing = fake_server(None).await;
    let e = txt_updater(&fake_config(&dir, closing), "pebble")
        .unwrap()
        .remove_txt(name, "v")
        .await
        .unwrap_err();
    assert!(
        e.transient && e.reason.contains("closed the connection without answering"),
        "{e:?}"
    );
}
