"""The sample corpora of the tests: the project's own (always) and the real external one (when present).

* ``own``: built by :mod:`gateway.demo.corpus` and written once per test process to a temporary directory — every
  variant the real samples show, each file with the model it must read as;
* ``real``: the public samples of the external corpus, ``$EDOC_SHARED_DIR/samples`` or ``../shared/samples``
  beside the checkout (:func:`gateway.demo.corpus.external_dir`). When it is absent, the tests that would run on
  it are skipped with :data:`REAL_ABSENT` as the reason, and the run ends with a line saying so (conftest.py).

Tests name files by ROLE ("edoc_new", "status_03", "malformed", …): the same role in both corpora is a file of
the same shape (one ``To`` and a zipped attachment; three ``To``; an update with a receiver list; …), so one test
body runs on both. Facts that differ (agency codes, numbers, names) are kept per corpus by the tests themselves.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

from gateway.demo.corpus import SHARED_ENV, CorpusEntry, build_corpus, external_samples, write_corpus

REPO = Path(__file__).resolve().parents[1]
OWN, REAL = "own", "real"


def absent(what: str, consequence: str) -> str:
    """The skip reason of a test that needs part of the external corpus, saying where it was looked for."""
    if SHARED_ENV in os.environ:
        return f"{what} not in ${SHARED_ENV}={os.environ[SHARED_ENV]!r}: {consequence}"
    return f"{what} not present (../shared beside the checkout, or set ${SHARED_ENV}): {consequence}"


REAL_ABSENT = absent("external corpus samples", "real-sample interop not run")

#: The official SDK's status file stems; both corpora name their status files after them.
STATUS_STEMS = {
    "status_01": "status_inbox_01",
    "status_02": "status_rejection_02",
    "status_03": "status_acceptance_03",
    "status_04": "status_assignment_04",
    "status_05": "status_processing_05",
    "status_06": "status_finish_06",
    "status_13": "status_cancellation_13",
    "status_15": "status_change-acceptance_15",
    "status_16": "status_change-rejection_16",
}
#: role → (own file, real file)
_ROLES: dict[str, tuple[str, str]] = {
    "edoc_new": ("edoc_new.edxml", "truclienthong-example__edoc_new.edxml"),
    "edoc_day_first": ("edoc_new_day_first_empty.edxml", "edoc-integrator__edoc_new.edxml"),
    "edoc_three_to": (
        "edoc_new_three_recipients.edxml",
        "truclienthong-example__dc0bdef0-c7a3-4aaf-b717-777303442973.edxml",
    ),
    "edoc_update": ("edoc_update.edxml", "truclienthong-example__edoc_update.edxml"),
    "edoc_replacement": ("edoc_replacement.edxml", "truclienthong-example__edoc_replacement.edxml"),
    "edoc_revocation": ("edoc_revocation.edxml", "truclienthong-example__edoc_revocation.edxml"),
    "status": ("status.edxml", "truclienthong-example__status.edxml"),
    "malformed": ("edoc_jmeter_template.edxml", "truclienthong-example__edoc.edxml"),
    **{role: (f"{stem}.edxml", f"truclienthong-example__{stem}.edxml") for role, stem in STATUS_STEMS.items()},
}


@dataclass(frozen=True)
class Corpus:
    """A directory of sample packages, addressed by role or by file name."""

    name: str
    directory: Path
    files: Mapping[str, str] = field(repr=False)

    def path(self, role: str) -> Path:
        """The file playing ``role`` (or, for a name that is no role, the file of that name)."""
        return self.directory / self.files.get(role, role)

    def read(self, role: str) -> bytes:
        return self.path(role).read_bytes()

    @property
    def malformed(self) -> Path:
        return self.path("malformed")

    @property
    def all(self) -> list[Path]:
        return sorted(self.directory.glob("*.edxml"))

    @property
    def well_formed(self) -> list[Path]:
        return [p for p in self.all if p != self.malformed]

    @property
    def edocs(self) -> list[Path]:
        return [p for p in self.well_formed if "status" not in p.name]

    @property
    def statuses(self) -> list[Path]:
        return [p for p in self.well_formed if "status" in p.name]


@cache
def own() -> Corpus:
    """The project's own corpus, written once per process to a directory removed at exit."""
    directory = Path(tempfile.mkdtemp(prefix="edoc-gateway-corpus-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    write_corpus(directory)
    return Corpus(OWN, directory, {role: files[0] for role, files in _ROLES.items()})


@cache
def real() -> Corpus | None:
    """The real public samples, or None when the external corpus is absent."""
    directory = external_samples()
    if directory is None:
        return None
    return Corpus(REAL, directory, {role: files[1] for role, files in _ROLES.items()})


def named_corpus(name: str) -> Corpus:
    """The corpus ``name``, or a skip with :data:`REAL_ABSENT` for an absent real corpus."""
    if name == OWN:
        return own()
    found = real()
    if found is None:
        pytest.skip(REAL_ABSENT)
    return found


def sample_params(select: str = "well_formed") -> list:
    """``pytest.param`` per file of both corpora (attribute ``select`` of :class:`Corpus`), with ids
    ``own/<file>`` and ``real/<file>``; one skipped ``real`` param when the real corpus is absent."""
    params = [pytest.param(p, id=f"{OWN}/{p.name}") for p in getattr(own(), select)]
    found = real()
    if found is None:
        return [*params, pytest.param(None, id=REAL, marks=pytest.mark.skip(reason=REAL_ABSENT))]
    return [*params, *(pytest.param(p, id=f"{REAL}/{p.name}") for p in getattr(found, select))]


def corpus_params() -> list:
    """The two corpora as parameters (ids ``own`` and ``real``), the real one skipped when absent."""
    marks = [] if real() is not None else [pytest.mark.skip(reason=REAL_ABSENT)]
    return [pytest.param(OWN, id=OWN), pytest.param(REAL, id=REAL, marks=marks)]


def is_status(path: Path) -> bool:
    return "status" in path.name


def own_entries() -> tuple[CorpusEntry, ...]:
    """The entries of the own corpus, each with the model it reads as: for model-level assertions."""
    return build_corpus()
