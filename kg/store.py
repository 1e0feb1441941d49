"""The knowledge store: SQL (canonical, transactional) plus its RDF view (SPARQL), behind one object.

>>> with Store.open("runs/neurosym.sqlite") as store:          # doctest: +SKIP
...     store.load_rdf(["data/arithmetic.ttl"])
...     store.sparql("SELECT ?n WHERE { ?n a arith:Prime }").rows

A path opens (and creates) a SQLite file in WAL mode with foreign keys on, its RDF view in the directory
beside it (``runs/neurosym.oxigraph/``); any other SQLAlchemy URL (``postgresql://...`` uses psycopg 3,
the ``postgres`` extra) works unchanged, with its view persisted under ``view_dir`` (see ``kg.sql.engine``).
Every write bumps the write counter of the named graph it touches, in the same transaction; ``sparql``
first brings those graphs of the view up to date. Runs are written incomplete and hidden until their
writer finishes them (``writing_run``), so a killed command never leaves half a run in sight.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from rdflib.term import Node
from sqlalchemy import Connection, Engine, delete, insert, select
from sqlalchemy.exc import DBAPIError

from kg.rdf import vocab
from kg.sql import answers, explanations, loading, symbols
from kg.sql.derive import VOCABULARY, graph_tail, kg_lines, run_lines
from kg.sql.engine import connect, default_view_dir, store_url
from kg.errors import KGError
from kg.rdf.terms import output_format, serialize_lines, to_ox
from kg.view.rdf_view import RdfView
from kg.sql.schema import SCHEMA_VERSION, Base, Entity, GraphVersion, Meta, Run, Triple, migrate
from kg.query.evaluate import QueryLimits, SparqlResult, run_query
from kg.sql.writes import as_array, bump, check_run

#: Rows per batch in bulk writes.
DEFAULT_BATCH = 50_000


class Store:
    """SQL tables plus the RDF view derived from them; open with ``Store.open(path_or_url)``."""

    def __init__(self, engine: Engine, rdf_path: Path | None, *, auto_sync: bool = True,
                 batch_size: int = DEFAULT_BATCH, sqlite_file: Path | None = None, shared_view: bool = False):
        self.engine = engine
        self.auto_sync = auto_sync
        self.batch_size = batch_size
        self.store_id = self._init_schema()
        if rdf_path is None and (sqlite_file is not None or engine.url.get_backend_name() != "sqlite"):
            rdf_path = default_view_dir(sqlite_file, self.store_id)
        self.view = RdfView(rdf_path, shared=shared_view, vocabulary=VOCABULARY)

    @classmethod
    def open(
        cls,
        target: str | Path,
        *,
        rdf_path: str | Path | None = None,
        auto_sync: bool = True,
        batch_size: int = DEFAULT_BATCH,
        shared_view: bool = False,
    ) -> Store:
        """Open (creating if needed) the store at a path or SQLAlchemy URL.

        ``rdf_path`` overrides where the RDF view lives (default: beside a SQLite file; for a server,
        ``$XDG_CACHE_HOME/neurosym/views/<store id>``; in memory for in-memory SQLite). With
        ``auto_sync`` a ``sparql`` call that the view answers first syncs it with SQL. With ``shared_view`` a view
        held by another process (``neurosym serve``) is opened read-only and queried while it is current.
        """
        url, sqlite_file = store_url(target)
        engine = connect(url, sqlite_file)
        rdf_path = rdf_path if rdf_path is not None else getattr(target, "view_dir", None)
        view = Path(rdf_path) if rdf_path is not None else None
        return cls(engine, view, auto_sync=auto_sync, batch_size=batch_size, sqlite_file=sqlite_file, shared_view=shared_view)

    def _init_schema(self) -> str:
        try:
            Base.metadata.create_all(self.engine)
        except DBAPIError as exc:  # the server is down, refuses us, or the file is not a database
            raise KGError(f"cannot open the store {self.engine.url.render_as_string(hide_password=True)}: "
                          f"{str(getattr(exc, 'orig', exc)).strip().splitlines()[0]}") from None
        with self.engine.begin() as conn:
            meta = dict(conn.execute(select(Meta.key, Meta.value)).all())
            if "schema_version" not in meta:
                meta = {"schema_version": str(SCHEMA_VERSION), "store_id": uuid.uuid4().hex}
                conn.execute(insert(Meta), [{"key": k, "value": v} for k, v in meta.items()])
            elif meta["schema_version"] != str(SCHEMA_VERSION):
                found = meta["schema_version"]
                if not (found.isdigit() and int(found) < SCHEMA_VERSION and migrate(conn, int(found))):
                    raise KGError(f"{self.engine.url}: store schema version {found}, this code reads {SCHEMA_VERSION}")
                conn.execute(Meta.__table__.update().where(Meta.key == "schema_version").values(value=str(SCHEMA_VERSION)))
        return meta["store_id"]

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the store, password hidden (for reports and messages)."""
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Release the RDF view and the SQL connections."""
        self.view.close()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- KG facts ----------------------------------------------------------------------------------
    def load_rdf(self, paths: str | Path | Iterable[str | Path], graph: str | None = None, format: str | None = None) -> int:
        """Load RDF files (Turtle, N-Triples, N-Quads, TriG, RDF/XML, JSON-LD) into the store.

        Files are parsed as a stream and written in batches inside one transaction: all or nothing.
        Default-graph triples go to named graph ``graph`` (default ``graph:kg``); N-Quads and TriG
        named graphs keep their names. Returns the number of triples new to the store.
        """
        paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
        if not paths:
            raise KGError("load_rdf: no files given")
        target = graph or vocab.DEFAULT_KG_GRAPH
        to_ox(target)  # a graph name the view would refuse fails here, before anything is parsed
        feed = self.view.feed(self.store_id) if self.auto_sync else None
        outcome = None
        try:
            outcome = loading.load_files(self.engine, paths, target, format, self.batch_size, feed)
        finally:
            if feed is not None:
                feed.finish(outcome.versions if outcome is not None else None)
        return outcome.added

    def add_triples(
        self,
        triples: Iterable[tuple[Node | str, Node | str, Node | str]],
        graph: str,
        confidence: Sequence[float] | np.ndarray | None = None,
        replace: bool = False,
    ) -> int:
        """Add facts (e.g. rule-derived) to named graph ``graph`` in one transaction.

        Terms are rdflib terms; a plain ``str`` is an IRI. ``confidence`` gives one value per triple.
        With ``replace`` the graph's previous facts are dropped in the same transaction.
        """
        return self.replace_graphs({graph: (triples, confidence)}, replace=replace)[graph]

    def replace_graphs(self, graphs: dict[str, tuple[Iterable[tuple], Sequence[float] | None]],
                       replace: bool = True) -> dict[str, int]:
        """Write several named graphs (graph -> (triples, confidences or None)) in one transaction, each
        replacing the graph's previous facts when ``replace``. Every term is checked first. Returns
        the number of triples new to each graph."""
        checked: dict[str, tuple[list, list[float] | None]] = {}
        for graph, (triples, confidence) in graphs.items():
            to_ox(graph)
            rows = []
            for triple in triples:
                if len(triple) != 3:
                    raise KGError(f"add_triples: expected (subject, predicate, object), got {triple!r}")
                rows.append(tuple(to_ox(t) for t in triple))
            conf = None if confidence is None else as_array("confidence", confidence, np.float64, len(rows)).tolist()
            checked[graph] = (rows, conf)
        added = {}
        with self.engine.begin() as conn:
            for graph, (rows, conf) in checked.items():
                if replace:
                    conn.execute(delete(Triple).where(Triple.graph == graph))
                before = loading.graph_counts(conn, [graph])[graph]
                loading.write_triples(conn, rows, graph, conf, self.batch_size)
                added[graph] = loading.graph_counts(conn, [graph])[graph] - before
                if replace or added[graph]:
                    bump(conn, graph)
        return added

    def export(self, format: str = "turtle", run_id: int | None = None, path: str | Path | None = None) -> str | None:
        """Serialize the whole store (KG graphs and complete runs) or one run.

        ``format``: ``turtle`` or ``nt`` (one graph), ``nquads`` or ``trig`` (named graphs kept). With
        ``path`` the output streams to that file and None is returned; else the text is returned.
        """
        _, named = output_format(format)
        with self.engine.connect() as conn:
            if run_id is not None:
                check_run(conn, run_id)
                graphs = [vocab.run_iri(run_id)]
            else:
                graphs = sorted(g for (g,) in conn.execute(select(GraphVersion.graph)))
            lines = (line for g in graphs for line in self._lines(conn, g, graph_tail(g if named else None)))
            if path is not None:
                with open(path, "wb") as out:
                    serialize_lines(lines, format, out)
                return None
            buffer = io.BytesIO()
            serialize_lines(lines, format, buffer)
        return buffer.getvalue().decode("utf-8")

    # -- runs and symbols --------------------------------------------------------------------------
    def create_run(self, name: str, config: dict, seed: int, code_version: str, checkpoint_path: str | None = None,
                   checkpoint_hash: str | None = None, complete: bool = True) -> int:
        """Record a run (what produced the symbols); returns its id. A run written by several calls
        should be created with ``complete=False`` and finished with ``finish_run`` (or use
        ``writing_run``): until then it is hidden."""
        return symbols.create_run(self.engine, name, config, seed, code_version, checkpoint_path, checkpoint_hash, complete)

    def finish_run(self, run_id: int) -> None:
        """Mark a run complete: from now on the view, listings and exports show it."""
        symbols.set_complete(self.engine, run_id, True)

    def reopen_run(self, run_id: int) -> None:
        """Mark a run incomplete (hidden) while more of it is written; ``finish_run`` shows it again."""
        symbols.set_complete(self.engine, run_id, False)

    @contextmanager
    def writing_run(self, name: str, config: dict, seed: int, code_version: str,
                    checkpoint_path: str | None = None, checkpoint_hash: str | None = None) -> Iterator[int]:
        """Create a hidden run, yield its id, and mark it complete when the block ends without error;
        on an error the run is deleted again (a killed process leaves it hidden, for ``prune_runs``)."""
        run_id = self.create_run(name, config, seed, code_version, checkpoint_path, checkpoint_hash, complete=False)
        try:
            yield run_id
        except BaseException:
            symbols.delete_runs(self.engine, [run_id])
            raise
        self.finish_run(run_id)

    def delete_run(self, run_id: int) -> None:
        """Delete a run with its codes, assignments, alignments and rule graphs (SQL and view)."""
        symbols.delete_runs(self.engine, [run_id])

    def prune_runs(self) -> list[int]:
        """Delete every incomplete run (left by a killed writer); returns their ids."""
        return symbols.delete_runs(self.engine, incomplete=True)

    def add_codes(self, run_id: int, index, norm, usage) -> None:
        """Record a run's codebook entries: code ``index`` (K,), vector ``norm`` (K,), ``usage`` (K,)."""
        symbols.add_codes(self.engine, run_id, index, norm, usage)

    def add_inputs(self, dataset: str, split: str, keys: Sequence[str]) -> np.ndarray:
        """Register inputs by (dataset, split, key); returns their ids (int64, one per key, in order).

        Idempotent: keys already present keep their ids.
        """
        return symbols.add_inputs(self.engine, dataset, split, keys, self.batch_size)

    def add_assignments(self, run_id: int, input_ids, slot, code, confidence, rank=None) -> int:
        """Record the symbols of a run, one row per (input, slot, rank); all arrays have shape (N,).

        ``rank`` (default 0 everywhere) numbers top-k alternatives; rank 0 is the top symbol. Written in
        batches of ``batch_size`` rows inside one transaction: a call lands whole or not at all. Returns N.
        """
        return symbols.add_assignments(self.engine, run_id, input_ids, slot, code, confidence, rank, self.batch_size)

    def add_alignments(self, run_id: int, code, entity_iri: Sequence[str], confidence, method: str) -> None:
        """Map codes of a run to KG entities: ``code`` (M,), ``entity_iri`` (M,), ``confidence`` (M,).

        A code's concept (``skos:exactMatch``/``closeMatch``, ``ns:entity`` and ``ns:hasConcept`` in the
        view) is its most confident alignment over all methods. Re-adding a (code, entity, method)
        replaces its confidence. One transaction.
        """
        symbols.add_alignments(self.engine, run_id, code, entity_iri, confidence, method)

    def add_explanations(self, run_id: int, variables: Sequence[explanations.Variable], members, values, probability,
                         true_values=None, correct=None) -> int:
        """Record what a run concluded about G test groups over the V ``variables`` of its knowledge:
        ``members`` (G, A) input ids, ``values`` (G, V) entity IRIs of the most probable explanation,
        ``probability`` (G, V), and where known ``true_values`` (G, V) and ``correct`` (G,). One
        transaction; returns G. See ``kg/sql/explanations.py`` for the tables and their RDF."""
        return explanations.add_explanations(self.engine, run_id, variables, members, values, probability,
                                             true_values, correct, self.batch_size)

    def explanations(self, run_id: int, groups: Sequence[int] | None = None,
                     wrong: bool = False) -> list[explanations.GroupExplanation]:
        """A run's explanations of ``groups`` (default all; only wrong predictions with ``wrong``), in
        group order. An unknown run or group raises ``KGError``; a run without any gives []."""
        with self.engine.connect() as conn:
            return explanations.read_explanations(conn, run_id, groups, wrong)

    def explanation_count(self, run_id: int) -> int:
        """How many test groups of a run are explained (0: none written)."""
        with self.engine.connect() as conn:
            check_run(conn, run_id)
            return explanations.group_count(conn, run_id)

    def explanations_rdf(self, run_id: int, groups: Sequence[int] | None = None, format: str = "turtle") -> str:
        """The RDF of a run's explanations of ``groups`` (default all) in an export ``format``."""
        _, named = output_format(format)
        with self.engine.connect() as conn:
            check_run(conn, run_id)
            tail = graph_tail(vocab.run_iri(run_id) if named else None)
            buffer = io.BytesIO()
            serialize_lines(explanations.explanation_lines(conn, run_id, tail, groups), format, buffer)
        return buffer.getvalue().decode("utf-8")

    # -- RDF view and SPARQL -----------------------------------------------------------------------
    def _versions(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(GraphVersion.graph, GraphVersion.version)).all())

    def _lines(self, conn: Connection, graph: str, tail: str):
        rest = graph[len(vocab.RUN_BASE):] if graph.startswith(vocab.RUN_BASE) else ""
        if rest.isdigit():
            run = conn.execute(select(Run.complete).where(Run.id == int(rest))).first()
            if run is None or not run.complete:  # an unfinished run is not shown anywhere
                return iter(())
            return run_lines(conn, int(rest), tail, self.batch_size)
        return kg_lines(conn, graph, tail)

    def sync_rdf(self) -> list[str]:
        """Bring the RDF view up to date with SQL; returns the graphs that were reloaded."""
        with self.engine.connect() as conn:
            return self.view.sync(self.store_id, self._versions(), lambda g: self._lines(conn, g, graph_tail(None)))

    def rebuild_rdf(self) -> list[str]:
        """Rebuild the whole RDF view from SQL into a new directory and switch to it; returns the graphs
        loaded. Stored triples the view refuses are skipped and listed in ``self.view.skipped``."""
        with self.engine.connect() as conn:
            return self.view.rebuild(self.store_id, self._versions(), lambda g: self._lines(conn, g, graph_tail(None)))

    def sparql(self, query: str, bindings: dict | None = None, limits: QueryLimits | None = None) -> SparqlResult:
        """Run a read-only SPARQL query (SELECT, ASK, CONSTRUCT, DESCRIBE) over the RDF view.

        ``bindings`` maps variable names to values (rdflib terms, or Python str/int/float/bool as
        literals; pass ``URIRef`` for IRIs); they are substituted, never pasted into the text. All
        project prefixes (``ns:``, ``arith:``, ``skos:``, ...) are predeclared. ``limits`` bound its size,
        nesting, time and SERVICE calls (default ``QueryLimits()``: 60 s, no SERVICE; see kg/query/guard.py).
        With ``auto_sync`` the view is synced with SQL first, but only for a query the view answers: one
        that ``kg.query.sql.translate`` translates reads SQL, which is always current, so right after a large
        write it answers without waiting for the view (a 1M-assignment run takes about a minute to load).
        """
        prepare = self.sync_rdf if self.auto_sync else None
        return run_query(self.view, query, bindings, limits, sql_engine=self.engine, prepare=prepare)

    def counts(self) -> tuple[int, int]:
        """(triples the SQL tables describe, quads in the RDF view) after a sync: equal in a healthy store."""
        self.sync_rdf()
        with self.engine.connect() as conn:
            sql = sum(1 for g in self._versions() for line in self._lines(conn, g, graph_tail(g)) for _ in line.splitlines())
        return sql, len(self.view)

    # -- answers computed in SQL ---------------------------------------------------------------------
    def count_inputs_in_class(self, class_iri: str, min_confidence: float = 0.0, run_id: int | None = None) -> int:
        """Inputs whose top concept is (``rdf:type/rdfs:subClassOf*``) ``class_iri`` with confidence above
        ``min_confidence``: the SQL answer of benchmark query q1."""
        with self.engine.connect() as conn:
            return answers.count_inputs_in_class(conn, str(class_iri), float(min_confidence), run_id)

    def concept_counts(self, run_id: int | None = None) -> dict[str, int]:
        """Entity IRI -> number of inputs with that top concept (benchmark query q2, in SQL)."""
        with self.engine.connect() as conn:
            return answers.concept_counts(conn, run_id)

    def top_inputs(self, entity_iri: str, k: int = 10, run_id: int | None = None) -> list[tuple[str, float]]:
        """The ``k`` most confident (input IRI, confidence) with top concept ``entity_iri`` (q3, in SQL)."""
        with self.engine.connect() as conn:
            return answers.top_inputs(conn, str(entity_iri), int(k), run_id)

    # -- listings ----------------------------------------------------------------------------------
    def runs(self, include_incomplete: bool = False) -> list[dict]:
        """Complete runs (all with ``include_incomplete``) as dicts (id, name, config, seed, code_version,
        checkpoint_path, checkpoint_hash, created, complete)."""
        return symbols.list_runs(self.engine, include_incomplete)

    def entities(self) -> list[tuple[str, str | None]]:
        """All KG entities as (IRI, label)."""
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(select(Entity.iri, Entity.label).order_by(Entity.id))]

