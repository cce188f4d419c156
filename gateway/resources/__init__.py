"""The files the gateway reads at run time besides its code: the XSDs, the WSDLs, the gunicorn configuration and
the admin API's OpenAPI document.

Why a package directory of symlinks: the repository keeps these files at its top (``xsd/``, ``wsdl/``, ``deploy/``),
where integrators and operators look for them and where the tests compare the committed WSDL with the served one;
they stay the only copy (and ``openapi`` links to ``docs/openapi``). The links
``gateway/resources/{xsd,wsdl,deploy,openapi}`` point there, so a checkout (and an editable install) reads the
committed files themselves, and building a wheel copies what the links point to into ``gateway/resources/``
(setuptools follows them; ``[tool.setuptools.package-data]`` in pyproject.toml lists the files). One lookup through
:mod:`importlib.resources` then works from a checkout, an editable install and an installed wheel in any directory —
before, the code looked for ``<checkout>/xsd`` and an installed wheel failed with ``CONFIG.INVALID: cannot read
XSD``. tests/test_wheel_install.py builds the wheel and proves it.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def resource_path(*parts: str) -> Path:
    """``gateway/resources/<parts>`` as a filesystem path (lxml, zeep, alembic and gunicorn all want paths).

    pip installs wheels unpacked, so the package's resources are plain files; a zip import (which would need
    extracting first) is refused here rather than failing later with an unreadable path.
    """
    found = files(__name__).joinpath(*parts)
    if not isinstance(found, Path):
        raise RuntimeError(f"gateway is imported from an archive ({found!r}); install it unpacked (pip does)")
    return found
