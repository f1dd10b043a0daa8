"""PushCertificate, BatchPushCertificate, DeployCertificate and ListDeployedResources through the
official SDK:
pushes to a real nginx and to file targets, the per-region and per-resource outcomes, where the
history says a certificate is deployed, and each refusal (status + code, the field named)."""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from huaweicloudsdkscm.v3 import (
    BatchPushCertificateRequest,
    BatchPushCertificateRequestBody,
    DeployCertificateRequest,
    DeployCertificateRequestBody,
    DeployedResource,
    ExportCertificateRequest,
    ListDeployedResourcesRequest,
    ListDeployedResourcesRequestBody,
    PushCertificateRequest,
    PushCertificateRequestBody,
)

from e2e_helpers import push_target_toml
from sdk_helpers import bought_id, issued_id, sdk_error

DOMAIN = "www.deploy.conformance.test"


@pytest.fixture(scope="module")
def server(servers, nginx, module_tmp):
    """A server with four ELB/CDN targets of the bootstrap account: `lb-north` (ELB,
    cn-north-4) is the real nginx; `lb-east` (ELB, cn-east-3) writes files; `lb-broken` (ELB,
    cn-south-1) fails its reload; the CDN target is named after the accelerated domain."""
    files = module_tmp / "deploy-targets"
    files.mkdir(exist_ok=True)

    def make(creds):
        def target(name, service, region, reload):
            return push_target_toml(name, account=creds["domain_id"], service=service,
                                    region=region, cert_path=files / f"{name}.crt",
                                    key_path=files / f"{name}.key", reload_command=reload)
        return (push_target_toml("lb-north", account=creds["domain_id"], service="ELB",
                                 region="cn-north-4", cert_path=nginx.cert_path,
                                 key_path=nginx.key_path, test_command=nginx.test_command(),
                                 reload_command=nginx.reload_command())
                + target("lb-east", "ELB", "cn-east-3", ["true"])
                + target("lb-broken", "ELB", "cn-south-1", ["false"])
                + target(DOMAIN, "CDN", "global", ["true"]))

    s = servers.bootstrap_then_configure("deploy", make)
    s.files = files
    return s


def push(scm, cert_id, service, project=None):
    return scm.push_certificate(PushCertificateRequest(
        certificate_id=cert_id,
        body=PushCertificateRequestBody(target_service=service, target_project=project)))


def batch_push(scm, cert_id, projects, service="ELB"):
    return scm.batch_push_certificate(BatchPushCertificateRequest(
        certificate_id=cert_id,
        body=BatchPushCertificateRequestBody(target_projects=projects, target_service=service)))


def deploy(scm, cert_id, service, resources, project=None):
    return scm.deploy_certificate(DeployCertificateRequest(
        certificate_id=cert_id,
        body=DeployCertificateRequestBody(project_name=project, service_name=service,
                                          resources=resources)))


def deployed(scm, ids, services):
    return scm.list_deployed_resources(ListDeployedResourcesRequest(
        body=ListDeployedResourcesRequestBody(certificate_ids=ids, service_names=services)))


def leaf_der(scm, cert_id) -> bytes:
    pem = scm.export_certificate(ExportCertificateRequest(certificate_id=cert_id)).certificate
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)


@pytest.fixture(scope="module")
def cert_id(scm):
    return issued_id(scm, DOMAIN)


def test_batch_push_answers_per_region_and_nginx_serves_it(scm, cert_id, nginx):
    resp = batch_push(scm, cert_id, ["cn-north-4", "cn-east-3", "cn-south-1", "ap-none-1"],
                      service="elb")
    assert resp.status_code == 200
    got = [(r.project_name, r.cert_id, r.message[:8]) for r in resp.results]
    assert got == [("cn-north-4", cert_id, "success"), ("cn-east-3", cert_id, "success"),
                   ("cn-south-1", None, "SCM.0028"), ("ap-none-1", None, "SCM.0030")]
    nginx.wait_for_cert(DOMAIN, leaf_der(scm, cert_id))
    # CDN is global: one result, whatever the regions named.
    resp = batch_push(scm, cert_id, ["a", "b"], service="CDN")
    assert [(r.project_name, r.message) for r in resp.results] == [("global", "success")]


def test_deploy_answers_the_failed_resources(scm, cert_id):
    resp = deploy(scm, cert_id, "ELB", [DeployedResource(id="lb-east"), DeployedResource(id="ghost"),
                                        DeployedResource(id="lb-broken")])
    assert resp.status_code == 200
    assert [(f.resource, f.failure_info[:8]) for f in resp.failure_list] == [
        ("ghost", "SCM.0030"), ("lb-broken", "SCM.0028")]
    # The region narrows the resources; all succeeded: an empty list.
    resp = deploy(scm, cert_id, "ELB", [DeployedResource(id="lb-east")], project="cn-east-3")
    assert resp.failure_list == []
    resp = deploy(scm, cert_id, "ELB", [DeployedResource(id="lb-east")], project="cn-north-4")
    assert [f.resource for f in resp.failure_list] == ["lb-east"]
    # CDN resources are accelerated domains that the certificate must cover.
    resp = deploy(scm, cert_id, "CDN", [DeployedResource(domain_name=DOMAIN),
                                        DeployedResource(domain_name="other.test")])
    assert [(f.resource, f.failure_info[:8]) for f in resp.failure_list] == [
        ("other.test", "SCM.0015")]


def test_deployed_resources_follow_the_history(scm, cert_id):
    batch_push(scm, cert_id, ["cn-north-4"])
    resp = deployed(scm, [cert_id], ["ALL"])
    assert resp.status_code == 200
    [r] = resp.results
    assert r.certificate_id == cert_id
    by_service = {d.service: d for d in r.deployed_resources}
    assert sorted(by_service) == ["CDN", "ELB", "WAF"]
    cdn, elb, waf = by_service["CDN"], by_service["ELB"], by_service["WAF"]
    assert (cdn.resource_location, cdn.resource_num) == ("global", 1)
    assert [(g.region_id, g.is_error, [x.resource_id for x in g.resources])
            for g in cdn.region_resources] == [("global", False, [DOMAIN])]
    assert (elb.resource_location, elb.resource_num) == ("region", 2)
    # lb-broken (cn-south-1) never took it and its last delivery failed: its region is listed,
    # in error, with no resource.
    assert [(g.region_id, g.is_error, [(x.resource_id, x.resource_name) for x in g.resources])
            for g in elb.region_resources] == [
        ("cn-east-3", False, [("lb-east", "lb-east")]),
        ("cn-north-4", False, [("lb-north", "lb-north")]),
        ("cn-south-1", True, [])]
    assert (waf.resource_num, waf.region_resources) == (0, [])
    assert r.total_num == 3
    # Only the services asked for; a certificate never pushed is deployed nowhere.
    fresh = issued_id(scm, "fresh.deploy.conformance.test")
    resp = deployed(scm, [fresh, cert_id], ["waf", "ELB"])
    assert [(x.certificate_id, x.total_num, [d.service for d in x.deployed_resources])
            for x in resp.results] == [(fresh, 0, ["ELB", "WAF"]), (cert_id, 2, ["ELB", "WAF"])]


@pytest.mark.parametrize("body, field", [
    (dict(target_projects=["cn-north-4"]), "target_service"),
    (dict(target_projects=["cn-north-4"], target_service="FTP"), "target_service"),
    (dict(target_service="ELB"), "target_projects"),
    (dict(target_projects=[], target_service="ELB"), "target_projects"),
    (dict(target_projects=["r"] * 11, target_service="ELB"), "target_projects"),
    (dict(target_projects=["x" * 33], target_service="ELB"), "target_projects[0]"),
])
def test_batch_push_refusals_name_the_field(scm, cert_id, body, field):
    sdk_error(lambda: scm.batch_push_certificate(BatchPushCertificateRequest(
        certificate_id=cert_id, body=BatchPushCertificateRequestBody(**body))), 400, "SCM.0005",
        field)


@pytest.mark.parametrize("body, field", [
    (dict(resources=[DeployedResource(id="lb-east")]), "service_name"),
    (dict(service_name="FTP", resources=[DeployedResource(id="lb-east")]), "service_name"),
    (dict(service_name="ELB"), "resources"),
    (dict(service_name="ELB", resources=[]), "resources"),
    (dict(service_name="ELB", resources=[DeployedResource(id="x")] * 21), "resources"),
    (dict(service_name="ELB", resources=[DeployedResource(domain_name=DOMAIN)]), "resources[0].id"),
    (dict(service_name="CDN", resources=[DeployedResource(id="x")]), "resources[0].domain_name"),
    (dict(service_name="ELB", resources=[DeployedResource(id="x" * 64)]), "resources[0].id"),
    (dict(service_name="ELB", project_name="a b", resources=[DeployedResource(id="x")]),
     "project_name"),
])
def test_deploy_refusals_name_the_field(scm, cert_id, body, field):
    sdk_error(lambda: scm.deploy_certificate(DeployCertificateRequest(
        certificate_id=cert_id, body=DeployCertificateRequestBody(**body))), 400, "SCM.0005", field)


@pytest.mark.parametrize("ids, services, field", [
    (None, ["ALL"], "certificate_ids"),
    ([], ["ALL"], "certificate_ids"),
    (["scs0000000000001"] * 51, ["ALL"], "certificate_ids"),
    (["scs0000000000001"], None, "service_names"),
    (["scs0000000000001"], ["FTP"], "service_names[0]"),
])
def test_deployed_resources_refusals_name_the_field(scm, ids, services, field):
    sdk_error(lambda: deployed(scm, ids, services), 400, "SCM.0005", field)


def test_ids_and_statuses_refused_as_documented(scm, scm_other, cert_id):
    elb = [DeployedResource(id="lb-east")]
    paid = bought_id(scm)
    sdk_error(lambda: batch_push(scm, paid, ["cn-east-3"]), 400, "SCM.0010")
    sdk_error(lambda: deploy(scm, paid, "ELB", elb), 400, "SCM.0010")
    for bad, code, status in [("scs123", "SCM.0008", 400), ("scs0000000000001", "SCM.0020", 404)]:
        sdk_error(lambda: batch_push(scm, bad, ["cn-east-3"]), status, code)
        sdk_error(lambda: deploy(scm, bad, "ELB", elb), status, code)
        sdk_error(lambda: deployed(scm, [cert_id, bad], ["ALL"]), status, code)
    # Another account's certificate answers as an unknown one: not pushed, not listed.
    sdk_error(lambda: batch_push(scm_other, cert_id, ["cn-east-3"]), 404, "SCM.0020")
    sdk_error(lambda: deploy(scm_other, cert_id, "ELB", elb), 404, "SCM.0020")
    sdk_error(lambda: deployed(scm_other, [cert_id], ["ALL"]), 404, "SCM.0020")


def test_push_answers_204_and_nginx_serves_it(scm, scm_other, cert_id, nginx):
    resp = push(scm, cert_id, "ELB", "cn-north-4")
    assert resp.status_code == 204
    assert resp.to_json_object() is None  # no body
    nginx.wait_for_cert(DOMAIN, leaf_der(scm, cert_id))
    # The doc example's lower-case service; CDN needs no region (Terraform sends none).
    assert push(scm, cert_id, "elb", "cn-east-3").status_code == 204
    assert push(scm, cert_id, "CDN").status_code == 204
    sdk_error(lambda: push(scm, cert_id, "ELB", "ap-none-1"), 400, "SCM.0030")
    sdk_error(lambda: push(scm, cert_id, "WAF", "cn-north-4"), 400, "SCM.0030")
    sdk_error(lambda: push(scm, cert_id, "ELB", "cn-south-1"), 400, "SCM.0028")
    sdk_error(lambda: push(scm, cert_id, "FTP", "cn-north-4"), 400, "SCM.0005", "target_service")
    sdk_error(lambda: push(scm, cert_id, None, "cn-north-4"), 400, "SCM.0005", "target_service")
    sdk_error(lambda: push(scm, cert_id, "ELB"), 400, "SCM.0005", "target_project")
    sdk_error(lambda: push(scm, bought_id(scm), "ELB", "cn-east-3"), 400, "SCM.0010")
    sdk_error(lambda: push(scm, "scs123", "ELB", "cn-east-3"), 400, "SCM.0008")
    sdk_error(lambda: push(scm, "scs0000000000001", "ELB", "cn-east-3"), 404, "SCM.0020")
    sdk_error(lambda: push(scm_other, cert_id, "ELB", "cn-east-3"), 404, "SCM.0020")


def test_deployed_resources_refuse_unissued_certificates_and_flag_failed_deliveries(scm):
    """ListDeployedResources answers for issued (and imported) certificates only: a PAID one is
    refused as a push or deploy of it is (400 SCM.0010), and the whole call with it. A region is
    `is_error: true` while the last delivery of the certificate to one of its targets failed
    (what that target serves is not known); a region whose targets took it is not."""
    paid = bought_id(scm)
    fresh = issued_id(scm, "flags.deploy.conformance.test")
    for ids in ([paid], [fresh, paid]):
        sdk_error(lambda: deployed(scm, ids, ["ALL"]), 400, "SCM.0010")

    resp = deploy(scm, fresh, "ELB", [DeployedResource(id="lb-east"),
                                      DeployedResource(id="lb-broken")])
    assert [f.resource for f in resp.failure_list] == ["lb-broken"]
    [r] = deployed(scm, [fresh], ["ELB"]).results
    [elb] = r.deployed_resources
    assert [(g.region_id, g.is_error, [x.resource_id for x in g.resources])
            for g in elb.region_resources] == [("cn-east-3", False, ["lb-east"]),
                                               ("cn-south-1", True, [])]
    assert (elb.resource_num, r.total_num) == (1, 1)
