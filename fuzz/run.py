"""Long local fuzzing of one surface with atheris (coverage-guided libFuzzer): ``make fuzz SURFACE=soap RUNS=1000000``
or ``python -m fuzz.run soap --runs 1000000``.

The corpus directory (``fuzz/corpus/<surface>/``, not committed) starts from the generated valid inputs and the
committed regression seeds; libFuzzer grows it. A crashing input is written to ``fuzz/crashes/<surface>/`` and the
run goes on (``-fork``-free: the target raises, we record and return), so one run reports every crash class it
met. The summary line prints executions, seconds and crashes by class; copy a new crash into ``fuzz/seeds/`` once
it is fixed.

atheris is an optional dependency (the ``fuzz`` extra); CI runs the same targets with hypothesis instead
(``tests/test_fuzz.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from fuzz import SURFACES

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("surface", choices=SURFACES)
    parser.add_argument("--runs", type=int, default=100_000, help="executions (libFuzzer -runs)")
    parser.add_argument("--max-len", type=int, default=64 * 1024, help="longest input libFuzzer makes")
    args = parser.parse_args(argv)

    import atheris  # the fuzz extra; imported here so that --help works without it

    with atheris.instrument_imports(include=["gateway"]):
        from fuzz.gateway_under_test import GatewayUnderTest
        from fuzz.seeds import Builder, committed
        from fuzz.targets import Crash, Targets

    work = Path(tempfile.mkdtemp(prefix=f"fuzz-{args.surface}-"))
    gut = GatewayUnderTest(work)
    builder = Builder(gut)
    target = Targets(gut, builder).by_name[args.surface]
    corpus = HERE / "corpus" / args.surface
    crashes = HERE / "crashes" / args.surface
    corpus.mkdir(parents=True, exist_ok=True)
    for data in builder.valid(args.surface):
        (corpus / hashlib.sha256(data).hexdigest()).write_bytes(data)
    for name, data in committed(args.surface):
        (corpus / f"seed-{name}").write_bytes(data)

    found: Counter[str] = Counter()
    executions = 0
    started = time.monotonic()

    def one(data: bytes) -> None:
        nonlocal executions
        executions += 1
        try:
            target(data)
        except Crash as crash:
            kind = str(crash).split(": ", 1)[0][:120]  # exception class and innermost gateway frame
            if not found[kind]:
                crashes.mkdir(parents=True, exist_ok=True)
                (crashes / hashlib.sha256(data).hexdigest()).write_bytes(data)
                print(f"\nCRASH {kind}: {crash}", file=sys.stderr)
            found[kind] += 1
        if executions == args.runs:  # libFuzzer exits from C right after the last unit: no atexit
            report()

    def report() -> None:
        elapsed = time.monotonic() - started
        total = sum(found.values())
        print(
            f"fuzz {args.surface}: {executions} executions in {elapsed:.0f} s "
            f"({executions / max(elapsed, 1e-9):.0f}/s), {total} crashes in {len(found)} classes"
        )
        for kind, count in found.most_common():
            print(f"  {count:8d}  {kind}")

    atheris.Setup(
        [sys.argv[0], f"-runs={args.runs}", f"-max_len={args.max_len}", "-print_final_stats=1", str(corpus)],
        one,
    )
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
