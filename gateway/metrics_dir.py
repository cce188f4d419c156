"""Where prometheus_client keeps the counters of a process that shares them: ``<data_dir>/metrics/{web,worker}``.

Why: gunicorn runs several worker processes, and the delivery worker (``edoc-gateway worker``) is another one. A
counter in one process's memory would show on ``/metrics`` only when the scrape happens to reach that process.
prometheus_client's multiprocess mode keeps each process's values in a memory-mapped file in the directory named
by ``PROMETHEUS_MULTIPROC_DIR``, and the scrape merges the files of every process (:mod:`gateway.metrics`).

The service sets this up itself; there is no operator step:

* gunicorn's master (deploy/gunicorn.conf.py ``on_starting``) calls :func:`prepare_web`: the ``web`` directory is
  emptied (a restart starts the counters from zero, which Prometheus reads as a counter reset) and named in the
  environment its workers inherit; ``child_exit`` calls :func:`process_dead` for each worker that exits;
* ``edoc-gateway worker`` calls :func:`prepare_worker` before anything imports prometheus_client. Workers use their
  own ``worker`` directory, so that a gunicorn restart never deletes the file a running worker still writes, nor
  a worker start the files of gunicorn's workers. It removes only files of processes that no longer run (and of
  its own pid, reused after a reboot).

prometheus_client chooses its mode when it is first imported (the variable must be set before), so this module
never imports it at module level.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
SUBDIR: Final = "metrics"
ROLES: Final = ("web", "worker")
_PID = re.compile(r"_(\d+)\.db$")


def metrics_root(data_dir: Path) -> Path:
    return data_dir / SUBDIR


def prepare_web(data_dir: Path) -> Path:
    """gunicorn's master, before forking: an empty ``web`` directory, named in the environment."""
    path = _directory(data_dir, "web")
    for file in path.glob("*.db"):
        file.unlink(missing_ok=True)
    return path


def prepare_worker(data_dir: Path) -> Path:
    """A delivery worker process, before prometheus_client is imported: the shared ``worker`` directory without
    the files of processes that are gone."""
    path = _directory(data_dir, "worker")
    me = os.getpid()
    for file in path.glob("*.db"):
        match = _PID.search(file.name)
        if match is not None and (int(match.group(1)) == me or not _alive(int(match.group(1)))):
            file.unlink(missing_ok=True)
    return path


def process_dead(pid: int) -> None:
    """gunicorn's ``child_exit``: prometheus_client's bookkeeping for a process that is gone (its counters stay
    in the total; only "live" gauges, of which the gateway has none today, are removed)."""
    path = os.environ.get(ENV)
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, path)


def scrape_directories() -> list[Path]:
    """The directories a scrape merges: every role's, beside the one this process writes (empty: single-process
    mode — tests, ``flask run`` — where the counters live in this process only)."""
    own = os.environ.get(ENV)
    if not own:
        return []
    root = Path(own).parent
    return [d for d in (root / role for role in ROLES) if d.is_dir()]


def _directory(data_dir: Path, role: str) -> Path:
    path = metrics_root(data_dir) / role
    path.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(path)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to judge, keep the file
    return True


__all__ = ["ENV", "metrics_root", "prepare_web", "prepare_worker", "process_dead", "scrape_directories"]
