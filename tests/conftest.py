"""Shared fixtures."""

from __future__ import annotations

import pytest

from gateway.demo.pki import DemoPki, create_demo_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    """A fresh demo PKI (root, intermediate, agencies, expired/revoked/ECDSA/rogue certs, CRLs) per session."""
    return create_demo_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def pg_cluster():
    """One throwaway PostgreSQL server per test session (per xdist worker)."""
    from pgcluster import PgCluster

    cluster = PgCluster()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """Every database test runs twice: on SQLite (a file under tmp_path) and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.db'}"
    return request.getfixturevalue("pg_cluster").new_database()
