"""Shared fixtures, and the line at the end of a run saying whether the real external corpus took part."""

from __future__ import annotations

import pytest
from _samples import OWN, REAL, REAL_ABSENT, Corpus, corpus_params, named_corpus, real
from _vdxp_vectors import CAPTURE_ABSENT, SdkRequests, capture_present, sdk_params
from _vdxp_vectors import sdk as named_sdk

from gateway.demo.pki import DemoPki, create_demo_pki


@pytest.fixture(scope="session", params=corpus_params())
def corpus(request: pytest.FixtureRequest) -> Corpus:
    """Each test that takes it runs on the project's own corpus and on the real samples (skipped when absent)."""
    return named_corpus(request.param)


@pytest.fixture(scope="session", params=sdk_params())
def sdk(request: pytest.FixtureRequest) -> SdkRequests:
    """Each test that takes it runs on SDK-shaped requests built here and on the real SDK capture (when present)."""
    return named_sdk(request.param)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line: did the real-sample interop tests run, and if not, how many were skipped and why."""
    skipped = terminalreporter.stats.get("skipped", [])

    def count(reason: str) -> int:
        return sum(1 for r in skipped if reason in str(getattr(r, "longrepr", "")))

    found = real()
    if found is None:
        skipped_real = count(REAL_ABSENT)
        terminalreporter.write_line(f"{REAL_ABSENT} ({skipped_real} {REAL}-corpus tests skipped; the {OWN} corpus ran)")
    else:
        terminalreporter.write_line(f"external corpus: real samples from {found.directory} ran beside the {OWN} corpus")
    if not capture_present() and count(CAPTURE_ABSENT):
        terminalreporter.write_line(f"{CAPTURE_ABSENT} ({count(CAPTURE_ABSENT)} tests skipped)")


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
