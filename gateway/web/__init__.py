"""The web edges: the composition root (one Flask app, spyne mounted beside it at ``/soap``), the SOAP guard and
the spyne SOAP service, and the JSON edges as Flask blueprints (health, admin, REST, VDXP).

Faults are built only here (STYLE.md rule 5). Importing this package has no side effects: the application is built
by :func:`gateway.web.app.create_app`, and only ``gateway.web.wsgi`` (which gunicorn imports) builds one at import.
"""
