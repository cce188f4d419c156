"""The console's Documents pages (issue 12 item 1, "Documents"): the searchable list with its CSV export, one
document's page (header, signature check, receipt, per-recipient timeline) and the raw package download.

No second query path: the list is ``admin.documents.list_documents`` with the filters read by
:func:`gateway.web.document_filters.document_query` — the very reading of ``GET /admin/v1/documents`` — and the
page is ``admin.documents.document_story``; both get the operator's scope, so a scoped operator meets the same
NOT_FOUND (404) as a scoped token, by URL guessing too. The raw bytes, the recorded signer certificate and the
export's walk come from :class:`gateway.services.console_documents.ConsoleDocuments`, through the same scope rule.

A download of the raw package (operator and admin only) and every CSV export is audited
(``console.documents.raw`` / ``console.documents.export``); a refused download of an id outside the scope is
audited too (``outcome=NOT_FOUND``): that is what URL guessing looks like.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

from flask import Response, g, request, url_for

from gateway.errors import NotFoundError, RequestError
from gateway.services.admin_roles import Role
from gateway.services.operators import ConsoleUser
from gateway.services.tracking_api import DocumentsApi
from gateway.tracking.calendar import local
from gateway.tracking.rules import Rule
from gateway.web.console import i18n
from gateway.web.console.doc_views import (
    FIELDS,
    STATES,
    export_headers,
    export_row,
    rule_label,
    state_label,
    story_view,
    with_times,
)
from gateway.web.console.edge import Console
from gateway.web.document_filters import document_query

#: The list's query parameters a page link keeps (paging adds ``cursor`` and ``page``).
_KEEP: Final = ("from", "to", "sender", "recipient", "kind", "state", "flag", "text", "limit")
#: Rules whose deadline can still be pending (``rule:open``): late sending is judged once, at intake.
OPEN_RULES: Final = tuple(r for r in Rule if r is not Rule.LATE_SENDING)
PAGE_SIZES: Final = (25, 50, 100, 200)

i18n.register(
    {
        "Search documents": "Tìm văn bản",
        "Pages": "Trang",
        "Algorithm": "Thuật toán",
        "Attachments": "Số tệp đính kèm",
        "Back to the document list": "Về danh sách văn bản",
        "Binding": "Gắn với đơn vị gửi",
        "Business operation": "Nghiệp vụ",
        "Certificate validity": "Hiệu lực chứng thư số",
        "Clear": "Xóa bộ lọc",
        "Code or subject contains": "Số, ký hiệu hoặc trích yếu có chứa",
        "Deadline passed and still missing": "Đã quá hạn mà vẫn chưa thực hiện",
        "Deadline": "Hạn",
        "Delivery state": "Tình trạng chuyển",
        "Details": "Chi tiết",
        "Document type": "Loại văn bản",
        "Document": "Văn bản",
        "Documents only": "Chỉ văn bản",
        "Documents, newest first": "Văn bản, mới nhất trước",
        "Done at": "Thực hiện lúc",
        "Download the package as received": "Tải gói tin nguyên gốc như khi tiếp nhận",
        "Due date": "Hạn xử lý",
        "Event": "Sự kiện",
        "Events": "Diễn biến",
        "Export CSV (Excel)": "Xuất CSV (Excel)",
        "Fingerprint (SHA-256)": "Dấu vân tay (SHA-256)",
        "First page": "Trang đầu",
        "From (day)": "Từ ngày",
        "Issuer": "Tổ chức cấp",
        "Linked documents": "Văn bản liên quan",
        "Next page": "Trang sau",
        "No document matches these filters.": "Không có văn bản nào khớp bộ lọc.",
        "No recipient of this document is in your scope.": "Không đơn vị nhận nào của văn bản thuộc phạm vi của bạn.",
        "No signature was verified for this package: the sending agency's signature policy let it in without one.": (
            "Gói tin không có chữ ký số được kiểm tra: chính sách chữ ký của đơn vị gửi cho phép tiếp nhận "
            "khi không ký."
        ),
        "None in your scope": "Không có đơn vị nào trong phạm vi của bạn",
        "Page {n}": "Trang {n}",
        "Per page": "Số dòng mỗi trang",
        "Promulgation date": "Ngày ban hành",
        "Receipt": "Biên nhận",
        "Received": "Đã nhận",
        "Recipient": "Đơn vị nhận",
        "Relation": "Quan hệ",
        "Result": "Kết quả",
        "Revocation": "Thu hồi chứng thư",
        "Rule": "Quy định",
        "SHA-256 of the package": "SHA-256 của gói tin",
        "Search": "Tìm",
        "Sent by system": "Hệ thống gửi",
        "Sending deadline": "Hạn gửi",
        "Serial number": "Số hiệu chứng thư",
        "Signature check": "Kiểm tra chữ ký số",
        "Signer": "Người ký",
        "Size": "Kích thước",
        "Status packages only": "Chỉ gói trạng thái",
        "The download is recorded in the audit log.": "Việc tải về được ghi nhật ký.",
        "The search was not run:": "Chưa tìm được:",
        "The signer certificate is bound to the sending agency (intake refuses a signature that is not).": (
            "Chứng thư của người ký gắn với đơn vị gửi (cổng từ chối chữ ký không gắn với đơn vị gửi)."
        ),
        "Time limits breached (for some recipient)": "Vi phạm thời hạn (ở ít nhất một đơn vị nhận)",
        "Time limits": "Thời hạn",
        "Time": "Thời điểm",
        "Timeline per recipient": "Diễn biến theo đơn vị nhận",
        "To (day, included)": "Đến ngày (tính cả ngày này)",
        "Warnings": "Cảnh báo",
        "any": "tất cả",
        "as of": "tính đến",
        "bytes": "byte",
        "delivery": "lượt chuyển",
        "expired": "đã hết hạn",
        "late": "muộn",
        "not due": "chưa đến hạn",
        "not recorded": "không được ghi nhận",
        "on time": "đúng hạn",
        "status": "trạng thái",
        "still missing": "vẫn chưa thực hiện",
        "the gateway itself": "chính cổng",
        "valid when received (checked at intake)": "hợp lệ khi tiếp nhận (kiểm tra lúc tiếp nhận)",
        "waiting": "đang chờ",
        "{n} documents match.": "Có {n} văn bản khớp.",
        "{n} documents read for this page (time-limit or accented text filters are judged document by document).": (
            "Đã đọc {n} văn bản cho trang này (bộ lọc thời hạn hoặc chữ có dấu được xét từng văn bản)."
        ),
        "The filter selects more than {rows} documents (or more than {read} had to be read): "
        "narrow the period or add a filter to export.": (
            "Bộ lọc chọn nhiều hơn {rows} văn bản (hoặc phải đọc quá {read} văn bản): hãy thu hẹp khoảng thời gian "
            "hoặc thêm bộ lọc để xuất."
        ),
    }
)


def install(console: Console) -> None:
    console.menu("documents", "Documents")
    pages = DocumentPages(console)
    console.page("/documents", endpoint="documents")(pages.documents)
    console.page("/documents.csv", endpoint="documents_csv")(pages.documents_csv)
    console.page("/documents/<doc_id>", endpoint="document")(pages.document)
    console.page("/documents/<doc_id>/raw", role=Role.OPERATOR, endpoint="document_raw")(pages.document_raw)


class DocumentPages:
    """The four views; each gets the signed-in operator first (the console's wrapper checked role and session)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.services = console.services

    def _api(self) -> DocumentsApi:
        if self.services.admin.documents is None:  # pragma: no cover - a build without the timeline service
            raise NotFoundError("document lists are not available in this build")
        return self.services.admin.documents

    def documents(self, user: ConsoleUser) -> Response:
        try:
            query = document_query(request.args)
            page = self._api().list_documents(query, scope=user.principal.scope).to_dict()
        except RequestError as exc:  # a bad filter or a stale cursor: the form again, saying which
            return _list_page(self.console, user, None, error=exc.message, field=exc.detail.get("parameter"))
        return _list_page(self.console, user, with_times(page))

    def documents_csv(self, user: ConsoleUser) -> Response:
        try:
            query = document_query(request.args)
            export = self.services.documents.export(query, scope=user.principal.scope)
        except RequestError as exc:
            return _list_page(self.console, user, None, error=exc.message, field=exc.detail.get("parameter"))
        filters = {k: request.args.getlist(k) for k in _KEEP if request.args.get(k)}
        if not export.complete:
            self.services.operators.audit(user, "documents.export", outcome="too_many", filters=filters)
            message = _("The filter selects more than {rows} documents (or more than {read} had to be read): "
                        "narrow the period or add a filter to export.", rows=export.limits["rows"],
                        read=export.limits["read"])  # fmt: skip
            return _list_page(self.console, user, None, error=message)
        names, lang = _names(self.console, user), _lang()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([_(h) for h in export_headers()])
        for item in export.items:
            writer.writerow(export_row(with_times(item.to_dict()), names, lang))
        self.services.operators.audit(user, "documents.export", filters=filters, rows=len(export.items))
        stamp = local(datetime.now(UTC)).strftime("%Y%m%d-%H%M")
        response = Response("\ufeff" + out.getvalue(), mimetype="text/csv")
        response.headers["Content-Type"] = "text/csv; charset=utf-8"
        response.headers["Content-Disposition"] = f'attachment; filename="van-ban-{stamp}.csv"'
        return response

    def document(self, user: ConsoleUser, doc_id: str) -> Response:
        scope = user.principal.scope
        story = with_times(self._api().document_story(doc_id, scope=scope).to_dict())
        signer = self.services.documents.signer(doc_id, scope=scope)
        heading = story["document"].get("code") or story["document"].get("document_id") or doc_id
        return self.console.render(
            "document.html",
            title="Document",
            heading=heading,
            story=story,
            view=story_view(story, _lang()),
            signer=signer,
            raw_allowed=user.principal.allows(Role.OPERATOR),
            back=_back_link(),
        )

    def document_raw(self, user: ConsoleUser, doc_id: str) -> Response:
        try:
            package = self.services.documents.raw(doc_id, scope=user.principal.scope)
        except NotFoundError:  # an id outside the scope (or none at all): what URL guessing looks like
            self.services.operators.audit(user, "documents.raw", outcome="NOT_FOUND", doc_id=doc_id[:80])
            raise
        self.services.operators.audit(
            user, "documents.raw", doc_id=package.doc_id, sha256=package.sha256, size=len(package.body)
        )
        response = Response(package.body, mimetype=package.media_type)
        response.headers["Content-Disposition"] = f'attachment; filename="{package.filename}"'
        response.headers["Content-Length"] = str(len(package.body))
        return response


def _list_page(
    console: Console, user: ConsoleUser, page: Mapping[str, Any] | None, *, error: str = "", field: Any = None
) -> Response:
    args = request.args
    names = _names(console, user)
    lang = _lang()
    number = _page_number()
    items = list(page["items"]) if page else []
    kept = [(k, v) for k in _KEEP for v in args.getlist(k) if v]
    next_url = None
    if page and page.get("next_cursor"):
        next_url = "?" + urlencode([*kept, ("cursor", page["next_cursor"]), ("page", str(number + 1))])
    return console.render(
        "documents.html",
        code=400 if error else 200,
        title="Documents",
        form={k: args.get(k, "") for k in _KEEP},
        flags=set(args.getlist("flag")),
        error=error,
        field=field if isinstance(field, str) else None,
        page=page,
        items=items,
        names=names,
        states=[(s, state_label(s, lang)) for s in STATES],
        breach_rules=[(r.value, rule_label(r.value, lang)) for r in Rule],
        open_rules=[(f"{r.value}:open", rule_label(r.value, lang)) for r in OPEN_RULES],
        rule_names={r.value: rule_label(r.value, lang) for r in Rule},
        state_names={s: state_label(s, lang) for s in STATES},
        page_sizes=PAGE_SIZES,
        page_number=number,
        first_url="?" + urlencode(kept) if args.get("cursor") else None,
        next_url=next_url,
        csv_url=url_for("console.documents_csv") + ("?" + urlencode(kept) if kept else ""),
        fields=FIELDS,
    )


def _names(console: Console, user: ConsoleUser) -> dict[str, str]:
    """OrganId → name of the agencies the operator sees (the filter's suggestions, the list's sender names)."""
    visible = console.services.admin.tracking.visible(user.principal.scope)
    return {
        a.organ_id: a.name
        for a in console.services.registry.list_agencies()
        if visible is None or a.organ_id in visible
    }


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 10**6 else 1


def _back_link() -> str | None:
    """Back to the list the operator came from (only a console documents URL: no open redirect)."""
    back = request.args.get("back", "")
    return back if back.startswith("/console/documents?") or back == "/console/documents" else None


def _lang() -> str:
    lang: str = g.get("console_lang", i18n.DEFAULT)
    return lang


def _(msgid: str, **kw: Any) -> str:
    text = i18n.translate(msgid, _lang())
    return text.format(**kw) if kw else text


__all__ = ["OPEN_RULES", "DocumentPages", "install"]
