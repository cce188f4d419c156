"""The project's own edXML corpus, for the demo and the tests: built, never copied, deterministic.

Why: the real public samples (``../shared/samples``, next to a checkout of this repository) are not part of the
project, and a clone must run its tests and its demo without them. :func:`build_corpus` builds packages with the
project's own model and writer (the stories are in :mod:`gateway.demo.corpus_story`) and then applies the
producer variants those samples show (:mod:`gateway.demo.corpus_variants`): new, update, replacement and
revocation documents; every status code 01–06, 13, 15, 16; several ``To`` and several attachments, zipped or
not; the official dummy signature placeholder; ``Business`` for ``Bussiness``; ``cid:`` with and without its
prefix; ``dd/MM/yyyy`` and ISO-8601 dates; MIME base64 with line breaks; empty elements; status codes written
``1`` and ``14``; elements out of their usual order; CRLF line endings; the legacy ``e-doc.vn`` namespace; the
not-well-formed JMeter template every receiver must refuse as ``EDXML.PARSE``; and JSON: the canonical form, an
annotated file with ``//`` comments and a flattened third-party mapping (the shapes of the ``edxml-convert``
samples).

Every entry says what it must read as: the model it was built from (``read_bytes(entry.data) == entry.model``),
or the error code it must be refused with. Times are fixed and randomness is seeded: two builds are
byte-identical, so tests can assert on them.

The real corpus stays usable when present: :func:`external_dir` finds it (:data:`SHARED_ENV`, else ``../shared``
beside a source checkout) and the demo and the tests use it in addition.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from gateway.demo import corpus_story as story
from gateway.demo import corpus_variants as v
from gateway.edxml import EdocPackage, Package, PackageKind, StatusCode, StatusPackage, render, to_json

#: Names the directory of the external corpus (with ``samples/`` and ``vectors/``); set but empty: none. Not an
#: ``EDOC_GATEWAY_*`` name, because those are settings of the gateway.
SHARED_ENV: Final = "EDOC_SHARED_DIR"


@dataclass(frozen=True)
class CorpusEntry:
    """One file of the corpus: its bytes, and what a receiver must make of them."""

    name: str
    data: bytes
    #: What the file reads as (equal to the reader's result; warnings do not take part in equality).
    model: Package | None = None
    #: The error code a receiver must refuse the file with, when it is not a valid package.
    refused: str | None = None
    #: The producer habits the file shows, in words.
    variants: tuple[str, ...] = ()
    #: Substrings of the reader's warnings the variants cause.
    warnings: tuple[str, ...] = ()

    @property
    def kind(self) -> PackageKind | None:
        return self.model.kind if self.model is not None else None

    @property
    def is_json(self) -> bool:
        return self.name.endswith(".json")


def _entry(name: str, model: Package, *variants: tuple[str, v.Variant], warnings: Sequence[str] = ()) -> CorpusEntry:
    data = render(model)
    for _label, variant in variants:
        data = variant(data)
    return CorpusEntry(name, data, model, variants=tuple(label for label, _ in variants), warnings=tuple(warnings))


@cache
def build_corpus() -> tuple[CorpusEntry, ...]:
    """Every entry of the corpus, documents first (new ones before what refers to them), then statuses, then
    the refused files and the JSON forms."""
    documents, statuses = _documents(), _statuses()
    return (*documents, *statuses, *_json_forms(documents, statuses))


def entry(name: str) -> CorpusEntry:
    """The entry called ``name`` (a file name of :func:`build_corpus`)."""
    found = next((e for e in build_corpus() if e.name == name), None)
    if found is None:
        raise KeyError(name)
    return found


def _documents() -> tuple[CorpusEntry, ...]:
    letter = story.vpcp_letter()
    bare = EdocPackage(message_header=letter.message_header, trace_header_list=letter.trace_header_list)
    note = story.vpcp_note
    return (
        _entry("edoc_new.edxml", story.commune_letter(render(bare))),
        _entry(
            "edoc_new_day_first_empty.edxml",
            story.province_report(),
            ("dd/MM/yyyy dates", v.day_first_dates),
            ("empty elements written <x></x>; an empty Appendix", v.open_empty_elements),
            warnings=("read as",),
        ),
        _entry("edoc_new_three_recipients.edxml", letter, ("Bussiness before TraceHeader", v.bussiness_first)),
        _entry("edoc_update.edxml", story.vpcp_update()),
        _entry("edoc_replacement.edxml", story.vpcp_replacement()),
        _entry("edoc_revocation.edxml", story.vpcp_revocation()),
        _entry(
            "edoc_new_business_bare_cid.edxml",
            note("126", "V/v cử đầu mối kỹ thuật liên thông"),
            ("Business for Bussiness", v.business_spelling),
            ("ContentId without cid:", v.bare_content_ids),
            warnings=("Business",),
        ),
        _entry(
            "edoc_new_iso_dates_mime_base64.edxml",
            note("127", "V/v thử nghiệm định dạng ngày ISO-8601"),
            ("ISO-8601 dates, UTC timestamps", v.iso_dates),
            ("MIME base64 with line breaks", v.mime_base64),
            warnings=("'2025-10-01T01:30:00Z' read as '2025/10/01 08:30:00'",),
        ),
        _entry(
            "edoc_new_legacy_namespace.edxml",
            note("128", "V/v hệ thống cũ dùng không gian tên e-doc.vn", signed=False),
            ("legacy e-doc.vn namespace", v.legacy_namespace),
            warnings=("legacy namespace",),
        ),
        CorpusEntry(
            "edoc_jmeter_template.edxml",
            v.jmeter_template(render(letter)),
            refused="EDXML.PARSE",
            variants=("JMeter template: nested unclosed From, unbound xlink prefix, ${…} placeholder",),
        ),
    )


#: The status files, named as the official SDK names its samples, and their minutes after the letter.
_STATUS_FILES: Final = (
    ("status_inbox_01", StatusCode.ARRIVED, 70),
    ("status_rejection_02", StatusCode.REJECTED, 80),
    ("status_acceptance_03", StatusCode.ACCEPTED, 90),
    ("status_assignment_04", StatusCode.ASSIGNED, 100),
    ("status_processing_05", StatusCode.IN_PROGRESS, 110),
    ("status_finish_06", StatusCode.DONE, 120),
    ("status_cancellation_13", StatusCode.RECALL_REQUESTED, 130),
    ("status_change-acceptance_15", StatusCode.CHANGE_ACCEPTED, 140),
    ("status_change-rejection_16", StatusCode.CHANGE_REFUSED, 150),
)


def _statuses() -> tuple[CorpusEntry, ...]:
    order = v.swapped_children("ResponseFor", "PromulgationDate", "DocumentId")
    from_order = v.swapped_children("From", "OrganizationInCharge", "OrganName")
    plain = [_entry(f"{name}.edxml", story.status(code, minutes)) for name, code, minutes in _STATUS_FILES]
    plain[0] = _entry(
        plain[0].name,
        plain[0].model,
        ("From: OrganName before OrganizationInCharge", from_order),
        ("Windows line endings (CRLF)", v.crlf_line_endings),
    )
    return (
        _entry("status.edxml", story.status(StatusCode.ARRIVED, 60), ("ResponseFor: DocumentId first", order)),
        *plain,
        _entry(
            "status_code_1_day_first.edxml",
            story.status(StatusCode.ARRIVED, 200),
            ("StatusCode written 1", v.status_code_text("1")),
            ("dd/MM/yyyy dates", v.day_first_dates),
            warnings=("'1' read as '01'",),
        ),
        _entry(
            "status_code_14_iso.edxml",
            story.status(StatusCode.CHANGE_ACCEPTED, 210),
            ("StatusCode written 14 (VNPT C# SDK)", v.status_code_text("14")),
            ("ISO-8601 timestamp", v.iso_dates),
            warnings=("14",),
        ),
    )


def _json_forms(documents: Sequence[CorpusEntry], statuses: Sequence[CorpusEntry]) -> tuple[CorpusEntry, ...]:
    """The canonical JSON of a document and of a status, and two JSON files that are not our form."""
    doc = next(e.model for e in documents if e.name == "edoc_new_three_recipients.edxml")
    status = next(e.model for e in statuses if e.name == "status_acceptance_03.edxml")
    assert isinstance(doc, EdocPackage) and isinstance(status, StatusPackage)
    canonical = json.dumps(to_json(status), ensure_ascii=False, indent=2)
    annotated = canonical.replace('"kind": "status",', '"kind": "status", // gói tin trạng thái', 1)
    rf = status.response_for
    flat = {
        "responsefor_organid": rf.organ_id,
        "responsefor_code": rf.code,
        "responsefor_documentid": rf.document_id,
        "from_organid": status.sender,
        "statuscode": status.status_code.value,
        "description": status.description,
    }
    return (
        CorpusEntry("edoc_new_three_recipients.json", _json(to_json(doc)), doc, variants=("canonical JSON",)),
        CorpusEntry("status_acceptance_03.json", canonical.encode() + b"\n", status, variants=("canonical JSON",)),
        CorpusEntry(
            "status_annotated.json",
            annotated.encode() + b"\n",
            refused="EDXML.PARSE",
            variants=("JSON with // comments (an annotated third-party sample)",),
        ),
        CorpusEntry(
            "status_flat_mapping.json",
            _json(flat),
            refused="EDXML.STRUCTURE",
            variants=("a flattened third-party JSON mapping, not the canonical form",),
        ),
        CorpusEntry(
            "status_in_vdxp_answer.json",
            _json({"status": "OK", "ErrorCode": "0", "ErrorDesc": "Thành công", "data": to_json(status)}),
            refused="EDXML.STRUCTURE",
            variants=("a status inside a VDXP answer wrapper, not the package itself",),
        ),
    )


def _json(doc: object) -> bytes:
    return json.dumps(doc, ensure_ascii=False, indent=2).encode() + b"\n"


def write_corpus(directory: Path) -> list[Path]:
    """Write every entry (and a README.txt saying what each file shows) into ``directory``; returns the paths
    of the entries. Existing files of the same names are replaced; nothing else is touched."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    lines = ["Generated by edoc-gateway (gateway/demo/corpus.py); rebuilt on every demo run. File: what it shows."]
    for e in build_corpus():
        path = directory / e.name
        path.write_bytes(e.data)
        paths.append(path)
        outcome = f"refused as {e.refused}" if e.refused else f"{e.kind.value if e.kind else '?'} package"
        lines.append(f"{e.name}: {outcome}" + (f"; {'; '.join(e.variants)}" if e.variants else ""))
    (directory / "README.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


# ------------------------------------------------------------------------------------------- external


def external_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """The external corpus (a directory with ``samples/`` and ``vectors/``), or None when there is none.

    :data:`SHARED_ENV` wins when set (empty: no external corpus, which is how a checkout that has one tests the
    bare layout); otherwise ``../shared`` beside a source checkout of this repository.
    """
    env = os.environ if environ is None else environ
    if SHARED_ENV in env:
        value = env[SHARED_ENV].strip()
        return Path(value).resolve() if value and Path(value).is_dir() else None
    repo = Path(__file__).resolve().parents[2]
    candidate = repo.parent / "shared"
    return candidate if (repo / "pyproject.toml").is_file() and candidate.is_dir() else None


def external_samples(environ: Mapping[str, str] | None = None) -> Path | None:
    """``samples/`` of the external corpus, when it holds edXML files."""
    root = external_dir(environ)
    samples = root / "samples" if root is not None else None
    return samples if samples is not None and any(samples.glob("*.edxml")) else None
