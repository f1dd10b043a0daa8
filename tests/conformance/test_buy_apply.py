"""SubscribeCertificate and ApplyCertificate through the official SDK: success shapes, field by
field, and each documented refusal."""

from sdk_helpers import CERT_ID, ORDER_ID, apply, bought_id, buy, sdk_error, show


def test_buy_answers_order_and_certificates(scm):
    resp = buy(scm, domain_type="MULTI_DOMAIN", domain_numbers=3, order_number=2)
    assert ORDER_ID.match(resp.order_id), resp.order_id
    assert len(resp.cert) == 2
    for c in resp.cert:
        assert CERT_ID.match(c.cert_id), c.cert_id
        s = show(scm, c.cert_id)
        assert (s.id, s.order_id, s.status) == (c.cert_id, resp.order_id, "PAID")
        assert (s.type, s.brand, s.domain_type, s.domain_count) == (
            "DV_SSL_CERT", "GLOBALSIGN", "MULTI_DOMAIN", 3)
        assert s.validity_period == 12


def test_buy_refusals_name_the_field(scm):
    sdk_error(lambda: buy(scm, agree_privacy_protection=False), 400, "SCM.0005",
              "agree_privacy_protection")
    sdk_error(lambda: buy(scm, order_number=0), 400, "SCM.0005", "order_number")
    sdk_error(lambda: buy(scm, cert_type="NOT_A_TYPE"), 400, "SCM.0005", "cert_type")


def test_apply_issues(scm):
    cert_id = bought_id(scm)
    resp = apply(scm, cert_id, "apply.conformance.test")
    assert resp.request_info == "success"
    s = show(scm, cert_id)
    assert (s.status, s.domain, s.validation_method) == ("ISSUED", "apply.conformance.test", "DNS")


def test_apply_refusals(scm, scm_other):
    cert_id = bought_id(scm)
    sdk_error(lambda: apply(scm, cert_id, "not a domain"), 400, "SCM.0005", "domain")
    # Outside the issuance policy.
    sdk_error(lambda: apply(scm, cert_id, "www.example.com"), 400, "SCM.0015")
    # Another account's certificate answers as an unknown one.
    sdk_error(lambda: apply(scm_other, cert_id, "x.conformance.test"), 404, "SCM.0020")
    sdk_error(lambda: apply(scm, "scs0000000000000", "x.conformance.test"), 404, "SCM.0020")
    apply(scm, cert_id, "twice.conformance.test")
    # Applied already: the status does not allow it.
    sdk_error(lambda: apply(scm, cert_id, "twice.conformance.test"), 400, "SCM.0010")
