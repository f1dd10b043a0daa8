"""Small helpers shared by the conformance modules: the official SDK's request and error types,
and the patterns the reference documents for ids and times."""

import re

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkscm.v3 import (
    ApplyCertificateRequest,
    ApplyCertificateRequestBody,
    PurchaseCertificateRequestBody,
    ShowCertificateRequest,
    SubscribeCertificateRequest,
)

CERT_ID = re.compile(r"^scs[0-9]{13}$")
ORDER_ID = re.compile(r"^CS[0-9A-Z]{15}$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")

APPLICANT = {"applicant_name": "Tom Smith", "applicant_phone": "13212345678",
             "applicant_email": "tom@example.com"}


def sdk_error(call, status: int, code: str, field: str = None) -> ClientRequestException:
    """Runs `call` (an SDK call) and asserts it fails with `status` and `code` (and a message
    naming `field`), as the SDK reports it: a ClientRequestException with the request id."""
    with pytest.raises(ClientRequestException) as info:
        call()
    err = info.value
    assert (err.status_code, err.error_code) == (status, code), (err.status_code, err.error_code,
                                                                 err.error_msg)
    if field is not None:
        assert field in (err.error_msg or ""), err.error_msg
    assert HEX32.match(err.request_id or ""), err.request_id
    return err


def buy(scm, **overrides):
    """Buys one certificate through the SDK; returns the response."""
    body = {"cert_brand": "GLOBALSIGN", "cert_type": "DV_SSL_CERT", "domain_type": "SINGLE_DOMAIN",
            "effective_time": 1, "domain_numbers": 1, "order_number": 1,
            "agree_privacy_protection": True}
    body.update(overrides)
    return scm.subscribe_certificate(
        SubscribeCertificateRequest(body=PurchaseCertificateRequestBody(**body)))


def bought_id(scm, **overrides) -> str:
    """The id of one freshly bought (PAID) certificate."""
    return buy(scm, **overrides).cert[0].cert_id


def apply(scm, cert_id, domain, **extra):
    """Applies for a bought certificate through the SDK (issued at once by the built-in CA for
    names under the default policy, `.test` among them)."""
    body = dict(APPLICANT, domain=domain, agree_privacy_protection=True, domain_method="DNS")
    body.update(extra)
    return scm.apply_certificate(ApplyCertificateRequest(
        certificate_id=cert_id, body=ApplyCertificateRequestBody(**body)))


def issued_id(scm, domain, **extra) -> str:
    """The id of a certificate bought and issued for `domain`."""
    cert_id = bought_id(scm)
    apply(scm, cert_id, domain, **extra)
    return cert_id


def show(scm, cert_id):
    return scm.show_certificate(ShowCertificateRequest(certificate_id=cert_id))
