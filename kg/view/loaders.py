"""Ways of loading quads into the RDF view: a whole graph streamed from SQL in one bulk load
(``LineReader``), and the chunks of a running ``kg load`` fed in while SQL takes them (``ViewFeed``,
through ``ChunkLoader``'s thread)."""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Iterable

import pyoxigraph as ox

from kg.view.state import ViewState


class LineReader(io.RawIOBase):
    """Text chunks from a generator as a binary stream, for a bulk load that reads as SQL yields.

    An exception of the generator ends the stream and is kept in ``error`` (Oxigraph would turn it
    into an I/O error), for the caller to raise once the load has returned.
    """

    def __init__(self, chunks: Iterable[str]):
        self._chunks = iter(chunks)
        self._data = memoryview(b"")
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._data:
            try:
                self._data = memoryview(next(self._chunks).encode())
            except StopIteration:
                return 0
            except BaseException as exc:  # re-raised by the caller
                self.error = exc
                return 0
        n = min(len(target), len(self._data))
        target[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


class ChunkLoader:
    """Bulk-loads N-Quads chunks into an Oxigraph store in a thread, while the caller makes the next one.

    Oxigraph parses and indexes in Rust without the GIL, so making chunks (from SQL rows or a file
    being parsed) and loading them overlap. Each ``bulk_load`` holds its chunk's quads in memory, so
    chunks of ``CHUNK`` quads keep memory flat whatever the size of the load; ``put`` blocks while one
    chunk loads and one waits.
    """

    CHUNK = 250_000

    def __init__(self, store: ox.Store) -> None:
        self.store = store
        self.error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._work, name="rdf-view-loader", daemon=True)
        self._thread.start()

    def put(self, chunk: bytes) -> None:
        if self.error is None:
            self._queue.put(chunk)

    def close(self) -> None:
        """Wait for the chunks already given; ``error`` holds what a load raised, if any."""
        self._queue.put(None)
        self._thread.join()

    def _work(self) -> None:
        while (data := self._queue.get()) is not None:
            if self.error is None:
                try:
                    self.store.bulk_load(data, format=ox.RdfFormat.N_QUADS)
                except BaseException as exc:  # re-raised or acted on by the caller
                    self.error = exc


class ViewFeed:
    """Loads the quads of a running SQL load into the view while the load goes on.

    A graph is marked stale in the state before its first quad reaches the view, so a failed or killed
    load leaves it to be reloaded from SQL by the next sync. ``finish`` records the graph's new write
    counter only if the view held exactly the graph's content before the load and nothing else wrote
    it meanwhile: then the view equals SQL, without reading the graph back.
    """

    STALE = -1  #: a write counter SQL never has

    def __init__(self, state: ViewState, store: ox.Store) -> None:
        self.state = state
        self.held_before: dict[str, int | None] = {}
        self._loader = ChunkLoader(store)
        self._pending: list[bytes] = []
        self._pending_quads = 0

    def __call__(self, graphs: set[str], quads: list, default_quads: list = (), default_graph: str = "") -> None:
        """Queue ``quads`` and ``default_quads`` (default-graph quads, which belong in ``default_graph``)."""
        held = self.state.graphs
        new = graphs - self.held_before.keys()
        if new:
            for graph in new:
                self.held_before[graph] = held.get(graph)
                held[graph] = self.STALE
            self.state.save()
        self._pending.append(ox.serialize(quads, None, ox.RdfFormat.N_QUADS))
        if default_quads:
            # An N-Quads line ends in " .\n" exactly once (line breaks inside literals are escaped), so
            # naming the graph on the serialized bytes equals, far cheaper, a new Quad per triple.
            lines = ox.serialize(default_quads, None, ox.RdfFormat.N_QUADS)
            self._pending.append(lines.replace(b" .\n", f" {ox.NamedNode(default_graph)} .\n".encode()))
        self._pending_quads += len(quads) + len(default_quads)
        if self._pending_quads >= ChunkLoader.CHUNK:
            self._send()

    def _send(self) -> None:
        if self._pending:
            self._loader.put(b"".join(self._pending))
        self._pending, self._pending_quads = [], 0

    def finish(self, versions: dict[str, tuple[int | None, int | None]] | None) -> None:
        """End the feed; ``versions`` (graph -> counter before and after the load) once SQL committed."""
        if versions is not None:
            self._send()
        self._loader.close()
        if versions is None or self._loader.error is not None:
            return
        counters = self.state.graphs
        for graph, held in self.held_before.items():
            before, after = versions.get(graph, (None, None))
            if held == before and after is not None and after - (before or 0) <= 1:
                counters[graph] = after
        self.state.save()
