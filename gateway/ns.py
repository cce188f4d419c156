"""Namespace URIs, in one place (edxml.md §2)."""

from typing import Final

EDXML: Final = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
#: Pre-QCVN-102 edXML of the e-doc.vn SOAP profile (edxml.md §1, §12.4); accepted on input only.
EDXML_LEGACY: Final = "http://www.e-doc.vn/Schema/"
DSIG: Final = "http://www.w3.org/2000/09/xmldsig#"
XLINK: Final = "http://www.w3.org/1999/xlink"
SOAP11: Final = "http://schemas.xmlsoap.org/soap/envelope/"

#: Namespaces whose elements the tolerant edXML reader treats as edXML elements.
EDXML_READ: Final = frozenset({EDXML, EDXML_LEGACY})

#: The prefix the official samples use for the envelope (root uses the default namespace).
EDXML_PREFIX: Final = "edXML"


def q(local: str, ns: str = EDXML) -> str:
    """Clark notation ``{ns}local`` for lxml."""
    return f"{{{ns}}}{local}"
