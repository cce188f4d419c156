"""Fuzz targets for every surface where a client's bytes meet a parser (issue 10, "Hostile clients").

One target per surface, shared by two drivers so that there is one definition of "a crash":

* ``tests/test_fuzz.py`` runs each target in CI for a bounded time with hypothesis (structure-aware mutations of
  generated valid inputs, :mod:`fuzz.mutate`) and replays the committed regression seeds in ``fuzz/seeds/``;
* ``python -m fuzz.run SURFACE`` runs the same target under atheris (coverage-guided libFuzzer) for long local runs
  (``make fuzz``), writing any crashing input to ``fuzz/crashes/``.

A *crash* is an unexpected exception class: anything a target lets escape other than the gateway's own
:class:`~gateway.errors.GatewayError` family, and, for the served surfaces, an answer with HTTP 500 and the code
``GATEWAY.INTERNAL`` or one that is not in the edge's own format. Refusals are the expected outcome of most inputs.
"""

#: The surfaces, each a target in :class:`fuzz.targets.Targets` and a folder of regression seeds in fuzz/seeds/.
#: Defined here, importing nothing, so that the atheris runner can instrument gateway modules before they load.
SURFACES = ("package", "signature", "certificate", "soap", "json", "vdxp")
