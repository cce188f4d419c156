"""The ``edocvn`` channel: a legacy provincial axis speaking the e-doc.vn SOAP profile (Bkav's eDoc; issue 13).

* :class:`EdocvnClient` — the eight operations (legacy-edoc-vn.md §6) over ``requests``, the wire built and read by
  :mod:`gateway.protocols.edocvn` (the module our own legacy edge shares);
* :class:`EdocvnAdapter` — :class:`gateway.ports.PeerAdapter` (deliver = SendDocument / UpdateTraces) and
  :class:`gateway.ports.PollingAdapter` (poll = GetPendingDocumentIds + GetDocument, GetTraces; acknowledge =
  ConfirmReceived).
"""

from adapters.edocvn.adapter import CHANNEL, EdocvnAdapter, Login, logins_from
from adapters.edocvn.client import EdocvnClient, EdocvnError, Traces

__all__ = ["CHANNEL", "EdocvnAdapter", "EdocvnClient", "EdocvnError", "Login", "Traces", "logins_from"]
