"""A document's story (:meth:`gateway.services.timeline.Timelines.document_story`, as its JSON dict) as lines a
person reads in a terminal: local times with their zone, one line per event, the judgement of each rule under
the recipient's timeline. Only layout: every value is the story's own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def story_lines(story: dict[str, Any]) -> Iterator[str]:
    d = story["document"]
    yield f"document:   {d['doc_id']} ({d['kind']})  {d['document_id']}"
    yield f"from:       {d['sender']}" + (f" — {d['sender_name']}" if d["sender_name"] else "")
    yield f"code:       {d['code'] or '-'}   subject: {d['subject'] or '-'}"
    if d["kind"] == "edoc":
        priority = f"{d['priority']} ({d['priority_vi']})" if d["priority"] is not None else "-"
        yield f"priority:   {priority}   promulgated: {d['promulgation_date'] or '-'}   due: {d['due_date'] or '-'}"
        if d["bussiness_doc_type"]:
            yield f"operation:  {d['bussiness_doc_type_vi']}"
    yield f"received:   {d['received_at_local']} (submitted by {d['submitted_by'] or 'the gateway'})"
    yield f"receipt:    sha256 {d['receipt']['sha256']}, {d['receipt']['size']} bytes"
    yield from _signature(d["signature"])
    sending = story["late_sending"]
    if sending is not None:
        verdict = "LATE" if sending["breached"] else "on time"
        yield f"sending:    {verdict} (deadline {sending['deadline_local']})"
    for link in story["related"]:
        what = link["status_code"] and f"{link['status_code']} {link['status_vi'] or ''}".strip()
        yield (
            f"related:    {link['relation']:<11} {link['doc_id']} {link['received_at_local']} "
            f"{link['sender']} {what or link['document_id']}"
        )
    for r in story["recipients"]:
        yield ""
        name = f" — {r['name']}" if r["name"] else ""
        yield f"recipient:  {r['recipient']}{name}  [{r['channel'] or '-'}] {r['state']}  delivery {r['delivery_id']}"
        for event in r["events"]:
            yield f"  {event['at_local']}  {_event(event)}"
        if r["facts"] is not None:
            yield from _facts(r["facts"])
    yield ""
    yield f"as of {story['as_of_local']}"


def _signature(s: dict[str, Any]) -> Iterator[str]:
    yield f"signature:  {s['state']}" + (f" by {s['signer_subject']}" if s["signer_subject"] else "")
    if s["signer_fingerprint"]:
        yield f"            fingerprint {s['signer_fingerprint']}"
    if s["issuer"]:
        yield f"            issuer {s['issuer']}"
    if s["revocation"]:
        yield f"            revocation {s['revocation']}"


def _event(e: dict[str, Any]) -> str:
    kind = e["kind"]
    if kind == "intake":
        return f"intake (submitted by {e['submitted_by'] or 'the gateway'}, channel {e['channel'] or '-'})"
    if kind == "attempt":
        error = f" {e['error_code']}: {e['error_message']}" if e["error_code"] else ""
        return f"push attempt #{e['attempt']} {e['outcome']} in {e['duration_ms']} ms{error}"
    if kind == "fetch":
        return "fetched" + (f" by {e['system_id']}" if e.get("system_id") else "")
    if kind == "acknowledged":
        reason = f": {e['reason']}" if e.get("reason") else ""
        return f"acknowledged {e['outcome']}{reason}"
    if kind == "status":
        flags = [f for f in ("out_of_order", "emitted_by_gateway") if e[f]]
        text = f" — {e['description']}" if e["description"] and e["description"] != e["status_vi"] else ""
        return f"status {e['status_code']} {e['status_vi'] or ''}{text}" + (f" [{', '.join(flags)}]" if flags else "")
    if kind == "dead_letter":
        return f"dead letter ({e.get('error_code') or e.get('reason') or 'no reason recorded'})"
    return f"re-driven (was {e.get('previous_state')}, by {e.get('by') or '-'})"


def _facts(f: dict[str, Any]) -> Iterator[str]:
    yield (
        f"  facts: delivered={f['delivered']} taken={f['taken']} available {f['available_at_local'] or '-'}; "
        + " ".join(f"{k}={_hours(v)}" for k, v in f["latency_seconds"].items())
    )
    for name, j in f["rules"].items():
        state = "OPEN" if j["open"] else ("breached" if j["breached"] else "ok")
        done = f", done {j['done_at_local']}" if j["done_at_local"] else ""
        yield f"  rule {name:<15} {state:<9} deadline {j['deadline_local']}{done}"


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 3600:.2f}h" if seconds >= 3600 else f"{seconds:.0f}s"


__all__ = ["story_lines"]
