"""ACME issuance end to end (docs/issuers.md), on SQLite, every test with its own openscm server and
its own Pebble (Debian's 2.4.0, validating for real through BIND: never PEBBLE_VA_ALWAYS_VALID;
PEBBLE_VA_NOSLEEP is set by the harness), one BIND `named` for the run (acme_support.py).

- Manual dns-01 through the official SDK: buy, apply with DNS, `authentification` shows the
  `_acme-challenge` TXT record, the test publishes it in BIND with nsupdate, ISSUED; the exported
  chain verifies against Pebble's issuing root.
- http-01 answered by OpenSCM's own listener (`[acme] http01_listen`), two names.
- Automatic dns-01 through RFC 2136 with TSIG to BIND, a wildcard and its apex; the records are
  removed afterwards.
- External Account Binding (a Pebble that requires it).
- SIGKILL while an order waits for a record: the same order completes after the restart (Pebble
  saw one new-order request).
- Fallback from a CA that is down to Pebble, recorded as `issuer_fallback`.
- Renewal forced by the clock (libfaketime, as test_renewal.py): version 2 from Pebble, pushed
  again to a `files` target.
- ARI through the stand-in, a window moved into the past: a renewal.
- Revocation through v2 revoke, seen by Pebble.
- Refusals: an OV product, a secret file others may read, and a CA down at start (not refused).

The SDK signs with the real time, which a server whose clock is shifted refuses: under a shift,
the tests read through `openscm admin cert history` and Pebble's log.
"""

import datetime as dt
import math
import re
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization

from huaweicloudsdkcore.exceptions import exceptions
from huaweicloudsdkscm.v3 import (
    ApplyCertificateRequest,
    ApplyCertificateRequestBody,
    ExportCertificateRequest,
    PurchaseCertificateRequestBody,
    ShowCertificateRequest,
    SubscribeCertificateRequest,
)

from acme_support import ISSUED, RefusedPort, ari_cert_id
from e2e_helpers import (
    E2EError,
    console_session,
    dns_sans,
    faketime_env,
    load_certs,
    openssl_verify,
    tail,
    wait_until,
)
from fixtures import Backend, ServerFactory

APPLICANT = dict(applicant_name="Tom Smith", applicant_phone="13212345678",
                 applicant_email="tom@example.com", agree_privacy_protection=True)
COMPANY = dict(company_name="OpenSCM ACME Org", company_unit="Ops", company_province="Sichuan",
               company_city="Chengdu", country="CN")

# How long an issuance may take here: Pebble validates at once (PEBBLE_VA_NOSLEEP); OpenSCM's
# order job polls at 0.5 s doubling, and a dns-01 record it does not publish itself is looked
# for every 5 s at first.
ISSUE_WITHIN = 60


@pytest.fixture(scope="module")
def backend():
    """SQLite only: the ACME tables on PostgreSQL are covered by the store suite; what is tested
    here is the server against real CA, DNS and push components."""
    b = Backend("sqlite")
    yield b
    b.cleanup()


@pytest.fixture
def servers(openscm_bin, tmp_path, backend):
    """Servers of this test only, stopped at its end (with the Pebble they talk to)."""
    factory = ServerFactory(openscm_bin, tmp_path / "servers", backend)
    yield factory
    factory.close()


# --------------------------------------------------------------------------- helpers


def unique(prefix: str) -> str:
    """A name under shop.test. that no other test uses (the BIND server is shared)."""
    return f"{prefix}-{secrets.token_hex(4)}.shop.test"


def config(named, issuers: str, brands, *, http01_listen: str = None, extra: str = "") -> str:
    """A server config: fast job polling, OpenSCM's resolver on BIND (so it sees dns-01 records
    before it tells the CA), the issuers, `[brands] GLOBALSIGN = brands`, the http-01 listener."""
    text = f"""\
[jobs]
poll_millis = 100

[validation]
nameservers = ["{named.addr}"]
max_interval_seconds = 5

{issuers}
[brands]
GLOBALSIGN = [{", ".join(f'"{b}"' for b in brands)}]
"""
    if http01_listen:
        text += f'\n[acme]\nhttp01_listen = "{http01_listen}"\n'
    return text + "\n" + extra


def start(servers, name: str, text: str):
    server = servers.new(name, config_text=text)
    server.start()
    return server


def buy(client, domain_type: str = "SINGLE_DOMAIN", numbers: int = 1,
        cert_type: str = "DV_SSL_CERT") -> str:
    bought = client.subscribe_certificate(SubscribeCertificateRequest(body=PurchaseCertificateRequestBody(
        cert_brand="GLOBALSIGN", cert_type=cert_type, domain_type=domain_type,
        effective_time=1, domain_numbers=numbers, order_number=1, agree_privacy_protection=True,
    )))
    return bought.cert[0].cert_id


def apply(client, cert_id: str, names: list, method: str, **more):
    client.apply_certificate(ApplyCertificateRequest(
        certificate_id=cert_id,
        body=ApplyCertificateRequestBody(domain=names[0], sans=",".join(names[1:]) or None,
                                         domain_method=method, **APPLICANT, **more),
    ))


def show(client, cert_id: str):
    return client.show_certificate(ShowCertificateRequest(certificate_id=cert_id))


def history(server, cert_id: str) -> dict:
    return server.admin("cert", "history", cert_id)


def events(server, cert_id: str) -> list:
    return [e["event"] for e in history(server, cert_id)["events"]]


def wait_issued(server, client, cert_id: str, timeout: float = ISSUE_WITHIN):
    """Waits for ISSUED and returns how long it took; on a timeout, says the status and history."""
    t0 = time.monotonic()
    wait_until(lambda: show(client, cert_id).status == "ISSUED", timeout, f"{cert_id} ISSUED",
               seen=lambda: (show(client, cert_id).status, history(server, cert_id)["events"]),
               interval=0.1)
    return time.monotonic() - t0


def wait_for_txt_proofs(server, client, cert_id: str, count: int):
    """The dns-01 records `authentification` lists once the order job placed the order."""
    def proofs():
        shown = show(client, cert_id)
        listed = [p for p in shown.authentification or [] if p.record_type == "TXT"]
        return listed if len(listed) == count else None

    return wait_until(proofs, 30, f"{count} TXT record(s) in authentification",
                      seen=lambda: (show(client, cert_id), history(server, cert_id)["events"]),
                      interval=0.1)


def issued_orders(pebble) -> list:
    """(serial, order id) of every certificate Pebble issued, from its log."""
    return [(int(m.group(1), 16), m.group(2)) for line in pebble.log_lines() if (m := ISSUED.search(line))]


def pem(certs) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def verify_against_pebble(tmp_path: Path, pebble, leaf_pem: str, chain_pem: str):
    """`openssl verify` of the leaf with the chain OpenSCM stored, against Pebble's issuing root
    (management API roots/0); the chain is Pebble's intermediate (intermediates/0)."""
    roots = tmp_path / "pebble-root.pem"
    roots.write_text(pebble.issuing_roots())
    assert load_certs(chain_pem)[:1] == load_certs(pebble.issuing_intermediates()), (
        "the stored chain does not start with Pebble's intermediate")
    openssl_verify(tmp_path / "verify", roots, leaf_pem, chain_pem)


def issue_file(server, client, pebble, names: list) -> tuple:
    """Buys and applies with FILE (http-01 through OpenSCM's listener); (cert id, leaf, seconds)."""
    cert_id = buy(client, "MULTI_DOMAIN" if len(names) > 1 else "SINGLE_DOMAIN", len(names))
    apply(client, cert_id, names, "FILE")
    took = wait_issued(server, client, cert_id)
    exported = client.export_certificate(ExportCertificateRequest(certificate_id=cert_id))
    leaf = load_certs(exported.certificate)[0]
    assert dns_sans(leaf) == set(names), dns_sans(leaf)
    return cert_id, leaf, took


def kill(server):
    """SIGKILL the server (no shutdown at all) and wait for it to be gone."""
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=10)
    server.proc = None


def parse_time(text: str) -> dt.datetime:
    """An RFC 3339 time of `admin cert history` (fractions cut to microseconds)."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    assert m, f"not an RFC 3339 time: {text!r}"
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return dt.datetime.fromisoformat(f"{m.group(1)}.{frac}{zone}")


def version(server, cert_id: str, seq: int):
    return next((v for v in history(server, cert_id)["versions"] if v["seq"] == seq), None)


def wait_version(server, cert_id: str, seq: int, timeout: float, pebble=None) -> dict:
    return wait_until(lambda: version(server, cert_id, seq), timeout,
                      f"version {seq} of {cert_id} in `admin cert history`",
                      seen=lambda: (history(server, cert_id),
                                    issued_orders(pebble) if pebble else None), interval=0.2)


# --------------------------------------------------------------------------- 1. manual dns-01


def test_manual_dns01_through_the_sdk_is_issued_once_the_record_is_published(
        servers, make_pebble, named, tmp_path):
    pebble = make_pebble()
    server = start(servers, "manual-dns", config(named, pebble.issuer_toml("pebble"), ["pebble"]))
    client = server.sdk_client()
    name = unique("manual")
    cert_id = buy(client)
    apply(client, cert_id, [name], "DNS")
    assert show(client, cert_id).status == "CHECKING_DOMAIN"

    (proof,) = wait_for_txt_proofs(server, client, cert_id, 1)
    assert (proof.domain, proof.record_name, proof.record_type) == \
        (name, f"_acme-challenge.{name}", "TXT"), proof
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", proof.record_value), proof  # base64url SHA-256
    assert len(pebble.orders_created()) == 1
    # Not published yet: OpenSCM has not told the CA to validate, so it keeps waiting.
    assert show(client, cert_id).status == "CHECKING_DOMAIN"
    assert issued_orders(pebble) == []

    named.add_txt(proof.record_name, proof.record_value)  # nsupdate, as a person would
    try:
        took = wait_issued(server, client, cert_id)
        exported = client.export_certificate(ExportCertificateRequest(certificate_id=cert_id))
        leaf = load_certs(exported.certificate)[0]
        assert dns_sans(leaf) == {name}
        verify_against_pebble(tmp_path, pebble, exported.certificate, exported.certificate_chain)
        assert issued_orders(pebble) == [(leaf.serial_number, pebble.orders_created()[0])]
        shown = show(client, cert_id)
        assert shown.authentification == [], shown.authentification
        seen = events(server, cert_id)
        assert seen[:1] == ["applied"] and "issued" in seen, seen
        print(f"manual dns-01: ISSUED {took:.1f} s after the record was published")
    finally:
        named.delete_txt(proof.record_name)


# --------------------------------------------------------------------------- 2. http-01


def test_http01_is_answered_by_openscms_listener_for_two_names(servers, make_pebble, named, tmp_path):
    pebble = make_pebble()
    server = start(servers, "http01", config(named, pebble.issuer_toml("pebble"), ["pebble"],
                                             http01_listen=pebble.http01_listen))
    client = server.sdk_client()
    names = [unique("www"), unique("api")]
    cert_id, leaf, took = issue_file(server, client, pebble, names)
    exported = client.export_certificate(ExportCertificateRequest(certificate_id=cert_id))
    verify_against_pebble(tmp_path, pebble, exported.certificate, exported.certificate_chain)
    # Pebble's VA fetched each name's token from OpenSCM's listener on its http port.
    log = "\n".join(pebble.log_lines())
    for name in names:
        assert re.search(rf"http://{re.escape(name)}(:{pebble.http_port})?/\.well-known/acme-challenge/", log), (
            f"no http-01 fetch of {name} in Pebble's log:\n{tail(pebble.stdout_path)}")
    assert len(pebble.orders_created()) == 1
    # The tokens are withdrawn once issued: the listener answers 404.
    tokens = re.findall(r"/\.well-known/acme-challenge/([A-Za-z0-9_-]+)", log)
    assert tokens, log
    for token in set(tokens):
        r = requests.get(f"http://{pebble.http01_listen}/.well-known/acme-challenge/{token}",
                         headers={"Host": names[0]}, timeout=5)
        assert r.status_code == 404, (token, r.status_code, r.text)
    print(f"http-01, 2 names: ISSUED in {took:.1f} s")


# --------------------------------------------------------------------------- 3. automatic dns-01


def test_automatic_dns01_through_rfc2136_issues_a_wildcard_and_its_apex(servers, make_pebble, named,
                                                                        tmp_path):
    pebble = make_pebble()
    server = start(servers, "rfc2136", config(
        named, pebble.issuer_toml("pebble", dns01=named.dns01_toml()), ["pebble"]))
    client = server.sdk_client()
    apex = unique("x")
    names = [f"*.{apex}", apex]
    record = f"_acme-challenge.{apex}"
    assert named.txt(record) == []
    cert_id = buy(client, "MULTI_DOMAIN", 2)

    apply(client, cert_id, names, "DNS")
    took = wait_issued(server, client, cert_id)

    exported = client.export_certificate(ExportCertificateRequest(certificate_id=cert_id))
    leaf = load_certs(exported.certificate)[0]
    assert dns_sans(leaf) == set(names)
    verify_against_pebble(tmp_path, pebble, exported.certificate, exported.certificate_chain)
    # OpenSCM published both values (the wildcard's and the apex's, at one name) by updates
    # signed with its TSIG key, as BIND logged them...
    def updates(what: str) -> list:
        return [line for line in named.stderr_path.read_text(errors="replace").splitlines()
                if "/key openscm: updating zone 'shop.test/IN'" in line and what in line]

    added = updates(f"adding an RR at '{record}' TXT")
    assert len(added) == 2, added
    # ... and removes them afterwards.
    wait_until(lambda: named.txt(record) == [] and len(updates(f"deleting an RR at {record} TXT")) == 2,
               15, f"{record} removed from BIND",
               seen=lambda: (named.txt(record), updates(record)))
    assert named.secret() not in server.logs(), "the TSIG secret is in the server's log"
    print(f"dns-01 via RFC 2136, wildcard + apex: ISSUED in {took:.1f} s")


# --------------------------------------------------------------------------- 4. EAB


def test_external_account_binding(servers, make_pebble, named):
    pebble = make_pebble(eab=True)
    toml = pebble.issuer_toml("pebble-eab")
    assert f'eab_kid = "{pebble.eab_kid}"' in toml and "eab_hmac_key_file" in toml
    server = start(servers, "eab", config(named, toml, ["pebble-eab"],
                                          http01_listen=pebble.http01_listen))
    client = server.sdk_client()
    name = unique("eab")
    _, leaf, took = issue_file(server, client, pebble, [name])
    assert [s for s, _ in issued_orders(pebble)] == [leaf.serial_number]
    assert pebble.eab_hmac_key not in server.logs(), "the EAB key is in the server's log"
    print(f"EAB: ISSUED in {took:.1f} s")


# --------------------------------------------------------------------------- 5. SIGKILL


def test_an_order_survives_a_sigkill_and_completes_once(servers, make_pebble, named, tmp_path):
    pebble = make_pebble()
    server = start(servers, "sigkill", config(named, pebble.issuer_toml("pebble"), ["pebble"]))
    client = server.sdk_client()
    name = unique("kill")
    cert_id = buy(client)
    apply(client, cert_id, [name], "DNS")
    (proof,) = wait_for_txt_proofs(server, client, cert_id, 1)
    placed = pebble.orders_created()
    assert len(placed) == 1 and pebble.new_order_requests() == 1, placed

    kill(server)
    named.add_txt(proof.record_name, proof.record_value)
    try:
        server.start()
        client = server.sdk_client()
        took = wait_issued(server, client, cert_id)
        exported = client.export_certificate(ExportCertificateRequest(certificate_id=cert_id))
        leaf = load_certs(exported.certificate)[0]
        # The order placed before the kill is the one that was issued; no second order.
        assert pebble.new_order_requests() == 1, pebble.new_order_requests()
        assert pebble.orders_created() == placed
        assert issued_orders(pebble) == [(leaf.serial_number, placed[0])]
        verify_against_pebble(tmp_path, pebble, exported.certificate, exported.certificate_chain)
        print(f"SIGKILL mid-order: ISSUED {took:.1f} s after the restart, one order at Pebble")
    finally:
        named.delete_txt(proof.record_name)


# --------------------------------------------------------------------------- 6. fallback


def test_a_ca_that_is_down_falls_back_to_the_next_issuer(servers, make_pebble, named):
    pebble = make_pebble()
    with RefusedPort() as down:
        issuers = (pebble.issuer_toml("pebble")
                   + pebble.issuer_toml("down", directory_url=down.directory_url))
        server = start(servers, "fallback", config(named, issuers, ["down", "pebble"],
                                                   http01_listen=pebble.http01_listen))
        client = server.sdk_client()
        name = unique("fallback")
        cert_id, leaf, took = issue_file(server, client, pebble, [name])
        assert took < 60, took
        fallbacks = [e for e in history(server, cert_id)["events"] if e["event"] == "issuer_fallback"]
        assert len(fallbacks) == 1, history(server, cert_id)["events"]
        assert fallbacks[0]["detail"].startswith("down failed (") and \
            fallbacks[0]["detail"].endswith("; trying pebble"), fallbacks
        assert [s for s, _ in issued_orders(pebble)] == [leaf.serial_number]
        # The console says who actually issued it: the second issuer, by its name.
        page = console_session(server).get(f"{server.url}/console/certificates/{cert_id}").text
        assert "<dt>Issued by</dt><dd>ACME CA \u201cpebble\u201d</dd>" in page, page
        listed = console_session(server).get(f"{server.url}/console/certificates").text
        assert '<td class="wide">ACME: pebble</td>' in listed, listed
        print(f"fallback down -> pebble: ISSUED in {took:.1f} s; {fallbacks[0]['detail']}")


# --------------------------------------------------------------------------- 7. renewal


def test_renewal_forced_by_the_clock_comes_from_pebble_and_is_pushed_again(
        servers, make_pebble, named, tmp_path):
    """The server is restarted with its clock past version 1's renewal time (libfaketime, as in
    test_renewal.py); Pebble keeps the real time. Version 2 is issued by Pebble at the real time,
    so under the shifted clock it is due too: the sweep runs once an hour here
    (`sweep_seconds = 3600`), so only the sweep at the start renews, and Pebble sees exactly one
    more order."""
    pebble = make_pebble()
    out = tmp_path / "deployed"
    out.mkdir()
    fullchain = out / "fullchain.pem"

    def make(creds):
        return config(named, pebble.issuer_toml("pebble"), ["pebble"],
                      http01_listen=pebble.http01_listen, extra=f"""
[renewal]
sweep_seconds = 3600

[[push_targets]]
name = "disk"
kind = "files"
account = "{creds['domain_id']}"
service = "ELB"
region = "cn-north-4"
files = [{{ path = "{fullchain}", content = "fullchain" }}]
""")

    server = servers.bootstrap_then_configure("renewal", make)
    client = server.sdk_client()
    name = unique("renew")
    cert_id, v1_leaf, _ = issue_file(server, client, pebble, [name])
    resp = server.v2("POST", f"/scm/cert/{cert_id}/push",
                     {"service_type": "ELB", "remote_project": "cn-north-4"})
    assert (resp.status, resp.json) == (200, {"message": "success"}), resp
    wait_until(lambda: fullchain.exists() and load_certs(fullchain.read_bytes())[:1] == [v1_leaf], 30,
               "version 1 in the pushed file",
               seen=lambda: fullchain.exists() and load_certs(fullchain.read_bytes()))

    v1 = version(server, cert_id, 1)
    renew_at = parse_time(v1["renew_at"])
    days = math.ceil((renew_at - dt.datetime.now(dt.timezone.utc)).total_seconds() / 86400) + 1
    orders_before = len(pebble.orders_created())
    server.stop()
    server.env.update(faketime_env(f"+{days}d"))
    t0 = time.monotonic()
    server.start()

    v2 = wait_version(server, cert_id, 2, 60, pebble)
    took = time.monotonic() - t0
    assert v2["reason"] == "renewal", v2
    assert int(v2["serial"], 16) != v1_leaf.serial_number
    assert len(pebble.orders_created()) == orders_before + 1
    assert [s for s, _ in issued_orders(pebble)] == [v1_leaf.serial_number, int(v2["serial"], 16)]

    # The new version goes again to the target version 1 was pushed to.
    def pushed_v2():
        leaves = load_certs(fullchain.read_bytes())
        return leaves if leaves[0].serial_number == int(v2["serial"], 16) else None

    written = wait_until(pushed_v2, 30, f"version 2 (serial {v2['serial']}) in {fullchain}",
                         seen=lambda: [format(c.serial_number, "x") for c in load_certs(fullchain.read_bytes())])
    assert dns_sans(written[0]) == {name}
    verify_against_pebble(tmp_path, pebble, pem(written[:1]), pem(written[1:]))
    assert len(pebble.orders_created()) == orders_before + 1
    seen = events(server, cert_id)
    assert seen.count("renewed") == 1, seen
    print(f"renewal at +{days}d: version 2 from Pebble and in the file {took:.1f} s after the start")


# --------------------------------------------------------------------------- 8. ARI


@pytest.mark.parametrize("reflect", [True, False], ids=["ca-reflects-replaces", "ca-ignores-replaces"])
def test_ari_window_moved_into_the_past_renews(servers, make_pebble, make_ari_standin, named, reflect):
    """ARI (RFC 9773) through the stand-in: Debian's Pebble 2.4.0 has no ARI (its directory has no
    `renewalInfo`), so `AriStandIn` serves Pebble's directory plus `renewalInfo` and the renewal
    information resource, the smallest honest stand-in; accounts, orders and certificates are
    Pebble's own.

    After issuance OpenSCM asks for the new certificate's window (its RFC 9773 id). The window
    is then moved into the past; OpenSCM asks again only after the CA's Retry-After, clamped to at
    least an hour, so the server is restarted with its clock 2 hours ahead (libfaketime) to make
    its `ari-check` job due. The window in the past makes the renewal due at once, and the sweep
    (every 5 s here) renews: version 2 from Pebble, through a new order that says which
    certificate it replaces.

    - `ca-reflects-replaces`: the stand-in also proxies Pebble and reflects `replaces` in the
      order, as RFC 9773 requires of a CA that accepts it; it sees version 1's id in the order.
    - `ca-ignores-replaces`: the order goes to Pebble itself, which does not reflect `replaces`
      (instant-acme refuses such an answer). OpenSCM carries on with the order the CA made:
      one order for the renewal, none left behind."""
    pebble = make_pebble()
    ari = make_ari_standin(pebble, reflect_replaces=reflect)
    issuer = pebble.issuer_toml("pebble", directory_url=ari.directory_url)
    server = start(servers, "ari", config(named, issuer, ["pebble"], http01_listen=pebble.http01_listen,
                                          extra="[renewal]\nsweep_seconds = 5\n"))
    client = server.sdk_client()
    cert_id, v1_leaf, _ = issue_file(server, client, pebble, [unique("ari")])
    v1_id = ari_cert_id(v1_leaf)
    wait_until(lambda: v1_id in ari.requested_cert_ids(), 30, f"the stand-in asked for {v1_id}",
               seen=ari.requests)
    scheduled = wait_until(
        lambda: [e for e in history(server, cert_id)["events"] if e["event"] == "renewal_scheduled"],
        15, "renewal_scheduled (ARI) in the history", seen=lambda: history(server, cert_id)["events"])
    assert "(ARI)" in scheduled[0]["detail"], scheduled
    assert parse_time(version(server, cert_id, 1)["renew_at"]) > \
        dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=29)
    assert len(pebble.orders_created()) == 1

    ari.move_window_into_past(v1_id)
    asked = ari.requested_cert_ids().count(v1_id)
    server.stop()
    server.env.update(faketime_env("+2h"))
    t0 = time.monotonic()
    server.start()
    v2 = wait_version(server, cert_id, 2, 60, pebble)
    took = time.monotonic() - t0
    assert ari.requested_cert_ids().count(v1_id) > asked, "OpenSCM did not ask for the window again"
    assert v2["reason"] == "renewal", v2
    # One new order for the renewal, and it is the one that was issued.
    assert pebble.new_order_requests() == 2 and len(pebble.orders_created()) == 2, pebble.orders_created()
    assert issued_orders(pebble) == [(v1_leaf.serial_number, pebble.orders_created()[0]),
                                     (int(v2["serial"], 16), pebble.orders_created()[1])]
    carried_on = "carrying on with the order it made" in server.logs()
    if reflect:
        assert ari.replaces_seen() == [None, v1_id], ari.replaces_seen()
        assert not carried_on
    else:
        assert carried_on, "no sign that OpenSCM took the order Pebble made"
    details = [e["detail"] for e in history(server, cert_id)["events"] if e["event"] == "renewal_scheduled"]
    assert len(details) >= 2, details

    # Version 2's window is asked for too (the export signed at the server's time).
    exported = server.v3("POST", f"/v3/scm/certificates/{cert_id}/export",
                         date=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2))
    assert exported.status == 200, exported
    v2_id = ari_cert_id(exported.json["certificate"])
    assert load_certs(exported.json["certificate"])[0].serial_number == int(v2["serial"], 16)
    wait_until(lambda: v2_id in ari.requested_cert_ids(), 30, f"the stand-in asked for {v2_id}",
               seen=ari.requested_cert_ids)
    print(f"ARI ({'reflects' if reflect else 'ignores'} replaces): version 2 {took:.1f} s after the "
          f"start 2 h ahead")


# --------------------------------------------------------------------------- 9. revocation


def test_v2_revoke_revokes_at_pebble(servers, make_pebble, named):
    pebble = make_pebble()
    server = start(servers, "revoke", config(named, pebble.issuer_toml("pebble"), ["pebble"],
                                             http01_listen=pebble.http01_listen))
    client = server.sdk_client()
    cert_id, leaf, _ = issue_file(server, client, pebble, [unique("revoke")])
    assert pebble.cert_status(leaf.serial_number)["Status"] == "Valid"
    resp = server.v2("POST", f"/scm/cert/{cert_id}/revoke", {"reason": "keyCompromise"})
    assert (resp.status, resp.json) == (200, {"message": "success"}), resp
    status = pebble.cert_status(leaf.serial_number)
    assert (status["Status"], status.get("Reason")) == ("Revoked", 1), status  # 1: keyCompromise
    shown = show(client, cert_id)
    assert (shown.status, shown.revoke_reason) == ("REVOKED", "keyCompromise"), shown
    print(f"revocation: Pebble says {status.get('Status')} {status.get('Reason', '')}")


# --------------------------------------------------------------------------- 10. refusals


def test_an_ov_product_is_refused_naming_the_issuer_and_a_down_ca_does_not_stop_the_start(
        servers, named, acme_listener_ca):
    with RefusedPort() as down:
        issuer = f"""\
[[issuers]]
name = "down-ca"
kind = "acme"
directory_url = "{down.directory_url}"
trust_roots_file = "{acme_listener_ca.pem_path}"
"""
        server = start(servers, "refusals", config(named, issuer, ["down-ca"]))  # starts: not contacted
        client = server.sdk_client()
        cert_id = buy(client, cert_type="OV_SSL_CERT")
        with pytest.raises(exceptions.ClientRequestException) as e:
            apply(client, cert_id, [unique("ov")], "DNS", **COMPANY)
        assert (e.value.status_code, e.value.error_code) == (400, "SCM.0005"), e.value
        assert '"down-ca"' in e.value.error_msg and "domain-validated" in e.value.error_msg, e.value.error_msg
        shown = show(client, cert_id)
        assert (shown.status, shown.authentification) == ("PAID", []), shown
        assert "applied" not in events(server, cert_id)


@pytest.mark.parametrize("key", ["eab_hmac_key_file", "tsig_secret_file"])
def test_a_secret_file_others_may_read_stops_the_start(servers, make_pebble, named, tmp_path, key):
    pebble = make_pebble(eab=True)
    if key == "eab_hmac_key_file":
        secret_path, secret = pebble.eab_key_file, pebble.eab_hmac_key
        issuer = pebble.issuer_toml("eab-ca")
    else:
        secret_path = tmp_path / "tsig.key"
        secret_path.write_text(named.key_path.read_text())
        secret = named.secret()
        issuer = pebble.issuer_toml("eab-ca", dns01=named.dns01_toml().replace(
            str(named.key_path), str(secret_path)))
    secret_path.chmod(0o644)
    server = servers.new(f"mode-{key}", config_text=config(named, issuer, ["eab-ca"]))
    server.spawn()
    try:
        rc = server.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        raise E2EError(f"the server started with {secret_path} mode 0644\n{server.logs()}")
    finally:
        if server.proc is not None and server.proc.poll() is not None:
            server.proc = None
    said = server.stdout_path.read_text() + server.stderr_path.read_text()
    assert rc != 0, said
    assert '"eab-ca"' in said and key in said and "chmod 600" in said, said
    assert secret not in said, "the secret is in the server's output"
