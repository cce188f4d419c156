"""The Decision-28 report as an Excel workbook (openpyxl): one sheet per view of
:func:`gateway.services.report_export.sheets`, ready to attach to an official report — Vietnamese headers in
bold, the header row frozen, columns wide enough to read, agencies indented by their depth in the tree,
percentages and hours as numbers (so they can be summed and charted), never as text.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from gateway.services.report_export import Sheet, sheets

_MAX_WIDTH = 60
_NAME_COLUMN = 2


def workbook(report: Mapping[str, Any]) -> Workbook:
    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for view in sheets(report):
        _fill(book.create_sheet(view.title), view)
    book.properties.title = "Báo cáo tình hình gửi, nhận văn bản điện tử (QĐ 28/2018/QĐ-TTg)"
    book.properties.creator = "edoc-gateway"
    return book


def write_xlsx(report: Mapping[str, Any], target: str | Path | IO[bytes]) -> None:
    """Write the workbook to a path or a binary stream."""
    workbook(report).save(target)


def _fill(ws: Any, view: Sheet) -> None:
    ws.append(list(view.headers))
    bold = Font(bold=True)
    for cell in ws[1]:
        cell.font = bold
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for i, row in enumerate(view.rows):
        ws.append(row)
        if view.depths and view.depths[i]:
            ws.cell(row=i + 2, column=_NAME_COLUMN).alignment = Alignment(indent=view.depths[i])
    for index, header in enumerate(view.headers, start=1):
        longest = max([len(str(header)) // 2, *(len(str(r[index - 1] or "")) for r in view.rows)], default=8)
        ws.column_dimensions[get_column_letter(index)].width = min(_MAX_WIDTH, max(10, longest + 2))
    ws.freeze_panes = "C2" if view.depths else "A2"


__all__ = ["workbook", "write_xlsx"]
