"""The ``edoc-gateway`` command line.

Exit status 0 on success; otherwise 1 with one line per failure on standard error of the form
``FILE: CODE: message [at PATH]`` — stable codes, so scripts can branch on them.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import click

from gateway import __version__
from gateway.config import Settings, load_settings
from gateway.edxml import EdocPackage, Package, StatusPackage, extract, from_json, render, to_json
from gateway.edxml.dates import format_date, format_timestamp
from gateway.errors import EdxmlParseError, GatewayError
from gateway.validation import validate_package
from gateway.xmlcheck.safe import DEFAULT_MAX_BYTES, read_limited

_MAX = click.option(
    "--max-bytes", type=int, default=DEFAULT_MAX_BYTES, show_default=True, help="Refuse larger packages."
)


class _Failed(Exception):
    """Raised after a failure line has been printed, to set the exit status."""


def _fail_line(source: str, exc: GatewayError) -> str:
    where = f" at {exc.path}" if exc.path else ""
    return f"{source}: {exc.code}: {exc.message}{where}"


@contextmanager
def _reporting(source: str) -> Iterator[None]:
    try:
        yield
    except GatewayError as exc:
        click.echo(_fail_line(source, exc), err=True)
        raise _Failed from None
    except OSError as exc:
        click.echo(f"{source}: IO.ERROR: {exc.strerror or exc}", err=True)
        raise _Failed from None


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except _Failed:
            ctx.exit(1)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="edoc-gateway")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="EDOC_GATEWAY_CONFIG",
    help="TOML settings file (default: $EDOC_GATEWAY_CONFIG; EDOC_GATEWAY_* variables override it).",
)
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """edoc-gateway — send and receive edXML (QCVN 102:2016/BTTTT) official documents."""
    ctx.obj = config_path


def _settings() -> Settings:
    """The settings, read once per command, only by the commands that need them."""
    ctx = click.get_current_context()
    with _reporting("config"):
        return load_settings(ctx.find_root().obj)


# ------------------------------------------------------------------------------------- validate


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@_MAX
def validate(files: tuple[Path, ...], max_bytes: int) -> None:
    """Parse, XSD-validate and business-check each FILE; print its kind and DocumentId."""
    failed = 0
    for path in files:
        try:
            with _reporting(str(path)):
                result = validate_package(read_limited(path, max_bytes), max_bytes=max_bytes)
        except _Failed:
            failed += 1
            continue
        warn = f"  ({len(result.report.warnings)} warnings)" if result.report.warnings else ""
        click.echo(f"{path}: OK {result.kind.value} {result.package.document_id}{warn}")
    if failed:
        raise _Failed


# -------------------------------------------------------------------------------------- inspect


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the canonical JSON form instead.")
@click.option(
    "--extract",
    "extract_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the attachments (unzipped) into this directory.",
)
@_MAX
def inspect(file: Path, as_json: bool, extract_dir: Path | None, max_bytes: int) -> None:
    """Show a human summary of a package (or its canonical JSON with --json)."""
    from gateway.xmlcheck.signature import inspect_signature

    with _reporting(str(file)):
        result = validate_package(read_limited(file, max_bytes), max_bytes=max_bytes)
        pkg = result.package
        if as_json:
            click.echo(json.dumps(to_json(pkg), ensure_ascii=False, indent=2))
        else:
            for line in _summary(pkg, inspect_signature(result.tree).value):
                click.echo(line)
            for w in result.report.warnings:
                click.echo(f"  warning: {w['message']}" + (f" at {w['path']}" if w["path"] else ""))
        if extract_dir is not None and isinstance(pkg, EdocPackage):
            extract_dir.mkdir(parents=True, exist_ok=True)
            for att in pkg.attachments:
                for f in extract(att):
                    target = extract_dir / f.name
                    target.write_bytes(f.data)
                    click.echo(f"extracted {target} ({len(f.data)} bytes)", err=as_json)


def _date(value: date | None) -> str:
    return format_date(value) if value else ""


def _summary(pkg: Package, signature_state: str) -> list[str]:
    if isinstance(pkg, StatusPackage):
        rf = pkg.response_for
        return [
            "kind:        status",
            f"from:        {pkg.from_.organ_id} {pkg.from_.organ_name or ''}".rstrip(),
            f"about:       {rf.document_id} (code {rf.code}, organ {rf.organ_id})",
            f"status:      {pkg.status_code.value} {pkg.status_code.label_vi} / {pkg.status_code.label_en}",
            f"description: {pkg.description or ''}",
            f"time:        {format_timestamp(pkg.timestamp) if pkg.timestamp else ''}",
        ]
    h = pkg.message_header
    b = pkg.trace_header_list.bussiness
    lines = [
        "kind:        edoc",
        f"document:    {h.document_id}",
        f"from:        {h.from_.organ_id} {h.from_.organ_name or ''}".rstrip(),
        *[f"to:          {t.organ_id} {t.organ_name or ''}".rstrip() for t in h.to],
        f"code:        {h.code}",
        f"type:        {h.document_type.type_name} (Type {h.document_type.type})",
        f"subject:     {h.subject}",
        f"promulgated: {_date(h.promulgation_info.promulgation_date)} {h.promulgation_info.place or ''}".rstrip(),
        f"priority:    {h.other_info.priority.value} {h.other_info.priority.label_vi}",
        f"business:    {pkg.bussiness_doc_type.value} {pkg.bussiness_doc_type.label_vi}"
        + (f" of {b.document_id}" if b and b.document_id else ""),
        f"signature:   {signature_state}",
        f"attachments: {len(pkg.attachments)}",
    ]
    for a in pkg.attachments:
        lines.append(f"  - {a.attachment_name} [{a.content_type}] {len(a.data)} bytes, cid:{a.content_id}")
    return lines


# ---------------------------------------------------------------------------------- sign / verify


@main.command()
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--cert", "cert_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--chain", "chain_path", type=click.Path(dir_okay=False, path_type=Path), help="Intermediate certs.")
@click.argument("infile", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("outfile", type=click.Path(dir_okay=False, path_type=Path))
@_MAX
def sign(key_path: Path, cert_path: Path, chain_path: Path | None, infile: Path, outfile: Path, max_bytes: int) -> None:
    """Sign INFILE (enveloped XML-DSig, RSA/ECDSA-SHA256, exclusive C14N) into OUTFILE."""
    from gateway.xmlcheck.signing import SigningKey, sign_package

    with _reporting(str(infile)):
        data = read_limited(infile, max_bytes)
        validate_package(data, max_bytes=max_bytes)
        key = SigningKey.from_files(key_path, cert_path, chain_path)
        outfile.write_bytes(sign_package(data, key))
    click.echo(f"{outfile}: signed")


@main.command()
@click.option("--trust", "trust_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--crl", "crl_paths", multiple=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--allow-sha1", is_flag=True, help="Accept SHA-1 signatures (legacy peers only).")
@click.option("--no-revocation", is_flag=True, help="Do not check CRLs.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_MAX
def verify(
    trust_path: Path, crl_paths: tuple[Path, ...], allow_sha1: bool, no_revocation: bool, file: Path, max_bytes: int
) -> None:
    """Verify FILE's XML-DSig against a trust store; print the signer's subject and fingerprint."""
    from gateway.xmlcheck.signature import VerifyPolicy, verify_package
    from gateway.xmlcheck.trust import TrustStore

    with _reporting(str(file)):
        data = read_limited(file, max_bytes)
        trust = TrustStore.from_files(trust_path, crl_paths)
        policy = VerifyPolicy(allow_sha1=allow_sha1, check_revocation=not no_revocation)
        result = verify_package(data, trust, policy)
    click.echo(f"{file}: {result.state.value}")
    click.echo(f"signer:      {result.signer_subject}")
    click.echo(f"fingerprint: sha256:{result.signer_fingerprint}")
    click.echo(f"issuer:      {result.issuer_subject}")
    if result.organ_ids:
        click.echo(f"organ ids:   {', '.join(result.organ_ids)}")


# ---------------------------------------------------------------------------------------- build


@main.command()
@click.option("--json", "json_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.argument("outfile", type=click.Path(dir_okay=False, path_type=Path))
@_MAX
def build(json_path: Path, outfile: Path, max_bytes: int) -> None:
    """Build a canonical edXML package from its canonical JSON form."""
    with _reporting(str(json_path)):
        try:
            doc = json.loads(read_limited(json_path, max_bytes))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EdxmlParseError(f"not valid JSON: {exc}") from None
        data = render(from_json(doc))
        validate_package(data, max_bytes=max_bytes)
        outfile.write_bytes(data)
    click.echo(f"{outfile}: built ({len(data)} bytes)")


@main.command("json-schema")
def json_schema_cmd() -> None:
    """Print the JSON Schema of the canonical JSON form (published as xsd/edxml-package.schema.json)."""
    from gateway.edxml import json_schema

    click.echo(json.dumps(json_schema(), ensure_ascii=False, indent=2))


# ------------------------------------------------------------------------------------------- pki


@main.command("demo-pki")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace an existing PKI in DIRECTORY.")
def demo_pki(directory: Path, overwrite: bool) -> None:
    """Create a demo root CA, an intermediate CA and certificates for a few agencies in DIRECTORY."""
    from gateway.demo.pki import create_demo_pki

    with _reporting(str(directory)):
        pki = create_demo_pki(directory, overwrite=overwrite)
    click.echo(f"demo PKI written to {directory}")
    click.echo(f"  trust store: {pki.trust}")
    click.echo(f"  chain:       {pki.chain}")


# ------------------------------------------------------------------------------- service & registry


@main.command()
def serve() -> None:
    """Run the gateway under gunicorn with deploy/gunicorn.conf.py (bind, workers from the settings)."""
    settings = _settings()
    with _reporting("serve"):
        settings.require_service()
        from gateway.db.migrations import upgrade

        upgrade(settings)
    from gateway.web.launch import gunicorn_argv

    argv = gunicorn_argv(settings)
    os.execv(argv[0], argv)  # noqa: S606 -- gunicorn replaces this process: signals and exit are its own


@main.group()
def db() -> None:
    """Database schema (alembic migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the database schema."""
    from gateway.db.migrations import current_revision, upgrade

    settings = _settings()
    with _reporting("db"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade(settings, revision)
        click.echo(f"database at revision {current_revision(settings)}")


@main.group()
def agencies() -> None:
    """The agency registry."""


@agencies.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def agencies_import(file: Path) -> None:
    """Import (upsert) agencies from FILE.csv or FILE.json, all rows or none."""
    from gateway.services.registry import Registry

    with _reporting(str(file)):
        report = Registry.from_settings(_settings()).import_file(file)
    click.echo(f"{file}: {report.created} created, {report.updated} updated")


@agencies.command("list")
@click.option("--parent", help="Only the direct children of this OrganId.")
def agencies_list(parent: str | None) -> None:
    """List agencies: OrganId, level, channel, signature policy, name."""
    from gateway.services.registry import Registry

    with _reporting("agencies"):
        rows = Registry.from_settings(_settings()).list_agencies(parent)
    for a in rows:
        level = a.level if a.level is not None else "-"
        state = "" if a.active else " (inactive)"
        click.echo(f"{a.organ_id:<16} L{level} {a.channel:<8} {a.signature_policy:<17} {a.name}{state}")


@agencies.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
def agencies_export(fmt: str) -> None:
    """Print the registry as CSV or JSON (re-importable)."""
    from gateway.services.registry import Registry

    with _reporting("agencies"):
        click.echo(Registry.from_settings(_settings()).export(fmt), nl=False)


@main.group()
def systems() -> None:
    """API client systems and the agencies they act for."""


@systems.command("add")
@click.argument("system_id")
@click.option("--agency", "agency_ids", multiple=True, required=True, help="OrganId it acts for (repeatable).")
@click.option("--name", help="A human name for the system.")
def systems_add(system_id: str, agency_ids: tuple[str, ...], name: str | None) -> None:
    """Register a system; prints its generated secret ONCE (it is stored encrypted, never shown again)."""
    from gateway.services.registry import Registry

    with _reporting(system_id):
        secret = Registry.from_settings(_settings()).add_system(system_id, agency_ids, name=name)
    click.echo(f"system {system_id} acts for {', '.join(agency_ids)} (and their level-2/3/4 units)")
    click.echo(f"secret: {secret}")


@systems.command("list")
def systems_list() -> None:
    """List systems and the agencies they act for (never secrets)."""
    from gateway.services.registry import Registry

    with _reporting("systems"):
        rows = Registry.from_settings(_settings()).list_systems()
    for sysinfo in rows:
        state = "" if sysinfo.active else " (inactive)"
        click.echo(f"{sysinfo.id:<20} {', '.join(sysinfo.agencies)}{state}")


@main.command()
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit (cron, tests).")
def worker(once: bool) -> None:
    """Run a delivery worker: push due deliveries to SOAP/REST/VDXP peers, retry, dead-letter."""
    import logging

    from gateway.worker import run_worker

    settings = _settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"
    )
    with _reporting("worker"):
        stats = run_worker(settings, once=once)
    if once:
        click.echo(f"worker: {stats}")


@main.group()
def deliveries() -> None:
    """Deliveries to push peers: inspect and re-drive (never by SQL)."""


@deliveries.command("list")
@click.option("--state", type=click.Choice(["queued", "fetched", "delivered", "failed", "dead"]))
@click.option("--recipient", help="Only deliveries to this OrganId.")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def deliveries_list(state: str | None, recipient: str | None, limit: int, as_json: bool) -> None:
    """List deliveries, newest first."""
    from gateway.services.api import DeliveryState
    from gateway.services.delivery import list_deliveries, open_store

    with _reporting("deliveries"), open_store(_settings()) as store:
        rows = list_deliveries(store, state=DeliveryState(state) if state else None, recipient=recipient, limit=limit)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in rows], ensure_ascii=False, indent=2))
        return
    for r in rows:
        err = f"  {r.last_error}" if r.last_error else ""
        click.echo(
            f"{r.delivery_id} {r.state.value:<9} {r.channel or '-':<7} {r.recipient:<16} "
            f"attempts={r.attempts} {r.document_id}{err}"
        )


@deliveries.command("show")
@click.argument("delivery_id")
@click.option("--json", "as_json", is_flag=True)
def deliveries_show(delivery_id: str, as_json: bool) -> None:
    """One delivery with its attempt log."""
    from gateway.services.delivery import open_store, show_delivery

    with _reporting(delivery_id), open_store(_settings()) as store:
        detail = show_delivery(store, delivery_id)
    if as_json:
        click.echo(json.dumps(detail.to_dict(), ensure_ascii=False, indent=2))
        return
    d = detail.delivery
    click.echo(f"delivery:  {d.delivery_id} ({d.state.value}, channel {d.channel or '-'})")
    click.echo(f"document:  {d.document_id} (docId {d.doc_id}) {d.sender} -> {d.recipient}")
    click.echo(f"attempts:  {d.attempts}")
    for a in detail.attempts:
        err = f" {a.error_code}: {a.error_message}" if a.error_code else ""
        click.echo(f"  #{a.attempt} {a.started_at.isoformat()} {a.outcome} {a.duration_ms} ms{err}")


@deliveries.command("redrive")
@click.argument("delivery_id", required=False)
@click.option("--recipient", help="Re-drive every dead delivery to this OrganId.")
def deliveries_redrive(delivery_id: str | None, recipient: str | None) -> None:
    """Queue a dead (or failed, or retrying) delivery again, with a fresh retry budget."""
    import getpass

    from gateway.services.delivery import open_store, redrive

    if bool(delivery_id) == bool(recipient):
        raise click.UsageError("give a DELIVERY_ID or --recipient, not both")
    with _reporting(delivery_id or recipient or "redrive"), open_store(_settings()) as store:
        ids = redrive(store, delivery_id=delivery_id, recipient=recipient, actor=f"cli:{getpass.getuser()}")
    click.echo(f"re-driven: {len(ids)}")
    for i in ids:
        click.echo(f"  {i}")


@agencies.command("sync-vdxp")
@click.option("--endpoint", required=True, help="The national axis VDXP endpoint (…/XrdAdapter/adapter).")
@click.option("--system-id", required=True, help="Our system id at the axis.")
@click.option(
    "--secret-env", default="EDOC_GATEWAY_VDXP_SECRET", show_default=True, help="Variable holding the secret."
)
def agencies_sync_vdxp(endpoint: str, system_id: str, secret_env: str) -> None:
    """Import the national axis's agency list (getAgenciesList); local agencies are never changed."""
    from adapters.vdxp import VdxpClient, sync_agencies
    from gateway.services.registry import Registry

    secret = os.environ.get(secret_env)
    if not secret:
        raise click.UsageError(f"set {secret_env} to the axis secret (it is never taken on the command line)")
    with _reporting("sync-vdxp"), Registry.from_settings(_settings()) as registry:
        report = sync_agencies(VdxpClient(endpoint, system_id, secret), registry)
    click.echo(f"sync-vdxp: {report}")


# ------------------------------------------------------------------------------------------ demo


@main.command()
@click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-data"), show_default=True
)
@click.option(
    "--samples",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(__file__).resolve().parents[1].parent / "shared" / "samples",
    show_default=True,
)
@click.option("--bind", default="127.0.0.1:8080", show_default=True, help="Loopback address for the demo gateway.")
@click.option("--wait/--no-wait", default=True, help="Keep serving until Ctrl-C (default) or stop after the traffic.")
def demo(data_dir: Path, samples: Path, bind: str, wait: bool) -> None:
    """Run the gateway on embedded defaults with a demo PKI, demo agencies and systems, and sample traffic."""
    from gateway.demo.run import run_demo

    with _reporting("demo"):
        run_demo(data_dir, samples, bind=bind, wait=wait, echo=click.echo)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
