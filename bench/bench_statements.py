#!/usr/bin/env python3
"""Benchmark: the statements one intake costs the database, per case, and in-process intakes/s.

``--statements`` prints, for each case of ``bench/intake_cases.py`` (an edoc to 1 recipient, to 5 recipients of
mixed channels, a status, a duplicate retry, a refusal), the statements and transaction commands the database
received (:mod:`gateway.db.statement_log`), on SQLite and — with ``--database-url`` — PostgreSQL.

``--rate`` measures ``GatewayService.submit`` of signed 10 KB packages (each a new document, one recipient) in
this process, SQLite WAL synchronous=FULL (or the PostgreSQL server given). ``--compare OLD_TREE`` runs both
modes on this checkout and on another one (e.g. ``git worktree add /tmp/main main``), interleaved, best of three,
each in a subprocess with that tree first on ``PYTHONPATH``: the ratio new ÷ old is what to read on a shared
machine.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_statements.py --statements [--database-url postgresql+psycopg://…]
    PYTHONPATH=$PWD .venv/bin/python bench/bench_statements.py --compare /tmp/main [--database-url …]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _statement_log() -> type:
    """The counter of THIS checkout, loaded by path: it also counts an older tree's code (--compare)."""
    spec = importlib.util.spec_from_file_location("_statement_log", ROOT / "gateway" / "db" / "statement_log.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.StatementLog  # type: ignore[no-any-return]


def _database(kind: str, tmp: Path, admin_url: str | None) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'gateway.db'}"
    import psycopg

    assert admin_url is not None
    name = f"bench_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def measure(kind: str, admin_url: str | None, rate_n: int) -> dict[str, object]:
    """Statements per case and in-process intakes/s on a fresh database of ``kind`` (this process's gateway)."""
    sys.path.insert(0, str(HERE))
    from intake_cases import Rig

    from gateway.demo.pki import create_demo_pki

    log_class = _statement_log()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        pki = create_demo_pki(tmp / "pki")
        rig = Rig.create(_database(kind, tmp, admin_url), tmp, pki)
        try:
            statements: dict[str, list[str]] = {}
            for case, _system, intake in rig.cases():
                with log_class(rig.svc.store.engine) as log:
                    intake()
                statements[case] = list(log.entries)
            rate = None
            if rate_n:
                packages = [rig.edoc() for _ in range(rate_n)]
                t0 = time.perf_counter()
                for data in packages:
                    rig.svc.submit("sys-a", data)
                rate = rate_n / (time.perf_counter() - t0)
        finally:
            rig.close()
    return {"statements": statements, "rate": rate}


def _run_tree(tree: Path, kind: str, admin_url: str | None, rate_n: int) -> dict[str, object]:
    args = [sys.executable, __file__, "--json", "--kind", kind, "--rate-n", str(rate_n)]
    if admin_url:
        args += ["--database-url", admin_url]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _print_statements(label: str, statements: dict[str, list[str]]) -> None:
    print(f"\n{label}")
    for case, entries in statements.items():
        print(f"  {case:<20} {len(entries):>3}  {' · '.join(entries)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", help="PostgreSQL server URL the bench may create databases in")
    ap.add_argument("--statements", action="store_true", help="print the statements per intake per case")
    ap.add_argument("--rate", action="store_true", help="in-process intakes/s of signed 10 KB packages")
    ap.add_argument("--compare", type=Path, metavar="OLD_TREE", help="also run an older checkout; print both")
    ap.add_argument("--rate-n", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kind", choices=["sqlite", "postgresql"], help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    kinds = ["sqlite"] + (["postgresql"] if args.database_url else [])
    if args.json:  # one measurement for --compare's parent process
        print(json.dumps(measure(args.kind, args.database_url, args.rate_n)))
        return 0
    if args.compare is None:
        for kind in kinds:
            result = measure(kind, args.database_url, args.rate_n if args.rate else 0)
            if args.statements or not args.rate:
                _print_statements(kind, result["statements"])  # type: ignore[arg-type]
            if args.rate:
                print(f"{kind}: {result['rate']:.1f} intakes/s in process (signed 10 KB, 1 recipient)")
        return 0
    trees = {"old": args.compare.resolve(), "new": ROOT}
    print(f"edoc-gateway statements per intake — old {trees['old']} vs new {trees['new']}, {os.cpu_count()} cores")
    for kind in kinds:
        rates: dict[str, list[float]] = {"old": [], "new": []}
        runs: dict[str, dict[str, object]] = {}
        for _round in range(args.rounds):  # interleaved: the machine is shared
            for name, tree in trees.items():
                runs[name] = _run_tree(tree, kind, args.database_url, args.rate_n)
                rates[name].append(float(runs[name]["rate"]))  # type: ignore[arg-type]
        old, new = runs["old"]["statements"], runs["new"]["statements"]
        print(f"\n{kind}: statements per intake (old → new)")
        for case in old:  # type: ignore[union-attr]
            print(f"  {case:<20} {len(old[case]):>3} → {len(new[case]):>3}")  # type: ignore[index]
        if args.statements:
            _print_statements(f"{kind} old", old)  # type: ignore[arg-type]
            _print_statements(f"{kind} new", new)  # type: ignore[arg-type]
        best_old, best_new = max(rates["old"]), max(rates["new"])
        spread = {n: f"{min(r):.0f}–{max(r):.0f}" for n, r in rates.items()}
        print(
            f"  intakes/s in process (best of {args.rounds}; range old {spread['old']}, new {spread['new']}): "
            f"old {best_old:.1f}, new {best_new:.1f}, ratio {best_new / best_old:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
