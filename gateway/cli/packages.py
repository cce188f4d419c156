"""Package tools: ``validate``, ``inspect``, ``sign``, ``verify``, ``build``, ``json-schema``.

They work on files only (no settings, no database), so they run anywhere the package is installed.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click

from gateway.cli.common import _MAX, _Failed, _reporting
from gateway.edxml import EdocPackage, Package, StatusPackage, extract, from_json, parse_json, render, to_json
from gateway.edxml.dates import format_date, format_timestamp
from gateway.errors import GatewayError, SignatureError
from gateway.validation import validate_package
from gateway.xmlcheck.safe import read_limited

# ------------------------------------------------------------------------------------- validate


@click.command()
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


@click.command()
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


@click.command()
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
    cert = key.certificate
    if not key.chain and cert.issuer != cert.subject:
        click.echo(
            f"{infile}: warning: no --chain: KeyInfo carries only the signer's certificate (issued by "
            f"{cert.issuer.rfc4514_string()}); a verifier that trusts only the root CA (edoc-gateway verify, "
            "xmlsec1 --trusted-pem) cannot build the path. Pass --chain INTERMEDIATES.pem",
            err=True,
        )
    click.echo(f"{outfile}: signed")


@click.command()
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
        try:
            result = verify_package(data, trust, policy)
        except SignatureError as exc:
            hint = _missing_chain_hint(data, exc, max_bytes) if exc.detail.get("reason") == "untrusted" else None
            if hint is None:
                raise
            raise SignatureError(f"{exc.message}; {hint}", path=exc.path, **exc.detail) from None
    click.echo(f"{file}: {result.state.value}")
    click.echo(f"signer:      {result.signer_subject}")
    click.echo(f"fingerprint: sha256:{result.signer_fingerprint}")
    click.echo(f"issuer:      {result.issuer_subject}")
    if result.organ_ids:
        click.echo(f"organ ids:   {', '.join(result.organ_ids)}")


def _missing_chain_hint(data: bytes, exc: SignatureError, max_bytes: int) -> str | None:
    """Why no path was found, when the cause is the usual one: the package was signed without ``--chain``, so
    KeyInfo has the signer's certificate and no intermediate CA to link it to a trust store holding the root."""
    from gateway.xmlcheck import dsig
    from gateway.xmlcheck.certs import is_ca
    from gateway.xmlcheck.safe import parse_bytes

    if not exc.message.startswith("no certificate path"):
        return None
    try:
        _ns, signature = dsig.locate_signature(parse_bytes(data, max_bytes=max_bytes).getroot())
        certs = dsig.keyinfo_certificates(signature)
        issuer = dsig.end_entity(certs).issuer.rfc4514_string()
    except GatewayError:
        return None
    if any(is_ca(c) for c in certs):
        return None
    return (
        f"KeyInfo carries no intermediate CA certificate, only the signer's (issued by {issuer}): if that issuer "
        "is an intermediate CA under your trust store, the intermediate chain is missing from KeyInfo — sign with "
        "`edoc-gateway sign --key KEY --cert CERT --chain INTERMEDIATES.pem IN OUT`"
    )


# ---------------------------------------------------------------------------------------- build


@click.command()
@click.option("--json", "json_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.argument("outfile", type=click.Path(dir_okay=False, path_type=Path))
@_MAX
def build(json_path: Path, outfile: Path, max_bytes: int) -> None:
    """Build a canonical edXML package from its canonical JSON form."""
    with _reporting(str(json_path)):
        data = render(from_json(parse_json(read_limited(json_path, max_bytes))))
        validate_package(data, max_bytes=max_bytes)
        outfile.write_bytes(data)
    click.echo(f"{outfile}: built ({len(data)} bytes)")


@click.command("json-schema")
def json_schema_cmd() -> None:
    """Print the JSON Schema of the canonical JSON form (published as xsd/edxml-package.schema.json)."""
    from gateway.edxml import json_schema

    click.echo(json.dumps(json_schema(), ensure_ascii=False, indent=2))


COMMANDS: tuple[click.Command, ...] = (validate, inspect, sign, verify, build, json_schema_cmd)
