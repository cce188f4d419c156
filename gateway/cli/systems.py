"""``systems``: API client systems, the agencies they act for, their secrets, and — for legacy systems (issue 13,
the e-doc.vn SOAP profile) — the OrganId they log in as and whom they may send as.

Secrets are printed once, when made (``add``, ``rotate-secret``); an operator-given one (a VDXP secret or a legacy
token kept from an existing axis) is read from standard input, never from the command line (shell history,
``ps``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from gateway.cli.common import _db_settings, _page_footer, _page_request, _paging, _reporting

if TYPE_CHECKING:  # the services load the database layer: imported only by the commands that need them
    from gateway.services.registry import SystemInfo


@click.group()
def systems() -> None:
    """API client systems and the agencies they act for."""


#: The VDXP replay options of ``systems add`` and ``systems update`` (values checked by the registry, so both
#: commands and the library refuse the same things; click only collects them).
_VDXP_OPTIONS = (
    click.option(
        "--vdxp-replay",
        help="How its VDXP requests are protected from replay: strict (default: a fresh signed timestamp, each "
        "signature once) or legacy-sdk (the stock VNPT SDK's fixed timestamp; needs --allow-from or --client-cert).",
    ),
    click.option(
        "--allow-from",
        multiple=True,
        metavar="CIDR",
        help="A network (or address) its VDXP requests may come from (repeatable; replaces the list; '' clears it).",
    ),
    click.option(
        "--client-cert",
        multiple=True,
        metavar="SHA256",
        help="SHA-256 fingerprint of its TLS client certificate, as the trusted proxy forwards it (repeatable; "
        "replaces the list; '' clears it). openssl x509 -noout -fingerprint -sha256 -in cert.pem",
    ),
)


def _vdxp_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(_VDXP_OPTIONS):
        command = option(command)
    return command


def _given(values: tuple[str, ...]) -> list[str] | None:
    """A repeatable option: None when absent, [] for a lone '' (clear), else the non-empty values."""
    if not values:
        return None
    return [v for v in values if v.strip()]


def _describe(info: SystemInfo) -> str:
    """``vdxp=MODE[ from=CIDR,…][ certs=N][ legacy=ORGID scope=SCOPE]`` for a system (never a secret)."""
    text = f"vdxp={info.vdxp_replay}"
    if info.vdxp_allow_from:
        text += f" from={','.join(info.vdxp_allow_from)}"
    if info.vdxp_client_certs:
        text += f" certs={len(info.vdxp_client_certs)}"
    if info.legacy_organ_id:
        text += f" legacy={info.legacy_organ_id} scope={info.legacy_scope}"
    return text


#: What each legacy scope lets a legacy system send as (gateway.services.legacy_credentials).
_SENDS_AS = {
    "strict": "sends only as {own}",
    "subtree": "sends as its agencies and their level-2/3/4 units",
    "explicit": "sends as its agencies only",
}
#: Longest operator-given secret read from standard input (the services bound it to 200 characters).
_MAX_STDIN = 4096


def _acting_line(info: SystemInfo) -> str:
    acting = ", ".join(info.agencies)
    if info.legacy_organ_id is None:
        return f"system {info.id} acts for {acting} (and their level-2/3/4 units); {_describe(info)}"
    sends = _SENDS_AS.get(info.legacy_scope or "", "").format(own=info.legacy_organ_id)
    return f"system {info.id} acts for {acting}; logs in as {info.legacy_organ_id} and {sends}; {_describe(info)}"


def _read_stdin_secret() -> str:
    """An operator-given secret from standard input: its one line without the line break (checked by the
    services: a space or a second line is refused there, with the rule, never with the value)."""
    text = sys.stdin.read(_MAX_STDIN + 1)
    if text.endswith("\n"):
        text = text[:-1].removesuffix("\r")
    if not text:
        raise click.UsageError("standard input is empty: pipe the secret in (printf '%s' \"$TOKEN\" | …)")
    return text


@systems.command("add")
@click.argument("system_id")
@click.option("--agency", "agency_ids", multiple=True, help="OrganId it acts for (repeatable).")
@click.option("--name", help="A human name for the system.")
@_vdxp_options
@click.option(
    "--legacy-organ",
    metavar="ORGID",
    help="A legacy system (e-doc.vn SOAP profile): the OrganId it logs in as (then also one of its agencies); its "
    "secret is its legacy Token (28 Base64 characters ending in '=').",
)
@click.option(
    "--legacy-scope",
    help="Whom a legacy system may send as: strict (default: only its own OrganId), subtree (its agencies and "
    "their registered level-2/3/4 units) or explicit (exactly its agencies).",
)
@click.option(
    "--legacy-token-stdin",
    is_flag=True,
    help="Keep the token it has on an existing axis: read it from standard input (16–200 visible ASCII characters).",
)
def systems_add(
    system_id: str,
    agency_ids: tuple[str, ...],
    name: str | None,
    vdxp_replay: str | None,
    allow_from: tuple[str, ...],
    client_cert: tuple[str, ...],
    legacy_organ: str | None,
    legacy_scope: str | None,
    legacy_token_stdin: bool,
) -> None:
    """Register a system; prints its generated secret ONCE (it is stored encrypted, never shown again)."""
    from gateway.services.registry import Registry

    if not agency_ids and legacy_organ is None:
        raise click.UsageError("a system must act for at least one agency: give --agency (or --legacy-organ)")
    if (legacy_scope is not None or legacy_token_stdin) and legacy_organ is None:
        raise click.UsageError("--legacy-scope and --legacy-token-stdin are for a legacy system: give --legacy-organ")
    given = _read_stdin_secret() if legacy_token_stdin else None
    settings = _db_settings()
    with _reporting(system_id), Registry.from_settings(settings) as registry:
        secret = registry.add_system(
            system_id,
            agency_ids,
            name=name,
            secret=given,
            vdxp_replay=vdxp_replay or "strict",
            allow_from=_given(allow_from) or (),
            client_certs=_given(client_cert) or (),
            legacy_organ=legacy_organ,
            legacy_scope=legacy_scope,
        )
        info = registry.system_info(system_id)
    click.echo(_acting_line(info))
    if given is None:
        click.echo(f"secret: {secret}")
    else:
        click.echo("secret: the given token (stored encrypted; not shown)")


@systems.command("update")
@click.argument("system_id")
@_vdxp_options
@click.option("--legacy-scope", help="Whom a legacy system may send as: strict, subtree or explicit.")
def systems_update(
    system_id: str,
    vdxp_replay: str | None,
    allow_from: tuple[str, ...],
    client_cert: tuple[str, ...],
    legacy_scope: str | None,
) -> None:
    """Change a system's VDXP replay protection, or a legacy system's scope (what is not given is kept)."""
    from gateway.services.registry import Registry

    vdxp = vdxp_replay is not None or bool(allow_from) or bool(client_cert)
    if not vdxp and legacy_scope is None:
        raise click.UsageError("nothing to change: give --vdxp-replay, --allow-from, --client-cert or --legacy-scope")
    settings = _db_settings()
    with _reporting(system_id), Registry.from_settings(settings) as registry:
        if vdxp:
            registry.set_system_vdxp(
                system_id, vdxp_replay=vdxp_replay, allow_from=_given(allow_from), client_certs=_given(client_cert)
            )
        info = (
            registry.set_system_legacy_scope(system_id, legacy_scope)
            if legacy_scope is not None
            else registry.system_info(system_id)
        )
    click.echo(f"system {info.id}: {_describe(info)}")


@systems.command("rotate-secret")
@click.argument("system_id")
@click.option(
    "--secret-stdin",
    is_flag=True,
    help="Set a given secret (read from standard input) instead of a random one: a legacy token kept from an "
    "existing axis, or a VDXP secret.",
)
def systems_rotate_secret(system_id: str, secret_stdin: bool) -> None:
    """Give a system a new secret and print it ONCE; the old one is refused from now (a legacy system's new
    token has the legacy shape: 28 Base64 characters ending in '=')."""
    from gateway.services.registry import Registry

    given = _read_stdin_secret() if secret_stdin else None
    settings = _db_settings()
    with _reporting(system_id), Registry.from_settings(settings) as registry:
        secret = registry.rotate_secret(system_id, secret=given)
    click.echo(f"system {system_id}: secret replaced (the old one is refused from now)")
    click.echo("secret: the given one (stored encrypted; not shown)" if given is not None else f"secret: {secret}")


def _set_active(system_id: str, active: bool) -> None:
    from gateway.services.registry import Registry

    settings = _db_settings()
    with _reporting(system_id), Registry.from_settings(settings) as registry:
        registry.set_system_active(system_id, active)
    click.echo(f"system {system_id}: {'enabled' if active else 'disabled (its requests are refused from now)'}")


@systems.command("disable")
@click.argument("system_id")
def systems_disable(system_id: str) -> None:
    """Refuse a system's requests from now (kept, with its secret; ``enable`` lets it in again)."""
    _set_active(system_id, False)


@systems.command("enable")
@click.argument("system_id")
def systems_enable(system_id: str) -> None:
    """Let a disabled system in again, with the secret it had."""
    _set_active(system_id, True)


@systems.command("list")
@_paging
def systems_list(limit: int, offset: int, cursor: str | None) -> None:
    """List systems by id, a page at a time: the agencies they act for, their VDXP replay protection and, for
    legacy systems, the OrganId they log in as and their scope (never secrets)."""
    from gateway.services.registry import Registry
    from gateway.services.registry_systems import SYSTEM_LISTING

    request = _page_request(SYSTEM_LISTING, 1, limit, offset, cursor)
    settings = _db_settings()
    with _reporting("systems"), Registry.from_settings(settings) as registry:
        page = registry.systems_page(request)
    for sysinfo in page.items:
        state = "" if sysinfo.active else " (inactive)"
        click.echo(f"{sysinfo.id:<20} {', '.join(sysinfo.agencies)}{state}  {_describe(sysinfo)}")
    _page_footer(page, "systems")


COMMANDS: tuple[click.Command, ...] = (systems,)
