"""ListCertificatesByTag (the literal `resource_instances` path segment) and the notification
operations (a top-level JSON array body) through the official SDK, field by field, and each
documented refusal."""

from huaweicloudsdkscm.v3 import (
    BatchCreateOrDeleteTagsRequest,
    BatchCreateOrDeleteTagsRequestBody,
    DisableNotificationRequest,
    EnableNotificationRequest,
    ListCertificatesByTagRequest,
    ListCertificatesByTagRequestBody,
    NoticeRequestBody,
    ScsMatch,
    ScsResourceTag,
    ScsTag,
    ShowCertificateRequest,
)

from sdk_helpers import bought_id, sdk_error


def tag(scm, cert_id, pairs):
    scm.batch_create_or_delete_tags(BatchCreateOrDeleteTagsRequest(
        resource_id=cert_id,
        body=BatchCreateOrDeleteTagsRequestBody(
            action="create", tags=[ScsResourceTag(key=k, value=v) for k, v in pairs])))


def by_tag(scm, **body):
    return scm.list_certificates_by_tag(ListCertificatesByTagRequest(
        resource_instances="resource_instances", body=ListCertificatesByTagRequestBody(**body)))


def test_certificates_are_filtered_and_counted_by_tags(scm, scm_other):
    prod = bought_id(scm)
    staging = bought_id(scm)
    tag(scm, prod, [("conf-env", "prod"), ("conf-team", "web")])
    tag(scm, staging, [("conf-env", "staging")])
    theirs = bought_id(scm_other)
    tag(scm_other, theirs, [("conf-env", "prod")])

    resp = by_tag(scm, tags=[ScsTag(key="conf-env", values=["prod"])], action="filter", limit=10, offset=0)
    assert resp.total_count == 1
    [r] = resp.resources
    assert r.resource_id == prod
    assert r.resource_name == scm.show_certificate(ShowCertificateRequest(certificate_id=prod)).name
    assert sorted((t.key, t.value) for t in r.tags) == [("conf-env", "prod"), ("conf-team", "web")]
    d = r.resource_detail
    assert (d.cert_id, d.resource_id, d.order_status) == (prod, prod, "PAID")
    assert (d.cert_type, d.cert_brand, d.domain_type) == ("DV_SSL_CERT", "GLOBALSIGN", "SINGLE_DOMAIN")
    assert d.purchase_period == 1 and d.domain_num == 1 and d.wildcard_number == 0
    assert d.push_support is False and d.unsubscribe_support is True and d.auto_deploy_support is False
    assert d.expired_time == "" and d.cert_issued_time == ""

    # AND between keys, OR between values; tags_any; not_tags_any.
    both = by_tag(scm, tags=[ScsTag(key="conf-env", values=["prod", "staging"])])
    assert {r.resource_id for r in both.resources} == {prod, staging}
    any_ = by_tag(scm, tags_any=[ScsTag(key="conf-team", values=[]), ScsTag(key="conf-env", values=["staging"])])
    assert {r.resource_id for r in any_.resources} == {prod, staging}
    none = by_tag(scm, not_tags_any=[ScsTag(key="conf-env", values=[])], limit=50)
    assert prod not in {r.resource_id for r in none.resources}
    assert staging not in {r.resource_id for r in none.resources}
    # count: only the total (resources is []).
    counted = by_tag(scm, tags=[ScsTag(key="conf-env", values=[])], action="count")
    assert (counted.total_count, counted.resources) == (2, [])
    # resource_name match, case-insensitive.
    name = scm.show_certificate(ShowCertificateRequest(certificate_id=staging)).name
    named = by_tag(scm, matches=[ScsMatch(key="resource_name", value=name.upper())])
    assert [r.resource_id for r in named.resources] == [staging]
    # The other account's certificate is never found.
    everything = by_tag(scm, tags=[ScsTag(key="conf-env", values=["prod"])], limit=50)
    assert theirs not in {r.resource_id for r in everything.resources}


def test_by_tag_refusals(scm):
    for body, field in [
        (dict(limit=5), "limit"),
        (dict(offset=-1), "offset"),
        (dict(action="delete"), "action"),
        (dict(tags=[ScsTag(key="k")]), "tags[0].values"),
        (dict(tags=[ScsTag(key="k", values=[]), ScsTag(key="k", values=[])]), "tags[1].key"),
        (dict(tags_any=[ScsTag(key="k", values=["v", "v"])]), "tags_any[0].values[1]"),
        (dict(matches=[ScsMatch(key="domain", value="x")]), "matches[0].key"),
    ]:
        sdk_error(lambda: by_tag(scm, **body), 400, "SCM.0005", field)


def test_notifications_are_turned_off_and_on(scm, scm_other):
    cert = bought_id(scm)
    theirs = bought_id(scm_other)
    off = scm.disable_notification(DisableNotificationRequest(
        body=[NoticeRequestBody(resource_id=cert, notice_type=["CERT_EXPIRING", "CERT_EXPIRED"])]))
    assert off.to_dict() == {}
    on = scm.enable_notification(EnableNotificationRequest(body=[NoticeRequestBody(resource_id=cert)]))
    assert on.to_dict() == {}

    for req in (EnableNotificationRequest, DisableNotificationRequest):
        call = scm.enable_notification if req is EnableNotificationRequest else scm.disable_notification
        sdk_error(lambda: call(req(body=[])), 400, "SCM.0005", "body")
        sdk_error(lambda: call(req(body=[NoticeRequestBody(notice_type=["CERT_EXPIRED"])])),
                  400, "SCM.0005", "[0].resource_id")
        sdk_error(lambda: call(req(body=[NoticeRequestBody(resource_id=cert, notice_type=["SOON"])])),
                  400, "SCM.0005", "[0].notice_type[0]")
        sdk_error(lambda: call(req(body=[NoticeRequestBody(resource_id="nope")])), 400, "SCM.0008")
        sdk_error(lambda: call(req(body=[NoticeRequestBody(resource_id=theirs)])), 404, "SCM.0020")
        sdk_error(lambda: call(req(body=[NoticeRequestBody(resource_id="scs0000000000001")])), 404, "SCM.0020")
