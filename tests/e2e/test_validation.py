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
"""

import time

import pytest

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
from e2e_helpers import openssl_verify, wait_until

APPLICANT = dict(applicant_name="Tom Smith", applicant_phone="13212345678",
                 applicant_email="tom@example.com")


@pytest.fixture(scope="module")
def dns(module_tmp, backend):
    with started(ChallTestSrv(module_tmp / f"challtestsrv-{backend.name}")) as component:
        yield component


@pytest.fixture(scope="module")
def server(servers, dns):
    s = servers.new("dcv", config_text=f"""
[validation]
nameservers = ["{dns.dns_addr}"]
max_interval_seconds = 5

[jobs]
poll_millis = 100
""")
    s.start()
    return s


@pytest.fixture(scope="module")
def client(server):
    return server.sdk_client()


def buy(client) -> str:
    bought = client.subscribe_certificate(SubscribeCertificateRequest(body=PurchaseCertificateRequestBody(
        cert_brand="GLOBALSIGN", cert_type="DV_SSL_CERT", domain_type="SINGLE_DOMAIN",
        effective_time=1, domain_numbers=1, order_number=1, agree_privacy_protection=True,
    )))
    return bought.cert[0].cert_id


def apply(client, cert_id: str, domain: str):
    client.apply_certificate(ApplyCertificateRequest(
        certificate_id=cert_id,
        body=ApplyCertificateRequestBody(domain=domain, agree_privacy_protection=True,
                                         domain_method="DNS", **APPLICANT),
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
        assert openssl_verify(module_tmp / f"dcv-{backend.name}", server.ca_root_path,
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
