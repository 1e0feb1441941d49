"""The RDF view: an Oxigraph triple store derived from the SQL store, one named graph per source.

Each loaded KG graph and each run (graph IRI = the run's IRI) is a named graph; queries see their union
as the default graph. The view is rebuildable from SQL at any time. It keeps, beside the Oxigraph
files, the write counter of every graph it was built from (``state.json``); ``sync`` reloads exactly the
graphs whose SQL counter moved, so the view follows every write without rebuilding the rest.

On disk: ``<dir>/store`` (Oxigraph, RocksDB) and ``<dir>/state.json``; ``path=None`` keeps the view in
memory (for in-memory SQLite or a server URL without a local directory).
"""

from __future__ import annotations

import functools
import io
import json
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pyoxigraph as ox

from kg.errors import KGError

#: Produces the N-Quads lines of one named graph from SQL.
LinesFor = Callable[[str], Iterable[str]]


class RdfView:
    """The Oxigraph store behind SPARQL, plus the graph versions it reflects."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path is not None else None
        self._store: ox.Store | None = None
        self._state: dict = {"store_id": None, "graphs": {}}

    # -- opening -------------------------------------------------------------------------------
    @property
    def store(self) -> ox.Store:
        """The open Oxigraph store (opened on first use, so that merely opening SQL costs nothing)."""
        if self._store is None:
            if self.path is None:
                self._store = ox.Store()
            else:
                self.path.mkdir(parents=True, exist_ok=True)
                try:
                    self._store = ox.Store(str(self.path / "store"))
                except OSError as exc:
                    raise KGError(f"cannot open the RDF view at {self.path}: {exc}".splitlines()[0]) from None
                self._state = self._read_state()
        return self._store

    def _state_file(self) -> Path:
        assert self.path is not None
        return self.path / "state.json"

    def _read_state(self) -> dict:
        try:
            state = json.loads(self._state_file().read_text())
            if isinstance(state.get("graphs"), dict):
                return state
        except (OSError, ValueError):
            pass
        return {"store_id": None, "graphs": {}}

    def _write_state(self) -> None:
        if self.path is None:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file().with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state, indent=1, sort_keys=True))
        os.replace(tmp, self._state_file())  # atomic: a crash leaves the old or the new state

    def close(self) -> None:
        """Flush and release the Oxigraph store (its lock lets one process hold it at a time)."""
        if self._store is not None:
            if self.path is not None:
                self._store.flush()
            self._store = None

    # -- keeping in sync -----------------------------------------------------------------------
    def stale_graphs(self, store_id: str, versions: dict[str, int]) -> tuple[list[str], list[str]]:
        """(graphs to (re)load, graphs to drop) so that the view matches ``versions``."""
        self.store  # noqa: B018 - opening reads the state file
        if self._state.get("store_id") != store_id:
            return sorted(versions), []
        held = self._state["graphs"]
        reload = sorted(g for g, v in versions.items() if held.get(g) != v)
        drop = sorted(g for g in held if g not in versions)
        return reload, drop

    def sync(self, store_id: str, versions: dict[str, int], lines_for: LinesFor) -> list[str]:
        """Reload the graphs whose SQL version differs from the view's; returns their names."""
        reload, drop = self.stale_graphs(store_id, versions)
        if self._state.get("store_id") != store_id:  # a view of another store (or none yet): start over
            return self.rebuild(store_id, versions, lines_for)
        for graph in drop + reload:
            self.store.clear_graph(ox.NamedNode(graph))
            self._state["graphs"].pop(graph, None)
            self._write_state()
        if reload:
            self._bulk_load(lines for graph in reload for lines in lines_for(graph))
            self._state["graphs"].update({g: versions[g] for g in reload})
            self._write_state()
        return reload

    def rebuild(self, store_id: str, versions: dict[str, int], lines_for: LinesFor) -> list[str]:
        """Drop the whole view and load every graph again from SQL."""
        self.close()
        if self.path is not None and (self.path / "store").exists():
            shutil.rmtree(self.path / "store")
        self._state = {"store_id": store_id, "graphs": {}}
        self._write_state()
        graphs = sorted(versions)
        self._bulk_load(line for graph in graphs for line in lines_for(graph))
        self._state["graphs"] = {g: versions[g] for g in graphs}
        self._write_state()
        return graphs

    def _bulk_load(self, lines: Iterable[str]) -> None:
        if _pipe_loading_works():
            _load_through_pipe(self.store, _chunks(lines))
        else:  # Oxigraph reads the chunks through Python: slower, but works on any platform
            self.store.bulk_load(_ChunkReader(_chunks(lines)), format=ox.RdfFormat.N_QUADS)

    # -- querying ------------------------------------------------------------------------------
    def query(self, query: str, prefixes: dict[str, str], substitutions: dict | None = None):
        """Run a SPARQL query over the union of all graphs; returns pyoxigraph's result object."""
        return self.store.query(
            query,
            use_default_graph_as_union=True,
            prefixes=prefixes,
            substitutions=substitutions or None,
        )

    def __len__(self) -> int:
        return len(self.store)


class _ChunkReader(io.RawIOBase):
    """A readable binary stream over an iterator of byte chunks (what ``bulk_load`` accepts)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._pending = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            self._pending = next(self._chunks, b"")
            if not self._pending:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _load_through_pipe(store: ox.Store, chunks: Iterable[bytes]) -> None:
    """Bulk-load N-Quads ``chunks`` into ``store`` through an OS pipe. Oxigraph parses and indexes in
    Rust without the GIL while a Python thread writes the chunks into the pipe, so generation and
    loading overlap, and the text is never all in memory."""
    read_fd, write_fd = os.pipe()
    error: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb", buffering=1 << 20) as out:
                for chunk in chunks:
                    out.write(chunk)
        except BaseException as exc:  # re-raised in the caller's thread below
            error.append(exc)

    writer = threading.Thread(target=produce, name="rdf-view-writer", daemon=True)
    writer.start()
    try:
        store.bulk_load(path=f"/dev/fd/{read_fd}", format=ox.RdfFormat.N_QUADS)
    finally:
        os.close(read_fd)  # first, so that a writer blocked on a failed load gets EPIPE and ends
        writer.join()
    if error:
        raise error[0]


@functools.lru_cache(maxsize=1)
def _pipe_loading_works() -> bool:
    """Whether Oxigraph can bulk-load from ``/dev/fd/N`` of a pipe here. Linux yes; some sandboxes
    (gVisor, used by container runtimes) hand the reader an empty file, so the writer gets EPIPE."""
    if not sys.platform.startswith("linux"):
        return False
    probe = ox.Store()
    try:
        _load_through_pipe(probe, [b"<urn:probe:s> <urn:probe:p> <urn:probe:o> <urn:probe:g> .\n"])
    except (OSError, SyntaxError, ValueError):
        return False
    return len(probe) == 1


def _chunks(lines: Iterable[str], size: int = 1 << 16) -> Iterator[bytes]:
    buffer: list[str] = []
    for line in lines:
        buffer.append(line)
        if len(buffer) >= size:
            yield "".join(buffer).encode()
            buffer.clear()
    if buffer:
        yield "".join(buffer).encode()
