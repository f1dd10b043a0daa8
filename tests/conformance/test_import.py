"""ImportCertificate through the official SDK (ImportCertificateRequest): certificates made here
with `cryptography` (a root, an intermediate, leaves with EC and RSA keys, PKCS#8 and the
traditional key forms) are imported, then shown, listed, exported and deleted field by field;
and every documented refusal answers its status and code. The chain is checked by its
signatures, not its names: an intermediate with the right name and another key, a loop, a CA
leaf, an unknown critical extension and a leaf not valid yet are refused; a chain up to a root of
the server's trust store (SSL_CERT_FILE) shows its issuer's brand, the same names under a root
nobody trusts show none."""

import datetime
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from huaweicloudsdkscm.v3 import (
    DeleteCertificateRequest,
    ExportCertificateRequest,
    ImportCertificateRequest,
    ImportCertificateRequestBody,
    ListCertificatesRequest,
    UnsubscribeCertificateRequest,
)

from sdk_helpers import CERT_ID, sdk_error, show

NOW = datetime.datetime.now(datetime.timezone.utc)
BEGIN, END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"


def pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key, traditional=False) -> str:
    fmt = (serialization.PrivateFormat.TraditionalOpenSSL if traditional
           else serialization.PrivateFormat.PKCS8)
    return key.private_bytes(serialization.Encoding.PEM, fmt,
                             serialization.NoEncryption()).decode()


def make_cert(subject_cn, key, issuer_cert=None, issuer_key=None, ca=False, sans=(),
              days=(-1, 90), cn=True, extensions=()):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)] if cn else [])
    builder = (x509.CertificateBuilder()
               .subject_name(name)
               .issuer_name(issuer_cert.subject if issuer_cert else name)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW + datetime.timedelta(days=days[0]))
               .not_valid_after(NOW + datetime.timedelta(days=days[1])))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), False)
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical)
    return builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki():
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = make_cert("Conformance Import Root", root_key, ca=True)
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = make_cert("Conformance Import Intermediate", inter_key, root, root_key, ca=True)

    def leaf(cn="www.import.conformance.test", key=None, sans=None, days=(-1, 90), cn_=True):
        key = key or ec.generate_private_key(ec.SECP256R1())
        names = sans if sans is not None else [x509.DNSName(cn), x509.DNSName(
            "api.import.conformance.test")]
        return make_cert(cn, key, inter, inter_key, sans=names, days=days, cn=cn_), key

    return {"root": root, "root_key": root_key, "inter": inter, "inter_key": inter_key,
            "leaf": leaf}


def body(name, certificate, private_key, chain=None, **extra):
    return ImportCertificateRequestBody(name=name, certificate=certificate,
                                        certificate_chain=chain, private_key=private_key,
                                        **extra)


def do_import(scm, b):
    return scm.import_certificate(ImportCertificateRequest(body=b))


def export(scm, cert_id):
    return scm.export_certificate(ExportCertificateRequest(certificate_id=cert_id))


def test_imported_certificates_are_shown_listed_exported_and_deleted(scm, pki):
    leaf, key = pki["leaf"]()
    chain = pem(pki["inter"]) + pem(pki["root"])
    bundle = (pem(leaf) + chain).replace("\n", "\r\n")
    resp = do_import(scm, body("conformance-import", bundle, key_pem(key)))
    assert resp.status_code == 200
    cert_id = resp.certificate_id
    assert CERT_ID.match(cert_id), cert_id

    s = show(scm, cert_id)
    assert s.status == "UPLOAD"
    assert s.name == "conformance-import"
    assert s.domain == "www.import.conformance.test"
    assert s.sans == "api.import.conformance.test"
    assert s.signature_algorithm == "SHA256WITHECDSA"
    assert s.fingerprint == hashlib.sha1(
        leaf.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert s.push_support == "ON"
    assert (s.order_id, s.type, s.brand) == (None, None, None)
    assert (s.domain_type, s.domain_count, s.wildcard_count) == ("MULTI_DOMAIN", 2, 0)
    assert s.validity_period == 3
    assert s.not_after.startswith(leaf.not_valid_after_utc.strftime("%Y-%m-%d %H:%M:%S"))
    assert s.not_before.startswith(leaf.not_valid_before_utc.strftime("%Y-%m-%d %H:%M:%S"))
    assert s.enterprise_project_id == "0"

    listed = scm.list_certificates(ListCertificatesRequest(limit=50, content="import.conformance"))
    item = next(c for c in listed.certificates if c.id == cert_id)
    assert (item.status, item.deploy_support, item.domain) == (
        "UPLOAD", True, "www.import.conformance.test")
    assert item.expire_time == s.not_after

    e = export(scm, cert_id)
    assert e.certificate == pem(leaf)
    assert e.certificate_chain == chain
    assert e.entire_certificate == pem(leaf) + chain
    exported_key = serialization.load_pem_private_key(e.private_key.encode(), None)
    assert exported_key.private_numbers() == key.private_numbers()

    sdk_error(lambda: scm.unsubscribe_certificate(UnsubscribeCertificateRequest(
        cert_id=cert_id)), 400, "SCM.0010")
    assert scm.delete_certificate(DeleteCertificateRequest(certificate_id=cert_id)) \
        .status_code == 204
    sdk_error(lambda: show(scm, cert_id), 404, "SCM.0020")


@pytest.mark.parametrize("traditional", [False, True])
def test_rsa_and_ec_p384_keys_in_both_forms(scm, pki, traditional):
    for key in [rsa.generate_private_key(65537, 2048), ec.generate_private_key(ec.SECP384R1())]:
        leaf, _ = pki["leaf"](cn="k.import.conformance.test", key=key, sans=[])
        resp = do_import(scm, body("key-forms", pem(leaf), key_pem(key, traditional),
                                   chain=pem(pki["inter"])))
        s = show(scm, resp.certificate_id)
        assert s.domain == "k.import.conformance.test"
        assert s.sans == ""
        assert s.domain_type == "SINGLE_DOMAIN"
        assert export(scm, resp.certificate_id).certificate_chain == pem(pki["inter"])


def test_an_expired_certificate_is_imported_and_reads_expired(scm, pki):
    leaf, key = pki["leaf"](days=(-30, -1), sans=[x509.DNSName("*.old.import.conformance.test")],
                            cn="*.old.import.conformance.test")
    cert_id = do_import(scm, body("expired-import", pem(leaf), key_pem(key),
                                  chain=pem(pki["inter"]))).certificate_id
    s = show(scm, cert_id)
    assert (s.status, s.domain_type) == ("EXPIRED", "WILDCARD")
    sdk_error(lambda: export(scm, cert_id), 400, "SCM.0010")


def test_duplicate_check(scm, pki):
    leaf, key = pki["leaf"](cn="dup.import.conformance.test",
                            sans=[x509.DNSName("dup.import.conformance.test")])
    b = lambda **extra: body("dup", pem(leaf), key_pem(key), chain=pem(pki["inter"]), **extra)  # noqa: E731
    first = do_import(scm, b(duplicate_check=True)).certificate_id
    err = sdk_error(lambda: do_import(scm, b(duplicate_check=True)), 400, "SCM.0005",
                    "certificate")
    assert first in err.error_msg
    second = do_import(scm, b(duplicate_check=False)).certificate_id
    third = do_import(scm, b()).certificate_id
    assert len({first, second, third}) == 3


def test_refusals(scm, pki):
    leaf, key = pki["leaf"]()
    root, inter = pem(pki["root"]), pem(pki["inter"])
    good = {"name": "refused", "certificate": pem(leaf), "private_key": key_pem(key),
            "chain": inter + root}
    leaf_body = pem(leaf).strip()[len(BEGIN):-len(END)]
    key_body = "\n".join(key_pem(key).strip().splitlines()[1:-1])
    nameless, nameless_key = pki["leaf"](cn="My Server", cn_=True,
                                         sans=[x509.IPAddress(__import__("ipaddress")
                                                              .ip_address("10.1.2.3"))])
    _, other_key = pki["leaf"]()
    encrypted = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")).decode()
    cases = [
        ({"name": "ab"}, "SCM.0032", "name"),
        ({"name": "n" * 64}, "SCM.0032", "name"),
        ({"name": "bad name"}, "SCM.0032", "name"),
        ({"certificate": "c" * 4097}, "SCM.0005", "certificate"),
        ({"chain": "c" * 8193}, "SCM.0005", "certificate_chain"),
        ({"private_key": "k" * 4097}, "SCM.0005", "private_key"),
        ({"enc_certificate": "e" * 4097}, "SCM.0005", "enc_certificate"),
        ({"enc_private_key": "e" * 4097}, "SCM.0005", "enc_private_key"),
        ({"enc_certificate": pem(leaf), "enc_private_key": key_pem(key)}, "SCM.0005",
         "enc_certificate"),
        ({"certificate": leaf_body}, "SCM.0053", None),
        ({"certificate": f"{BEGIN}\n\n{END}\n"}, "SCM.0054", None),
        ({"certificate": f"{BEGIN}\nAAAA\n{END}\n"}, "SCM.0006", None),
        ({"chain": "garbage"}, "SCM.0013", None),
        ({"chain": f"{BEGIN}\nAAAA\n{END}\n"}, "SCM.0013", None),
        ({"chain": root + inter}, "SCM.0079", None),
        ({"certificate": pem(nameless), "private_key": key_pem(nameless_key)}, "SCM.0009", None),
        ({"private_key": key_body}, "SCM.0114", None),
        ({"private_key": encrypted}, "SCM.0012", None),
        ({"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
         "SCM.0012", None),
        ({"private_key": key_pem(other_key)}, "SCM.0014", None),
    ]
    before = scm.list_certificates(ListCertificatesRequest(limit=50)).total_count
    for changes, code, field in cases:
        fields = dict(good, **changes)
        b = body(fields.pop("name"), fields.pop("certificate"), fields.pop("private_key"),
                 chain=fields.pop("chain"), **fields)
        sdk_error(lambda: do_import(scm, b), 400, code, field)
    after = scm.list_certificates(ListCertificatesRequest(limit=50)).total_count
    assert after == before, "no refusal imported anything"


def test_listing_applies_the_documented_expired_days_since_default(scm, pki):
    """ListCertificates' `expired_days_since` is 0..1095, default 0: without it, expired
    certificates are left out (they used to be listed unless the parameter was sent); with a
    window they are back; `status=EXPIRED` asks for them and lists them without a window."""
    expired, key = pki["leaf"](cn="gone.window.import.conformance.test", days=(-30, -1),
                               sans=[x509.DNSName("gone.window.import.conformance.test")])
    old_id = do_import(scm, body("window-expired", pem(expired), key_pem(key),
                                 chain=pem(pki["inter"]))).certificate_id
    valid, key = pki["leaf"](cn="live.window.import.conformance.test",
                             sans=[x509.DNSName("live.window.import.conformance.test")])
    live_id = do_import(scm, body("window-valid", pem(valid), key_pem(key),
                                  chain=pem(pki["inter"]))).certificate_id

    def listed(**query):
        resp = scm.list_certificates(ListCertificatesRequest(
            limit=50, content="window.import.conformance", **query))
        ids = {c.id for c in resp.certificates}
        assert resp.total_count == len(ids)
        return ids

    assert listed() == {live_id}, "the default, 0: expired certificates are left out"
    assert listed(expired_days_since=0) == {live_id}
    assert listed(expired_days_since=30) == {live_id, old_id}
    assert listed(expired_days_since=1095) == {live_id, old_id}
    assert listed(status="EXPIRED") == {old_id}
    assert listed(status="ALL") == {live_id}
    sdk_error(lambda: listed(expired_days_since=1096), 400, "SCM.0005", "expired_days_since")


# ------------------------------------------------------------------ the chain by its signatures

UNKNOWN_CRITICAL = (x509.UnrecognizedExtension(
    x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00"), True)


def test_an_intermediate_with_the_right_name_and_another_key_is_refused(scm, pki):
    # The leaf is the real intermediate's; the chain given is another CA of the same name
    # (signed by the same root): the names chain, the signatures do not.
    leaf, key = pki["leaf"](cn="wrong-key.import.conformance.test", sans=[])
    impostor_key = ec.generate_private_key(ec.SECP256R1())
    impostor = make_cert("Conformance Import Intermediate", impostor_key, pki["root"],
                         pki["root_key"], ca=True)
    before = scm.list_certificates(ListCertificatesRequest(limit=50)).total_count
    err = sdk_error(lambda: do_import(scm, body(
        "wrong-key", pem(leaf), key_pem(key), chain=pem(impostor) + pem(pki["root"]))),
        400, "SCM.0079")
    assert "chain certificate 1" in err.error_msg, err.error_msg
    assert "Conformance Import Intermediate" in err.error_msg, err.error_msg
    assert "wrong-key.import.conformance.test" in err.error_msg, err.error_msg
    # The same leaf with its real intermediate: imported.
    do_import(scm, body("right-key", pem(leaf), key_pem(key), chain=pem(pki["inter"])))
    after = scm.list_certificates(ListCertificatesRequest(limit=50)).total_count
    assert after == before + 1


def test_chain_refusals_name_the_certificate_at_fault(scm, pki):
    inter, inter_key = pki["inter"], pki["inter_key"]
    # A and B sign each other; a leaf of A's, given with A -> B -> A.
    a_key, b_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    a_self = make_cert("Conformance Loop A", a_key, ca=True)
    b_self = make_cert("Conformance Loop B", b_key, ca=True)
    a_by_b = make_cert("Conformance Loop A", a_key, b_self, b_key, ca=True)
    b_by_a = make_cert("Conformance Loop B", b_key, a_self, a_key, ca=True)
    loop_key = ec.generate_private_key(ec.SECP256R1())
    loop_leaf = make_cert("loop.import.conformance.test", loop_key, a_self, a_key,
                          sans=[x509.DNSName("loop.import.conformance.test")])

    def leaf(cn, **kw):
        k = ec.generate_private_key(ec.SECP256R1())
        return make_cert(cn, k, inter, inter_key, sans=[x509.DNSName(cn)], **kw), k

    ca_leaf = leaf("ca.import.conformance.test", ca=True)
    ext_leaf = leaf("ext.import.conformance.test", extensions=[UNKNOWN_CRITICAL])
    later = leaf("later.import.conformance.test", days=(2, 90))
    odd_key = ec.generate_private_key(ec.SECP256R1())
    odd = make_cert("Conformance Odd Intermediate", odd_key, pki["root"], pki["root_key"],
                    ca=True, extensions=[UNKNOWN_CRITICAL])
    under_odd_key = ec.generate_private_key(ec.SECP256R1())
    under_odd = make_cert("odd.import.conformance.test", under_odd_key, odd, odd_key,
                          sans=[x509.DNSName("odd.import.conformance.test")])
    cases = [
        # (certificate, key, chain, code, words the message holds)
        (loop_leaf, loop_key, pem(a_by_b) + pem(b_by_a) + pem(a_by_b), "SCM.0079",
         ["loops", "chain certificate 3", "Conformance Loop A"]),
        (ca_leaf[0], ca_leaf[1], pem(inter), "SCM.0006",
         ["CA:TRUE", "ca.import.conformance.test"]),
        (ext_leaf[0], ext_leaf[1], pem(inter), "SCM.0006",
         ["1.3.6.1.4.1.55555.1", "ext.import.conformance.test"]),
        (later[0], later[1], pem(inter), "SCM.0006",
         ["not valid before", "later.import.conformance.test"]),
        (under_odd, under_odd_key, pem(odd) + pem(pki["root"]), "SCM.0013",
         ["1.3.6.1.4.1.55555.1", "chain certificate 1", "Conformance Odd Intermediate"]),
    ]
    before = scm.list_certificates(ListCertificatesRequest(limit=50)).total_count
    for cert, key, chain, code, words in cases:
        b = body("chain-refused", pem(cert), key_pem(key), chain=chain)
        err = sdk_error(lambda: do_import(scm, b), 400, code)
        for word in words:
            assert word in err.error_msg, (word, err.error_msg)
    after = scm.list_certificates(ListCertificatesRequest(limit=50)).total_count
    assert after == before, "no refusal imported anything"


@pytest.fixture(scope="module")
def trusting(servers, module_tmp):
    """A server whose machine trust store is one test root named like a brand's: SSL_CERT_FILE
    names it, and an empty SSL_CERT_DIR keeps the system's directory out (the environment may
    set one). A chain up to that root is trusted."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = make_cert("GlobalSign Conformance Root", root_key, ca=True, days=(-1, 3650))
    store = module_tmp / "trust-store.pem"
    store.write_text(pem(root))
    server = servers.new("conformance-trust")
    server.env["SSL_CERT_FILE"] = str(store)
    server.env["SSL_CERT_DIR"] = ""
    server.start()
    return {"scm": server.sdk_client(), "root": root, "root_key": root_key}


def test_a_good_chain_is_imported_and_shown_as_it_is(trusting):
    scm, root, root_key = trusting["scm"], trusting["root"], trusting["root_key"]
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = make_cert("GlobalSign Conformance CA 2026", inter_key, root, root_key, ca=True,
                      days=(-1, 3650))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = make_cert("good.trust.conformance.test", key, inter, inter_key,
                     sans=[x509.DNSName("good.trust.conformance.test")])
    cert_id = do_import(scm, body("trusted-chain", pem(leaf), key_pem(key),
                                  chain=pem(inter))).certificate_id
    s = show(scm, cert_id)
    assert (s.id, s.name, s.status) == (cert_id, "trusted-chain", "UPLOAD")
    # The chain reaches the trust store's root: the issuer's name is verified, and it is a
    # documented brand's.
    assert s.brand == "GLOBALSIGN"
    assert (s.type, s.order_id, s.validation_method, s.revoke_reason) == (None, None, None, None)
    assert s.signature_algorithm == "SHA256WITHECDSA"
    assert s.fingerprint == hashlib.sha1(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert (s.domain, s.sans, s.domain_type, s.multi_domain_type) == (
        "good.trust.conformance.test", "", "SINGLE_DOMAIN", None)
    assert (s.domain_count, s.wildcard_count, s.validity_period) == (1, 0, 3)
    assert s.not_before == s.issue_time
    assert s.not_after.startswith(leaf.not_valid_after_utc.strftime("%Y-%m-%d %H:%M:%S"))
    assert s.push_support == "ON"
    assert not s.authentification
    assert s.enterprise_project_id == "0"
    e = export(scm, cert_id)
    assert (e.certificate, e.certificate_chain) == (pem(leaf), pem(inter))
    assert e.entire_certificate == pem(leaf) + pem(inter)

    # The same names under a root the server does not trust: imported (a private CA is no
    # refusal), but an issuer name nobody verified makes no brand.
    evil_key = ec.generate_private_key(ec.SECP256R1())
    evil_root = make_cert("Evil Conformance Root", evil_key, ca=True, days=(-1, 3650))
    fake_inter_key = ec.generate_private_key(ec.SECP256R1())
    fake_inter = make_cert("GlobalSign Conformance CA 2026", fake_inter_key, evil_root, evil_key,
                           ca=True, days=(-1, 3650))
    fake_key = ec.generate_private_key(ec.SECP256R1())
    fake = make_cert("fake.trust.conformance.test", fake_key, fake_inter, fake_inter_key,
                     sans=[x509.DNSName("fake.trust.conformance.test")])
    fake_id = do_import(scm, body("untrusted-chain", pem(fake), key_pem(fake_key),
                                  chain=pem(fake_inter) + pem(evil_root))).certificate_id
    s = show(scm, fake_id)
    assert (s.status, s.brand, s.type) == ("UPLOAD", None, None)
    assert s.signature_algorithm == "SHA256WITHECDSA"
    # And the real leaf given with the impostor intermediate is refused.
    sdk_error(lambda: do_import(scm, body("mixed", pem(leaf), key_pem(key),
                                          chain=pem(fake_inter) + pem(evil_root))),
              400, "SCM.0079")
