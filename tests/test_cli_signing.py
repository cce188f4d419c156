"""``sign`` without ``--chain`` (issue 8 item 5): a warning when signing, and a refusal from ``verify`` that says
the intermediate chain is missing from KeyInfo and how to sign with it. Real subprocesses, the demo PKI, a package
built by the project's own builder."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from gateway.demo.documents import demo_package
from gateway.edxml import render

EXE = shutil.which("edoc-gateway", path=str(Path(sys.executable).parent)) or "edoc-gateway"


def run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_signing_without_the_chain_warns_and_verify_says_what_is_missing(tmp_path, pki):
    package = tmp_path / "doc.edxml"
    package.write_bytes(render(demo_package()))
    signer = pki.agencies["000.00.01.H53"]
    crls = [arg for crl in pki.crls for arg in ("--crl", crl)]

    leaf_only = tmp_path / "leaf-only.edxml"
    signed = run("sign", "--key", signer.key, "--cert", signer.cert, package, leaf_only)
    assert signed.returncode == 0, signed.stderr
    assert signed.stdout == f"{leaf_only}: signed\n"
    [warning] = signed.stderr.splitlines()
    assert warning.startswith(f"{package}: warning: no --chain: KeyInfo carries only the signer's certificate")
    assert "Pass --chain INTERMEDIATES.pem" in warning

    refused = run("verify", "--trust", pki.trust, *crls, leaf_only)
    assert refused.returncode == 1
    [line] = refused.stderr.splitlines()
    assert line.startswith(f"{leaf_only}: EDXML.SIGNATURE: no certificate path from ")
    assert "the intermediate chain is missing from KeyInfo" in line
    assert "edoc-gateway sign --key KEY --cert CERT --chain INTERMEDIATES.pem IN OUT" in line

    with_chain = tmp_path / "with-chain.edxml"
    chained = run("sign", "--key", signer.key, "--cert", signer.cert, "--chain", pki.chain, package, with_chain)
    assert chained.returncode == 0 and chained.stderr == ""
    verified = run("verify", "--trust", pki.trust, *crls, with_chain)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith(f"{with_chain}: valid")


def test_an_untrusted_signer_with_its_chain_gets_no_chain_hint(tmp_path, pki):
    """The hint is for the missing intermediate only: a chain sent in KeyInfo that leads nowhere trusted is
    refused with the plain message."""
    package = tmp_path / "doc.edxml"
    package.write_bytes(render(demo_package()))
    rogue = tmp_path / "rogue.edxml"
    assert (
        run(
            "sign", "--key", pki.rogue.key, "--cert", pki.rogue.cert, "--chain", pki.rogue_ca_cert, package, rogue
        ).returncode
        == 0
    )
    refused = run("verify", "--trust", pki.trust, "--no-revocation", rogue)
    assert refused.returncode == 1
    assert "EDXML.SIGNATURE" in refused.stderr and "missing from KeyInfo" not in refused.stderr
