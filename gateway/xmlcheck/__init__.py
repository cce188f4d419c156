"""The XML trust boundary: the one safe parser, XSD validation, XML-DSig and certificate trust.

Nothing outside this package constructs an lxml parser; everything that reads untrusted XML goes
through :func:`gateway.xmlcheck.safe.parse_bytes`. Signatures: :mod:`~gateway.xmlcheck.signing` signs,
:mod:`~gateway.xmlcheck.signature` verifies (with :mod:`~gateway.xmlcheck.dsig` for the XML-DSig checks and the
signxml call), and :mod:`~gateway.xmlcheck.trust` decides whether the signer's certificate is trusted — it
never imports the XML-DSig side.
"""
