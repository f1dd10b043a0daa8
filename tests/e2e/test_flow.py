"""The happy path, once per storage backend (sqlite, postgres):

buy (SDK v3) -> save (v2) -> apply (SDK v3) -> show -> export -> push to a real nginx (v2)
-> push-history; v2 purchase + v2 complete with a CSR; v2 save + complete with no body;
token auth; no private key at rest; restart keeps everything.
"""

import re
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from huaweicloudsdkscm.v3 import (
    ApplyCertificateRequest,
    ApplyCertificateRequestBody,
    ExportCertificateRequest,
    ListCertificatesRequest,
    PurchaseCertificateRequestBody,
    ShowCertificateRequest,
    SubscribeCertificateRequest,
)

from e2e_helpers import (
    APIGW_AUTH_CODE,
    CERT_ID,
    HEX32,
    ORDER_ID,
    SHOW_TIME,
    assert_error,
    dns_sans,
    load_certs,
    make_csr,
    now_ms,
    openssl_verify,
    sha1_hex,
    show_time,
    spki,
    subject_attr,
)

DOMAIN = "www.e2e.test"
SANS = "api.e2e.test;e2e.test"
ALL_NAMES = {"www.e2e.test", "api.e2e.test", "e2e.test"}

COMPANY = {
    "company_name": "OpenSCM E2E Org",
    "company_unit": "Test Dept",
    "company_province": "Sichuan",
    "company_city": "Chengdu",
    "country": "CN",
}
APPLICANT = {
    "applicant_name": "Test Applicant",
    "applicant_phone": "13212345678",
    "applicant_email": "applicant@e2e.test",
    "contact_name": "Test Contact",
    "contact_phone": "13512345678",
    "contact_email": "contact@e2e.test",
}


def application(domain, sans="", csr="", **extra):
    body = {"domain": domain, "sans": sans, "csr": csr, **COMPANY, **APPLICANT,
            "agree_privacy_protection": True}
    body.update(extra)
    return body


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server(servers, nginx_target_toml):
    """One server per backend with a push target (ELB, cn-north-4) that deploys to nginx."""
    return servers.bootstrap_then_configure("flow", nginx_target_toml)


@pytest.fixture(scope="module")
def creds(server):
    return server.credentials


@pytest.fixture(scope="module")
def client(server, creds):
    return server.sdk_client(creds)


def show(client, cert_id):
    return client.show_certificate(ShowCertificateRequest(certificate_id=cert_id))


def export(client, cert_id):
    return client.export_certificate(ExportCertificateRequest(certificate_id=cert_id))


@pytest.fixture(scope="module")
def issued(server, client):
    """buy (SDK) -> save (v2) -> apply (SDK, EC_P256); returns the ids."""
    bought = client.subscribe_certificate(SubscribeCertificateRequest(body=PurchaseCertificateRequestBody(
        cert_brand="GLOBALSIGN", cert_type="OV_SSL_CERT", domain_type="MULTI_DOMAIN",
        effective_time=1, domain_numbers=3, order_number=1, agree_privacy_protection=True,
    )))
    assert ORDER_ID.match(bought.order_id or ""), bought
    assert len(bought.cert) == 1, bought
    cert_id = bought.cert[0].cert_id
    assert CERT_ID.match(cert_id), cert_id
    assert show(client, cert_id).status == "PAID"

    resp = server.v2("POST", f"/scm/cert/{cert_id}/save", application(DOMAIN, SANS))
    assert (resp.status, resp.json) == (200, {"request_info": "success"}), resp
    assert show(client, cert_id).status == "PAID"

    applied = client.apply_certificate(ApplyCertificateRequest(
        certificate_id=cert_id,
        body=ApplyCertificateRequestBody(
            domain=DOMAIN, sans=SANS, **COMPANY, **APPLICANT,
            agree_privacy_protection=True, domain_method="DNS", key_algorithm="EC_P256",
        ),
    ))
    assert applied.request_info == "success"
    return {"cert_id": cert_id, "order_id": bought.order_id}


@pytest.fixture(scope="module")
def exported(client, issued):
    e = export(client, issued["cert_id"])
    leaf = load_certs(e.certificate)
    chain = load_certs(e.certificate_chain)
    entire = load_certs(e.entire_certificate)
    key = serialization.load_pem_private_key(e.private_key.encode(), password=None)
    return {"resp": e, "leaf": leaf, "chain": chain, "entire": entire, "key": key}


# --------------------------------------------------------------------------- tests


def test_bootstrap_files(server, creds):
    assert set(creds) >= {"access_key", "secret_key", "domain_id", "project_id", "endpoint"}, creds
    assert HEX32.match(creds["domain_id"]) and HEX32.match(creds["project_id"]), creds
    assert creds["access_key"] and creds["secret_key"] and creds["endpoint"]
    assert server.credentials_path.stat().st_mode & 0o777 == 0o600
    assert load_certs(server.ca_root_path.read_bytes()), "ca-root.pem holds no certificate"


def test_show_issued(client, issued, exported):
    s = show(client, issued["cert_id"])
    assert s.id == issued["cert_id"]
    assert s.order_id == issued["order_id"]
    assert s.status == "ISSUED"
    assert s.domain == DOMAIN
    assert set((s.sans or "").split(";")) == {"api.e2e.test", "e2e.test"}
    assert re.fullmatch(r"[0-9a-f]{40}", s.fingerprint or ""), s.fingerprint
    leaf = exported["leaf"][0]
    assert s.fingerprint == sha1_hex(leaf), "fingerprint is not the SHA-1 of the leaf"
    assert SHOW_TIME.match(s.not_before or "") and SHOW_TIME.match(s.not_after or ""), (s.not_before, s.not_after)
    assert s.not_before == show_time(leaf.not_valid_before_utc)
    assert s.not_after == show_time(leaf.not_valid_after_utc)


def test_list_contains_issued(client, issued):
    listed = client.list_certificates(ListCertificatesRequest(limit=50, offset=0))
    by_id = {c.id: c for c in listed.certificates}
    assert issued["cert_id"] in by_id, listed
    assert by_id[issued["cert_id"]].status == "ISSUED"
    assert by_id[issued["cert_id"]].domain == DOMAIN
    assert issued["cert_id"] in [c.id for c in listed.certificates] or listed.total_count > 10


def test_export_verifies(server, exported, tmp_path):
    e, leaf, chain, entire, key = (exported[k] for k in ("resp", "leaf", "chain", "entire", "key"))
    assert len(leaf) == 1, "certificate must be the leaf only"
    assert len(chain) >= 1, "certificate_chain must hold the intermediate"
    assert entire == leaf + chain, "entire_certificate must be leaf followed by the chain"
    openssl_verify(tmp_path, server.ca_root_path, e.certificate, e.certificate_chain)

    assert "BEGIN PRIVATE KEY" in e.private_key, "private_key must be PKCS#8 PEM"
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    assert spki(key) == spki(leaf[0]), "private key does not match the leaf"

    cert = leaf[0]
    assert subject_attr(cert, NameOID.ORGANIZATION_NAME) == [COMPANY["company_name"]]
    assert subject_attr(cert, NameOID.COUNTRY_NAME) == ["CN"]
    assert dns_sans(cert) == ALL_NAMES


def test_push_to_nginx_and_history(server, nginx, issued, exported):
    cert_id = issued["cert_id"]
    leaf = exported["leaf"][0]
    leaf_der = leaf.public_bytes(serialization.Encoding.DER)
    assert nginx.served_cert(DOMAIN) != leaf_der

    resp = server.v2("GET", f"/scm/cert/{cert_id}/push-history")
    assert resp.status == 200 and resp.json["push_history_list"] == [], resp

    before = now_ms()
    resp = server.v2("POST", f"/scm/cert/{cert_id}/push", {"service_type": "ELB", "remote_project": "cn-north-4"})
    assert (resp.status, resp.json) == (200, {"message": "success"}), resp

    # files written by the push target: full chain + key (0600)
    written = load_certs(nginx.cert_path.read_bytes())
    assert written == exported["leaf"] + exported["chain"]
    assert nginx.key_path.stat().st_mode & 0o777 == 0o600
    written_key = serialization.load_pem_private_key(nginx.key_path.read_bytes(), password=None)
    assert spki(written_key) == spki(leaf)

    # nginx serves it (poll: a reload is not instant), and it verifies against the root
    nginx.wait_for_cert(DOMAIN, leaf_der)
    nginx.wait_for_cert(DOMAIN, leaf_der, cafile=str(server.ca_root_path))
    nginx.wait_for_cert("api.e2e.test", leaf_der, cafile=str(server.ca_root_path))

    resp = server.v2("GET", f"/scm/cert/{cert_id}/push-history")
    assert resp.status == 200, resp
    history = resp.json["push_history_list"]
    assert len(history) == 1, history
    entry = history[0]
    assert entry["push_service"] == "ELB" and entry["push_remote_project"] == "cn-north-4", entry
    assert isinstance(entry["push_time"], str) and entry["push_time"].isdigit(), entry
    assert before - 1000 <= int(entry["push_time"]) <= now_ms() + 1000, entry
    assert now_ms() - int(entry["push_time"]) < 60_000

    time.sleep(0.01)
    resp = server.v2("POST", f"/scm/cert/{cert_id}/push", {"service_type": "ELB", "remote_project": "cn-north-4"})
    assert (resp.status, resp.json) == (200, {"message": "success"}), resp
    history = server.v2("GET", f"/scm/cert/{cert_id}/push-history").json["push_history_list"]
    assert len(history) == 2, history
    times = [int(h["push_time"]) for h in history]
    assert times[0] > times[1], f"not newest first: {history}"
    assert all(h["push_service"] == "ELB" and h["push_remote_project"] == "cn-north-4" for h in history)
    nginx.wait_for_cert(DOMAIN, leaf_der)


def _v2_purchase(server, domain_type, domain_numbers, order_number=1):
    resp = server.v2("POST", "/scm/cert/purchase", {
        "cert_brand": "GLOBALSIGN", "cert_type": "OV_SSL_CERT", "domain_type": domain_type,
        "effective_time": 1, "domain_numbers": domain_numbers, "order_number": order_number,
        "agree_privacy_protection": True,
    })
    assert resp.status == 200, resp
    assert ORDER_ID.match(resp.json["order_id"]), resp
    ids = [c["cert_id"] for c in resp.json["cert"]]
    assert len(ids) == order_number and all(CERT_ID.match(i) for i in ids), resp
    return ids


def test_v2_purchase_complete_with_csr(server, client, tmp_path):
    (cert_id,) = _v2_purchase(server, "MULTI_DOMAIN", 2)
    assert show(client, cert_id).status == "PAID"

    names = ["csr.e2e.test", "alt.csr.e2e.test"]
    csr_pem, csr_key = make_csr(names, rsa_bits=2048)
    resp = server.v2("POST", f"/scm/cert/{cert_id}/complete", application(names[0], names[1], csr_pem))
    assert (resp.status, resp.json) == (200, {"request_info": "success"}), resp

    s = show(client, cert_id)
    assert s.status == "ISSUED" and s.domain == names[0], s
    e = export(client, cert_id)
    assert not e.private_key, "no private key may be exported when the user supplied the CSR"
    leaf = load_certs(e.certificate)[0]
    assert spki(leaf) == spki(csr_key), "leaf public key is not the CSR's"
    assert dns_sans(leaf) == set(names)
    openssl_verify(tmp_path, server.ca_root_path, e.certificate, e.certificate_chain)


def test_v2_save_then_complete_without_body(server, client, tmp_path):
    (cert_id,) = _v2_purchase(server, "SINGLE_DOMAIN", 1)
    resp = server.v2("POST", f"/scm/cert/{cert_id}/save", application("saved.e2e.test"))
    assert (resp.status, resp.json) == (200, {"request_info": "success"}), resp

    resp = server.v2("POST", f"/scm/cert/{cert_id}/complete")  # empty body: use the saved application
    assert (resp.status, resp.json) == (200, {"request_info": "success"}), resp

    s = show(client, cert_id)
    assert s.status == "ISSUED" and s.domain == "saved.e2e.test", s
    e = export(client, cert_id)
    leaf = load_certs(e.certificate)[0]
    assert dns_sans(leaf) == {"saved.e2e.test"}
    assert subject_attr(leaf, NameOID.ORGANIZATION_NAME) == [COMPANY["company_name"]]
    assert subject_attr(leaf, NameOID.COUNTRY_NAME) == ["CN"]
    key = serialization.load_pem_private_key(e.private_key.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048, "default key must be RSA_2048"
    assert spki(key) == spki(leaf)
    openssl_verify(tmp_path, server.ca_root_path, e.certificate, e.certificate_chain)


def test_token_auth(server, creds, issued):
    resp = server.v3("POST", "/v3/auth/tokens")
    assert resp.status == 201, resp
    token = resp.headers.get("X-Subject-Token")
    assert token, f"no X-Subject-Token: {dict(resp.headers)}"

    resp = server.raw("GET", "/v3/scm/certificates?limit=50&offset=0", headers={"X-Auth-Token": token})
    assert resp.status == 200, resp
    assert issued["cert_id"] in {c["id"] for c in resp.json["certificates"]}, resp

    resp = server.raw("GET", f"/v3/scm/certificates/{issued['cert_id']}", headers={"X-Auth-Token": token})
    assert resp.status == 200 and resp.json["status"] == "ISSUED", resp

    # a token request with a JSON body works as well
    resp = server.v3("POST", "/v3/auth/tokens", {"auth": {"identity": {"methods": ["hw_ak_sk"]}}})
    assert resp.status == 201 and resp.headers.get("X-Subject-Token"), resp

    bad = server.raw("GET", "/v3/scm/certificates", headers={"X-Auth-Token": "garbage" * 8})
    assert_error(bad, 401, APIGW_AUTH_CODE)
    mid = len(token) // 2
    tampered = token[:mid] + ("A" if token[mid] != "A" else "B") + token[mid + 1:]
    assert_error(server.raw("GET", "/v3/scm/certificates", headers={"X-Auth-Token": tampered}),
                 401, APIGW_AUTH_CODE)


def _secret_markers(key) -> list:
    """Byte strings that would betray the plaintext private key."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    body_lines = [ln for ln in pem.splitlines() if ln and not ln.startswith(b"-----")]
    markers = [b"PRIVATE KEY", body_lines[1] if len(body_lines) > 1 else body_lines[0]]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        scalar = key.private_numbers().private_value.to_bytes(32, "big")
        markers += [scalar, scalar.hex().encode()]
    return markers


def test_no_private_key_at_rest(server, backend, exported):
    markers = _secret_markers(exported["key"])
    if backend.name == "sqlite":
        db = server.data_dir / "openscm.db"
        assert db.is_file(), f"no SQLite database at {db}: {sorted(p.name for p in server.data_dir.iterdir())}"
        files = sorted(server.data_dir.glob("openscm.db*"))
        blobs = {f.name: f.read_bytes() for f in files}
    else:
        blobs = {"pg_dump": backend.pg.dump(server.database_url)}
        assert b"CREATE TABLE" in blobs["pg_dump"], "pg_dump of the server's database holds no tables"
    for name, blob in blobs.items():
        for marker in markers:
            assert marker not in blob, f"{name} contains private key material ({marker[:20]!r}...)"


def test_restart_keeps_everything(server, client, creds, issued, exported):
    """Last in this module: restart on the same data dir/database."""
    server.restart()
    after = server.credentials
    for k in ("access_key", "secret_key", "domain_id", "project_id"):
        assert after[k] == creds[k], f"{k} changed across restart"
    client = server.sdk_client(after)
    assert show(client, issued["cert_id"]).status == "ISSUED"
    e = export(client, issued["cert_id"])
    assert load_certs(e.certificate) == exported["leaf"]
    key = serialization.load_pem_private_key(e.private_key.encode(), password=None)
    assert spki(key) == spki(exported["key"]), "private key did not survive the restart"
    assert key.private_numbers() == exported["key"].private_numbers()
    history = server.v2("GET", f"/scm/cert/{issued['cert_id']}/push-history")
    assert history.status == 200, history


def test_sdk_v3_push_and_refusals(server, client, issued, nginx):
    """The SDK's own push_certificate (v3): to the configured ELB target it succeeds and is in the
    history; to services or regions without a target it is refused with SCM.0030."""
    from huaweicloudsdkcore.exceptions import exceptions
    from huaweicloudsdkscm.v3 import PushCertificateRequest, PushCertificateRequestBody

    cert_id = issued["cert_id"]
    before = server.v2("GET", f"/scm/cert/{cert_id}/push-history").json["push_history_list"]
    client.push_certificate(PushCertificateRequest(
        certificate_id=cert_id,
        body=PushCertificateRequestBody(target_project="cn-north-4", target_service="ELB")))
    after = server.v2("GET", f"/scm/cert/{cert_id}/push-history").json["push_history_list"]
    assert len(after) == min(len(before) + 1, 10)
    assert after[0]["push_service"] == "ELB" and after[0]["push_remote_project"] == "cn-north-4"
    for body in (PushCertificateRequestBody(target_project="cn-north-4", target_service="waf"),
                 PushCertificateRequestBody(target_project="cn-east-3", target_service="ELB"),
                 PushCertificateRequestBody(target_service="CDN")):
        with pytest.raises(exceptions.ClientRequestException) as e:
            client.push_certificate(PushCertificateRequest(certificate_id=cert_id, body=body))
        assert (e.value.status_code, e.value.error_code) == (400, "SCM.0030"), body


def test_sdk_list_filters_and_pages(client, issued):
    """ListCertificates with the SDK's parameters: status filter, sort, paging past the end."""
    issued_only = client.list_certificates(ListCertificatesRequest(
        limit=10, offset=0, status="ISSUED", sort_key="certExpiredTime", sort_dir="ASC",
        deploy_support=True, enterprise_project_id="all", owned_by_self=True))
    assert issued_only.total_count >= 1
    assert all(c.status == "ISSUED" and c.deploy_support for c in issued_only.certificates)
    assert issued["cert_id"] in [c.id for c in issued_only.certificates] or issued_only.total_count > 10
    paid = client.list_certificates(ListCertificatesRequest(limit=50, status="PAID"))
    assert issued["cert_id"] not in [c.id for c in paid.certificates]
    past_end = client.list_certificates(ListCertificatesRequest(limit=10, offset=1000))
    assert past_end.certificates == [] and past_end.total_count >= 1
    by_name = client.list_certificates(ListCertificatesRequest(limit=10, content="www.e2e.test"))
    assert issued["cert_id"] in [c.id for c in by_name.certificates]


def test_sdk_region_flow_learns_its_domain_id_from_the_iam_shim(server, creds, issued, monkeypatch):
    """GlobalCredentials without a domain id + with_region: the SDK first asks IAM
    (GET /v3/auth/domains) for its domain id; OpenSCM answers it, and the SDK then works."""
    from huaweicloudsdkcore.auth.credentials import GlobalCredentials
    from huaweicloudsdkcore.region.region import Region
    from huaweicloudsdkscm.v3 import ScmClient

    monkeypatch.setenv("HUAWEICLOUD_SDK_IAM_ENDPOINT", server.url)
    client = (ScmClient.new_builder()
              .with_credentials(GlobalCredentials(creds["access_key"], creds["secret_key"]))
              .with_region(Region("cn-north-4", server.url)).build())
    listed = client.list_certificates(ListCertificatesRequest(limit=10))
    assert issued["cert_id"] in [c.id for c in listed.certificates] or listed.total_count > 10
