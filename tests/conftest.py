"""Shared fixtures."""

from __future__ import annotations

import pytest

from gateway.pki import DemoPki, create_demo_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    """A fresh demo PKI (root, intermediate, agencies, expired/revoked/ECDSA/rogue certs, CRLs) per session."""
    return create_demo_pki(tmp_path_factory.mktemp("pki"))
