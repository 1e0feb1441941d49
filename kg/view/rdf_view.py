"""The RDF view: an Oxigraph triple store derived from the SQL store, one named graph per source.

Each loaded KG graph and each complete run (graph IRI = the run's IRI) is a named graph; queries see
their union as the default graph. The view keeps, beside the Oxigraph files, the SQL write counter of
every graph it holds (``state.json``); ``sync`` reloads exactly the graphs whose counter moved, so the
view follows every write without rebuilding the rest.

On disk, under the view directory::

    current -> view-<id>/        a symlink, switched atomically (rename) by a rebuild
    view-<id>/store/             Oxigraph (RocksDB)
    view-<id>/state.json         {store_id, vocabulary, graphs: {graph: counter}}, replaced atomically
    writer.lock                  held (flock) by the one process that may change the view

A rebuild loads everything into a new ``view-<id>`` and only then switches ``current``, so a crash at
any point leaves the old view or the new one, never a half-built one. ``sync`` forgets a graph in the
state before touching it and records it only once loaded, so a crash in the middle makes the next
sync reload it. A second process (``neurosym query`` beside ``neurosym serve``) opens the view read-only
and answers from it when it is current; when it is behind SQL it says so instead of guessing.
``path=None`` keeps the view in memory. ``vocabulary``, when given, is the version of what the lines
of a graph say (``kg.sql.derive.VOCABULARY``); a view built under another version (or none: views written
before the key existed) is rebuilt whole by the next sync, as a view of another store is.
"""

from __future__ import annotations

import fcntl
import io
import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import pyoxigraph as ox

from kg.errors import KGError
from kg.view.loaders import ChunkLoader, LineReader, ViewFeed
from kg.view.state import ViewState

__all__ = ["ChunkLoader", "LineReader", "RdfView", "ViewBusyError", "ViewFeed", "ViewState"]

#: Produces the N-Triples lines of one named graph from SQL (strings of one or more lines each).
LinesFor = Callable[[str], Iterable[str]]


class ViewBusyError(KGError):
    """The view is held by another process and cannot be changed from here."""


class RdfView:
    """The Oxigraph store behind SPARQL, plus the graph versions it reflects."""

    def __init__(self, path: str | Path | None, shared: bool = False, vocabulary: int | None = None):
        self.path = Path(path) if path is not None else None
        self.vocabulary = vocabulary
        #: Whether to open the view read-only when another process holds it (else that is an error).
        self.shared = shared
        self._store: ox.Store | None = None
        self._lock_file = None
        self.read_only = False
        #: N-Quads lines that the last ``rebuild`` skipped because the view refuses them.
        self.skipped: list[str] = []
        #: What the view reflects (``state.json``); read when the view opens.
        self.state = ViewState()

    # -- opening -------------------------------------------------------------------------------
    @property
    def store(self) -> ox.Store:
        """The open Oxigraph store (opened on first use, so that merely opening SQL costs nothing)."""
        if self._store is None:
            if self.path is None:
                self._store = ox.Store()
            else:
                self._open_on_disk()
        return self._store

    @property
    def store_path(self) -> Path | None:
        """The Oxigraph directory queries read now (``current/store`` resolved), or None in memory."""
        if self.path is None:
            return None
        return (self.path / "current").resolve() / "store"

    def _open_on_disk(self) -> None:
        assert self.path is not None
        self.path.mkdir(parents=True, exist_ok=True)
        if not self._take_lock():
            if not self.shared:
                raise ViewBusyError(
                    f"the RDF view at {self.path} is locked by another process (a 'neurosym serve' or a pipeline "
                    "on the same store?); one process at a time can change it"
                )
            current = self.path / "current"
            if not current.exists():
                raise ViewBusyError(f"the RDF view at {self.path} is being built by another process; try again when it is done")
            try:
                self._store = ox.Store.read_only(str(current / "store"))
            except OSError as exc:
                raise KGError(f"cannot open the RDF view at {self.path} read-only: {exc}".splitlines()[0]) from None
            self.read_only = True
            self.state = ViewState.read(current)
            return
        current = self.path / "current"
        if not (current / "state.json").exists() or not (current / "store" / "CURRENT").exists():
            # No view yet, or its files are gone: start an empty one, which the next sync fills from SQL.
            self._switch_to(self._new_dir())
        try:
            self._store = ox.Store(str(current / "store"))
        except OSError:
            # Damaged files (a disk full, a copy of a live view): the view is derived data, start afresh.
            self._switch_to(self._new_dir())
            self._store = ox.Store(str(current / "store"))
        self.state = ViewState.read(current)
        self._remove_leftovers()

    def _take_lock(self) -> bool:
        assert self.path is not None
        handle = open(self.path / "writer.lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._lock_file = handle
        return True

    def _new_dir(self) -> Path:
        assert self.path is not None
        fresh = self.path / f"view-{uuid.uuid4().hex[:12]}"
        (fresh / "store").mkdir(parents=True)
        ViewState.write_empty(fresh)
        return fresh

    def _switch_to(self, directory: Path) -> None:
        """Point ``current`` at ``directory`` in one rename (atomic on POSIX file systems)."""
        assert self.path is not None
        link = self.path / f"current.{uuid.uuid4().hex[:8]}"
        link.symlink_to(directory.name)
        os.replace(link, self.path / "current")
        _fsync_dir(self.path)

    def _remove_leftovers(self) -> None:
        # Half-built views of crashed rebuilds, replaced views, and the files of the older flat layout.
        assert self.path is not None
        keep = (self.path / "current").resolve().name
        for entry in self.path.iterdir():
            stale_view = entry.name.startswith("view-") and entry.name != keep
            flat_layout = entry.name in ("store", "state.json", "state.tmp")
            stray_link = entry.name.startswith("current.")
            if stale_view or flat_layout:
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            elif stray_link:
                entry.unlink(missing_ok=True)

    def close(self) -> None:
        """Flush and release the Oxigraph store and the writer lock."""
        if self._store is not None:
            if self.path is not None and not self.read_only:
                self._store.flush()
            self._store = None
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None
        self.read_only = False

    # -- keeping in sync -----------------------------------------------------------------------
    def _of_another_store(self, store_id: str) -> bool:
        """Whether the view holds another store, or this one in another vocabulary (or nothing yet)."""
        if self.state.store_id != store_id:
            return True
        return self.vocabulary is not None and self.state.vocabulary != self.vocabulary

    def stale_graphs(self, store_id: str, versions: dict[str, int]) -> tuple[list[str], list[str]]:
        """(graphs to (re)load, graphs to drop) so that the view matches ``versions``."""
        self.store  # noqa: B018 - opening reads the state file
        return self._stale_in_state(store_id, versions)

    def _stale_in_state(self, store_id: str, versions: dict[str, int]) -> tuple[list[str], list[str]]:
        if self._of_another_store(store_id):
            return sorted(versions), []
        held = self.state.graphs
        reload = sorted(g for g, v in versions.items() if held.get(g) != v)
        drop = sorted(g for g in held if g not in versions)
        return reload, drop

    def hold_if_current(self, store_id: str, versions: dict[str, int]) -> Path | None:
        """The Oxigraph directory of an on-disk view that reflects exactly ``versions`` of store
        ``store_id``, with the writer lock taken so that it stays so until ``close``; None (and no lock)
        where there is no such view yet, another process holds the lock, or the view is behind SQL.
        Opens no store: the caller reads the files read-only in a process of its own (``kg.query.fresh_view``)."""
        if self.path is None or self._store is not None or not (self.path / "current" / "store" / "CURRENT").exists():
            return None
        if not self._take_lock():
            return None
        self.state = ViewState.read(self.path / "current")
        if self._of_another_store(store_id) or self._stale_in_state(store_id, versions) != ([], []):
            self.close()
            return None
        return self.store_path

    def _refuse_if_read_only(self) -> None:
        if self.read_only:
            raise ViewBusyError(
                f"the RDF view at {self.path} is held by another process (a 'neurosym serve'?) and is behind "
                "the SQL store; query that server's endpoint, or stop it and try again"
            )

    def sync(self, store_id: str, versions: dict[str, int], lines_for: LinesFor) -> list[str]:
        """Reload the graphs whose SQL version differs from the view's; returns their names."""
        reload, drop = self.stale_graphs(store_id, versions)
        if self._of_another_store(store_id):  # start over
            self._refuse_if_read_only()
            return self.rebuild(store_id, versions, lines_for)
        if not reload and not drop:
            return []
        self._refuse_if_read_only()
        for graph in drop + reload:
            self.state.graphs.pop(graph, None)
        self.state.save()  # forget first: a crash below makes the next sync reload these graphs
        for graph in drop + reload:
            self.store.clear_graph(ox.NamedNode(graph))
        if reload:
            try:
                self._bulk_load(self.store, reload, lines_for)
            except SyntaxError as exc:
                raise KGError(
                    f"the RDF view cannot load the store's triples: {exc.msg}; 'neurosym kg rebuild' rebuilds "
                    "it, skipping and listing the triples it refuses"
                ) from None
            self.state.graphs.update({g: versions[g] for g in reload})
            self.state.save()
        return reload

    def rebuild(self, store_id: str, versions: dict[str, int], lines_for: LinesFor) -> list[str]:
        """Load every graph from SQL into a new view, then switch to it; returns the graphs loaded.

        Lines the view refuses (terms written by older versions of the store) are skipped and kept
        in ``self.skipped``.
        """
        graphs = sorted(versions)
        self.skipped = []
        if self.path is None:
            self._store = ox.Store()
            self._load_checked(self._store, graphs, lines_for)
            self.state = ViewState.of(store_id, self.vocabulary, {g: versions[g] for g in graphs}, None)
            return graphs
        if self._store is None and self._lock_file is None:
            # The writer lock without opening the old view: opening a big RocksDB store starts
            # compactions of files about to be deleted (a 1M view rebuilt over another took 113 s, not 59).
            self.path.mkdir(parents=True, exist_ok=True)
            if not self._take_lock():
                self.store  # noqa: B018 - opens the holder's view read-only, or says who holds it
        self._refuse_if_read_only()
        fresh = self._new_dir()
        built = ox.Store(str(fresh / "store"))
        self._load_checked(built, graphs, lines_for)
        built.flush()
        self.state = ViewState.of(store_id, self.vocabulary, {g: versions[g] for g in graphs}, fresh)
        self.state.save()
        old = (self.path / "current").resolve()
        self._store = None
        self._switch_to(fresh)
        self.state.directory = self.path / "current"
        self._store = built
        shutil.rmtree(old, ignore_errors=True)
        self._remove_leftovers()
        return graphs

    def _load_checked(self, store: ox.Store, graphs: list[str], lines_for: LinesFor) -> None:
        try:
            self._bulk_load(store, graphs, lines_for)
        except SyntaxError:
            # Some stored term is one the view refuses: load again line by line, skipping those.
            store.clear()
            store.extend(self._checked_quads(graphs, lines_for))

    def _checked_quads(self, graphs: list[str], lines_for: LinesFor):
        for graph in graphs:
            name = ox.NamedNode(graph)
            for line in lines_for(graph):
                for single in line.splitlines(keepends=True):
                    try:
                        for triple in ox.parse(single, format=ox.RdfFormat.N_TRIPLES):
                            yield ox.Quad(triple.subject, triple.predicate, triple.object, name)
                    except SyntaxError:
                        self.skipped.append(f"{single.rstrip().removesuffix('.').rstrip()} <{graph}> .")

    @staticmethod
    def _bulk_load(store: ox.Store, graphs: list[str], lines_for: LinesFor) -> None:
        # One bulk load per graph, streamed from SQL: Oxigraph batches and sorts it itself. At 1M
        # assignments this peaks at 1.9 GB where loads of 250k quads each peaked at 3.2 GB (every small
        # load leaves files to compact), in the same time; loads of 1M lines each took 60% longer.
        for graph in graphs:
            reader = LineReader(lines_for(graph))
            store.bulk_load(io.BufferedReader(reader, 1 << 20), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(graph))
            if reader.error is not None:
                raise reader.error

    def feed(self, store_id: str) -> ViewFeed | None:
        """A feed that loads a running SQL load's batches into this view as they are written, or None
        when this process has not opened the view (a load does not take the view's lock by itself),
        cannot change it, or the view is of another store."""
        if self._store is None or self.read_only or self._of_another_store(store_id):
            return None
        return ViewFeed(self.state, self.store)

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


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
