"""Queries evaluated in worker processes that are killed at the deadline: a time limit that holds.

Oxigraph cannot be interrupted once a query runs, and a thread cannot be killed, so every query of
``Store.sparql``, ``neurosym query`` and ``neurosym serve`` runs in a small worker process
(``kg/query/worker.py``). At the deadline the worker gets SIGKILL, its CPU is free at once, and a
fresh one (about 50 ms to start) takes its place; a worker that crashes is replaced the same way.

Workers read a **snapshot** of the RDF view, never the view itself: RocksDB lets one process write a
store, and a reader beside a writer is undefined behaviour. A snapshot of an on-disk view is a
RocksDB checkpoint (hard links, milliseconds); an in-memory view is copied into a temporary on-disk
store. A new snapshot is taken whenever the view has synced new graph versions from SQL; workers
switch to it at their next query, and old snapshots are deleted once no worker holds them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

import pyoxigraph as ox

from kg.errors import KGError
from kg.query.guard import QueryCrashError, QueryTimeoutError
from kg.query.guard import timeout_message as _timeout_message

#: The directory that holds the ``kg`` package: the workers' working directory (so ``-m`` finds it).
PACKAGE_PARENT = Path(__file__).resolve().parents[2]


class _Worker:
    """One worker process and the two pipe ends the parent holds."""

    def __init__(self, network: bool):
        to_child, from_parent = os.pipe()[::-1]
        from_child, to_parent = os.pipe()
        self.log = tempfile.TemporaryFile()  # the worker's stderr, read back if it dies
        command = [sys.executable, "-m", "kg.query.worker", str(from_parent), str(to_parent)] + (["--network"] if network else [])
        try:
            self.process = subprocess.Popen(command, cwd=PACKAGE_PARENT, pass_fds=(from_parent, to_parent),
                                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log)
        finally:
            os.close(from_parent)
            os.close(to_parent)
        self.requests = Connection(to_child, readable=False)
        self.answers = Connection(from_child, writable=False)
        self.snapshot: str | None = None

    def open(self, snapshot: str) -> None:
        if snapshot != self.snapshot:
            self.requests.send(("open", snapshot))
            self.snapshot = snapshot

    def kill(self) -> str:
        """Stop the process now (SIGKILL) and reap it; returns how it ended, for messages."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        code = self.process.wait()
        for conn in (self.requests, self.answers):
            conn.close()
        self.log.seek(0)
        last = [line for line in self.log.read().decode(errors="replace").splitlines() if line.strip()][-1:]
        self.log.close()
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        return how + (f": {last[0].strip()}" if last else "")


class WorkerPool:
    """``size`` worker processes; ``run`` sends a query to an idle one and waits until the deadline."""

    def __init__(self, size: int, network: bool = False):
        self.size, self.network = size, network
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._ready = threading.Condition()
        self._closed = False
        for _ in range(size):
            self._idle.append(_Worker(network))

    def run(self, snapshot: str, request: tuple, deadline: float | None, timeout_s: float | None) -> tuple:
        """Send ``("query", snapshot, *request)`` to a worker; its answer, or raise at the deadline."""
        worker = self._acquire(deadline)
        if worker is None:
            raise QueryTimeoutError(_timeout_message(timeout_s))
        try:
            worker.snapshot = snapshot
            worker.requests.send(("query", snapshot, *request))
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            answer = worker.answers.recv() if worker.answers.poll(remaining) else None
        except (EOFError, OSError):
            how = self._replace(worker)
            raise QueryCrashError(f"the query engine died on this query ({how}); nothing was changed, "
                                  "and the next query gets a fresh engine") from None
        except BaseException:  # e.g. KeyboardInterrupt: never leave a worker computing for nobody
            self._replace(worker)
            raise
        if answer is None:  # the deadline passed: stop the work itself, not only the wait
            self._replace(worker)
            raise QueryTimeoutError(_timeout_message(timeout_s))
        self._release(worker)
        return answer

    def _acquire(self, deadline: float | None) -> _Worker | None:
        with self._ready:
            while not self._idle:
                if self._closed:
                    raise KGError("the query workers are shut down")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._ready.wait(remaining)
            worker = self._idle.pop(0)  # the longest idle first: a fresh replacement may still be starting
            self._busy.add(worker)
            return worker

    def _release(self, worker: _Worker) -> None:
        with self._ready:
            self._busy.discard(worker)
            if self._closed:
                worker.kill()
                return
            self._idle.append(worker)
            self._ready.notify()

    def _replace(self, worker: _Worker) -> str:
        how = worker.kill()
        with self._ready:
            self._busy.discard(worker)
            if not self._closed:
                fresh = _Worker(self.network)
                if worker.snapshot is not None:
                    fresh.open(worker.snapshot)  # starts opening it now, before any query waits for it
                self._idle.append(fresh)
                self._ready.notify()
        return how

    def open_idle(self, snapshot: str) -> None:
        """Have idle workers open ``snapshot`` now, so the next query finds it open."""
        with self._ready:
            for worker in self._idle:
                worker.open(snapshot)

    def snapshots_in_use(self) -> set[str]:
        with self._ready:
            return {w.snapshot for w in self._idle + list(self._busy) if w.snapshot is not None}

    def pids(self) -> list[int]:
        with self._ready:
            return [w.process.pid for w in self._idle + list(self._busy)]

    def close(self) -> None:
        with self._ready:
            self._closed = True
            idle, self._idle = self._idle, []
            self._ready.notify_all()
        for worker in idle:  # busy workers are killed by the thread that waits on them
            worker.kill()


class ViewSnapshots:
    """Read-only snapshots of an ``RdfView`` for the workers, one per state of the view."""

    def __init__(self, view):
        self.view = weakref.proxy(view)  # the view's owner decides how long it lives, not the workers
        if view.path is not None:
            base = view.path / "query-snapshots"
            base.mkdir(parents=True, exist_ok=True)
            _remove_orphans(base)
            self.root = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=base))
        else:
            self.root = Path(tempfile.mkdtemp(prefix="neurosym-query-"))
        self._lock = threading.Lock()
        self._state: dict | None = None
        self._current: str | None = None
        self._leases: dict[str, int] = {}
        self._count = 0
        self._prepared_at = float("-inf")

    def lease(self, prepare: Callable[[], object] | None = None, since: float | None = None) -> str:
        """The snapshot of the view as it is now, taken if the view changed since the last one; held
        until ``release``. ``prepare`` (e.g. syncing the view with SQL) runs first, under the same lock,
        so that no snapshot catches a view halfway through a sync; it is skipped when another call's
        ``prepare`` started at or after ``since`` (a burst of queries syncs once, and each still sees
        every write made before it arrived)."""
        with self._lock:
            if prepare is not None and (since is None or self._prepared_at < since):
                self._prepared_at = time.monotonic()
                prepare()
            self.view.store  # noqa: B018 - opening the view reads the state it reflects
            state = self.view.state.fields  # the graph versions the view reflects
            if self._current is None or state != self._state:
                self._count += 1
                target = self.root / str(self._count)
                if self.view.path is not None:
                    self.view.store.backup(str(target))
                else:
                    _copy_memory_store(self.view.store, target)
                self._state = self.view.state.snapshot()
                self._current = str(target)
            self._leases[self._current] = self._leases.get(self._current, 0) + 1
            return self._current

    def release(self, snapshot: str, in_use: set[str]) -> None:
        """Give a leased snapshot back; delete those that are neither current, leased nor ``in_use``."""
        with self._lock:
            self._leases[snapshot] -= 1
            if not self._leases[snapshot]:
                del self._leases[snapshot]
            keep = in_use | set(self._leases) | {self._current}
            for path in self.root.iterdir():
                if str(path) not in keep:
                    shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _copy_memory_store(store: ox.Store, target: Path) -> None:
    with tempfile.NamedTemporaryFile(suffix=".nq") as dump:
        store.dump(dump.name, format=ox.RdfFormat.N_QUADS)
        copy = ox.Store(str(target))
        copy.bulk_load(path=dump.name, format=ox.RdfFormat.N_QUADS)
        copy.flush()
        del copy  # releases the RocksDB lock, so that workers can open the copy


def _remove_orphans(base: Path) -> None:
    """Delete snapshot folders left by processes that died (only one process at a time holds a view)."""
    for path in base.iterdir():
        pid = path.name.split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class QueryRunner:
    """Snapshots of one view plus a pool of workers that evaluate queries on them."""

    def __init__(self, view, workers: int = 1, network: bool = False):
        self.snapshots = ViewSnapshots(view)
        self.pool = WorkerPool(workers, network)
        self._finalizer = weakref.finalize(self, _shut_down, self.pool, self.snapshots)

    def run(self, text: str, options: dict, max_rows: int | None, timeout_s: float | None,
            prepare: Callable[[], object] | None = None) -> tuple:
        """Evaluate ``text`` on the current snapshot (after ``prepare``, see ``ViewSnapshots.lease``):
        the worker's answer tuple (see ``kg/query/worker.py``)."""
        arrived = time.monotonic()
        deadline = None if timeout_s is None else arrived + timeout_s
        snapshot = self.snapshots.lease(prepare, since=arrived)
        try:
            return self.pool.run(snapshot, (text, options, max_rows), deadline, timeout_s)
        finally:
            self.pool.open_idle(snapshot)
            self.snapshots.release(snapshot, self.pool.snapshots_in_use())

    def warm_up(self) -> None:
        """Have every idle worker open the current snapshot now (the first queries then wait for none)."""
        snapshot = self.snapshots.lease()
        self.pool.open_idle(snapshot)
        self.snapshots.release(snapshot, self.pool.snapshots_in_use())

    def close(self) -> None:
        self._finalizer()


def _shut_down(pool: WorkerPool, snapshots: ViewSnapshots) -> None:
    pool.close()
    snapshots.close()


_runners: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_runners_lock = threading.Lock()


def runner_for(view, network: bool = False) -> QueryRunner:
    """The one-worker runner of a view (``Store.sparql``, ``neurosym query``), made on first use."""
    with _runners_lock:
        runners = _runners.setdefault(view, {})
        if network not in runners:
            runners[network] = QueryRunner(view, workers=1, network=network)
        return runners[network]
