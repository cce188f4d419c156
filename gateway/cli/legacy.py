"""``edoc-gateway legacy``: a reference client of the legacy e-doc.vn SOAP profile (issue 13 item 4), for integrators
and the demo — the same client the ``edocvn`` channel uses (:class:`adapters.edocvn.EdocvnClient`), against Bkav's
axis or our own legacy edge alike.

Every command takes ``--endpoint URL --organ ORGANID`` and a token: ``--token-stdin`` (one line on standard input) or
the environment variable ``EDOC_GATEWAY_LEGACY_TOKEN``, so that it stays out of the shell history; ``--token T`` is
accepted for throw-away tokens. Exit status 0 on success; 1 when the axis refuses (``legacy CMD: CODE: description``
with Bkav's Report code, ``EMPTY_BODY`` for its silent refusal) or cannot be reached (``EDOCVN.ERROR``); 2 on a usage
error. The token is never printed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from adapters.edocvn import EdocvnClient, EdocvnError
from gateway.edxml.codes import StatusCode
from gateway.edxml.dates import parse_timestamp
from gateway.edxml.model import EdocPackage, Organization, ResponseFor, StatusPackage
from gateway.edxml.reader import read_bytes
from gateway.edxml.writer import render
from gateway.errors import GatewayError
from gateway.protocols.edocvn import PAYLOAD_BASE64_TEXT, PAYLOAD_RAW

TOKEN_ENV = "EDOC_GATEWAY_LEGACY_TOKEN"  # noqa: S105 - the name of a variable, not a token
_PAYLOADS = click.Choice([PAYLOAD_RAW, PAYLOAD_BASE64_TEXT])


def _connection(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--endpoint", required=True, help="The axis URL (e.g. https://axis/services/EdocProxy)."),
            click.option("--organ", "organ_id", required=True, help="The OrganId to log in as."),
            click.option("--token", envvar=TOKEN_ENV, help=f"The token (better: ${TOKEN_ENV} or --token-stdin)."),
            click.option("--token-stdin", is_flag=True, help="Read the token from standard input (one line)."),
            click.option(
                "--payload",
                type=_PAYLOADS,
                default=PAYLOAD_BASE64_TEXT,
                show_default=True,
                help="How the axis's GetDocument parts carry files (Bkav: base64-text).",
            ),
            click.option(
                "--send-payload",
                type=_PAYLOADS,
                default=PAYLOAD_RAW,
                show_default=True,
                help="How SendDocument parts carry files (Bkav's intake: raw).",
            ),
            click.option("--timeout", type=float, default=120.0, show_default=True, help="Read timeout, seconds."),
        ]
    ):
        func = option(func)
    return func


def _client(kw: dict[str, Any]) -> EdocvnClient:
    token = kw.pop("token")
    if kw.pop("token_stdin"):
        token = sys.stdin.readline().strip()
    if not token:
        raise click.UsageError(f"no token: give --token-stdin or set {TOKEN_ENV}")
    return EdocvnClient(
        kw.pop("endpoint"),
        kw.pop("organ_id"),
        token,
        payload=kw.pop("payload"),
        send_payload=kw.pop("send_payload"),
        read_timeout=kw.pop("timeout"),
    )


def _run(name: str, call: Callable[[], None]) -> None:
    try:
        call()
    except EdocvnError as exc:
        said = f"{exc.report_code}: {exc.report_description}" if exc.report_code else f"{exc.code}: {exc.message}"
        click.echo(f"legacy {name}: {said}", err=True)
        sys.exit(1)
    except GatewayError as exc:
        click.echo(f"legacy {name}: {exc.code}: {exc.message}", err=True)
        sys.exit(1)


@click.group("legacy")
def legacy() -> None:
    """Talk to a legacy e-doc.vn axis (SendDocument, GetPendingDocumentIds, GetDocument, ConfirmReceived,
    UpdateTraces, GetTraces)."""


@legacy.command("send")
@click.argument("package", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_connection
def send(package: Path, **kw: Any) -> None:
    """Send an edXML edoc package (SendDocument with its attachments as MIME parts); prints the axis DocumentId."""
    client = _client(kw)

    def call() -> None:
        pkg = read_bytes(package.read_bytes(), max_bytes=package.stat().st_size + 1)
        if not isinstance(pkg, EdocPackage):
            raise click.UsageError(f"{package} is a status package: use `legacy status`")
        click.echo(client.send_document(pkg))

    _run("send", call)


@legacy.command("pending")
@_connection
def pending(**kw: Any) -> None:
    """List the axis ids of the documents waiting for --organ (GetPendingDocumentIds), one per line."""
    client = _client(kw)

    def call() -> None:
        for axis_id in client.pending():
            click.echo(axis_id)

    _run("pending", call)


@legacy.command("get")
@click.argument("document_id")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the edXML package here (default: standard output).",
)
@click.option(
    "--attachments",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write each attachment into this directory.",
)
@_connection
def get(document_id: str, out: Path | None, attachments: Path | None, **kw: Any) -> None:
    """Fetch one document (GetDocument) as a canonical edXML package; does not confirm it."""
    client = _client(kw)

    def call() -> None:
        pkg = client.get_document(document_id)
        data = render(pkg)
        if out is None:
            sys.stdout.buffer.write(data)
        else:
            out.write_bytes(data)
        if attachments is not None:
            attachments.mkdir(parents=True, exist_ok=True)
            for n, att in enumerate(pkg.attachments, start=1):
                name = Path(att.attachment_name or f"attachment-{n}").name or f"attachment-{n}"
                (attachments / name).write_bytes(att.data)
                click.echo(f"{attachments / name}", err=True)

    _run("get", call)


@legacy.command("confirm")
@click.argument("document_id")
@_connection
def confirm(document_id: str, **kw: Any) -> None:
    """Confirm a document taken (ConfirmReceived): it leaves the pending list, its sender gets status 01."""
    client = _client(kw)
    _run("confirm", lambda: client.confirm_received(document_id))


@legacy.command("status")
@click.argument("package", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--document-id", help="The edXML DocumentId of the document (ResponseFor/DocumentId).")
@click.option("--code", help="Its number/notation, e.g. 125/SXD-VP (ResponseFor/Code).")
@click.option("--to", "to", help="Its sender's OrganId (ResponseFor/OrganId).")
@click.option("--status-code", type=click.Choice([c.value for c in StatusCode]), help="QCVN 102 status code.")
@click.option("--description", help="Free text.")
@_connection
def status(
    package: Path | None,
    document_id: str | None,
    code: str | None,
    to: str | None,
    status_code: str | None,
    description: str | None,
    **kw: Any,
) -> None:
    """Report a status (UpdateTraces): an edXML status package file, or the flags."""
    organ_id = kw["organ_id"]
    if package is None and not (document_id and code and to and status_code):
        raise click.UsageError("give a status package file, or --document-id, --code, --to and --status-code")
    client = _client(kw)

    def call() -> None:
        if package is not None:
            pkg = read_bytes(package.read_bytes())
            if not isinstance(pkg, StatusPackage):
                raise click.UsageError(f"{package} is not a status package")
        else:
            pkg = StatusPackage(
                from_=Organization(organ_id=organ_id),
                response_for=ResponseFor(organ_id=to or "", code=code or "", document_id=document_id or ""),
                status_code=StatusCode(status_code),
                timestamp=datetime.now().replace(microsecond=0),
                description=description,
            )
        client.update_traces(pkg)
        click.echo("OK")

    _run("status", call)


@legacy.command("traces")
@click.option(
    "--since",
    help='Replay mode: statuses timestamped at or after "yyyy/MM/dd HH:mm:ss" (nothing is '
    "consumed). Without it the axis hands each status out once (consume mode).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per status.")
@_connection
def traces(since: str | None, as_json: bool, **kw: Any) -> None:
    """Collect the statuses reported about --organ's documents (GetTraces)."""
    try:
        when = parse_timestamp(since, "--since") if since else None
    except GatewayError as exc:
        raise click.UsageError(f"--since: {exc.message}") from None
    client = _client(kw)

    def call() -> None:
        result = client.traces(when)
        for s in result.statuses:
            row = {
                "from": s.sender,
                "status_code": s.status_code.value,
                "document_id": s.response_for.document_id,
                "code": s.response_for.code,
                "to": s.response_for.organ_id,
                "description": s.description,
                "timestamp": s.timestamp.strftime("%Y/%m/%d %H:%M:%S") if s.timestamp else None,
            }
            if as_json:
                click.echo(json.dumps(row, ensure_ascii=False))
            else:
                click.echo(
                    "\t".join(
                        str(row[k] or "")
                        for k in ("timestamp", "from", "status_code", "code", "document_id", "description")
                    )
                )
        for code, reason in result.unreadable:
            click.echo(f"legacy traces: status {code} not readable: {reason}", err=True)

    _run("traces", call)


COMMANDS = [legacy]
