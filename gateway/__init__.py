"""edoc-gateway: send and receive edXML (QCVN 102:2016/BTTTT) official documents.

Importing this package has no side effects; composition roots live in ``gateway.cli``.
"""

__version__ = "0.1.0"
