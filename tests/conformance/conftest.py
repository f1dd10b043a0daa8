"""Fixtures of the conformance suite.

The suite drives the real binary through the official `huaweicloudsdkscm` client only, one
module per operation group, and asserts field by field on the SDK's response objects. It shares
the e2e suite's fixtures (tests/e2e/fixtures.py): the binary, both backends, server factories.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

import pytest  # noqa: E402

from fixtures import *  # noqa: E402,F401,F403


@pytest.fixture(scope="module")
def server(servers):
    """One started server per module and backend, with its bootstrap account."""
    s = servers.new("conformance")
    s.start()
    return s


@pytest.fixture(scope="module")
def scm(server):
    """The official v3 ScmClient of the server's bootstrap account."""
    return server.sdk_client()


@pytest.fixture(scope="module")
def other_account(server):
    """Credentials of a second account (for tenancy refusals)."""
    account = server.create_account("conformance-other")
    return server.create_credential(account["domain_id"])


@pytest.fixture(scope="module")
def scm_other(server, other_account):
    """The official v3 ScmClient of the second account."""
    return server.sdk_client(other_account)
