"""Metrics and logs (issue 9 item 7) on the real gateway: gunicorn with 2 workers (multiprocess counters), real SOAP
traffic, ``/metrics`` scraped over HTTP and parsed with prometheus_client's own parser; the delivery worker as its
own process (``edoc-gateway worker --once``) pushing to a real SOAP receiver; and the JSON log lines themselves."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gatewayproc import gateway_env, served
from prometheus_client.parser import text_string_to_metric_families
from soap_receiver import running_receiver, worker_env
from test_e2e import AGENCIES, B, C, Gateway, _fault_code, _package
from zeep.exceptions import Fault

from gateway.config import load_settings
from gateway.db import AgencyRecord, Store, create_engine
from gateway.db.migrations import upgrade
from gateway.services.gauges import TrackingGauges
from gateway.services.registry import Registry
from gateway.services.tracking import Tracking
from gateway.tracking.settings import rules_from

METRICS_TOKEN = secrets.token_urlsafe(24)
PEER = "000.00.00.H14"  # reached by push over SOAP (a real receiver)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def gateway(tmp_path, database_url, pki) -> Iterator[Gateway]:
    """test_e2e's gateway, with a metrics token and a push agency."""
    env = gateway_env(tmp_path, database_url, pki, max_package_bytes=2 * 1024 * 1024, METRICS_TOKEN=METRICS_TOKEN)
    settings = load_settings(env=env)
    upgrade(settings)
    registry = Registry.from_settings(settings)
    (tmp_path / "agencies.csv").write_text(AGENCIES, encoding="utf-8")
    registry.import_file(tmp_path / "agencies.csv")
    creds = {name: registry.add_system(name, [organ]) for name, organ in (("SA", "000.00.01.H53"), ("SB", B))}
    gw = Gateway(f"http://{settings.bind}", settings, creds, tmp_path / "gunicorn.log")
    try:
        with served(settings, env, gw.log):
            yield gw
    finally:
        for client in gw.clients:
            client.close()


def scrape(gw: Gateway, token: str | None = METRICS_TOKEN) -> Samples:
    request = urllib.request.Request(gw.url + "/metrics")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_metrics_count_intake_requests_and_the_queue_exactly(gateway, pki):
    with pytest.raises(urllib.error.HTTPError) as denied:
        scrape(gateway, token=None)
    assert denied.value.code == 401  # metrics_token set: a Bearer token is required
    with pytest.raises(urllib.error.HTTPError):
        scrape(gateway, token="not-the-token")

    before = scrape(gateway)
    data, _ = _package(pki, number="701")
    sa, sb = gateway.client("SA"), gateway.client("SB")
    receipt = sa.send_edoc(data)
    assert sa.send_edoc(data).duplicate is True
    tampered = _package(pki, number="702")[0].replace("thử nghiệm".encode(), b"thu nghiem", 1)
    with pytest.raises(Fault) as refused:
        sa.send_edoc(tampered)
    assert _fault_code(refused.value) == "EDXML.SIGNATURE"

    queued = scrape(gateway)
    assert value(queued, "edoc_deliveries", state="queued", age="lt_5m") == 2  # B and C
    assert value(queued, "edoc_deliveries", state="fetched", age="lt_5m") == 0
    assert value(queued, "edoc_deliveries", state="queued", age="ge_1d") == 0
    assert value(queued, "edoc_dead_letters") == 0
    assert value(queued, "edoc_scrape_source_ok", source="queue") == 1
    # tracking gauges: served (the tracking source ran), and nothing is late seconds after intake
    assert value(queued, "edoc_scrape_source_ok", source="tracking") == 1
    assert ("edoc_tracking_open", frozenset({("rule", "not_taken")})) in queued
    assert value(queued, "edoc_tracking_open", rule="not_taken") == 0
    assert value(queued, "edoc_tracking_open", rule="late_receipt") == 0
    # the same source judged an hour later: both mailbox deliveries are then "not taken" and "late receipt"
    store = Store(create_engine(gateway.settings.effective_database_url))
    try:
        later = TrackingGauges(
            Tracking(store, rules_from(gateway.settings)), clock=lambda: datetime.now(UTC) + timedelta(hours=1)
        )()
        counts = {labels[0]: n for labels, n in later[0].values.items()}
        assert counts["not_taken"] == 2 and counts["late_receipt"] == 2 and counts["overdue"] == 0
    finally:
        store.engine.dispose()

    [item] = sb.pending(B)
    assert sb.get_edoc(item.deliveryId) == data
    fetched = scrape(gateway)
    assert value(fetched, "edoc_deliveries", state="queued", age="lt_5m") == 1  # C
    assert value(fetched, "edoc_deliveries", state="fetched", age="lt_5m") == 1  # B, not yet acknowledged
    assert sb.acknowledge(item.deliveryId, "done") is True
    after = scrape(gateway)
    assert value(after, "edoc_deliveries", state="fetched", age="lt_5m") == 0

    intake = "edoc_intake_total"
    assert moved(before, after, intake, kind="edoc", outcome="accepted", code="", edge="soap") == 1
    assert moved(before, after, intake, kind="edoc", outcome="duplicate", code="", edge="soap") == 1
    assert moved(before, after, intake, kind="edoc", outcome="refused", code="EDXML.SIGNATURE", edge="soap") == 1
    assert (
        sum(v for (n, _), v in after.items() if n == intake) - sum(v for (n, _), v in before.items() if n == intake)
        == 3
    )  # nothing else counted, nothing counted twice

    hist = "edoc_request_seconds_count"
    assert moved(before, after, hist, edge="soap", operation="SendEdoc", status="200") == 2
    assert moved(before, after, hist, edge="soap", operation="SendEdoc", status="500") == 1
    assert moved(before, after, hist, edge="soap", operation="GetPendingList", status="200") == 1
    assert moved(before, after, hist, edge="soap", operation="GetEdoc", status="200") == 1
    assert moved(before, after, hist, edge="soap", operation="Acknowledge", status="200") == 1
    # the scrapes themselves (3 between before and after), by route name, never by path
    assert moved(before, after, hist, edge="metrics", operation="scrape", status="200") == 3
    assert receipt.docId not in " ".join(str(k) for k in after)  # no document in a label


def test_unknown_paths_are_one_label_not_one_per_path(gateway):
    before = scrape(gateway)
    for path in ("/no/such/path", "/evil%0Aforged", "/vdxp/registerAgency", "/vdxp/x%0Ay"):
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(gateway.url + path, timeout=10)
    after = scrape(gateway)
    # /vdxp/x<LF>y matches no route at all (an operation segment never holds a line break): "other" as well
    assert moved(before, after, "edoc_request_seconds_count", edge="other", operation="other", status="404") == 3
    assert moved(before, after, "edoc_request_seconds_count", edge="vdxp", operation="other", status="405") == 1
    assert not [k for k in after if any("evil" in v or "registerAgency" in v for _, v in k[1])]


def _log_events(log: Path) -> list[dict]:
    lines = [line for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON log line: {line[:300]}")
    return events


def test_every_log_line_is_json_with_the_request_context_and_never_a_body_or_secret(gateway, pki):
    data, pkg = _package(pki, number="711")
    sa, sb = gateway.client("SA"), gateway.client("SB")
    receipt = sa.send_edoc(data)
    [item] = sb.pending(B)
    sb.get_edoc(item.deliveryId)
    sb.acknowledge(item.deliveryId, "done")
    with pytest.raises(Fault):
        gateway.client("SA", "wrong-secret").send_edoc(data)
    scrape(gateway)

    events = _log_events(gateway.log)
    assert {"event", "level", "timestamp", "logger"} <= set(events[0])
    assert any(e["logger"].startswith("gunicorn") for e in events)  # gunicorn's own lines are JSON too
    [send] = [e for e in events if e.get("operation") == "SendEdoc" and e.get("system") == "SA"]
    assert (send["edge"], send["doc_id"], send["document_id"]) == ("soap", receipt.docId, pkg.document_id)
    assert "POST /soap 200" in send["event"]
    [fetch] = [e for e in events if e.get("operation") == "GetEdoc"]
    assert (fetch["system"], fetch["delivery_id"], fetch["doc_id"]) == ("SB", item.deliveryId, receipt.docId)
    assert fetch["document_id"] == pkg.document_id
    [denied] = [e for e in events if e.get("operation") == "SendEdoc" and "AUTH.DENIED" in e["event"]]
    assert "system" not in denied and "doc_id" not in denied  # not authenticated: nothing claimed as known
    # nothing of one request leaks into the next one's lines
    assert all(e.get("doc_id") in (None, receipt.docId) for e in events)
    assert [e for e in events if e.get("edge") == "metrics"] == []  # scrapes log at DEBUG only

    text = gateway.log.read_text(encoding="utf-8")
    body = base64.b64encode(data).decode()
    assert body[:40] not in text and body[-80:-20] not in text  # never the package, in any line
    assert "edXML:Subject" not in text and "thử nghiệm" not in text
    for secret in (*gateway.secrets.values(), gateway.settings.secret_key, METRICS_TOKEN):
        assert secret not in text


def test_the_worker_process_counts_its_attempts_on_the_gateways_metrics(gateway, pki, tmp_path, database_url):
    with running_receiver(tmp_path) as receiver:
        store = Store(create_engine(database_url))
        try:
            store.registry.upsert_agencies(
                [AgencyRecord(PEER, "Sở Nội vụ", channel="soap", endpoint=receiver.url)], now=datetime.now(UTC)
            )
        finally:
            store.engine.dispose()
        data, pkg = _package(pki, number="721", to=(PEER, C))
        before = scrape(gateway)
        receipt = gateway.client("SA").send_edoc(data)
        assert value(scrape(gateway), "edoc_outbox_due") == 1  # the push to PEER, due at once

        env = worker_env(database_url, gateway.settings.data_dir, log_level="INFO")
        exe = str(Path(sys.executable).with_name("edoc-gateway"))
        done = subprocess.run([exe, "worker", "--once"], env=env, capture_output=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert b"1 delivered" in done.stdout

    after = scrape(gateway)
    assert moved(before, after, "edoc_delivery_attempts_total", channel="soap", outcome="delivered", code="") == 1
    assert moved(before, after, "edoc_delivery_attempt_seconds_count", channel="soap", outcome="delivered") == 1
    assert value(after, "edoc_outbox_due") == 0
    assert value(after, "edoc_deliveries", state="queued", age="lt_5m") == 1  # C's mailbox
    worker_events = [json.loads(line) for line in done.stderr.decode().splitlines() if line.strip()]
    [attempt] = [e for e in worker_events if e.get("operation") == "deliver"]
    assert (attempt["doc_id"], attempt["document_id"], attempt["channel"]) == (receipt.docId, pkg.document_id, "soap")
    assert attempt["delivery_id"] and attempt["recipient"] == PEER
    assert not [e for e in worker_events if e is not attempt and e.get("delivery_id")]  # scoped to its delivery


def test_single_process_scrape_and_a_failing_gauge_source_costs_only_its_own_gauges(caplog):
    """Outside gunicorn (tests, ``flask run``) the counters of this process are exposed; the gauge-source hook
    isolates a source that raises."""
    from gateway import metrics

    def broken() -> list[metrics.ScrapeGauge]:
        raise RuntimeError("database gone")

    ok = metrics.ScrapeGauge("edoc_test_late", "late documents", ("organ",), {("000.00.00.G22",): 3.0})
    before = metrics.INTAKE.labels(kind="status", outcome="accepted", code="", edge="test")._value.get()
    metrics.count_intake(kind="status", outcome="accepted", code=None, edge="test")
    text = metrics.exposition({"tracking": lambda: [ok], "broken": broken}).decode()
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    labels = {"kind": "status", "outcome": "accepted", "code": "", "edge": "test"}
    assert value(samples, "edoc_intake_total", **labels) == before + 1
    assert value(samples, "edoc_test_late", organ="000.00.00.G22") == 3
    assert value(samples, "edoc_scrape_source_ok", source="tracking") == 1
    assert value(samples, "edoc_scrape_source_ok", source="broken") == 0
    assert "gauge source broken failed" in caplog.text
