"""The XML trust boundary: the one safe parser, XSD validation and XML-DSig.

Nothing outside this package constructs an lxml parser; everything that reads untrusted XML goes
through :func:`gateway.xmlcheck.safe.parse_bytes`.
"""
