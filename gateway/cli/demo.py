"""``demo`` and ``demo-pki``: the only commands that import the demo tooling (:mod:`gateway.demo`), and only
when they run, so the rest of the command line never loads it."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.common import _reporting

# ------------------------------------------------------------------------------------------- pki


@click.command("demo-pki")
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


# ------------------------------------------------------------------------------------------ demo


@click.command()
@click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-data"), show_default=True
)
@click.option(
    "--samples",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Real edXML samples to send after the built-in corpus [default: the external corpus's samples/, when "
    "present: $EDOC_SHARED_DIR or ../shared beside a source checkout].",
)
@click.option("--bind", default="127.0.0.1:8080", show_default=True, help="Loopback address for the demo gateway.")
@click.option(
    "--soap-receiver-port", type=int, help="Port of the reference SOAP receiver [default: the gateway's port + 1]."
)
@click.option(
    "--rest-receiver-port", type=int, help="Port of the reference REST receiver [default: the gateway's port + 2]."
)
@click.option(
    "--wait/--no-wait", default=True, help="Keep serving until Ctrl-C or SIGTERM (default) or stop after the traffic."
)
def demo(
    data_dir: Path,
    samples: Path | None,
    bind: str,
    soap_receiver_port: int | None,
    rest_receiver_port: int | None,
    wait: bool,
) -> None:
    """Run the gateway on embedded defaults with a demo PKI, demo agencies and systems, and sample traffic.

    The demo writes and uses its own settings (DATA_DIR/gateway.toml); --config is not read. Its ports are
    checked free before anything starts: the gateway's (--bind) and the two receivers' (fixed: the gateway's
    port + 1 and + 2, unless given).
    """
    from gateway.demo.run import run_demo

    root = click.get_current_context().find_root()
    if root.get_parameter_source("config_path") is click.core.ParameterSource.COMMANDLINE:
        click.echo(
            "demo: note: --config is not used; the demo writes its own settings to DATA_DIR/gateway.toml", err=True
        )
    with _reporting("demo"):
        run_demo(
            data_dir,
            samples,
            bind=bind,
            wait=wait,
            echo=click.echo,
            soap_port=soap_receiver_port,
            rest_port=rest_receiver_port,
        )


COMMANDS: tuple[click.Command, ...] = (demo_pki, demo)
