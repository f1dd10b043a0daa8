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
    # A wildcard on a single-domain certificate.
    sdk_error(lambda: apply(scm, cert_id, "*.conformance.test"), 400, "SCM.0015")
    # Another account's certificate answers as an unknown one.
    sdk_error(lambda: apply(scm_other, cert_id, "x.conformance.test"), 404, "SCM.0020")
    sdk_error(lambda: apply(scm, "scs0000000000000", "x.conformance.test"), 404, "SCM.0020")
    apply(scm, cert_id, "twice.conformance.test")
    # Applied already: the status does not allow it.
    sdk_error(lambda: apply(scm, cert_id, "twice.conformance.test"), 400, "SCM.0010")


def test_multi_domain_of_one_domain_is_bought_and_issued(scm):
    """The v3 seed page documents `domain_numbers` 1..100: a MULTI_DOMAIN certificate of one
    domain (its primary) is a purchase it allows, issued for that one name."""
    cert_id = bought_id(scm, domain_type="MULTI_DOMAIN", domain_numbers=1)
    s = show(scm, cert_id)
    assert (s.status, s.domain_type, s.domain_count, s.wildcard_count) == (
        "PAID", "MULTI_DOMAIN", 1, 0)
    # One name only: an additional one does not fit.
    sdk_error(lambda: apply(scm, cert_id, "one.conformance.test", sans="two.conformance.test"),
              400, "SCM.0015")
    apply(scm, cert_id, "one.conformance.test")
    assert show(scm, cert_id).status == "ISSUED"
    sdk_error(lambda: buy(scm, domain_type="MULTI_DOMAIN", domain_numbers=0), 400, "SCM.0005",
              "domain_numbers")


def test_wildcard_count_is_the_number_of_additional_wildcard_domains(scm):
    """`wildcard_count` = the number of (additional) wildcard domains (reference §4.3.2): a
    wildcard primary domain is not one of them, in show and in list."""
    from huaweicloudsdkscm.v3 import ListCertificatesRequest

    wildcard = bought_id(scm, domain_type="WILDCARD")
    assert (show(scm, wildcard).domain_count, show(scm, wildcard).wildcard_count) == (1, 0)
    multi = bought_id(scm, domain_type="MULTI_DOMAIN", domain_numbers=3,
                      primary_domain_type="WILDCARD_DOMAIN", single_domain_number=1,
                      wildcard_domain_number=1)
    s = show(scm, multi)
    assert (s.multi_domain_type, s.domain_count, s.wildcard_count) == ("primary_wildcard", 3, 1)
    listed = {c.id: c for c in scm.list_certificates(
        ListCertificatesRequest(limit=50, status="PAID")).certificates}
    if wildcard in listed:
        assert listed[wildcard].wildcard_count == 0
    if multi in listed:
        assert listed[multi].wildcard_count == 1
    apply(scm, wildcard, "*.wild.conformance.test")
    assert show(scm, wildcard).wildcard_count == 0


def test_v2_save_takes_what_its_page_allows(server, scm):
    """v2 `save` (no SDK has a v2 client: signed with the SDK's own signer, as a v2 client
    would) takes what its page allows: its own example e-mail value `example.huawei.com`, an
    empty `applicant_name` ("0 to 63 characters") and, for a DV certificate, no company fields
    ("mandatory for certificates of the OV and EV types"); `complete` then issues it."""
    cert_id = bought_id(scm)  # DV_SSL_CERT, bought through the SDK
    form = {"domain": "v2-save.conformance.test", "country": "CN", "applicant_name": "",
            "applicant_phone": "13212345678", "applicant_email": "example.huawei.com",
            "contact_email": "example.huawei.com", "csr": "", "sans": "",
            "agree_privacy_protection": True}
    resp = server.v2("POST", f"/scm/cert/{cert_id}/save", form)
    assert (resp.status, resp.json) == (200, {"request_info": "success"}), resp
    s = show(scm, cert_id)
    assert (s.status, s.domain) == ("PAID", "v2-save.conformance.test")
    assert s.application_info.applicant_email == "example.huawei.com"
    assert s.application_info.company_name is None
    resp = server.v2("POST", f"/scm/cert/{cert_id}/complete")
    assert (resp.status, resp.json) == (200, {"request_info": "success"}), resp
    assert show(scm, cert_id).status == "ISSUED"
    # An OV certificate still needs the company.
    ov = server.v2("POST", "/scm/cert/purchase", {
        "cert_brand": "GLOBALSIGN", "cert_type": "OV_SSL_CERT", "domain_type": "SINGLE_DOMAIN",
        "effective_time": 1, "domain_numbers": 1, "order_number": 1,
        "agree_privacy_protection": True}).json["cert"][0]["cert_id"]
    resp = server.v2("POST", f"/scm/cert/{ov}/save", form)
    assert resp.status == 400 and resp.json["error_code"] == "SCM.0005", resp
    assert "company_name" in resp.json["error_msg"]


def test_certificate_ids_do_not_run_ahead_of_the_clock(server, scm):
    """Certificate ids are `scs` + a millisecond time. A 1,000-certificate purchase (v2 allows
    1..1000; signed with the SDK's own signer) takes the milliseconds up to the purchase, and
    those before them that no id has taken: when it is answered, no id is more than 100 ms ahead
    of the clock (they ran about 950 ms ahead), and neither is any of a second one bought at once.
    (Not "never ahead" for the first: ids handed out by the tests just before it, within the last
    second, take some of its milliseconds, which a busy machine made happen.) Ids bought through
    the SDK afterwards are above them all."""
    import time

    order = {"cert_brand": "GLOBALSIGN", "cert_type": "OV_SSL_CERT",
             "domain_type": "SINGLE_DOMAIN", "effective_time": 1, "domain_numbers": 1,
             "order_number": 1000, "agree_privacy_protection": True}
    seen = set()
    for _ in range(2):
        resp = server.v2("POST", "/scm/cert/purchase", order)
        answered = int(time.time() * 1000)
        assert resp.status == 200, resp
        ids = [c["cert_id"] for c in resp.json["cert"]]
        assert len(ids) == 1000 and all(CERT_ID.match(i) for i in ids)
        millis = [int(i[3:]) for i in ids]
        assert max(millis) - answered <= 100, f"{max(millis) - answered} ms ahead"
        assert not seen & set(ids), "an id was handed out twice"
        seen |= set(ids)
    # The SDK's own purchase after them: a fresh id, above every one before.
    after = buy(scm).cert[0].cert_id
    assert after not in seen and int(after[3:]) > max(int(i[3:]) for i in seen)
