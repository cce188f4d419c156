#!/usr/bin/env python3
"""Benchmark: the Decision-28 report over a national year on PostgreSQL (issue 9).

Setup: a seeded history (:mod:`gateway.demo.history`) of one calendar year at national volume — a province
registry of 1 651 units (1 root, 30 departments, 180 districts, 1 440 communes) and ≥ 500 000 deliveries with
≥ 2 500 000 status rows — bulk-written into a fresh, migrated PostgreSQL database (a throwaway cluster like
tests/pgcluster.py, or ``--database-url`` of a server the bench may create a database in), then ``ANALYZE``.
Measured, each best of ``--repeat``: the full report (every agency, rolled up), one level-2 department's report
(its subtree only), and the baseline — ``SELECT COUNT(*)`` of documents, deliveries and status_history in the same
run (reading every row once, nothing judged). ``ratio`` = report time ÷ baseline time.

    .venv/bin/python bench/report_bench.py [--database-url postgresql+psycopg://…] [--documents 200000]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from gateway.db import Store, create_engine, upgrade
from gateway.demo.history_model import HistorySpec
from gateway.demo.history_store import stream_history
from gateway.services.tracking import Tracking, local_period
from gateway.tracking.calendar import WorkingCalendar
from gateway.tracking.rules import TimingRules

DEPARTMENT = "000.00.02.H53"


def _database(url: str | None) -> tuple[str, object | None]:
    if url is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from pgcluster import PgCluster

        cluster = PgCluster()
        return cluster.new_database(), cluster
    import psycopg

    name = f"bench_{secrets.token_hex(6)}"
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + f"/{name}", None


def _best(repeat: int, work) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return min(times), result


def _count(store: Store) -> int:
    with store.engine.connect() as conn:
        return sum(
            conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
            for table in ("documents", "deliveries", "status_history")
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", help="PostgreSQL URL of a server the bench may create a database in")
    ap.add_argument("--documents", type=int, default=200_000)
    ap.add_argument("--progress-updates", type=int, default=8, help="most 05 reports per delivery")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    url, cluster = _database(args.database_url)
    try:
        upgrade(url)
        store = Store(create_engine(url))
        since, until = local_period(datetime(2026, 1, 1).date(), datetime(2026, 12, 31).date())
        spec = HistorySpec(
            seed=28,
            since=since,
            until=until,
            documents=args.documents,
            departments=30,
            districts=6,
            communes=8,
            progress_updates=args.progress_updates,
        )
        started = time.perf_counter()
        counts = stream_history(store, spec)
        generated = time.perf_counter() - started
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        tracking = Tracking(store, TimingRules(calendar=WorkingCalendar()), clock=lambda: spec.looked_at)
        baseline, rows = _best(args.repeat, lambda: _count(store))
        full, report = _best(args.repeat, lambda: tracking.report(since, until))
        one, single = _best(args.repeat, lambda: tracking.report(since, until, agency=DEPARTMENT))
        print(
            f"edoc-gateway report bench — PostgreSQL, {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d}: "
            f"{counts.agencies} agencies, {counts.documents} documents, {counts.deliveries} deliveries, "
            f"{counts.statuses} status rows, {counts.refusals} refusals (generated and written in {generated:.0f} s)"
        )
        print(f"{'what':<38} | {'seconds':>8} | {'ratio':>6} | deliveries judged")
        print(f"{'COUNT(*) documents+deliveries+history':<38} | {baseline:8.3f} | {1:6.2f} | ({rows} rows)")
        name = f"one department ({DEPARTMENT})"
        print(f"{'full report':<38} | {full:8.3f} | {full / baseline:6.2f} | {report.grand_total.received}")  # type: ignore[attr-defined]
        print(f"{name:<38} | {one:8.3f} | {one / baseline:6.2f} | {single.grand_total.received}")  # type: ignore[attr-defined]
        store.engine.dispose()
    finally:
        if cluster is not None:
            cluster.stop()  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main())
