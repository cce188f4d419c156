"""The public sample packages of ../shared/samples, shared by the test modules."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "samples"
#: The JMeter template: not well-formed (nested From, unbound xlink prefix); must be refused.
MALFORMED = "truclienthong-example__edoc.edxml"

ALL = sorted(SAMPLES.glob("*.edxml"))
WELL_FORMED = [p for p in ALL if p.name != MALFORMED]
EDOCS = [p for p in WELL_FORMED if "status" not in p.name]
STATUSES = [p for p in WELL_FORMED if "status" in p.name]

assert len(ALL) >= 19, f"expected the shared samples at {SAMPLES}"


def sample(name: str) -> Path:
    return SAMPLES / name


def ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]
