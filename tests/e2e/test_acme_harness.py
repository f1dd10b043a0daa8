"""Self-checks of the ACME harness (acme_support.py), with no openscm server: BIND answers and
takes TSIG-signed updates, Pebble validates http-01 and dns-01 for real through it, with and
without External Account Binding, two Pebbles run at once beside a CA that is down, and the
ARI stand-in serves Pebble's directory with `renewalInfo` and the windows a test sets."""

import datetime as _dt
import os
import secrets
import socket
import stat
import subprocess

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acme_support import (EAB_KEYS, AcmeProblem, AcmeTestClient, Named, Pebble, RefusedPort,
                          ari_cert_id, b64u_decode)
from components import started
from e2e_helpers import E2EError, ValidationWebServer, load_certs, openssl_verify, require_tool


def _name(prefix: str) -> str:
    """A name under shop.test. that no other test uses (the BIND server is shared)."""
    return f"{prefix}-{secrets.token_hex(4)}.shop.test"


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _verify_chain(tmp_path, pebble, chain_pem: str):
    """The chain Pebble served verifies against this Pebble's issuing root."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    roots = tmp_path / f"roots-{pebble.acme_port}.pem"
    roots.write_text(pebble.issuing_roots())
    leaf, *rest = load_certs(chain_pem)
    from cryptography.hazmat.primitives import serialization
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM).decode()  # noqa: E731
    openssl_verify(tmp_path / f"verify-{pebble.acme_port}", roots, pem(leaf),
                   "".join(pem(c) for c in rest) or pebble.issuing_intermediates())
    return leaf


# --------------------------------------------------------------------------- BIND


def test_named_answers_every_name_with_loopback(named):
    assert named.addr == f"127.0.0.1:{named.port}"
    assert named.zone == "shop.test." and named.key_name == "openscm."
    assert named.algorithm == "hmac-sha256"
    assert named.dig("A", "shop.test") == ["127.0.0.1"]
    assert named.dig("A", _name("www")) == ["127.0.0.1"]
    assert named.dig("A", f"deep.er.{_name('x')}") == ["127.0.0.1"]
    assert named.dig("AAAA", _name("www")) == []
    assert named.dig("SOA", "shop.test")
    # the key file: what tsig-keygen wrote, owner-only
    assert _mode(named.key_path) == 0o600
    text = named.key_path.read_text()
    assert 'key "openscm."' in text and "algorithm hmac-sha256;" in text
    assert named.secret() in text
    assert f'tsig_secret_file = "{named.key_path}"' in named.dns01_toml()


def test_named_takes_txt_updates_signed_with_the_key_only(named, tmp_path):
    host = f"_acme-challenge.{_name('upd')}"
    named.add_txt(host, "first")
    named.add_txt(host, "second")
    assert named.txt(host) == ["first", "second"]
    named.delete_txt(host)
    assert named.txt(host) == []

    # unsigned: refused
    unsigned = named.update(f'update add {host}. 60 TXT "x"', key=None, check=False)
    assert unsigned.returncode != 0 and "REFUSED" in unsigned.stdout + unsigned.stderr
    # OpenSCM's key may change TXT records only
    a_record = named.update(f"update add {_name('a')}. 60 A 127.0.0.2", check=False)
    assert a_record.returncode != 0 and "REFUSED" in a_record.stdout + a_record.stderr
    # the same key name with another secret: refused (BADSIG/BADKEY)
    forged = tmp_path / "forged.key"
    forged.write_text(subprocess.run([require_tool("tsig-keygen"), "-a", "hmac-sha256", "openscm."],
                                     capture_output=True, text=True, check=True).stdout)
    result = subprocess.run([require_tool("nsupdate"), "-k", str(forged)], capture_output=True,
                            text=True, timeout=20,
                            input=f'server 127.0.0.1 {named.port}\nzone shop.test.\n'
                                  f'update add {host}. 60 TXT "forged"\nsend\n')
    assert result.returncode != 0, result.stdout + result.stderr
    assert named.txt(host) == []
    assert named.secret() not in named.output()


def test_named_wildcard_gotcha_and_its_fix(named):
    """While _acme-challenge.<name> has a TXT record, <name> is an empty non-terminal and the
    wildcard does not answer its A query (RFC 4592); an explicit A record fixes that."""
    name = _name("ent")
    named.add_txt(f"_acme-challenge.{name}", "token")
    assert named.dig("A", name) == []
    named.add_a(name)
    assert named.dig("A", name) == ["127.0.0.1"]
    named.delete_txt(f"_acme-challenge.{name}")
    assert named.dig("A", _name("other")) == ["127.0.0.1"]


def test_a_port_taken_before_the_start_is_replaced(tmp_path, acme_listener_ca, named):
    """Another program may bind a port between its choice and the component's bind: the
    component starts again on new ports."""
    tcp, udp = socket.socket(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with tcp, udp:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        taken = tcp.getsockname()[1]
        udp.bind(("127.0.0.1", taken))
        dns = Named(tmp_path / "named")
        dns.port = taken
        dns._write_conf()
        with started(dns):
            assert dns.port != taken and dns.dig("A", "x.shop.test") == ["127.0.0.1"]
        pebble = Pebble(tmp_path / "pebble", listener_ca=acme_listener_ca, dns_server=named.addr)
        pebble.acme_port = taken
        pebble._write_config()
        with started(pebble):
            assert pebble.acme_port != taken and pebble.ready()
        assert "address already in use" in pebble.stderr_path.read_text() + pebble.stdout_path.read_text()


# --------------------------------------------------------------------------- Pebble


def test_pebble_runs_as_configured(make_pebble, named):
    pebble = make_pebble()
    log = "\n".join(pebble.log_lines())
    assert f"Using custom DNS resolver for ACME challenges: {named.addr}" in log
    assert "Disabling random VA sleeps" in log
    assert "Configured to reject 0% of good nonces" in log
    assert "Configured to attempt authz reuse for each identifier 0% of the time" in log
    assert "VA always returns valid" not in log
    directory = pebble.http.get(pebble.directory_url, timeout=5).json()
    assert "renewalInfo" not in directory  # Pebble 2.4.0 has no ARI
    assert directory["newOrder"].startswith(f"https://127.0.0.1:{pebble.acme_port}/")
    assert pebble.issuing_roots().startswith("-----BEGIN CERTIFICATE-----")
    assert pebble.issuing_intermediates().startswith("-----BEGIN CERTIFICATE-----")
    assert pebble.new_order_requests() == 0 and pebble.orders_created() == []
    # the listener is trusted through the listener CA only
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(pebble.directory_url, timeout=5, verify=True)

    noisy = make_pebble(nonce_reject=None)  # Pebble's default: 5 % badNonce
    assert "Configured to reject 5% of good nonces" in "\n".join(noisy.log_lines())


def test_pebble_validates_http01_for_real(make_pebble, tmp_path):
    with ValidationWebServer() as responder:
        pebble = make_pebble(responder.port)
        assert pebble.http_port == responder.port
        client = AcmeTestClient(pebble.directory_url, pebble.trust_roots_file).register()
        names = [_name("web"), _name("www")]
        chain = client.issue_http01(names, responder)
        leaf = _verify_chain(tmp_path, pebble, chain)
        assert set(leaf.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)) == set(names)
        # Pebble's validator came to the responder, for each name (3 perspectives)
        hosts = [host for host, path, status in responder.requests() if status == 200]
        for name in names:
            assert hosts.count(f"{name}:{responder.port}") == 3, responder.requests()
        assert pebble.new_order_requests() == 1 and len(pebble.orders_created()) == 1
        [serial] = pebble.issued_serials()
        assert int(serial, 16) == leaf.serial_number
        assert pebble.cert_status(leaf.serial_number)["Status"] == "Valid"

        # no token published: validation fails (nothing is "always valid")
        with pytest.raises(E2EError, match="is invalid"):
            client.issue([_name("nobody")], lambda name, chs: next(
                c for c in chs if c["type"] == "http-01"))
        assert pebble.new_order_requests() == 2 and len(pebble.orders_created()) == 2
        assert len(pebble.issued_serials()) == 1


def test_pebble_validates_dns01_through_bind(make_pebble, named, tmp_path):
    pebble = make_pebble()  # nothing listens on its http_port: dns-01 only
    client = AcmeTestClient(pebble.directory_url, pebble.trust_roots_file).register()
    base = _name("dns")
    chain = client.issue_dns01([base, f"*.{base}"], named)
    leaf = _verify_chain(tmp_path, pebble, chain)
    assert f"*.{base}" in leaf.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert named.txt(f"_acme-challenge.{base}") == []  # deleted afterwards
    assert f"adding an RR at '_acme-challenge.{base}' TXT" in named.output()


def test_pebble_with_external_account_binding(make_pebble):
    pebble = make_pebble(eab=True)
    assert pebble.eab_kid == "kid-1" and pebble.eab_hmac_key == EAB_KEYS["kid-1"]
    assert _mode(pebble.eab_key_file) == 0o600
    assert pebble.eab_key_file.read_text() == pebble.eab_hmac_key + "\n"
    assert len(b64u_decode(pebble.eab_hmac_key)) == 48

    with pytest.raises(AcmeProblem) as refused:
        AcmeTestClient(pebble.directory_url, pebble.trust_roots_file).register()
    assert refused.value.type == "urn:ietf:params:acme:error:externalAccountRequired"
    with pytest.raises(AcmeProblem):
        AcmeTestClient(pebble.directory_url, pebble.trust_roots_file,
                       eab=("kid-1", EAB_KEYS["kid-2"])).register()
    client = AcmeTestClient(pebble.directory_url, pebble.trust_roots_file,
                            eab=(pebble.eab_kid, pebble.eab_hmac_key)).register()
    assert client.account_url.startswith(f"https://127.0.0.1:{pebble.acme_port}/")


def test_issuer_toml_names_the_components(make_pebble, named):
    import tomllib
    plain, eab = make_pebble(), make_pebble(eab=True)
    config = tomllib.loads(plain.issuer_toml("a", dns01=named.dns01_toml())
                           + eab.issuer_toml("b", challenges=["http-01"], extra="max_orders = 5")
                           + f'[acme]\nhttp01_listen = "{plain.http01_listen}"\n')
    a, b = config["issuers"]
    assert a == {"name": "a", "kind": "acme", "directory_url": plain.directory_url,
                 "trust_roots_file": str(plain.trust_roots_file),
                 "challenges": ["http-01", "dns-01"],
                 "dns01": {"kind": "rfc2136", "server": named.addr, "zone": "shop.test.",
                           "tsig_key_name": "openscm.", "tsig_algorithm": "hmac-sha256",
                           "tsig_secret_file": str(named.key_path)}}
    assert b["eab_kid"] == "kid-1" and b["eab_hmac_key_file"] == str(eab.eab_key_file)
    assert b["challenges"] == ["http-01"] and b["max_orders"] == 5
    assert config["acme"]["http01_listen"] == f"127.0.0.1:{plain.http_port}"


def test_two_pebbles_at_once_beside_one_that_is_down(make_pebble, tmp_path):
    with ValidationWebServer() as responder, RefusedPort() as down:
        first, second = make_pebble(responder.port), make_pebble(responder.port)
        assert len({first.acme_port, second.acme_port, first.management_port,
                    second.management_port, down.port}) == 5
        chains = {}
        for pebble in (first, second):
            client = AcmeTestClient(pebble.directory_url, pebble.trust_roots_file).register()
            chains[pebble] = client.issue_http01([_name("two")], responder)
            _verify_chain(tmp_path, pebble, chains[pebble])
            assert len(pebble.orders_created()) == 1
        assert first.issuing_roots() != second.issuing_roots()
        with pytest.raises(AssertionError, match="openssl verify failed"):
            _verify_chain(tmp_path / "cross", second, chains[first])
        # the one that is down refuses at once
        with pytest.raises(requests.exceptions.ConnectionError, match="[Rr]efused"):
            requests.get(down.directory_url, timeout=5, verify=str(first.trust_roots_file))


def test_lego_dns01_with_the_tsig_key(make_pebble, named, tmp_path):
    """A third-party RFC 2136 client (lego's rfc2136 provider) with the key name, algorithm and
    secret the BIND component exposes: Pebble validates the TXT records it adds."""
    pebble = make_pebble()
    name = _name("lego")
    env = dict(os.environ, LEGO_CA_CERTIFICATES=str(pebble.trust_roots_file),
               RFC2136_NAMESERVER=named.addr, RFC2136_TSIG_KEY=named.key_name,
               RFC2136_TSIG_ALGORITHM=named.algorithm + ".", RFC2136_TSIG_SECRET=named.secret(),
               RFC2136_POLLING_INTERVAL="1", RFC2136_PROPAGATION_TIMEOUT="20")
    result = subprocess.run(
        [require_tool("lego"), "--server", pebble.directory_url, "--accept-tos", "--email",
         "e2e@shop.test", "--path", str(tmp_path / "lego"), "-d", name, "--dns", "rfc2136",
         "--dns.resolvers", named.addr, "--dns.disable-cp", "run"],
        env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{pebble.output()}"
    _verify_chain(tmp_path, pebble, (tmp_path / "lego" / "certificates" / f"{name}.crt").read_text())
    assert named.secret() not in result.stdout + result.stderr


# --------------------------------------------------------------------------- ARI stand-in


def test_ari_cert_id_matches_rfc9773_example():
    """RFC 9773 section 4.1: AKI 69:88:5B:...:D4 and serial 0x87654321 -> aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"""
    key = ec.generate_private_key(ec.SECP256R1())
    aki = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    now = _dt.datetime.now(_dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(0x87654321)
            .not_valid_before(now).not_valid_after(now + _dt.timedelta(days=1))
            .add_extension(x509.AuthorityKeyIdentifier(aki, None, None), critical=False)
            .sign(key, hashes.SHA256()))
    assert ari_cert_id(cert) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"


def test_ari_standin_serves_pebble_with_renewal_info(make_pebble, make_ari_standin, tmp_path):
    with ValidationWebServer() as responder:
        pebble = make_pebble(responder.port)
        ari = make_ari_standin(pebble)
        http = pebble.http  # trusts the listener CA: the stand-in's certificate too

        directory = http.get(ari.directory_url, timeout=5).json()
        upstream = http.get(pebble.directory_url, timeout=5).json()
        assert directory.pop("renewalInfo") == ari.renewal_info_url
        assert directory == upstream  # every other URL is Pebble's

        # an ACME client on the stand-in's directory gets its certificate from Pebble
        client = AcmeTestClient(ari.directory_url, pebble.trust_roots_file).register()
        leaf = load_certs(client.issue_http01([_name("ari")], responder))[0]
        cert_id = ari_cert_id(leaf)

        now = _dt.datetime.now(_dt.timezone.utc)
        got = http.get(f"{ari.renewal_info_url}/{cert_id}", timeout=5)
        assert got.status_code == 200 and got.headers["Retry-After"] == "3600"
        window = got.json()["suggestedWindow"]
        start, end = (_dt.datetime.fromisoformat(window[k].replace("Z", "+00:00"))
                      for k in ("start", "end"))
        assert now + _dt.timedelta(days=29) < start < end

        ari.move_window_into_past(cert_id)
        ari.set_retry_after(60)
        got = http.get(f"{ari.renewal_info_url}/{cert_id}", timeout=5)
        end = _dt.datetime.fromisoformat(got.json()["suggestedWindow"]["end"].replace("Z", "+00:00"))
        assert end < _dt.datetime.now(_dt.timezone.utc) and got.headers["Retry-After"] == "60"

        # another certificate keeps the default, until the default moves
        other = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
        start = http.get(f"{ari.renewal_info_url}/{other}", timeout=5).json()["suggestedWindow"]["start"]
        assert start > _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        ari.move_window_into_past()
        end = http.get(f"{ari.renewal_info_url}/{other}", timeout=5).json()["suggestedWindow"]["end"]
        assert end < _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

        bad = http.get(f"{ari.renewal_info_url}/not-a-cert-id", timeout=5)
        assert bad.status_code == 400 and bad.json()["type"].endswith(":malformed")
        assert ari.requested_cert_ids() == [cert_id, cert_id, other, other]
        assert len(pebble.orders_created()) == 1
