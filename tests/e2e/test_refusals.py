"""What the server must refuse, once per storage backend: bad input (SCM.0005 naming the
field, nothing written; control and bidirectional characters in any text field), policy
(SCM.0015), wrong status (SCM.0010), other tenants (their certificates answer exactly as unknown
ids, 404 SCM.0020; their projects 403 SCM.0003), authentication (401 APIGW.03xx), unknown
ids/routes, push failures (SCM.0030 / SCM.0028 with the deployed files left alone), X-Request-Id
everywhere, and unknown config keys at start."""

import datetime as dt
import json
import shutil
import subprocess

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkscm.v3 import (
    ApplyCertificateRequest,
    ApplyCertificateRequestBody,
    PurchaseCertificateRequestBody,
    ShowCertificateRequest,
    SubscribeCertificateRequest,
)

from e2e_helpers import (
    APIGW_AUTH_CODE,
    CERT_ID,
    HEX32,
    Server,
    assert_error,
    assert_request_id,
    make_csr,
    push_target_toml,
    self_signed_pem,
    sign_sdk_request,
)

DELETE = object()  # marker: drop this key from the body

BUY = {
    "cert_brand": "GLOBALSIGN", "cert_type": "OV_SSL_CERT", "domain_type": "MULTI_DOMAIN",
    "effective_time": 1, "domain_numbers": 3, "order_number": 1, "agree_privacy_protection": True,
}
COMPANY = {
    "company_name": "OpenSCM E2E Org", "company_unit": "Test Dept", "company_province": "Sichuan",
    "company_city": "Chengdu", "country": "CN",
}
APPLICANT = {
    "applicant_name": "Test Applicant", "applicant_phone": "13212345678",
    "applicant_email": "applicant@e2e.test",
}
REFUSED_DOMAIN = "refused.e2e.test"


def merged(base, overrides):
    body = dict(base)
    for k, v in overrides.items():
        if v is DELETE:
            body.pop(k, None)
        else:
            body[k] = v
    return body


def application(domain, sans="", /, **extra):
    return merged({"domain": domain, "sans": sans, "csr": "", **COMPANY, **APPLICANT,
                   "agree_privacy_protection": True}, extra)


def apply_body(domain, sans="", /, **extra):
    return merged(application(domain, sans), {"domain_method": "DNS", "key_algorithm": "EC_P256", **extra})


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def targets(module_tmp, backend):
    """Two push targets' files: 'ok' (reload `true`) and 'fail' (reload `false`), the latter
    pre-filled with a certificate and key that a failed push must leave alone."""
    root = module_tmp / f"targets-{backend.name}"
    paths = {}
    for name in ("ok", "fail"):
        d = root / name
        d.mkdir(parents=True)
        paths[name] = (d / "live.crt", d / "live.key")
    cert_pem, key_pem = self_signed_pem("previously deployed", ["prev.e2e.test"])
    paths["fail"][0].write_bytes(cert_pem)
    paths["fail"][1].write_bytes(key_pem)
    paths["fail"][1].chmod(0o600)
    return paths


@pytest.fixture(scope="module")
def server(servers, targets):
    true_bin, false_bin = shutil.which("true"), shutil.which("false")
    assert true_bin and false_bin

    def make(creds):
        return push_target_toml(
            "e2e-ok", account=creds["domain_id"], service="ELB", region="cn-north-4",
            cert_path=targets["ok"][0], key_path=targets["ok"][1], reload_command=[true_bin],
        ) + "\n" + push_target_toml(
            "e2e-fail", account=creds["domain_id"], service="ELB", region="cn-south-1",
            cert_path=targets["fail"][0], key_path=targets["fail"][1], reload_command=[false_bin],
        )

    return servers.bootstrap_then_configure("refusals", make)


@pytest.fixture(scope="module")
def creds(server):
    return server.credentials


@pytest.fixture(scope="module")
def client(server, creds):
    return server.sdk_client(creds)


def cert_count(server, creds=None) -> int:
    resp = server.v3("GET", "/v3/scm/certificates", creds=creds, query=[("limit", 10), ("offset", 0)])
    assert resp.status == 200, resp
    assert isinstance(resp.json.get("certificates"), list), resp
    return resp.json["total_count"]


def status_of(server, cert_id, creds=None) -> dict:
    resp = server.v3("GET", f"/v3/scm/certificates/{cert_id}", creds=creds)
    assert resp.status == 200, resp
    return resp.json


def buy(server, creds=None, **overrides) -> list:
    resp = server.v3("POST", "/v3/scm/certificates/buy", merged(BUY, overrides), creds=creds)
    assert resp.status == 200, resp
    ids = [c["cert_id"] for c in resp.json["cert"]]
    assert all(CERT_ID.match(i) for i in ids), resp
    return ids


def issue(server, domain, sans="", creds=None, **buy_overrides) -> str:
    (cert_id,) = buy(server, creds=creds, **buy_overrides)
    resp = server.v3("POST", f"/v3/scm/certificates/{cert_id}/apply", apply_body(domain, sans), creds=creds)
    assert (resp.status, resp.json) == (200, {"request_info": "success"}), resp
    assert status_of(server, cert_id, creds)["status"] == "ISSUED"
    return cert_id


@pytest.fixture(scope="module")
def paid_single(server):
    (cert_id,) = buy(server, domain_type="SINGLE_DOMAIN", domain_numbers=1)
    return cert_id


@pytest.fixture(scope="module")
def paid_multi2(server):
    (cert_id,) = buy(server, domain_type="MULTI_DOMAIN", domain_numbers=2)
    return cert_id


@pytest.fixture(scope="module")
def issued_single(server):
    return issue(server, "issued.e2e.test", domain_type="SINGLE_DOMAIN", domain_numbers=1)


@pytest.fixture(scope="module")
def other(server):
    """A second account with its own credential, made with the admin CLI while the server runs."""
    account = server.create_account("e2e-other")
    cred = server.create_credential(account["domain_id"])
    assert cred["project_id"] == account["project_id"], (account, cred)
    return cred


# --------------------------------------------------------------------------- bad input


V3_BUY_REFUSALS = [
    ("agree_false", {"agree_privacy_protection": False}, "agree_privacy_protection"),
    ("order_number_0", {"order_number": 0}, "order_number"),
    ("order_number_101", {"order_number": 101}, "order_number"),
    ("effective_time_0", {"effective_time": 0}, "effective_time"),
    ("effective_time_4", {"effective_time": 4}, "effective_time"),
    ("single_domain_2", {"domain_type": "SINGLE_DOMAIN", "domain_numbers": 2}, "domain_numbers"),
    # The v3 page's range is 1..100 for every domain type: 0 is refused, MULTI_DOMAIN 1 is not.
    ("multi_domain_0", {"domain_type": "MULTI_DOMAIN", "domain_numbers": 0}, "domain_numbers"),
    ("bad_cert_type", {"cert_type": "CHEAP_SSL_CERT"}, "cert_type"),
    ("bad_domain_type", {"domain_type": "ANY_DOMAIN"}, "domain_type"),
    ("eleven_tags", {"tags": [{"key": f"k{i}", "value": "v"} for i in range(11)]}, "tags"),
    ("order_number_string", {"order_number": "x"}, "order_number"),
    ("agree_string", {"agree_privacy_protection": "true"}, "agree_privacy_protection"),
    ("missing_cert_brand", {"cert_brand": DELETE}, "cert_brand"),
]


@pytest.mark.parametrize("overrides,field", [c[1:] for c in V3_BUY_REFUSALS], ids=[c[0] for c in V3_BUY_REFUSALS])
def test_v3_buy_refused(server, overrides, field):
    before = cert_count(server)
    resp = server.v3("POST", "/v3/scm/certificates/buy", merged(BUY, overrides))
    assert_error(resp, 400, "SCM.0005", field)
    assert cert_count(server) == before, "a refused buy wrote certificates"


def test_v3_buy_refused_through_sdk(server, client):
    before = cert_count(server)
    with pytest.raises(ClientRequestException) as info:
        client.subscribe_certificate(SubscribeCertificateRequest(body=PurchaseCertificateRequestBody(
            **merged(BUY, {"agree_privacy_protection": False}))))
    err = info.value
    assert (err.status_code, err.error_code) == (400, "SCM.0005")
    assert "agree_privacy_protection" in err.error_msg
    assert HEX32.match(err.request_id or ""), err.request_id
    assert cert_count(server) == before


@pytest.mark.parametrize("api", ["v3", "v2"])
def test_malformed_json_refused(server, api):
    before = cert_count(server)
    raw = b'{"cert_brand": "GLOBALSIGN", "order_number": 1,'
    if api == "v3":
        resp = server.v3("POST", "/v3/scm/certificates/buy", raw)
    else:
        resp = server.v2("POST", "/scm/cert/purchase", raw)
    assert_error(resp, 400, "SCM.0005")
    assert cert_count(server) == before


def test_v3_accepts_three_years(server):
    before = cert_count(server)
    ids = buy(server, effective_time=3)
    assert len(ids) == 1
    assert cert_count(server) == before + 1
    assert status_of(server, ids[0])["status"] == "PAID"


V2_PURCHASE_REFUSALS = [
    ("effective_time_3", {"effective_time": 3}, "effective_time"),
    ("order_number_0", {"order_number": 0}, "order_number"),
    ("order_number_1001", {"order_number": 1001}, "order_number"),
    ("agree_false", {"agree_privacy_protection": False}, "agree_privacy_protection"),
    ("multi_domain_1", {"domain_numbers": 1}, "domain_numbers"),
    ("bad_cert_type", {"cert_type": "BOGUS_SSL_CERT"}, "cert_type"),
]


@pytest.mark.parametrize("overrides,field", [c[1:] for c in V2_PURCHASE_REFUSALS],
                         ids=[c[0] for c in V2_PURCHASE_REFUSALS])
def test_v2_purchase_refused(server, overrides, field):
    before = cert_count(server)
    resp = server.v2("POST", "/scm/cert/purchase", merged(BUY, overrides))
    assert_error(resp, 400, "SCM.0005", field)
    assert cert_count(server) == before


def test_v2_purchase_accepts_101(server):
    """v2 allows order_number up to 1000 (v3 only 100)."""
    before = cert_count(server)
    resp = server.v2("POST", "/scm/cert/purchase", merged(BUY, {"order_number": 101, "effective_time": 2}))
    assert resp.status == 200, resp
    ids = [c["cert_id"] for c in resp.json["cert"]]
    assert len(ids) == 101 and len(set(ids)) == 101, "101 distinct certificate ids expected"
    assert all(CERT_ID.match(i) for i in ids)
    assert cert_count(server) == before + 101


SAVE_REFUSALS = [
    # v2 checks no e-mail form (its page's own example is `example.huawei.com`), only a length.
    ("long_email", {"applicant_email": "x" * 250 + "@e2e.test"}, "applicant_email"),
    ("country_CHN", {"country": "CHN"}, "country"),
    ("agree_false", {"agree_privacy_protection": False}, "agree_privacy_protection"),
    ("csr_names_mismatch", {"csr": "CSR"}, "csr"),
    ("missing_domain", {"domain": DELETE}, "domain"),
]


@pytest.mark.parametrize("overrides,field", [c[1:] for c in SAVE_REFUSALS], ids=[c[0] for c in SAVE_REFUSALS])
def test_v2_save_refused(server, paid_single, overrides, field):
    if overrides.get("csr") == "CSR":
        overrides = dict(overrides, csr=make_csr(["other.e2e.test"])[0])
    resp = server.v2("POST", f"/scm/cert/{paid_single}/save", application(REFUSED_DOMAIN, **overrides))
    assert_error(resp, 400, "SCM.0005", field)
    shown = status_of(server, paid_single)
    assert shown["status"] == "PAID"
    assert REFUSED_DOMAIN not in f"{shown.get('domain')} {shown.get('sans')}", "a refused save was stored"


def test_apply_bad_key_algorithm(server, paid_multi2):
    resp = server.v3("POST", f"/v3/scm/certificates/{paid_multi2}/apply",
                     apply_body("k.e2e.test", "k2.e2e.test", key_algorithm="RSA_1024"))
    assert_error(resp, 400, "SCM.0005", "key_algorithm")
    assert status_of(server, paid_multi2)["status"] == "PAID"


# --------------------------------------------------------------------------- issuance policy


def test_apply_outside_policy_waits_for_proof_through_sdk(server, client, paid_multi2):
    """A name outside the policy is not refused: the certificate waits for proof of control
    (CHECKING_DOMAIN, the record to publish in `authentification`); cancel-cert withdraws it."""
    client.apply_certificate(ApplyCertificateRequest(
        certificate_id=paid_multi2,
        body=ApplyCertificateRequestBody(**apply_body("www.example.com", "api.e2e.test")),
    ))
    shown = status_of(server, paid_multi2)
    assert shown["status"] == "CHECKING_DOMAIN"
    assert [a["record_name"] for a in shown["authentification"]] == ["_dnsauth.www.example.com"]
    resp = server.v3("POST", f"/v3/scm/certificates/{paid_multi2}/cancel-cert")
    assert resp.status == 200, resp
    assert status_of(server, paid_multi2)["status"] == "PAID"


@pytest.mark.parametrize("domain,sans", [
    ("ok.e2e.test", "*.co.uk"),                # a wildcard directly under a public suffix
    ("a.e2e.test", "b.e2e.test;c.e2e.test"),   # 3 names on a 2-domain certificate
], ids=["wildcard_under_public_suffix", "too_many_names"])
def test_apply_domain_mismatch(server, paid_multi2, domain, sans):
    resp = server.v3("POST", f"/v3/scm/certificates/{paid_multi2}/apply", apply_body(domain, sans))
    assert_error(resp, 400, "SCM.0015")
    assert status_of(server, paid_multi2)["status"] == "PAID"


def test_apply_single_domain_with_sans(server, paid_single):
    resp = server.v3("POST", f"/v3/scm/certificates/{paid_single}/apply",
                     apply_body("single.e2e.test", "extra.e2e.test"))
    assert_error(resp, 400, "SCM.0015")
    assert status_of(server, paid_single)["status"] == "PAID"


# --------------------------------------------------------------------------- wrong status


def test_push_paid_certificate(server, paid_single):
    resp = server.v2("POST", f"/scm/cert/{paid_single}/push", {"service_type": "ELB", "remote_project": "cn-north-4"})
    assert_error(resp, 400, "SCM.0010")


def test_apply_twice(server, issued_single):
    resp = server.v3("POST", f"/v3/scm/certificates/{issued_single}/apply", apply_body("issued.e2e.test"))
    assert_error(resp, 400, "SCM.0010")
    assert status_of(server, issued_single)["status"] == "ISSUED"


def test_save_on_issued(server, issued_single):
    resp = server.v2("POST", f"/scm/cert/{issued_single}/save", application("issued.e2e.test"))
    assert_error(resp, 400, "SCM.0010")


def test_complete_on_issued(server, issued_single):
    resp = server.v2("POST", f"/scm/cert/{issued_single}/complete", application("issued.e2e.test"))
    assert_error(resp, 400, "SCM.0010")


# --------------------------------------------------------------------------- other tenants


NEVER_ISSUED = "scs9999999999999"


def assert_forbidden_leaks_nothing(resp, *secrets):
    assert_error(resp, 403, "SCM.0003")
    for s in secrets:
        assert s not in resp.text, f"403 body leaks {s!r}: {resp.text}"
    assert "PRIVATE KEY" not in resp.text and "BEGIN CERTIFICATE" not in resp.text


def assert_answers_as_unknown(call, cert_id, *secrets):
    """`call(id)` with another account's certificate answers exactly what it answers with an id
    never issued: 404 SCM.0020 "Incorrect certificate ID.", the same bytes, nothing about it."""
    theirs, unknown = call(cert_id), call(NEVER_ISSUED)
    assert_error(theirs, 404, "SCM.0020")
    assert theirs.json == {"error_code": "SCM.0020", "error_msg": "Incorrect certificate ID."}, theirs
    assert (theirs.status, theirs.text, theirs.headers.get("Content-Type")) == (
        unknown.status, unknown.text, unknown.headers.get("Content-Type")), (theirs, unknown)
    for s in secrets:
        assert s not in theirs.text, f"404 body leaks {s!r}: {theirs.text}"


def test_other_account_sees_nothing(server, other):
    assert cert_count(server, other) == 0


def test_other_account_cannot_show_or_export(server, other, issued_single):
    assert_answers_as_unknown(
        lambda i: server.v3("GET", f"/v3/scm/certificates/{i}", creds=other), issued_single, "issued.e2e.test")
    assert_answers_as_unknown(
        lambda i: server.v3("POST", f"/v3/scm/certificates/{i}/export", creds=other), issued_single,
        "issued.e2e.test", "PRIVATE KEY", "BEGIN CERTIFICATE")

    errors = []
    for cert_id in (issued_single, NEVER_ISSUED):
        with pytest.raises(ClientRequestException) as info:
            server.sdk_client(other).show_certificate(ShowCertificateRequest(certificate_id=cert_id))
        errors.append((info.value.status_code, info.value.error_code, info.value.error_msg))
    assert errors[0] == errors[1] == (404, "SCM.0020", "Incorrect certificate ID."), errors


def test_other_account_cannot_push_or_read_history(server, other, issued_single):
    assert_answers_as_unknown(
        lambda i: server.v2("POST", f"/scm/cert/{i}/push",
                            {"service_type": "ELB", "remote_project": "cn-north-4"}, creds=other),
        issued_single, "issued.e2e.test")
    assert_answers_as_unknown(
        lambda i: server.v2("GET", f"/scm/cert/{i}/push-history", creds=other),
        issued_single, "issued.e2e.test")
    assert_answers_as_unknown(
        lambda i: server.v3("POST", f"/v3/scm/certificates/{i}/push",
                            {"target_service": "ELB", "target_project": "cn-north-4"}, creds=other),
        issued_single, "issued.e2e.test")


def test_other_account_cannot_apply_or_save(server, other, paid_single):
    assert_answers_as_unknown(
        lambda i: server.v3("POST", f"/v3/scm/certificates/{i}/apply",
                            apply_body("hijack.e2e.test"), creds=other), paid_single)
    assert_answers_as_unknown(
        lambda i: server.v2("POST", f"/scm/cert/{i}/save", application("hijack.e2e.test"), creds=other),
        paid_single)
    assert_answers_as_unknown(
        lambda i: server.v2("POST", f"/scm/cert/{i}/complete", application("hijack.e2e.test"),
                            creds=other), paid_single)
    assert_answers_as_unknown(
        lambda i: server.v2("POST", f"/scm/cert/{i}/complete", creds=other), paid_single)
    shown = status_of(server, paid_single)
    assert shown["status"] == "PAID"
    assert "hijack" not in f"{shown.get('domain')} {shown.get('sans')}"


def test_v2_path_with_other_project(server, creds, other, issued_single):
    """The first account's credential used on a path carrying the other account's project."""
    before_mine, before_other = cert_count(server), cert_count(server, other)
    resp = server.v2("POST", "/scm/cert/purchase", BUY, creds=creds, project_id=other["project_id"])
    assert_forbidden_leaks_nothing(resp)
    resp = server.v2("GET", f"/scm/cert/{issued_single}/push-history", creds=creds,
                     project_id=other["project_id"])
    assert_forbidden_leaks_nothing(resp)
    # exactly the answer for a project that does not exist
    unknown = server.v2("GET", f"/scm/cert/{issued_single}/push-history", creds=creds,
                        project_id="0123456789abcdef0123456789abcdef")
    assert (unknown.status, unknown.text) == (resp.status, resp.text), (unknown, resp)
    # same, with X-Project-Id naming the own project while the path names the other one
    resp = server.v2("POST", "/scm/cert/purchase", BUY, creds=creds, project_id=other["project_id"],
                     sign_project_id=creds["project_id"])
    assert_forbidden_leaks_nothing(resp)
    assert (cert_count(server), cert_count(server, other)) == (before_mine, before_other)


# --------------------------------------------------------------------------- text


CONTROL_AND_BIDI = ["\x00", "\t", "\n", "\x1b", "\x7f", "\x85", "\u061c", "\u200e", "\u202e", "\u2066"]


@pytest.mark.parametrize("char", CONTROL_AND_BIDI, ids=lambda c: f"U+{ord(c):04X}")
def test_control_and_bidi_characters_refused_naming_the_field(server, paid_single, char):
    before, count = status_of(server, paid_single), cert_count(server)
    resp = server.v3("POST", f"/v3/scm/certificates/{paid_single}/apply",
                     apply_body("text.e2e.test", company_name=f"Evil{char}Corp"))
    assert_error(resp, 400, "SCM.0005", "company_name")
    resp = server.v2("POST", f"/scm/cert/{paid_single}/save",
                     application("text.e2e.test", applicant_name=f"Tom{char}Smith"))
    assert_error(resp, 400, "SCM.0005", "applicant_name")
    tags = [{"key": "a", "value": "b"}, {"key": "c", "value": f"x{char}"}]
    resp = server.v3("POST", "/v3/scm/certificates/buy", merged(BUY, {"tags": tags}))
    assert_error(resp, 400, "SCM.0005", "tags[1].value")
    resp = server.v3("GET", "/v3/scm/certificates", query=[("content", f"a{char}b")])
    assert_error(resp, 400, "SCM.0005", "content")
    assert (status_of(server, paid_single), cert_count(server)) == (before, count), "nothing written"


def test_unicode_names_and_pem_line_breaks_pass(server, client):
    """A Chinese company and applicant, through the official SDK; a CSR with CRLF line ends."""
    (cert_id,) = buy(server, cert_type="DV_SSL_CERT", domain_type="SINGLE_DOMAIN", domain_numbers=1)
    client.apply_certificate(ApplyCertificateRequest(certificate_id=cert_id, body=ApplyCertificateRequestBody(
        domain="unicode.e2e.test", applicant_name="张伟明", applicant_phone="13212345678",
        applicant_email="applicant@e2e.test", agree_privacy_protection=True, domain_method="DNS",
        key_algorithm="EC_P256", company_name="华为技术有限公司", company_city="成都")))
    assert status_of(server, cert_id)["status"] == "ISSUED"
    (cert_id,) = buy(server, cert_type="DV_SSL_CERT", domain_type="SINGLE_DOMAIN", domain_numbers=1)
    crlf = make_csr(["crlf.e2e.test"])[0].replace("\n", "\r\n")
    resp = server.v3("POST", f"/v3/scm/certificates/{cert_id}/apply", apply_body("crlf.e2e.test", csr=crlf))
    assert (resp.status, resp.json) == (200, {"request_info": "success"}), resp


# --------------------------------------------------------------------------- authentication


LIST = "/v3/scm/certificates"


def test_signed_request_ok(server):
    assert server.v3("GET", LIST).status == 200
    assert_error(server.v2("GET", "/scm/cert/scs0000000000001/push-history"), 404, "SCM.0020")


def test_bad_signature(server):
    def flip(headers):
        auth = headers["Authorization"]
        last = auth[-1]
        headers["Authorization"] = auth[:-1] + ("0" if last != "0" else "1")

    assert_error(server.v3("GET", LIST, mutate=flip), 401, APIGW_AUTH_CODE)
    assert_error(server.v2("POST", "/scm/cert/purchase", BUY, mutate=flip), 401, APIGW_AUTH_CODE)


def test_body_changed_after_signing(server, creds):
    signed_body = b'{"cert_brand": "GLOBALSIGN"}'
    req = sign_sdk_request("POST", server.host, "/v3/scm/certificates/buy", ak=creds["access_key"],
                           sk=creds["secret_key"], headers={"Content-Type": "application/json"},
                           body=signed_body, domain_id=creds["domain_id"])
    before = cert_count(server)
    resp = server.raw("POST", req.uri, headers=dict(req.header_params), data=json.dumps(BUY).encode())
    assert_error(resp, 401, APIGW_AUTH_CODE)
    assert cert_count(server) == before


@pytest.mark.parametrize("minutes", [-20, 20], ids=["20min_ago", "20min_ahead"])
def test_stale_sdk_date(server, minutes):
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=minutes)
    assert_error(server.v3("GET", LIST, date=when), 401, APIGW_AUTH_CODE)
    assert_error(server.v2("GET", "/scm/cert/scs0000000000001/push-history", date=when), 401, APIGW_AUTH_CODE)


def test_sdk_date_within_window(server):
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)
    resp = server.v3("GET", LIST, date=when)
    assert resp.status == 200, resp


def test_no_auth(server):
    resp = server.raw("GET", LIST, headers={"Content-Type": "application/json"})
    assert_error(resp, 401, APIGW_AUTH_CODE)
    resp = server.raw("POST", "/v3/scm/certificates/buy", headers={"Content-Type": "application/json"},
                      data=json.dumps(BUY).encode())
    assert_error(resp, 401, APIGW_AUTH_CODE)


def test_unknown_access_key(server, creds):
    fake = dict(creds, access_key="AKUNKNOWNUNKNOWN0001")
    assert_error(server.v3("GET", LIST, creds=fake), 401, APIGW_AUTH_CODE)


def test_revoked_credential(server, creds):
    cred = server.create_credential(creds["domain_id"])
    assert cred["project_id"] == creds["project_id"]
    assert server.v3("GET", LIST, creds=cred).status == 200

    listed = server.admin("credential", "list")
    assert isinstance(listed, list)
    mine = [c for c in listed if c["access_key"] == cred["access_key"]]
    assert len(mine) == 1 and mine[0]["status"] == "active" and mine[0]["domain_id"] == creds["domain_id"], listed
    for c in listed:
        assert "secret_key" not in c and cred["secret_key"] not in str(c), "credential list shows secrets"

    server.admin("credential", "revoke", cred["access_key"], parse=False)
    assert_error(server.v3("GET", LIST, creds=cred), 401, APIGW_AUTH_CODE)
    assert_error(server.v2("GET", "/scm/cert/scs0000000000001/push-history", creds=cred), 401, APIGW_AUTH_CODE)
    listed = server.admin("credential", "list")
    assert [c["status"] for c in listed if c["access_key"] == cred["access_key"]] == ["revoked"]
    # the bootstrap credential is unaffected
    assert server.v3("GET", LIST).status == 200


# --------------------------------------------------------------------------- ids and routes


def test_unknown_route(server):
    assert server.v3("GET", "/v3/scm/no-such-thing").status == 404
    assert server.v2("GET", "/scm/no-such-thing").status == 404


@pytest.mark.parametrize("method,path", [
    ("GET", "/v3/scm/certificates/{id}"),
    ("POST", "/v3/scm/certificates/{id}/export"),
])
def test_certificate_ids(server, method, path):
    assert_error(server.v3(method, path.format(id="scs0000000000001")), 404, "SCM.0020")
    assert_error(server.v3(method, path.format(id="not-a-cert-id")), 400, "SCM.0008")


def test_certificate_ids_v2(server):
    body = {"service_type": "ELB", "remote_project": "cn-north-4"}
    assert_error(server.v2("POST", "/scm/cert/scs0000000000001/push", body), 404, "SCM.0020")
    assert_error(server.v2("POST", "/scm/cert/bad/push", body), 400, "SCM.0008")


# --------------------------------------------------------------------------- push


def test_push_without_target(server, issued_single):
    for service, region in (("ELB", "ap-southeast-1"), ("CDN", "cn-north-4")):
        resp = server.v2("POST", f"/scm/cert/{issued_single}/push",
                         {"service_type": service, "remote_project": region})
        assert_error(resp, 400, "SCM.0030")


def test_push_bad_service_type(server, issued_single):
    resp = server.v2("POST", f"/scm/cert/{issued_single}/push", {"service_type": "FTP", "remote_project": "cn-north-4"})
    assert_error(resp, 400, "SCM.0005", "service_type")
    resp = server.v2("POST", f"/scm/cert/{issued_single}/push", {"service_type": "ELB"})
    assert_error(resp, 400, "SCM.0005", "remote_project")


def test_push_ok_target(server, targets, issued_single):
    resp = server.v2("POST", f"/scm/cert/{issued_single}/push", {"service_type": "ELB", "remote_project": "cn-north-4"})
    assert (resp.status, resp.json) == (200, {"message": "success"}), resp
    cert_path, key_path = targets["ok"]
    assert b"BEGIN CERTIFICATE" in cert_path.read_bytes()
    assert key_path.stat().st_mode & 0o777 == 0o600


def test_push_reload_failure_keeps_files(server, targets, issued_single):
    cert_path, key_path = targets["fail"]
    before = (cert_path.read_bytes(), key_path.read_bytes())
    history_before = server.v2("GET", f"/scm/cert/{issued_single}/push-history").json["push_history_list"]
    resp = server.v2("POST", f"/scm/cert/{issued_single}/push", {"service_type": "ELB", "remote_project": "cn-south-1"})
    assert_error(resp, 400, "SCM.0028")
    assert (cert_path.read_bytes(), key_path.read_bytes()) == before, "a failed push left new files behind"
    history = server.v2("GET", f"/scm/cert/{issued_single}/push-history").json["push_history_list"]
    assert history == history_before, "a failed push was recorded in push-history"
    assert all(h["push_remote_project"] != "cn-south-1" for h in history)


# --------------------------------------------------------------------------- X-Request-Id


def test_every_response_has_request_id(server, issued_single):
    responses = [
        server.raw("GET", "/health"),
        server.raw("GET", LIST),  # 401
        server.v3("GET", LIST),  # 200
        server.v3("GET", "/v3/scm/no-such-thing"),  # 404
        server.v3("GET", "/v3/scm/certificates/not-a-cert-id"),  # 400
        server.v2("GET", f"/scm/cert/{issued_single}/push-history"),  # 200
        server.v2("POST", "/scm/cert/purchase", b"{"),  # 400
    ]
    ids = [assert_request_id(r.headers) for r in responses]
    assert len(set(ids)) == len(ids), f"request ids repeat: {ids}"


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize("config,key", [
    ('bogus_top_level_key = 1\n', "bogus_top_level_key"),
    ('[[push_targets]]\nname = "t"\nkind = "nginx"\naccount = "00000000000000000000000000000000"\n'
     'service = "ELB"\nregion = "cn-north-4"\ncert_path = "/tmp/x.crt"\nkey_path = "/tmp/x.key"\n'
     'reload_command = ["true"]\ncert_pth = "/tmp/typo.crt"\n', "cert_pth"),
], ids=["top_level", "in_push_target"])
def test_unknown_config_key_refused(openscm_bin, tmp_path, config, key):
    server = Server(openscm_bin, tmp_path / "srv", config_text=config)
    proc = server.spawn()
    try:
        rc = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"server started with an unknown config key {key!r}\n{server.logs()}")
    assert rc != 0, server.logs()
    assert key in server.stderr_path.read_text(errors="replace"), server.logs()
