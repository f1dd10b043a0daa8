"""Request signing as the SDKs do it, against the edge cases of the reference (§1.3–1.9).

Every request here is signed by the official SDK's own signer (huaweicloudsdkcore): through
ScmClient where the SDK can express the case, else through its `Signer` on a hand-built
`SdkRequest`. The Go SDK's signed-header set (no `content-type`, no `host`) is produced by the
same signer with only its header selection changed, as Go's signer selects them (§1.4).
Each accepted case has a refused twin (the same request changed after signing), so a server
that skipped the check would fail here.
"""

import json
from urllib.parse import quote

from huaweicloudsdkcore.signer.signer import Signer
from huaweicloudsdkscm.v3 import ExportCertificateRequest, ListCertificatesRequest, \
    ShowCertificateRequest

from e2e_helpers import sign_sdk_request
from sdk_helpers import CERT_ID, HEX32, issued_id, sdk_error

USER_AGENT = "huaweicloud-usdk-python/3.0"
BUY = {"cert_brand": "GLOBALSIGN", "cert_type": "DV_SSL_CERT", "domain_type": "SINGLE_DOMAIN",
       "effective_time": 1, "domain_numbers": 1, "order_number": 1,
       "agree_privacy_protection": True}


class GoStyleSigner(Signer):
    """The SDK's signer with the Go SDK's header selection: headers starting with
    `content-type` are left out, and `host` is not among them (Go never adds it)."""

    @classmethod
    def _process_signed_headers(cls, request):
        return sorted(k.lower() for k in request.header_params
                      if "_" not in k and not k.lower().startswith("content-type")
                      and k.lower() != "host")


def signed(server, method, path, *, query=None, body=None, content_type="application/json",
           signer=Signer):
    """A request signed by `signer` with the server's bootstrap credentials, as ScmClient
    builds it (X-Domain-Id, User-Agent, X-Sdk-Date). Returns the signed SdkRequest."""
    creds = server.credentials
    headers = {"User-Agent": USER_AGENT}
    if content_type is not None:
        headers["Content-Type"] = content_type
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    signed_request = sign_sdk_request(method, server.host, path, ak=creds["access_key"],
                                      sk=creds["secret_key"], domain_id=creds["domain_id"],
                                      query=query, headers=headers, body=raw, signer=signer)
    if signer is GoStyleSigner:
        # Go sends no Host header of its own; the HTTP client adds one, unsigned.
        signed_request.header_params.pop("Host", None)
    return signed_request


def send(server, req, *, uri=None, body=None, headers=None):
    """Sends a signed request as signed (its path percent-encoded as the SDK's HTTP client
    sends it), or with its uri, body or headers replaced."""
    hdrs = dict(req.header_params)
    hdrs.update(headers or {})
    return server.raw(req.method, uri or wire_uri(req), headers=hdrs,
                      data=req.body if body is None else body)


def wire_uri(req):
    """The signed request's path and query as sent: path segments percent-encoded."""
    path, sep, query = req.uri.partition("?")
    return quote(path, safe="/~") + sep + query


def assert_unauthenticated(resp):
    assert resp.status == 401, (resp.status, resp.text)
    assert resp.json["error_code"].startswith("APIGW."), resp.text


# ------------------------------------------------------------------------------ query strings


def test_a_query_with_spaces_and_plus_is_verified_through_the_sdk(scm, server):
    """ScmClient encodes space as %20 and `+` as %2B; the server must decode the query the same
    way (a literal `+` is not a space) to verify, and the search sees the value as sent."""
    domain = "plus-space.test"
    issued_id(scm, domain)
    found = scm.list_certificates(ListCertificatesRequest(content="plus-space", limit=10))
    assert [c.domain for c in found.certificates] == [domain]
    none = scm.list_certificates(ListCertificatesRequest(content="a b+c", limit=10))
    assert none.total_count == 0
    assert none.certificates == []


def test_a_literal_plus_and_encoded_spaces_in_a_raw_query_are_verified(server):
    req = signed(server, "GET", "/v3/scm/certificates",
                 query=[("content", "x y+z"), ("limit", 10)])
    # The signer's uri is the canonical query: space as %20, `+` as %2B.
    assert "x%20y%2Bz" in req.uri, req.uri
    resp = send(server, req)
    assert resp.status == 200, resp.text
    assert resp.json["total_count"] == 0
    # A literal `+` is a `+` (§1.9 step 5), not a form-encoded space: it re-encodes to the
    # signed `%2B` and verifies; a space where the `+` was signed does not.
    assert send(server, req, uri=wire_uri(req).replace("%2B", "+")).status == 200
    assert_unauthenticated(send(server, req, uri=wire_uri(req).replace("%2B", "%20")))
    # A changed value is refused.
    assert_unauthenticated(send(server, req, uri=wire_uri(req).replace("limit=10", "limit=11")))


def test_query_parameters_in_any_order_verify(server):
    """The canonical query is sorted: the order on the wire does not matter."""
    req = signed(server, "GET", "/v3/scm/certificates",
                 query=[("limit", 10), ("offset", 0), ("sort_dir", "DESC")])
    path, query = wire_uri(req).split("?", 1)
    shuffled = "&".join(reversed(query.split("&")))
    resp = send(server, req, uri=f"{path}?{shuffled}")
    assert resp.status == 200, resp.text


# ------------------------------------------------------------------------------ paths


def test_a_non_ascii_path_segment_is_verified_and_answered_as_a_bad_id(scm):
    """The SDK percent-encodes a non-ASCII id in the path; the signature verifies over the
    re-encoded segment, so the caller gets the id refusal, not an authentication failure."""
    for bad in ("scs证书证书证书证书证书证书证", "scsé", "scs 12345", "scs+1234567890123"):
        err = sdk_error(lambda: scm.show_certificate(ShowCertificateRequest(certificate_id=bad)),
                        400, "SCM.0008")
        assert err.error_msg


def test_a_non_ascii_path_segment_changed_after_signing_is_refused(server):
    req = signed(server, "GET", "/v3/scm/certificates/scs证书")
    uri = wire_uri(req)
    assert uri.endswith("/scs%E8%AF%81%E4%B9%A6"), uri
    resp = send(server, req)
    assert (resp.status, resp.json["error_code"]) == (400, "SCM.0008"), resp.text
    # Lower-case hex is the same segment once decoded: it still verifies.
    assert send(server, req, uri=uri.replace("%E8%AF%81", "%e8%af%81")).status == 400
    # Another character is another path.
    assert_unauthenticated(send(server, req, uri=uri.replace("%E8%AF%81", "%E8%AF%82")))


# ------------------------------------------------------------------------------ bodies


def test_an_empty_body_post_is_verified_with_the_empty_hash(scm, server):
    """Export is a POST without a body: the SDK signs the empty hash while sending
    `Content-Type: application/json` (signed) and `Content-Length: 0` (not signed)."""
    cert_id = issued_id(scm, "empty-body.test")
    exported = scm.export_certificate(ExportCertificateRequest(certificate_id=cert_id))
    assert exported.certificate.startswith("-----BEGIN CERTIFICATE-----")
    req = signed(server, "POST", f"/v3/scm/certificates/{cert_id}/export")
    resp = send(server, req)
    assert resp.status == 200, resp.text
    assert resp.json["certificate"] == exported.certificate
    # A body added after signing breaks the empty hash.
    assert_unauthenticated(send(server, req, body=b"{}"))


def test_json_with_a_charset_is_hashed_as_json(server):
    """`application/json;charset=UTF-8` starts with `application/json`: the body is hashed."""
    req = signed(server, "POST", "/v3/scm/certificates/buy", body=BUY,
                 content_type="application/json;charset=UTF-8")
    assert "X-Sdk-Content-Sha256" not in req.header_params
    resp = send(server, req)
    assert resp.status == 200, resp.text
    cert = resp.json["cert"]
    assert len(cert) == 1 and CERT_ID.match(cert[0]["cert_id"]), cert
    tampered = json.dumps(dict(BUY, order_number=2)).encode()
    assert_unauthenticated(send(server, req, body=tampered))


def test_an_unsigned_payload_with_a_body_is_refused(server):
    """Any other content type makes the signer send `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD`
    and leave the body out of the signature. Every body OpenSCM takes is JSON, and an unsigned
    body could be swapped under a captured signature, so such a request is refused (401)
    before anything is bought; without a body the same header is harmless."""
    req = signed(server, "POST", "/v3/scm/certificates/buy", body=json.dumps(BUY).encode(),
                 content_type="text/plain")
    assert req.header_params["X-Sdk-Content-Sha256"] == "UNSIGNED-PAYLOAD"
    before = send(server, signed(server, "GET", "/v3/scm/certificates")).json["total_count"]
    resp = send(server, req)
    assert_unauthenticated(resp)
    assert "malformed" in resp.json["error_msg"], resp.text
    after = send(server, signed(server, "GET", "/v3/scm/certificates")).json["total_count"]
    assert after == before
    empty = signed(server, "GET", "/v3/scm/certificates", content_type="text/plain")
    assert empty.header_params["X-Sdk-Content-Sha256"] == "UNSIGNED-PAYLOAD"
    assert send(server, empty).status == 200


# ------------------------------------------------------------------------------ Go's header set


def test_go_style_signed_headers_without_content_type_and_host_verify(server):
    req = signed(server, "GET", "/v3/scm/certificates", query=[("limit", 10)],
                 signer=GoStyleSigner)
    signed_headers = req.header_params["Authorization"].split("SignedHeaders=")[1].split(",")[0]
    assert signed_headers == "user-agent;x-domain-id;x-sdk-date", signed_headers
    resp = send(server, req)
    assert resp.status == 200, resp.text
    assert HEX32.match(resp.headers["X-Request-Id"])


def test_go_style_body_is_still_hashed_and_unsigned_headers_may_change(server):
    req = signed(server, "POST", "/v3/scm/certificates/buy", body=BUY, signer=GoStyleSigner)
    resp = send(server, req)
    assert resp.status == 200, resp.text
    assert CERT_ID.match(resp.json["cert"][0]["cert_id"])
    # Content-Type is not signed by Go: another JSON spelling still verifies.
    resp = send(server, req, headers={"Content-Type": "application/json;charset=UTF-8"})
    assert resp.status == 200, resp.text
    # The body is: a changed body is refused.
    assert_unauthenticated(send(server, req, body=json.dumps(dict(BUY, order_number=3)).encode()))
    # And so is a changed signed header.
    assert_unauthenticated(send(server, req, headers={"User-Agent": "curl/8"}))
