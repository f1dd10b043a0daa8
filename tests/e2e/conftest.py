"""The e2e suite's fixtures live in fixtures.py, so the conformance suite (tests/conformance)
uses the same ones."""

from fixtures import *  # noqa: F401,F403
