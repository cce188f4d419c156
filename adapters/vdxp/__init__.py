"""The ``vdxp`` channel: the national document axis's REST API (VNPT "JAVA_SDK_VXP", edxml.md §11).

* :class:`VdxpClient` — the SDK's calls (sendEdoc, getReceivedEdocList, getEdoc, updateStatus,
  getSentEdocList, getAgenciesList), signed with the XroadVnpt HMAC scheme; the
  protocol itself (names, signing, request and answer shapes) is :mod:`gateway.protocols.vdxp`, shared with our
  ``/vdxp`` edge;
* :class:`VdxpAdapter` — :class:`gateway.ports.PeerAdapter` (deliver = sendEdoc) and
  :class:`gateway.ports.PollingAdapter` (poll = list + getEdoc, acknowledge = updateStatus);
* :func:`sync_agencies` — import the axis's agency list into the registry without touching local agencies.

Works against the national axis and against another edoc-gateway's ``/vdxp`` edge (province → national).
"""

from adapters.vdxp.adapter import VdxpAdapter
from adapters.vdxp.client import VdxpClient, VdxpError
from adapters.vdxp.sync import AgencyRegistry, SyncReport, import_agencies, sync_agencies

__all__ = [
    "AgencyRegistry",
    "SyncReport",
    "VdxpAdapter",
    "VdxpClient",
    "VdxpError",
    "import_agencies",
    "sync_agencies",
]
