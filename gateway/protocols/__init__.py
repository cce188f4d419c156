"""Wire protocols the gateway speaks on both sides: one package per profile, shared by its edge and its adapter.

A profile has three parts, each found by the profile's name:

* ``gateway.protocols.<profile>`` — everything both sides must agree on: operation names and paths, header and
  field names, signing and verification, the request and answer shapes with their builders and parsers, the
  error answer. Pure: it imports only the standard library, :mod:`gateway.errors` and :mod:`gateway.edxml`
  (codes, dates) — never services, the store or the web layer — so an adapter may use it;
* ``gateway.web.<profile>`` — the server edge: HTTP-layer checks, then the use cases (:mod:`gateway.services`);
* ``adapters/<profile>/`` — the client, and the worker's adapter over it.

Profiles: ``vdxp`` (the national axis's REST API, VNPT SDKVXP 2.0.x). The legacy e-doc.vn profile comes next
the same way (``gateway.protocols.edocvn``, ``gateway.web.edocvn``, ``adapters/edocvn/``).
"""
