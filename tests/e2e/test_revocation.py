"""Revocation with a CRL, once per storage backend: certificates bought and issued with the
official SDK (v3) carry the CRL distribution point of the built-in CA; the CRL is fetched
unauthenticated from that URL and `openssl verify -crl_check` accepts them; v2 revoke (no SDK has
it: signed with the SDK's own signer as a v2 client) makes one REVOKED with its reason, the CRL
served lists it and `openssl verify -crl_check` refuses it ("certificate revoked") while the other
still verifies. Refusals change nothing: a bad or missing reason, a status other than ISSUED,
another account, no authentication; a revoked certificate is not pushed. The CLI (`openscm cert
revoke`, with its confirmation) and the console (confirmation page) revoke too, and both are
audited.
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import requests
from cryptography import x509

from huaweicloudsdkscm.v3 import (
    ApplyCertificateRequest,
    ApplyCertificateRequestBody,
    ExportCertificateRequest,
    PurchaseCertificateRequestBody,
    ShowCertificateRequest,
    SubscribeCertificateRequest,
)

from e2e_helpers import assert_error, console_session, require_tool, wait_until

APPLICANT = dict(applicant_name="Tom Smith", applicant_phone="13212345678",
                 applicant_email="tom@example.com")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server(servers, nginx_target_toml):
    return servers.bootstrap_then_configure("revoke", nginx_target_toml)


@pytest.fixture(scope="module")
def client(server):
    return server.sdk_client(server.credentials)


def issue(client, domain: str) -> str:
    bought = client.subscribe_certificate(SubscribeCertificateRequest(body=PurchaseCertificateRequestBody(
        cert_brand="GLOBALSIGN", cert_type="DV_SSL_CERT", domain_type="SINGLE_DOMAIN",
        effective_time=1, domain_numbers=1, order_number=1, agree_privacy_protection=True,
    )))
    cert_id = bought.cert[0].cert_id
    client.apply_certificate(ApplyCertificateRequest(
        certificate_id=cert_id,
        body=ApplyCertificateRequestBody(domain=domain, agree_privacy_protection=True,
                                         domain_method="DNS", **APPLICANT),
    ))
    return cert_id


def show(client, cert_id):
    return client.show_certificate(ShowCertificateRequest(certificate_id=cert_id))


def export(client, cert_id):
    return client.export_certificate(ExportCertificateRequest(certificate_id=cert_id))


def crl_url_of(leaf_pem: str) -> str:
    """The one URI of the leaf's CRL distribution points."""
    cert = x509.load_pem_x509_certificate(leaf_pem.encode())
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    uris = [n.value for p in points for n in (p.full_name or [])
            if isinstance(n, x509.UniformResourceIdentifier)]
    assert len(uris) == 1, uris
    return uris[0]


def fetch_crl(url: str) -> bytes:
    """The CRL at `url`, fetched without any authentication, as a CRL fetcher does."""
    r = requests.get(url, timeout=10)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"] == "application/pkix-crl", r.headers
    return r.content


def crl_serials(der: bytes) -> set:
    return {format(e.serial_number, "x") for e in x509.load_der_x509_crl(der)}


def crl_number(der: bytes) -> int:
    crl = x509.load_der_x509_crl(der)
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def verify(workdir: Path, server, chain_pem: str, crl_der: bytes, leaf_pem: str):
    """`openssl verify -crl_check -CAfile <root + chain> -CRLfile crl.pem leaf.pem`: (rc, text).
    The CRL is turned into PEM by `openssl crl`, which must read the DER served."""
    openssl = require_tool("openssl")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "crl.der").write_bytes(crl_der)
    conv = subprocess.run([openssl, "crl", "-inform", "DER", "-in", str(workdir / "crl.der"),
                           "-out", str(workdir / "crl.pem")], capture_output=True, text=True)
    assert conv.returncode == 0, conv.stderr
    (workdir / "cas.pem").write_text(server.ca_root_path.read_text() + chain_pem)
    (workdir / "leaf.pem").write_text(leaf_pem)
    proc = subprocess.run([openssl, "verify", "-crl_check", "-CAfile", str(workdir / "cas.pem"),
                           "-CRLfile", str(workdir / "crl.pem"), str(workdir / "leaf.pem")],
                          capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr


def revoke(server, cert_id, body, **kw):
    return server.v2("POST", f"/scm/cert/{cert_id}/revoke", body, **kw)


def wait_for_serial(url: str, serial: str) -> bytes:
    """The CRL served once it lists `serial` (it is re-signed at once after a revocation)."""
    seen = {}

    def listed():
        # 404 until the CA's first CRL is signed (its job may not have run yet on a busy machine).
        if requests.get(url, timeout=10).status_code == 404:
            seen["der"] = None
            return False
        seen["der"] = fetch_crl(url)
        return serial in crl_serials(seen["der"])

    wait_until(listed, 10, f"the CRL at {url} to list {serial}",
               seen=lambda: "no CRL signed yet (404)" if seen["der"] is None else
               f"CRL number {crl_number(seen['der'])} listing {crl_serials(seen['der'])}")
    return seen["der"]


# --------------------------------------------------------------------------- tests


def test_revoke_with_openssl_crl_check_against_the_served_crl(server, client, module_tmp, backend):
    bad_id = issue(client, "revoked.e2e.test")
    good_id = issue(client, "good.e2e.test")
    bad, good = export(client, bad_id), export(client, good_id)

    # Every issued certificate names the CRL served under the server's public endpoint.
    url = crl_url_of(bad.certificate)
    assert re.fullmatch(re.escape(server.url) + r"/crl/[0-9a-f]{40}\.crl", url), url
    assert crl_url_of(good.certificate) == url
    text = subprocess.run([require_tool("openssl"), "x509", "-noout", "-text"],
                          input=bad.certificate, capture_output=True, text=True).stdout
    assert "X509v3 CRL Distribution Points" in text and f"URI:{url}" in text, text

    before = fetch_crl(url)
    assert crl_serials(before) == set()
    crl = x509.load_der_x509_crl(before)
    assert crl.next_update_utc is not None and crl.next_update_utc > crl.last_update_utc
    work = module_tmp / f"crl-{backend.name}"
    for leaf in (bad, good):
        rc, out = verify(work, server, leaf.certificate_chain, before, leaf.certificate)
        assert rc == 0 and out.strip().endswith(": OK"), out

    resp = revoke(server, bad_id, {"reason": "keyCompromise"})
    assert (resp.status, resp.json) == (200, {"message": "success"}), resp
    shown = show(client, bad_id)
    assert (shown.status, shown.revoke_reason) == ("REVOKED", "keyCompromise"), shown
    assert shown.push_support == "OFF"

    serial = format(x509.load_pem_x509_certificate(bad.certificate.encode()).serial_number, "x")
    after = wait_for_serial(url, serial)
    assert crl_number(after) > crl_number(before)
    rc, out = verify(work, server, bad.certificate_chain, after, bad.certificate)
    assert rc != 0 and "certificate revoked" in out, out
    rc, out = verify(work, server, good.certificate_chain, after, good.certificate)
    assert rc == 0 and out.strip().endswith(": OK"), out
    # The CRL entry carries the RFC 5280 reason the text named.
    entry = x509.load_der_x509_crl(after).get_revoked_certificate_by_serial_number(int(serial, 16))
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == \
        x509.ReasonFlags.key_compromise

    # A revoked certificate is not pushed (refused before any target is touched), nor revoked
    # again; the good one still pushes.
    pushed = server.v2("POST", f"/scm/cert/{bad_id}/push",
                       {"service_type": "ELB", "remote_project": "cn-north-4"})
    assert_error(pushed, 400, "SCM.0010")
    assert "REVOKED" in pushed.json["error_msg"], pushed
    ok = server.v2("POST", f"/scm/cert/{good_id}/push",
                   {"service_type": "ELB", "remote_project": "cn-north-4"})
    assert ok.status == 200, ok
    assert_error(revoke(server, bad_id, {"reason": "again"}), 400, "SCM.0010")

    # Audited like every change.
    events = json.loads(server.admin(
        "audit", "--output", "json", "--operation", "V2RevokeCertificate", parse=False,
    ).stdout)
    outcomes = {(e["outcome"], tuple(e["targets"])) for e in events}
    assert ("ok", (bad_id,)) in outcomes and ("SCM.0010", (bad_id,)) in outcomes, events


def test_refused_revocations_change_nothing(server, client):
    cert_id = issue(client, "kept.e2e.test")
    before = show(client, cert_id).to_json_object()
    for body, field in (({}, "reason"), ({"reason": "x" * 64}, "reason"), ({"reason": 7}, "reason"),
                        (None, "body")):
        assert_error(revoke(server, cert_id, body), 400, "SCM.0005", field=field)
    # Another account: its own project and credential see no such certificate; the admin's
    # credential cannot use another account's project.
    other = server.create_account("revoke-other")
    other_cred = server.create_credential(other["domain_id"])
    other_cred["project_id"] = other["project_id"]
    assert_error(revoke(server, cert_id, {"reason": "mine"}, creds=other_cred), 404, "SCM.0020")
    assert_error(revoke(server, cert_id, {"reason": "x"}, project_id=other["project_id"]),
                 403, "SCM.0003")
    # Unauthenticated: refused before the body is read.
    anonymous = server.raw("POST", f"/v2/{server.credentials['project_id']}/scm/cert/{cert_id}/revoke",
                           headers={"Content-Type": "application/json"},
                           data=b'{"reason": "x"}')
    assert_error(anonymous, 401, "APIGW.0301")
    # Not ISSUED: a certificate still PAID.
    paid = client.subscribe_certificate(SubscribeCertificateRequest(body=PurchaseCertificateRequestBody(
        cert_brand="GLOBALSIGN", cert_type="DV_SSL_CERT", domain_type="SINGLE_DOMAIN",
        effective_time=1, domain_numbers=1, order_number=1, agree_privacy_protection=True,
    ))).cert[0].cert_id
    assert_error(revoke(server, paid, {"reason": "x"}), 400, "SCM.0010")
    assert show(client, paid).status == "PAID"
    after = show(client, cert_id).to_json_object()
    assert after == before and after["status"] == "ISSUED" and after["revoke_reason"] is None, after
    # An unknown CRL is 404.
    r = requests.get(server.url + "/crl/" + "0" * 40 + ".crl", timeout=10)
    assert r.status_code == 404 and r.json()["error_code"] == "APIGW.0101", r.text


def test_the_cli_revokes_after_a_confirmation(server, client, openscm_bin, module_tmp, backend):
    home = module_tmp / f"revoke-cli-{backend.name}"
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSCM_")}
    env.update({"OPENSCM_CLI_CONFIG": str(home / "credentials.toml"), "NO_COLOR": "1"})

    def cli(*args, input=None):
        return subprocess.run([openscm_bin, *args], capture_output=True, text=True, timeout=60,
                              env=env, input=input, cwd=home)

    assert cli("configure", "--from-credentials", str(server.credentials_path)).returncode == 0
    cert_id = issue(client, "cli-revoke.e2e.test")
    # Not confirmed (no answer, or another answer): nothing is revoked, exit code 2.
    for answer in ("", "no\n"):
        proc = cli("cert", "revoke", cert_id, "--reason", "superseded", input=answer)
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        assert cert_id in proc.stderr and "cannot be undone" in proc.stderr, proc.stderr
        assert show(client, cert_id).status == "ISSUED"
    # Confirmed on stdin.
    proc = cli("cert", "revoke", cert_id, "--reason", "superseded", "-o", "json", input="yes\n")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert json.loads(proc.stdout) == {"certificate_id": cert_id, "status": "REVOKED",
                                       "reason": "superseded"}
    assert (show(client, cert_id).status, show(client, cert_id).revoke_reason) == ("REVOKED", "superseded")
    # --yes asks nothing; a refusal of the server is exit code 1 with its code.
    other = issue(client, "cli-revoke-yes.e2e.test")
    proc = cli("cert", "revoke", other, "--reason", "cessationOfOperation", "--yes")
    assert proc.returncode == 0 and "cannot be undone" not in proc.stderr, (proc.stdout, proc.stderr)
    assert show(client, other).status == "REVOKED"
    proc = cli("cert", "revoke", other, "--reason", "x", "--yes")
    assert proc.returncode == 1 and "SCM.0010" in proc.stderr, (proc.stdout, proc.stderr)
    shown = cli("cert", "show", other, "-o", "json")
    assert json.loads(shown.stdout)["revoke_reason"] == "cessationOfOperation", shown.stdout




def test_the_console_revokes_after_a_confirmation(server, client):
    cert_id = issue(client, "console-revoke.e2e.test")
    s = console_session(server)
    page = s.get(server.url + f"/console/certificates/{cert_id}")
    assert f'href="/console/certificates/{cert_id}/revoke"' in page.text, page.text
    form = s.get(server.url + f"/console/certificates/{cert_id}/revoke")
    assert form.status_code == 200 and "cannot be undone" in form.text, form.text
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', form.text).group(1)
    target = server.url + f"/console/certificates/{cert_id}/revoke"
    # Without the box ticked, with a bad CSRF token, or from another site: nothing is revoked.
    r = s.post(target, data={"csrf": csrf, "reason": "superseded"}, allow_redirects=False)
    assert r.status_code == 400 and "tick the box" in r.text, r.text
    r = s.post(target, data={"csrf": "0" * 64, "reason": "superseded", "confirm": "yes"},
               allow_redirects=False)
    assert r.status_code == 403, r.text
    r = s.post(target, data={"csrf": csrf, "reason": "superseded", "confirm": "yes"},
               headers={"Origin": "https://evil.example"}, allow_redirects=False)
    assert r.status_code == 403, r.text
    assert show(client, cert_id).status == "ISSUED"
    # Confirmed: revoked, back to the certificate's page, which shows it.
    r = s.post(target, data={"csrf": csrf, "reason": "superseded", "confirm": "yes"},
               allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == f"/console/certificates/{cert_id}", r.text
    shown = show(client, cert_id)
    assert (shown.status, shown.revoke_reason) == ("REVOKED", "superseded")
    page = s.get(server.url + f"/console/certificates/{cert_id}")
    assert "Revocation reason" in page.text and "superseded" in page.text
    assert "/revoke" not in page.text, "no revoke step for a revoked certificate"
    assert s.get(target).status_code == 400
    events = json.loads(server.admin(
        "audit", "--output", "json", "--operation", "ConsoleRevokeCertificate", parse=False,
    ).stdout)
    assert [e["outcome"] for e in events if e["targets"] == [cert_id]].count("ok") == 1, events


def test_every_server_of_a_postgres_cluster_serves_the_same_crl(openscm_bin, pg_base, tmp_path):
    """Two servers on one PostgreSQL: a certificate revoked through one is on the CRL the other
    serves (the CRL and its number are stored, not kept per server), byte for byte."""
    from conftest import Backend, ServerFactory

    backend = Backend("postgres", pg_base)
    factory = ServerFactory(openscm_bin, tmp_path, backend)
    try:
        a, b, creds = factory.cluster_of_two("crl-")
        client = a.sdk_client(creds)
        cert_id = issue(client, "cluster.e2e.test")
        leaf = export(client, cert_id).certificate
        path = "/crl/" + crl_url_of(leaf).rsplit("/crl/", 1)[1]
        assert crl_url_of(leaf) == a.url + path
        serial = format(x509.load_pem_x509_certificate(leaf.encode()).serial_number, "x")
        assert revoke(a, cert_id, {"reason": "superseded"}, creds=creds).status == 200
        wait_for_serial(b.url + path, serial)
        # Both serve the stored CRL: the same bytes (a signing between the two fetches, e.g. the
        # one the second server's start queued, is waited out).
        seen = {}

        def same():
            seen["a"], seen["b"] = fetch_crl(a.url + path), fetch_crl(b.url + path)
            return seen["a"] == seen["b"] and serial in crl_serials(seen["a"])

        wait_until(same, 10, "both servers to serve one CRL listing the serial",
                   seen=lambda: f"CRL numbers {crl_number(seen['a'])} and {crl_number(seen['b'])}")
    finally:
        factory.close()
        backend.cleanup()
