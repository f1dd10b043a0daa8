"""DeleteCertificate, UnsubscribeCertificate and CancelCertificateRequest through the official
SDK: the response objects, the certificate gone afterwards, and each refusal (status + code),
another account's id answering as an unknown one."""

import pytest
from huaweicloudsdkscm.v3 import (
    CancelCertificateRequestRequest,
    DeleteCertificateRequest,
    UnsubscribeCertificateRequest,
)

from sdk_helpers import bought_id, issued_id, sdk_error, show


def delete(scm, cert_id):
    return scm.delete_certificate(DeleteCertificateRequest(certificate_id=cert_id))


def unsubscribe(scm, cert_id):
    return scm.unsubscribe_certificate(UnsubscribeCertificateRequest(cert_id=cert_id))


def cancel(scm, cert_id):
    return scm.cancel_certificate_request(CancelCertificateRequestRequest(certificate_id=cert_id))


def gone(scm, cert_id):
    sdk_error(lambda: show(scm, cert_id), 404, "SCM.0020")


@pytest.mark.parametrize("op", [delete, unsubscribe, cancel])
def test_ids_refused_as_documented(scm, scm_other, op):
    sdk_error(lambda: op(scm, "scs123"), 400, "SCM.0008")
    sdk_error(lambda: op(scm, "scs0000000000000"), 404, "SCM.0020")
    # Another account's certificate answers as an unknown one, and stays as it was.
    theirs = issued_id(scm_other, f"{op.__name__}.other.conformance.test")
    before = show(scm_other, theirs).to_json_object()
    sdk_error(lambda: op(scm, theirs), 404, "SCM.0020")
    assert show(scm_other, theirs).to_json_object() == before


def test_delete_removes_an_issued_certificate(scm):
    cert_id = issued_id(scm, "delete.conformance.test")
    resp = delete(scm, cert_id)
    assert resp.status_code == 204
    assert resp.to_json_object() is None  # no body: the SDK keeps nothing
    gone(scm, cert_id)
    sdk_error(lambda: delete(scm, cert_id), 404, "SCM.0020")


def test_delete_refuses_a_paid_certificate(scm):
    cert_id = bought_id(scm)
    sdk_error(lambda: delete(scm, cert_id), 400, "SCM.0010")
    assert show(scm, cert_id).status == "PAID"


@pytest.mark.parametrize("issue", [False, True])
def test_unsubscribe_removes_a_purchased_certificate(scm, issue):
    cert_id = issued_id(scm, "unsub.conformance.test") if issue else bought_id(scm)
    resp = unsubscribe(scm, cert_id)
    assert resp.status_code == 200
    assert resp.unsubscribe_results == "SUCCESS"
    gone(scm, cert_id)
    sdk_error(lambda: unsubscribe(scm, cert_id), 404, "SCM.0020")


@pytest.mark.parametrize("issue", [False, True])
def test_cancel_refuses_certificates_not_under_review(scm, issue):
    # The built-in CA decides at once: nothing it handles stays under review.
    cert_id = issued_id(scm, "cancel.conformance.test") if issue else bought_id(scm)
    status = show(scm, cert_id).status
    sdk_error(lambda: cancel(scm, cert_id), 400, "SCM.0010")
    assert show(scm, cert_id).status == status
