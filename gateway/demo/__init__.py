"""Demo and test tooling: a demo PKI, demo documents, and ``edoc-gateway demo`` (setup, traffic, run).

Not part of the production gateway: no production module imports this package; the command line imports it
only inside the ``demo`` and ``demo-pki`` commands, and the tests and benchmarks use it for fixtures. Importing
the package has no side effects and re-exports nothing — import the module that owns a name:

* :mod:`gateway.demo.pki` — a fresh root/intermediate CA, agency certificates (also expired, revoked, rogue)
  and CRLs (:mod:`gateway.demo.x509build` holds the X.509 builders);
* :mod:`gateway.demo.documents` — a realistic new edoc and the status packages that answer it;
* :mod:`gateway.demo.setup` — the demo data directory: PKI, settings, database, registry, systems;
* :mod:`gateway.demo.traffic` — the sample and demo traffic through the public edges;
* :mod:`gateway.demo.run` — processes (gateway, worker, receivers) and the whole ``demo`` run.
"""
