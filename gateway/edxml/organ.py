"""Agency identifiers (``OrganId``, mã định danh cơ quan; edxml.md §6.1).

Validation is deliberately lenient (QĐ 20/2020: up to 35 characters, dot-separated groups of ``0-9A-Z``):
test tenants such as ``vxp.saas.02`` exist in the wild, so anything matching the lenient grammar is an
``OrganId``; only identifiers in the QCVN 102 four-group form get a level and a parent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from gateway.errors import EdxmlValueError

MAX_LENGTH = 35
_LENIENT = re.compile(r"^[0-9A-Za-z]+(?:[.:\-_][0-9A-Za-z]+)*$")
# V1V2V3 . Z1Z2 . Y1Y2 . M X1X2  — level 4 . level 3 . level 2 . level 1 (read right to left)
_QCVN = re.compile(r"^(\d{3})\.(\d{2})\.(\d{2})\.([A-Z]\d{2})$")


@dataclass(frozen=True)
class OrganId:
    """A validated agency identifier. ``str(organ_id)`` is the wire form."""

    value: str

    def __post_init__(self) -> None:
        if not self.value or len(self.value) > MAX_LENGTH or not _LENIENT.match(self.value):
            raise EdxmlValueError(
                f"{self.value!r} is not an agency identifier (1–{MAX_LENGTH} letters/digits in dot-separated groups)"
            )

    @classmethod
    def is_valid(cls, value: str) -> bool:
        return bool(value) and len(value) <= MAX_LENGTH and bool(_LENIENT.match(value))

    def __str__(self) -> str:
        return self.value

    @cached_property
    def _groups(self) -> tuple[str, str, str, str] | None:
        m = _QCVN.match(self.value)
        return m.groups() if m else None  # type: ignore[return-value]

    @property
    def is_qcvn(self) -> bool:
        """True for the QCVN 102 four-group form ``000.00.00.H53``."""
        return self._groups is not None

    @property
    def level(self) -> int | None:
        """1–4 for the four-group form (the deepest non-zero group), None otherwise."""
        g = self._groups
        if g is None:
            return None
        l4, l3, l2, _l1 = g
        if int(l4):
            return 4
        if int(l3):
            return 3
        if int(l2):
            return 2
        return 1

    @property
    def level1(self) -> str | None:
        """The level-1 body code (``H53``, ``G22``)."""
        g = self._groups
        return g[3] if g else None

    @property
    def parent(self) -> OrganId | None:
        """The governing unit one level up (zero-fill the deepest group), None at level 1 or off-grammar."""
        g = self._groups
        level = self.level
        if g is None or level is None or level == 1:
            return None
        l4, l3, l2, l1 = g
        if level == 4:
            l4 = "000"
        elif level == 3:
            l3 = "00"
        else:
            l2 = "00"
        return OrganId(f"{l4}.{l3}.{l2}.{l1}")

    def is_within(self, ancestor: OrganId) -> bool:
        """True if this unit is ``ancestor`` or one of its level-2/3/4 descendants."""
        node: OrganId | None = self
        while node is not None:
            if node == ancestor:
                return True
            node = node.parent
        return False
