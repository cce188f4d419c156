"""What the published SOAP contract says beyond spyne's types and operations: the service documentation, the
WS-SecurityPolicy that tells policy-aware toolkits how to authenticate, and the names renamed in contract 1.1.

Kept apart from :mod:`gateway.web.soap` because this is the part of ``wsdl/edoc-gateway.wsdl`` written by hand:
changing it changes the published file, which a test compares with the served one byte for byte, and another
(``tests/test_wsdl_contract.py``) validates against the WS-Policy 1.5 and WS-SecurityPolicy 1.2 schemas.

The policy states what :class:`gateway.web.guard.SoapGuard` enforces, as two alternatives (WS-Policy
``ExactlyOne``), so that WCF, CXF and Metro configure their UsernameToken from the WSDL alone:

1. a UsernameToken with a hashed password (``sp:HashPassword``: PasswordDigest with Nonce and wsu:Created), over
   any transport, HTTP included;
2. the TLS binding (``sp:TransportBinding`` with ``sp:HttpsToken``) with a UsernameToken carrying the password as
   text — the guard refuses PasswordText without TLS.

No ``sp:IncludeTimestamp``: the guard checks ``wsu:Created`` of the token, not a message timestamp, and a policy
that asked for one would make WCF and CXF require one in our answers.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from gateway.soapkit import WSDL_NS, WSP_NS, WSU_NS, attach_policy, declare_namespaces, set_documentation

SP_NS: Final = "http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702"
#: The ``wsu:Id`` of the published policy; the binding refers to it as ``#EdocGatewayUsernameToken``.
POLICY_ID: Final = "EdocGatewayUsernameToken"
#: WS-SecurityPolicy 1.2 §5.1: the token goes in every request (the spec's URI, which WCF, CXF and Metro use).
INCLUDE_ALWAYS_TO_RECIPIENT: Final = f"{SP_NS}/IncludeToken/AlwaysToRecipient"

#: Contract 1.1 renamed these request children: (operation, old name) → new name. The old ones were a Java keyword
#: (``package``: JAX-WS wsimport refuses the WSDL) and a misnomer (``docId`` where the value is a deliveryId).
#: A request that still uses one is refused with REQUEST.INVALID naming the new one, never silently ignored.
RENAMED: Final = {
    ("SendEdoc", "package"): "edxmlPackage",
    ("SendStatus", "package"): "edxmlPackage",
    ("GetEdoc", "docId"): "deliveryId",
    ("Acknowledge", "docId"): "deliveryId",
}

SERVICE_DOCUMENTATION: Final = (
    "EdocGateway, contract 1.1: the edoc-gateway SOAP 1.1 service (document/literal wrapped) for edXML packages "
    "(QCVN 102:2016). Identifiers: docId is the gateway's id of one submitted package (Receipt.docId); deliveryId is "
    "that package's delivery to one recipient (PendingItem.deliveryId: what GetEdoc and Acknowledge take); documentId "
    "is the edXML DocumentId from the package header. Authentication (WS-Policy EdocGatewayUsernameToken on the "
    "binding): a WS-Security UsernameToken with PasswordDigest, Nonce and wsu:Created, over HTTP or HTTPS; or a "
    "UsernameToken with PasswordText over HTTPS only; each Nonce is accepted once. Errors are SOAP Faults; branch on "
    "detail/GatewayError/code. Changed in contract 1.1: SendEdoc and SendStatus take edxmlPackage (was package), "
    "GetEdoc answers edxmlPackage (was package), GetEdoc and Acknowledge take deliveryId (was docId); a request with "
    "an old name is refused with REQUEST.INVALID."
)


def _sp(name: str, *children: etree._Element, **attrib: str) -> etree._Element:
    element = etree.Element(f"{{{SP_NS}}}{name}", attrib)
    element.extend(children)
    return element


def _wsp(name: str, *children: etree._Element) -> etree._Element:
    element = etree.Element(f"{{{WSP_NS}}}{name}")
    element.extend(children)
    return element


def _nested(name: str, *assertions: etree._Element, **attrib: str) -> etree._Element:
    """``<sp:name><wsp:Policy>assertions</wsp:Policy></sp:name>``: WS-SecurityPolicy's nested-policy form."""
    return _sp(name, _wsp("Policy", *assertions), **attrib)


def _username_token(*assertions: etree._Element) -> etree._Element:
    return _nested(
        "UsernameToken",
        *assertions,
        _sp("WssUsernameToken10"),
        **{f"{{{SP_NS}}}IncludeToken": INCLUDE_ALWAYS_TO_RECIPIENT},
    )


def security_policy() -> etree._Element:
    """The ``wsp:Policy`` of the binding: digest on any transport, or PasswordText inside TLS."""
    digest = _wsp("All", _nested("SupportingTokens", _username_token(_sp("HashPassword"))))
    over_tls = _wsp(
        "All",
        _nested(
            "TransportBinding",
            _nested("TransportToken", _nested("HttpsToken")),
            _nested("AlgorithmSuite", _sp("Basic256")),
            _nested("Layout", _sp("Lax")),
        ),
        _nested("SignedSupportingTokens", _username_token()),
    )
    policy = _wsp("Policy", _wsp("ExactlyOne", digest, over_tls))
    policy.set(f"{{{WSU_NS}}}Id", POLICY_ID)
    return policy


def finish_wsdl(root: etree._Element, binding: str) -> etree._Element:
    """spyne's ``wsdl:definitions`` plus the service documentation and the policy on ``binding``."""
    root = declare_namespaces(root, {"wsp": WSP_NS, "sp": SP_NS, "wsu": WSU_NS})
    for service in root.iterfind(f"{{{WSDL_NS}}}service"):
        set_documentation(service, SERVICE_DOCUMENTATION)
    attach_policy(root, security_policy(), binding)
    return root


__all__ = ["INCLUDE_ALWAYS_TO_RECIPIENT", "POLICY_ID", "RENAMED", "SERVICE_DOCUMENTATION", "SP_NS", "finish_wsdl"]
