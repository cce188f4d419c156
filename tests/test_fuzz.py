"""The fuzz targets of every parser surface (fuzz/targets.py), bounded for CI: each committed regression seed is
replayed, then hypothesis applies structure-aware edits (fuzz/mutate.py) to generated valid inputs.

A failure prints the surface, the edits and the crash; ``python -m fuzz.run SURFACE`` is the long, coverage-guided
run of the same target (docs/benchmarks.md has the latest figures).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fuzz import SURFACES
from fuzz.gateway_under_test import Answer, GatewayUnderTest
from fuzz.mutate import TOKENS, Edit, Op, apply
from fuzz.seeds import Builder, committed, with_credentials
from fuzz.targets import Crash, Targets

#: Examples per surface in CI: a few seconds each on a 2-core machine.
EXAMPLES = 150
XML = "text/xml; charset=utf-8"


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Targets, Builder]:
    gut = GatewayUnderTest(tmp_path_factory.mktemp("fuzz"))
    builder = Builder(gut)
    return Targets(gut, builder), builder


edits = st.lists(
    st.builds(
        Edit,
        op=st.sampled_from(list(Op)),
        where=st.floats(0.0, 1.0),
        token=st.integers(0, max(255, len(TOKENS) - 1)),
        size=st.one_of(st.integers(1, 16), st.integers(1_000, 50_000)),
    ),
    min_size=1,
    max_size=4,
)


@pytest.mark.parametrize("surface", SURFACES)
def test_valid_inputs_and_regression_seeds_do_not_crash(fuzzed, surface: str) -> None:
    targets, builder = fuzzed
    target = targets.by_name[surface]
    inputs = [(f"generated-{i}", data) for i, data in enumerate(builder.valid(surface))]
    crashes = []
    for name, data in [*inputs, *committed(surface)]:
        try:
            target(data)
        except Crash as crash:
            crashes.append(f"{name}: {crash}")
    assert not crashes, "\n".join(crashes)


@pytest.mark.parametrize("surface", SURFACES)
def test_mutated_inputs_do_not_crash(fuzzed, surface: str) -> None:
    targets, builder = fuzzed
    target = targets.by_name[surface]
    seeds = builder.valid(surface)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(seed=st.integers(0, len(seeds) - 1), changes=edits)
    def run(seed: int, changes: list[Edit]) -> None:
        target(apply(seeds[seed], changes))

    run()


def test_a_crash_is_detected(fuzzed) -> None:
    """The harness itself can fail: an exception class outside the gateway's family is reported as a crash."""
    from fuzz.targets import _library

    with pytest.raises(Crash, match="ZeroDivisionError"):
        _library(lambda: 1 / 0)


def test_generated_inputs_reach_the_operations(fuzzed) -> None:
    """Mutations start deep: every generated SOAP envelope is authenticated and answered by its operation (200),
    not stopped at the guard, and the VDXP sendEdoc is accepted."""
    targets, builder = fuzzed
    gut = targets._gut
    for envelope in builder.soap():
        answer = gut.request("POST", "/soap", with_credentials(gut, envelope), {"Content-Type": XML})
        assert answer.status == 200, answer.body[:400]
    sent: list[Answer] = []
    request = gut.request
    gut.request = lambda *a, **k: sent.append(request(*a, **k)) or sent[-1]  # type: ignore[method-assign]
    try:
        targets.vdxp(builder.vdxp()[0])
    finally:
        gut.request = request  # type: ignore[method-assign]
    assert json.loads(sent[-1].body)["status"] == "OK", sent[-1].body
