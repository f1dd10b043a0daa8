"""Domain control validation (issue 16, point 1), once per storage backend, through the official
SDK (v3) against a real DNS server: pebble-challtestsrv, which OpenSCM's validation resolver is
pointed at (`[validation] nameservers`).

A name outside the account's policy (`www.dcv.example.com`; the default policy pre-authorizes
only reserved names such as `.test`) moves the certificate to CHECKING_DOMAIN, and
ShowCertificate lists the TXT record to publish at `_dnsauth.<name>`. OpenSCM checks by itself:
the record appears late (after the first check failed) and the certificate ends ISSUED, its
certificate verified with `openssl verify` against the account's root. `cancel-cert` withdraws a
pending application (PAID again, and a new apply starts again). The record value is stable for
the account and name: a second certificate for the same name is issued at once (the proof is
reused), and a third name under the same record set is checked anew.

FILE validation against a real HTTP server (a thread of the test, on the port the server is told
to ask on, `[validation] http_port`; challtestsrv gives 127.0.0.1 for every name, which the egress
policy allows here): the file appears after the first check failed with a 404, and the certificate
ends ISSUED. Wildcards: directly under a public suffix (`*.com`, `*.test`, `*.co.uk`) or with FILE
they are refused with a 400 naming the name, and nothing changes (still PAID, no history);
`*.shop.test` with DNS is issued.
"""

import re
import time

import pytest

from huaweicloudsdkcore.exceptions import exceptions
from huaweicloudsdkscm.v3 import (
    ApplyCertificateRequest,
    ApplyCertificateRequestBody,
    CancelCertificateRequestRequest,
    ExportCertificateRequest,
    PurchaseCertificateRequestBody,
    ShowCertificateRequest,
    SubscribeCertificateRequest,
)

from components import ChallTestSrv, started
from e2e_helpers import ValidationWebServer, dns_sans, load_certs, openssl_verify, wait_until

APPLICANT = dict(applicant_name="Tom Smith", applicant_phone="13212345678",
                 applicant_email="tom@example.com")


@pytest.fixture(scope="module")
def dns(module_tmp, backend):
    with started(ChallTestSrv(module_tmp / f"challtestsrv-{backend.name}")) as component:
        yield component


@pytest.fixture(scope="module")
def web():
    """The web server FILE validation fetches from: the validation resolver (challtestsrv) gives
    127.0.0.1 for every name, and the server asks on this port (`[validation] http_port`)."""
    with ValidationWebServer() as instance:
        yield instance


@pytest.fixture(scope="module")
def server(servers, dns, web):
    s = servers.new("dcv", config_text=f"""
[validation]
nameservers = ["{dns.dns_addr}"]
http_port = {web.port}
max_interval_seconds = 5

[jobs]
poll_millis = 100

# The validation files are fetched from 127.0.0.1 (what challtestsrv answers).
[egress]
allow_loopback = true
""")
    s.start()
    return s


@pytest.fixture(scope="module")
def client(server):
    return server.sdk_client()


def buy(client, domain_type: str = "SINGLE_DOMAIN") -> str:
    bought = client.subscribe_certificate(SubscribeCertificateRequest(body=PurchaseCertificateRequestBody(
        cert_brand="GLOBALSIGN", cert_type="DV_SSL_CERT", domain_type=domain_type,
        effective_time=1, domain_numbers=1, order_number=1, agree_privacy_protection=True,
    )))
    return bought.cert[0].cert_id


def apply(client, cert_id: str, domain: str, method: str = "DNS"):
    client.apply_certificate(ApplyCertificateRequest(
        certificate_id=cert_id,
        body=ApplyCertificateRequestBody(domain=domain, agree_privacy_protection=True,
                                         domain_method=method, **APPLICANT),
    ))


def show(client, cert_id: str):
    return client.show_certificate(ShowCertificateRequest(certificate_id=cert_id))


def test_a_late_txt_record_is_found_and_the_certificate_issued(client, server, dns, module_tmp, backend):
    name = f"www.dcv-{backend.name}.example.com"
    cert_id = buy(client)
    apply(client, cert_id, name)
    shown = show(client, cert_id)
    assert shown.status == "CHECKING_DOMAIN"
    assert len(shown.authentification) == 1, shown.authentification
    proof = shown.authentification[0]
    assert proof.record_name == f"_dnsauth.{name}"
    assert proof.record_type == "TXT"
    assert proof.domain == name
    assert len(proof.record_value) >= 32
    # The first check runs at once and finds nothing: the certificate keeps waiting.
    def history():
        return server.admin("cert", "history", cert_id)["events"]
    wait_until(lambda: any(e["event"] == "validation_failed" and "no TXT record" in e["detail"]
                           for e in history()),
               20, "a failed first check in the history", seen=history)
    assert show(client, cert_id).status == "CHECKING_DOMAIN"
    try:
        dns.set_txt(proof.record_name, proof.record_value)
        wait_until(lambda: show(client, cert_id).status == "ISSUED", 60,
                   "ISSUED after the record appeared", seen=lambda: show(client, cert_id).status)
        exported = client.export_certificate(ExportCertificateRequest(certificate_id=cert_id))
        openssl_verify(module_tmp / f"dcv-{backend.name}", server.ca_root_path,
                       exported.certificate, exported.certificate_chain)
        # The same name again: the proof is reused, issued at once.
        again = buy(client)
        apply(client, again, name)
        assert show(client, again).status == "ISSUED"
        assert show(client, again).authentification == []
        events = [e["event"] for e in history()]
        for expected in ("applied", "validation_failed", "validation_passed", "issued"):
            assert expected in events, events
        versions = server.admin("cert", "history", cert_id)["versions"]
        assert [v["seq"] for v in versions] == [1] and versions[0]["renew_at"], versions
    finally:
        dns.clear_txt(proof.record_name)


def test_cancel_cert_withdraws_a_pending_validation(client, backend):
    name = f"cancel-{backend.name}.example.com"
    cert_id = buy(client)
    apply(client, cert_id, name)
    first = show(client, cert_id)
    assert first.status == "CHECKING_DOMAIN"
    client.cancel_certificate_request(CancelCertificateRequestRequest(certificate_id=cert_id))
    back = show(client, cert_id)
    assert back.status == "PAID"
    assert back.authentification == []
    # A new apply starts again, with the same record to publish (stable per account and name).
    apply(client, cert_id, name)
    again = show(client, cert_id)
    assert again.status == "CHECKING_DOMAIN"
    assert again.authentification[0].record_value == first.authentification[0].record_value


def test_a_late_validation_file_is_fetched_and_the_certificate_issued(client, server, web, module_tmp,
                                                                      backend):
    name = f"www.file-{backend.name}.example.com"
    cert_id = buy(client)
    apply(client, cert_id, name, method="FILE")
    shown = show(client, cert_id)
    assert shown.status == "CHECKING_DOMAIN"
    assert len(shown.authentification) == 1, shown.authentification
    proof = shown.authentification[0]
    assert (proof.record_type, proof.domain) == ("FILE", name), proof
    m = re.fullmatch(rf"http://{re.escape(name)}:{web.port}(/\.well-known/pki-validation/openscm-(.{{16}})\.txt)",
                     proof.record_name)
    assert m, proof.record_name
    path = m.group(1)
    assert m.group(2) == proof.record_value[:16] and len(proof.record_value) >= 32, proof

    # The first check runs at once: it asks our web server for the file, which is not there yet.
    def history():
        return server.admin("cert", "history", cert_id)["events"]
    wait_until(lambda: any(e["event"] == "validation_failed" and "status 404" in e["detail"]
                           for e in history()),
               20, "a failed first check (404) in the history", seen=history)
    assert web.requests(path), f"no request for {path}: {web.requests()}"
    assert {host for host, _, _ in web.requests(path)} == {f"{name}:{web.port}"}, web.requests(path)
    assert show(client, cert_id).status == "CHECKING_DOMAIN"

    web.publish(path, proof.record_value + "\n")
    try:
        wait_until(lambda: show(client, cert_id).status == "ISSUED", 60,
                   "ISSUED after the file appeared",
                   seen=lambda: (show(client, cert_id).status, web.requests(path)))
        assert any(status == 200 for _, _, status in web.requests(path)), web.requests(path)
        exported = client.export_certificate(ExportCertificateRequest(certificate_id=cert_id))
        assert dns_sans(load_certs(exported.certificate)[0]) == {name}
        openssl_verify(module_tmp / f"file-{backend.name}", server.ca_root_path,
                       exported.certificate, exported.certificate_chain)
        events = history()
        assert any(e["event"] == "validation_passed" and e["detail"] == f"{name} (FILE)"
                   for e in events), events
        assert show(client, cert_id).authentification == []
    finally:
        web.withdraw(path)


def refused(client, cert_id: str, domain: str, method: str, code: str, why: str):
    """Applies and expects a 400 with `code` whose message names `domain` and says `why`."""
    with pytest.raises(exceptions.ClientRequestException) as e:
        apply(client, cert_id, domain, method=method)
    assert (e.value.status_code, e.value.error_code) == (400, code), (domain, method, e.value)
    assert domain in e.value.error_msg and why in e.value.error_msg, (domain, method, e.value.error_msg)


# One label under the wildcard is no domain name (SCM.0005, the syntax); a wildcard over a longer
# public suffix, from the Public Suffix List or reserved, is refused by the issuance policy
# (SCM.0015, BR 3.2.2.6).
@pytest.mark.parametrize("domain,code,why", [
    ("*.com", "SCM.0005", "not a fully qualified domain name"),
    ("*.test", "SCM.0005", "not a fully qualified domain name"),
    ("*.co.uk", "SCM.0015", "directly under the public suffix co.uk"),
    ("*.home.arpa", "SCM.0015", "directly under the public suffix home.arpa"),
])
def test_a_wildcard_directly_under_a_public_suffix_is_refused_and_changes_nothing(client, server, domain,
                                                                                  code, why):
    cert_id = buy(client, "WILDCARD")
    refused(client, cert_id, domain, "DNS", code, why)
    shown = show(client, cert_id)
    assert (shown.status, shown.authentification) == ("PAID", []), shown
    events = [e["event"] for e in server.admin("cert", "history", cert_id)["events"]]
    assert "applied" not in events and "issued" not in events, events
    assert server.admin("cert", "history", cert_id)["versions"] == []


@pytest.mark.parametrize("domain", ["*.files.example.com", "*.files.test"])
def test_a_wildcard_cannot_be_validated_with_a_file(client, server, domain):
    cert_id = buy(client, "WILDCARD")
    refused(client, cert_id, domain, "FILE", "SCM.0015", "can only be validated with DNS")
    shown = show(client, cert_id)
    assert (shown.status, shown.authentification) == ("PAID", []), shown
    assert server.admin("cert", "history", cert_id)["versions"] == []


def test_a_wildcard_under_a_registrable_name_is_accepted_with_dns(client, server):
    cert_id = buy(client, "WILDCARD")
    apply(client, cert_id, "*.shop.test", method="DNS")
    assert show(client, cert_id).status == "ISSUED"  # .test is pre-authorized by the policy
    exported = client.export_certificate(ExportCertificateRequest(certificate_id=cert_id))
    assert dns_sans(load_certs(exported.certificate)[0]) == {"*.shop.test"}
    versions = server.admin("cert", "history", cert_id)["versions"]
    assert [(v["seq"], v["reason"]) for v in versions] == [(1, "issued")], versions
