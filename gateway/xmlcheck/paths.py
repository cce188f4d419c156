"""Element paths for error messages, one spelling everywhere: ``/edXML/.../To[2]/OrganId``."""

from __future__ import annotations

from typing import Final

from lxml import etree

#: Where an edXML signature lives, as local names (edxml.md §3 tree, §10.1 position). Every signature refusal,
#: from the XML-DSig checks or the certificate trust checks, is reported at this path.
SIGNATURE_PATH: Final = "/edXML/edXMLEnvelope/edXMLHeader/Signature"


def element_path(el: etree._Element) -> str:
    """Local names from the root, with a 1-based position only where a name repeats among its siblings."""
    parts: list[str] = []
    node: etree._Element | None = el
    while node is not None:
        parent = node.getparent()
        # The local name by string, not etree.QName: QName validates and raises on a tag libxml2 let through with
        # a namespace error ("a:b:c" — fuzzing found one), and an error message's path must never raise.
        name = node.tag.rpartition("}")[2] if isinstance(node.tag, str) else "?"
        if parent is not None and isinstance(node.tag, str):
            # Compared as strings for the same reason (iterchildren(tag) validates its argument).
            same = [sibling for sibling in parent if sibling.tag == node.tag]
            if len(same) > 1:
                name = f"{name}[{same.index(node) + 1}]"
        parts.append(name)
        node = parent
    return "/" + "/".join(reversed(parts))
