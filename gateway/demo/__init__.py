"""Demo and test tooling: a demo PKI, demo documents, a sample corpus, and ``edoc-gateway demo``.

Not part of the production gateway: no production module imports this package; the command line imports it
only inside the ``demo`` and ``demo-pki`` commands, and the tests and benchmarks use it for fixtures. Importing
the package has no side effects and re-exports nothing — import the module that owns a name:

* :mod:`gateway.demo.pki` — a fresh root/intermediate CA, agency certificates (also expired, revoked, rogue)
  and CRLs (:mod:`gateway.demo.x509build` holds the X.509 builders);
* :mod:`gateway.demo.documents` — a realistic new edoc and the status packages that answer it;
* :mod:`gateway.demo.corpus` — the project's own sample corpus, every producer variant the real samples show,
  deterministic (:mod:`gateway.demo.corpus_story` the packages, :mod:`gateway.demo.corpus_variants` the
  variants), and where the external real corpus is when present;
* :mod:`gateway.demo.setup` — the demo data directory: PKI, settings, database, registry, systems;
* :mod:`gateway.demo.traffic` — the sample and demo traffic through the public edges, and what to try next;
* :mod:`gateway.demo.run` — processes (gateway, worker, receivers) and the whole ``demo`` run.
"""
