"""The ``soap`` channel: push packages to peers implementing ``wsdl/edoc-receiver.wsdl``.

* :mod:`adapters.soap.contract` — the contract's names and the pure request/answer conversions;
* :mod:`adapters.soap.adapter` — :class:`SoapAdapter` (zeep), registered for the worker as
  ``adapters.soap:SoapAdapter``;
* :mod:`adapters.soap.receiver` — the reference receiver (spyne WSGI app) for the demo, the tests and integrators.

Importing this package loads zeep but not spyne (the receiver is imported only by whoever runs it).
"""

from adapters.soap.adapter import SoapAdapter

__all__ = ["SoapAdapter"]
