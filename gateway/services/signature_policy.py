"""The sending agency's signature policy (gateway.md Intake 5), applied to the tree intake already parsed.

``require``: an xmldsig signature that verifies, chains to the trust store, passes CRL checks, and whose signer
certificate is bound to the agency — a fingerprint in ``agency_certificates``, or when none is bound, the
agency's OrganId in the certificate subject. ``verify-if-present``: the same checks whenever a real xmldsig
signature is present (the legacy placeholder of the official samples counts as unsigned). ``off``: nothing is
verified; the state found is recorded.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from lxml import etree

from gateway.config import Settings
from gateway.db import AgencyRecord
from gateway.edxml import EdocPackage, Package, StatusPackage, read_tree
from gateway.errors import SignatureError
from gateway.xmlcheck.bulk import SpooledTexts
from gateway.xmlcheck.signature import (
    SignatureCheck,
    SignatureState,
    VerifyPolicy,
    inspect_signature,
    verify_package,
)
from gateway.xmlcheck.trust import TrustStore


def check_signature(
    tree: etree._ElementTree,
    agency: AgencyRecord,
    trust: TrustStore,
    settings: Settings,
    now: datetime,
    *,
    spooled: SpooledTexts | None = None,
) -> SignatureCheck:
    """The agency's policy over ``tree``. Binding is enforced whenever a signature is verified. With ``spooled``
    (a package parsed from its spool) the digest streams its big texts and ``tree`` is spent afterwards."""
    state = inspect_signature(tree)
    if agency.signature_policy == "off" or (
        agency.signature_policy == "verify-if-present" and state is not SignatureState.PRESENT
    ):
        return SignatureCheck(state=state)
    policy = VerifyPolicy(
        allow_sha1=agency.allow_sha1,
        at=now,
        crl_soft_fail=settings.crl_soft_fail,
        require_signature=True,
    )
    check = verify_package(tree, trust, policy, max_bytes=settings.max_package_bytes, spooled=spooled)
    if agency.cert_fingerprints:
        bound = check.signer_fingerprint in agency.cert_fingerprints
    else:
        bound = check.is_bound_to(agency.organ_id)
    if not bound:
        raise SignatureError(
            f"the signer certificate ({check.signer_subject}) is not bound to the sending agency {agency.organ_id}",
            reason="not-bound",
            signer=check.signer_subject,
            fingerprint=check.signer_fingerprint,
        )
    return check


def signed_package(check: SignatureCheck, pkg: Package) -> Package:
    """From here on only what the signature covers; its key fields must equal the ones already checked.

    When the verifier proved that the tree ``pkg`` was read from is the signed content plus its Signature element
    (``signed_is_input``: nothing else canonicalisation drops), ``pkg`` without its Signature block IS the signed
    package: it is not read a second time (issue 14). Otherwise the signed content is read and compared.
    """
    if check.state is not SignatureState.VALID:
        return pkg
    if check.signed_is_input:
        return replace(pkg, signature=None) if isinstance(pkg, EdocPackage) else pkg
    signed = read_tree(check.signed_root)
    if _routing(signed) != _routing(pkg):
        raise SignatureError("the signed content differs from the content checked for routing", reason="wrapping")
    return signed


def _routing(pkg: Package) -> tuple[Any, ...]:
    """What the access, route and idempotency decisions were made on."""
    if isinstance(pkg, StatusPackage):
        rf = pkg.response_for
        return ("status", pkg.sender, rf.organ_id, rf.document_id, pkg.status_code, pkg.timestamp)
    return ("edoc", pkg.sender, pkg.recipients, pkg.document_id, pkg.bussiness_doc_type)


__all__ = ["check_signature", "signed_package"]
