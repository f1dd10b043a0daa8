"""The seven CSR operations through the official SDK: CreateCsr, ListCsr, ShowCsr, UpdateCsr,
DeleteCsr, ShowCsrPrivateKey and UploadCsr, field by field; the CSR served is checked by
`openssl req -verify` and against the key ShowCsrPrivateKey returns; and each documented refusal
(status + code), another account's CSR answering as an unknown one."""

import subprocess

import pytest
from huaweicloudsdkscm.v3 import (
    CreateCsrRequest,
    CreateCsrRequestBody,
    DeleteCsrRequest,
    ListCsrRequest,
    ShowCsrPrivateKeyRequest,
    ShowCsrRequest,
    UpdateCSRRequestBody,
    UpdateCsrRequest,
    UploadCsrRequest,
    UploadCsrRequestBody,
)

from sdk_helpers import HEX32, sdk_error

UNKNOWN = "0123456789abcdef0123456789abcdef"


def create(scm, **fields):
    body = {"name": "csr-1", "domain_name": "www.csr.conformance.test",
            "private_key_algo": "EC_P256", "usage": "PERSONAL"}
    body.update(fields)
    return scm.create_csr(CreateCsrRequest(body=CreateCsrRequestBody(**body)))


def show(scm, csr_id):
    return scm.show_csr(ShowCsrRequest(id=csr_id))


def private_key(scm, csr_id):
    return scm.show_csr_private_key(ShowCsrPrivateKeyRequest(id=csr_id)).private_key


def upload(scm, name, csr, key=None):
    return scm.upload_csr(UploadCsrRequest(body=UploadCsrRequestBody(
        name=name, csr=csr, private_key=key)))


def openssl(*args, stdin=None):
    out = subprocess.run(["openssl", *args], input=stdin, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout + out.stderr


def public_key_of_csr(tmp_path, pem):
    path = tmp_path / "r.csr"
    path.write_text(pem)
    assert "verify OK" in openssl("req", "-in", str(path), "-noout", "-verify")
    return openssl("req", "-in", str(path), "-noout", "-pubkey")


def public_key_of_key(tmp_path, key):
    path = tmp_path / "k.pem"
    path.write_text(key)
    return openssl("pkey", "-in", str(path), "-pubout")


@pytest.mark.parametrize("algo", ["EC_P256", "EC_P384", "RSA_2048"])
def test_created_csrs_verify_and_match_their_key(scm, tmp_path, algo):
    resp = create(scm, name=f"enterprise-{algo.lower().replace('_', '-')}",
                  sans="a.csr.conformance.test;b.csr.conformance.test",
                  private_key_algo=algo, usage="ENTERPRISE", company_country="CN",
                  company_province="Sichuan", company_city="Chengdu",
                  company_name="OpenSCM Conformance")
    assert resp.status_code == 201
    assert HEX32.match(resp.id), resp.id
    assert resp.name == f"enterprise-{algo.lower().replace('_', '-')}"
    assert resp.domain_name == "www.csr.conformance.test"
    assert resp.sans == "a.csr.conformance.test;b.csr.conformance.test"
    assert resp.private_key_algo == algo
    assert resp.usage == "ENTERPRISE"
    assert resp.company_country == "CN"
    assert resp.company_province == "Sichuan"
    assert resp.company_city == "Chengdu"
    assert resp.company_name == "OpenSCM Conformance"
    assert resp.create_time == resp.update_time
    assert len(str(resp.create_time)) == 13

    shown = show(scm, resp.id)
    assert shown.status_code == 200
    for field in ["id", "name", "domain_name", "sans", "private_key_algo", "usage",
                  "company_country", "company_province", "company_city", "company_name",
                  "create_time", "update_time"]:
        assert getattr(shown, field) == getattr(resp, field), field
    assert shown.csr.startswith("-----BEGIN CERTIFICATE REQUEST-----")

    key = private_key(scm, resp.id)
    assert key.startswith("-----BEGIN PRIVATE KEY-----")
    assert public_key_of_csr(tmp_path, shown.csr) == public_key_of_key(tmp_path, key)
    subject = openssl("req", "-in", str(tmp_path / "r.csr"), "-noout", "-subject",
                      "-nameopt", "RFC2253")
    assert "CN=www.csr.conformance.test" in subject
    assert "O=OpenSCM Conformance" in subject
    assert "C=CN" in subject


def test_csrs_are_renamed_listed_and_deleted(scm, scm_other):
    first = create(scm, name="list-one").id
    second = create(scm, name="LIST-two", private_key_algo="EC_P384").id

    renamed = scm.update_csr(UpdateCsrRequest(id=first, body=UpdateCSRRequestBody(
        name="list-one-renamed")))
    assert renamed.status_code == 200
    assert renamed.id == first
    assert renamed.name == "list-one-renamed"
    assert renamed.csr == show(scm, first).csr
    assert renamed.usage == "PERSONAL"
    assert renamed.company_name is None

    listed = scm.list_csr(ListCsrRequest(name="list-", limit=10, offset=0))
    assert listed.total == 2
    assert [c.id for c in listed.csr_list] == [second, first]  # newest first
    item = listed.csr_list[1]
    assert item.name == "list-one-renamed"
    assert item.csr == renamed.csr
    assert item.private_key_algo == "EC_P256"
    listed = scm.list_csr(ListCsrRequest(name="list-", private_key_algo="EC_P384"))
    assert [c.id for c in listed.csr_list] == [second]
    assert scm.list_csr(ListCsrRequest(name="list-", offset=50)).csr_list == []

    # Another account sees none of them, and cannot touch them.
    assert scm_other.list_csr(ListCsrRequest(name="list-")).total == 0
    for op in [lambda: show(scm_other, first), lambda: private_key(scm_other, first),
               lambda: scm_other.delete_csr(DeleteCsrRequest(id=first)),
               lambda: scm_other.update_csr(UpdateCsrRequest(
                   id=first, body=UpdateCSRRequestBody(name="stolen")))]:
        sdk_error(op, 404, "SCM.0020")
    assert show(scm, first).name == "list-one-renamed"

    resp = scm.delete_csr(DeleteCsrRequest(id=first))
    assert resp.status_code == 204
    sdk_error(lambda: show(scm, first), 404, "SCM.0020")
    sdk_error(lambda: scm.delete_csr(DeleteCsrRequest(id=first)), 404, "SCM.0020")


def test_uploaded_csrs(scm, tmp_path):
    key_path, csr_path = tmp_path / "up.key", tmp_path / "up.csr"
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", "/CN=up.csr.conformance.test", "-addext",
            "subjectAltName=DNS:up.csr.conformance.test,DNS:www.up.csr.conformance.test",
            "-keyout", str(key_path), "-out", str(csr_path))
    pem, key = csr_path.read_text(), key_path.read_text()

    resp = upload(scm, "up-with-key", pem, key)
    assert resp.status_code == 200
    assert HEX32.match(resp.id)
    assert resp.name == "up-with-key"
    assert len(str(resp.create_time)) == 13
    shown = show(scm, resp.id)
    assert shown.csr == pem
    assert shown.domain_name == "up.csr.conformance.test"
    assert shown.sans == "www.up.csr.conformance.test"
    assert shown.private_key_algo == "EC_P256"
    assert shown.usage is None
    assert shown.create_time == resp.create_time
    assert public_key_of_key(tmp_path, private_key(scm, resp.id)) == \
        public_key_of_key(tmp_path, key)

    bare = upload(scm, "up-bare", pem).id
    sdk_error(lambda: private_key(scm, bare), 400, "SCM.0010")

    other_key = tmp_path / "other.key"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", str(other_key))
    sdk_error(lambda: upload(scm, "mismatch", pem, other_key.read_text()), 400, "SCM.0014")
    sdk_error(lambda: upload(scm, "bad", "not a csr"), 400, "SCM.0005", "csr")
    sdk_error(lambda: upload(scm, "bad", "x" * 2556), 400, "SCM.0005", "csr")
    sdk_error(lambda: upload(scm, "bad", pem, "k" * 4097), 400, "SCM.0005", "private_key")
    sdk_error(lambda: upload(scm, "", pem), 400, "SCM.0005", "name")


@pytest.mark.parametrize("fields, field", [
    ({"name": ""}, "name"),
    ({"name": "n" * 64}, "name"),
    ({"domain_name": None}, "domain_name"),
    ({"domain_name": "not a domain"}, "domain_name"),
    ({"sans": "ok.test;bad name"}, "sans"),
    ({"sans": ";".join(["abcdefghi.test"] * 18)}, "sans"),
    ({"private_key_algo": "SM2"}, "private_key_algo"),
    ({"private_key_algo": "RSA_1024"}, "private_key_algo"),
    ({"usage": "COMPANY"}, "usage"),
    ({"usage": "ENTERPRISE", "company_province": "p", "company_city": "c",
      "company_name": "n"}, "company_country"),
    ({"usage": "ENTERPRISE", "company_country": "CN", "company_city": "c",
      "company_name": "n"}, "company_province"),
    ({"usage": "ENTERPRISE", "company_country": "CN", "company_province": "p",
      "company_name": "n"}, "company_city"),
    ({"usage": "ENTERPRISE", "company_country": "CN", "company_province": "p",
      "company_city": "c"}, "company_name"),
    ({"company_name": "n" * 256}, "company_name"),
])
def test_create_refusals_name_the_field(scm, fields, field):
    sdk_error(lambda: create(scm, **fields), 400, "SCM.0005", field)


def test_ids_and_list_parameters_refused_as_documented(scm):
    for bad in ["not-a-csr-id", "scs1700000000000", UNKNOWN.upper()]:
        sdk_error(lambda: show(scm, bad), 400, "SCM.0008")
        sdk_error(lambda: private_key(scm, bad), 400, "SCM.0008")
    sdk_error(lambda: show(scm, UNKNOWN), 404, "SCM.0020")
    sdk_error(lambda: scm.delete_csr(DeleteCsrRequest(id=UNKNOWN)), 404, "SCM.0020")
    sdk_error(lambda: scm.update_csr(UpdateCsrRequest(id=UNKNOWN, body=UpdateCSRRequestBody(
        name="x"))), 404, "SCM.0020")
    sdk_error(lambda: scm.list_csr(ListCsrRequest(limit=5)), 400, "SCM.0005", "limit")
    sdk_error(lambda: scm.list_csr(ListCsrRequest(private_key_algo="DSA")), 400, "SCM.0005",
              "private_key_algo")


def test_a_certificate_from_a_csr_whose_key_the_server_holds_exports_that_key(scm, tmp_path):
    """A certificate applied for with a CSR made by CreateCsr (or uploaded with its key): the
    server holds the key, so ExportCertificate answers it — the key ShowCsrPrivateKey answers —
    not `private_key: null`, and the certificate can be pushed (`push_support` ON). A CSR whose
    key the server never had still exports no key."""
    from huaweicloudsdkscm.v3 import ExportCertificateRequest

    from sdk_helpers import apply, bought_id
    from sdk_helpers import show as show_certificate

    def export(cert_id):
        return scm.export_certificate(ExportCertificateRequest(certificate_id=cert_id))

    made = create(scm, name="for-apply", domain_name="apply.csr.conformance.test",
                  sans="alt.apply.csr.conformance.test", private_key_algo="EC_P256")
    pem = show(scm, made.id).csr
    key = private_key(scm, made.id)
    cert_id = bought_id(scm, domain_type="MULTI_DOMAIN", domain_numbers=2)
    apply(scm, cert_id, "apply.csr.conformance.test", sans="alt.apply.csr.conformance.test",
          csr=pem)
    e = export(cert_id)
    assert e.private_key == key
    leaf_path = tmp_path / "leaf.pem"
    leaf_path.write_text(e.certificate)
    assert openssl("x509", "-in", str(leaf_path), "-noout", "-pubkey") == \
        public_key_of_key(tmp_path, key)
    assert show_certificate(scm, cert_id).push_support == "ON"

    # Uploaded with its key: held as well.
    key_path, csr_path = tmp_path / "held.key", tmp_path / "held.csr"
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", "/CN=held.csr.conformance.test", "-keyout", str(key_path),
            "-out", str(csr_path))
    upload(scm, "held-upload", csr_path.read_text(), key_path.read_text())
    cert_id = bought_id(scm)
    apply(scm, cert_id, "held.csr.conformance.test", csr=csr_path.read_text())
    assert public_key_of_key(tmp_path, export(cert_id).private_key) == \
        public_key_of_key(tmp_path, key_path.read_text())

    # Made elsewhere, its key never given: nothing to export.
    key_path, csr_path = tmp_path / "theirs.key", tmp_path / "theirs.csr"
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", "/CN=theirs.csr.conformance.test", "-keyout", str(key_path),
            "-out", str(csr_path))
    cert_id = bought_id(scm)
    apply(scm, cert_id, "theirs.csr.conformance.test", csr=csr_path.read_text())
    assert export(cert_id).private_key is None
    assert show_certificate(scm, cert_id).push_support == "OFF"
