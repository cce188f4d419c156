"""Use cases of the gateway: intake, mailboxes, status relay, registry, authentication.

Services know the edXML model, the store and the xmlcheck boundary; they import no spyne, zeep or HTTP.
The web edges call :class:`gateway.services.api.GatewayApi` only.
"""
