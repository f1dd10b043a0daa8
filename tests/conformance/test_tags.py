"""Tag operations through the official SDK: CreateCertificateTag, ListTagsByCertificate,
BatchCreateOrDeleteTags and ListAllTags, field by field, and each documented refusal."""

from huaweicloudsdkscm.v3 import (
    BatchCreateOrDeleteTagsRequest,
    BatchCreateOrDeleteTagsRequestBody,
    CreateCertificateTagRequest,
    CreateCertificateTagRequestBody,
    ListAllTagsRequest,
    ListTagsByCertificateRequest,
    ScsResourceTag,
)

from sdk_helpers import bought_id, sdk_error


def create(scm, cert_id, key, value):
    return scm.create_certificate_tag(CreateCertificateTagRequest(
        resource_id=cert_id,
        body=CreateCertificateTagRequestBody(tag=ScsResourceTag(key=key, value=value))))


def batch(scm, cert_id, action, tags):
    return scm.batch_create_or_delete_tags(BatchCreateOrDeleteTagsRequest(
        resource_id=cert_id,
        body=BatchCreateOrDeleteTagsRequestBody(
            action=action,
            tags=None if tags is None else [ScsResourceTag(key=k, value=v) for k, v in tags])))


def tags_of(scm, cert_id):
    resp = scm.list_tags_by_certificate(ListTagsByCertificateRequest(resource_id=cert_id))
    return [(t.key, t.value) for t in resp.tags]


def test_tags_are_added_listed_and_deleted(scm, scm_other):
    a = bought_id(scm)
    b = bought_id(scm)
    assert tags_of(scm, a) == []
    assert create(scm, a, "env", "prod").desc == "success"
    # The same key again replaces the value.
    assert create(scm, a, "env", "staging").desc == "success"
    assert tags_of(scm, a) == [("env", "staging")]

    resp = batch(scm, b, "create", [("env", "prod"), ("团队", "a/b"), ("x", "")])
    assert resp.desc == "create tags success"
    assert tags_of(scm, b) == [("env", "prod"), ("x", ""), ("团队", "a/b")]

    # Every key of the account, with its values; another account sees none of them.
    all_tags = scm.list_all_tags(ListAllTagsRequest()).tags
    by_key = {t.key: t.values for t in all_tags}
    assert by_key["env"] == ["prod", "staging"]
    assert by_key["x"] == [""]
    assert by_key["团队"] == ["a/b"]
    other_keys = {t.key for t in scm_other.list_all_tags(ListAllTagsRequest()).tags}
    assert "团队" not in other_keys

    resp = batch(scm, b, "delete", [("env", None), ("nope", "v")])
    assert resp.desc == "delete tags success"
    assert tags_of(scm, b) == [("x", ""), ("团队", "a/b")]


def test_tag_refusals(scm, scm_other):
    a = bought_id(scm)
    for key, value, field in [
        (None, "v", "tag.key"),
        ("", "v", "tag.key"),
        ("k" * 129, "v", "tag.key"),
        ("a/b", "v", "tag.key"),
        ("k", "v" * 256, "tag.value"),
        ("k", "a#b", "tag.value"),
    ]:
        sdk_error(lambda: create(scm, a, key, value), 400, "SCM.0005", field)
    sdk_error(lambda: scm.create_certificate_tag(CreateCertificateTagRequest(
        resource_id=a, body=CreateCertificateTagRequestBody())), 400, "SCM.0005", "tag")

    many = [(f"k{i}", "v") for i in range(21)]
    for action, tags, field in [
        (None, [("k", "v")], "action"),
        ("update", [("k", "v")], "action"),
        ("create", None, "tags"),
        ("create", [], "tags"),
        ("create", many, "tags"),
        ("create", [("k", "v"), ("k", "w")], "tags[1].key"),
        ("create", [("k", "v" * 256)], "tags[0].value"),
    ]:
        sdk_error(lambda: batch(scm, a, action, tags), 400, "SCM.0005", field)
    # Bad input changed nothing.
    assert tags_of(scm, a) == []

    # At most 20 tags per certificate.
    assert batch(scm, a, "create", many[:20]).desc == "create tags success"
    sdk_error(lambda: create(scm, a, "k20", "v"), 400, "SCM.0005", "tags")
    assert create(scm, a, "k0", "w").desc == "success"
    assert len(tags_of(scm, a)) == 20

    # Malformed, unknown, and another account's certificate (answered as an unknown one).
    for who, cert_id, status, code in [
        (scm, "not-a-cert-id-16", 400, "SCM.0008"),
        (scm, "scs0000000000001", 404, "SCM.0020"),
        (scm_other, a, 404, "SCM.0020"),
    ]:
        sdk_error(lambda: create(who, cert_id, "k", "v"), status, code)
        sdk_error(lambda: batch(who, cert_id, "create", [("k", "v")]), status, code)
        sdk_error(lambda: tags_of(who, cert_id), status, code)


def test_tags_given_at_buy_are_listed_by_every_tag_operation(scm):
    """Tags sent with SubscribeCertificate are the certificates' tags from the start:
    ListTagsByCertificate, ListAllTags and ListCertificatesByTag see them (they used to be
    stored and seen by none)."""
    from huaweicloudsdkscm.v3 import (
        ListCertificatesByTagRequest,
        ListCertificatesByTagRequestBody,
        ScsTag,
    )

    from sdk_helpers import buy

    resp = buy(scm, order_number=2,
               tags=[ScsResourceTag(key="bought-with", value="buy"),
                     ScsResourceTag(key="bought-团队", value="a/b")])
    ids = sorted(c.cert_id for c in resp.cert)
    for cert_id in ids:
        assert tags_of(scm, cert_id) == [("bought-with", "buy"), ("bought-团队", "a/b")]

    by_key = {t.key: t.values for t in scm.list_all_tags(ListAllTagsRequest()).tags}
    assert by_key["bought-with"] == ["buy"]
    assert by_key["bought-团队"] == ["a/b"]

    found = scm.list_certificates_by_tag(ListCertificatesByTagRequest(
        resource_instances="resource_instances",
        body=ListCertificatesByTagRequestBody(
            action="filter", limit=50, offset=0,
            tags=[ScsTag(key="bought-with", values=["buy"])])))
    assert found.total_count == 2
    assert sorted(r.resource_id for r in found.resources) == ids
    for r in found.resources:
        assert sorted((t.key, t.value) for t in r.tags) == [("bought-with", "buy"),
                                                            ("bought-团队", "a/b")]

    # They are the certificates' own tags: a batch delete removes them like any other.
    assert batch(scm, ids[0], "delete", [("bought-with", None)]).desc == "delete tags success"
    assert tags_of(scm, ids[0]) == [("bought-团队", "a/b")]
