"""The knowledge store: SQL (canonical, transactional) plus its RDF view (SPARQL), behind one object.

>>> with Store.open("runs/neurosym.sqlite") as store:          # doctest: +SKIP
...     store.load_rdf(["data/arithmetic.ttl"])
...     store.sparql("SELECT ?n WHERE { ?n a arith:Prime }").rows

A path opens (and creates) a SQLite file in WAL mode with foreign keys on, its RDF view in the directory
beside it (``runs/neurosym.oxigraph/``); any other SQLAlchemy URL (e.g. ``postgresql+psycopg://...``)
works unchanged, with the view in memory unless ``rdf_path`` names a directory. Every write bumps the
version of the named graph it touches; ``sparql`` first brings those graphs of the view up to date.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from rdflib import RDF, RDFS, Graph, URIRef
from rdflib.term import Node
from sqlalchemy import Connection, Engine, bindparam, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from kg import answers, vocab
from kg.derive import graph_tail, kg_lines, run_lines
from kg.errors import KGError, UnknownEntityError, UnknownRunError
from kg.rdf_io import graph_rows, parse_file, serialize_lines, term_to_row
from kg.rdf_view import RdfView
from kg.schema import (
    SCHEMA_VERSION,
    Alignment,
    Assignment,
    Base,
    Code,
    Entity,
    GraphVersion,
    Input,
    Meta,
    Run,
    Triple,
)
from kg.sparql import QueryLimits, SparqlResult, run_query

#: Rows per transaction in bulk writes.
DEFAULT_BATCH = 100_000


def _url_and_view(target: str | Path) -> tuple[str, Path | None]:
    """(SQLAlchemy URL, default RDF view directory) for a path or URL."""
    text = str(target)
    if "://" not in text:
        path = Path(text).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}", path.with_suffix(".oxigraph")
    url = make_url(text)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return text, path.with_suffix(".oxigraph")
    return text, None


def _array(name: str, values, dtype, n: int | None = None) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise KGError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise KGError(f"{name}: expected {n} values (one per row), got {len(arr)}")
    if np.issubdtype(dtype, np.floating):
        arr = arr.astype(np.float64, copy=False)
        if not np.all(np.isfinite(arr)):
            raise KGError(f"{name}: contains NaN or infinite values")
    else:
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise KGError(f"{name}: expected integers, got dtype {arr.dtype}")
        arr = arr.astype(np.int64, copy=False)
    return arr


class Store:
    """SQL tables plus the RDF view derived from them; open with ``Store.open(path_or_url)``."""

    def __init__(self, engine: Engine, rdf_path: Path | None, *, auto_sync: bool = True, batch_size: int = DEFAULT_BATCH):
        self.engine = engine
        self.view = RdfView(rdf_path)
        self.auto_sync = auto_sync
        self.batch_size = batch_size
        self.store_id = self._init_schema()

    @classmethod
    def open(
        cls,
        target: str | Path,
        *,
        rdf_path: str | Path | None = None,
        auto_sync: bool = True,
        batch_size: int = DEFAULT_BATCH,
    ) -> Store:
        """Open (creating if needed) the store at a path or SQLAlchemy URL.

        ``rdf_path`` overrides where the RDF view lives (default: beside a SQLite file, in memory
        otherwise). With ``auto_sync`` every ``sparql`` call first syncs the view with SQL.
        """
        url, default_view = _url_and_view(target)
        is_sqlite = make_url(url).get_backend_name() == "sqlite"
        kwargs: dict = {}
        if is_sqlite:
            # The view builder streams rows from a helper thread; the connection is never shared at once.
            kwargs["connect_args"] = {"check_same_thread": False}
            if make_url(url).database in (None, "", ":memory:"):
                kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)
        if is_sqlite:
            event.listen(engine, "connect", _sqlite_pragmas)
        view = Path(rdf_path) if rdf_path is not None else default_view
        return cls(engine, view, auto_sync=auto_sync, batch_size=batch_size)

    def _init_schema(self) -> str:
        Base.metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            meta = dict(conn.execute(select(Meta.key, Meta.value)).all())
            if "schema_version" not in meta:
                meta = {"schema_version": str(SCHEMA_VERSION), "store_id": uuid.uuid4().hex}
                conn.execute(insert(Meta), [{"key": k, "value": v} for k, v in meta.items()])
            elif meta["schema_version"] != str(SCHEMA_VERSION):
                raise KGError(
                    f"{self.engine.url}: store schema version {meta['schema_version']}, this code reads {SCHEMA_VERSION}"
                )
        return meta["store_id"]

    # -- lifecycle ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the RDF view and the SQL connections."""
        self.view.close()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- helpers -----------------------------------------------------------------------------------
    def _bump(self, conn: Connection, *graphs: str) -> None:
        # The version bump commits with the write it describes, so the view can never miss a write.
        for graph in graphs:
            done = conn.execute(
                update(GraphVersion).where(GraphVersion.graph == graph).values(version=GraphVersion.version + 1)
            )
            if done.rowcount == 0:
                conn.execute(insert(GraphVersion).values(graph=graph, version=1))

    def _insert_rows(self, conn: Connection, table, columns: Sequence[str], rows: list[tuple], ignore: bool = False) -> None:
        if not rows:
            return
        if conn.dialect.name == "sqlite":
            # DB-API executemany on tuples: no per-row dict or ORM object, ~1 us per row.
            verb = "INSERT OR IGNORE" if ignore else "INSERT"
            marks = ", ".join("?" * len(columns))
            conn.exec_driver_sql(f"{verb} INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", rows)
            return
        statement = insert(table)
        if ignore and conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            statement = pg_insert(table).on_conflict_do_nothing()
        conn.execute(statement, [dict(zip(columns, row)) for row in rows])

    def _check_run(self, conn: Connection, run_id: int) -> None:
        if conn.execute(select(Run.id).where(Run.id == int(run_id))).first() is None:
            known = [r for (r,) in conn.execute(select(Run.id).order_by(Run.id))]
            raise UnknownRunError(f"unknown run {run_id}; the store holds runs {known or 'none'}")

    # -- KG facts ----------------------------------------------------------------------------------
    def load_rdf(self, paths: str | Path | Iterable[str | Path], graph: str | None = None, format: str | None = None) -> int:
        """Load RDF files (Turtle, N-Triples, JSON-LD, RDF/XML) into named graph ``graph``.

        All files are parsed before anything is written, and written in one transaction: all or nothing.
        Returns the number of triples new to the graph.
        """
        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        if not paths:
            raise KGError("load_rdf: no files given")
        merged = Graph()
        for path in paths:
            for triple in parse_file(path, format):
                merged.add(triple)
        return self._write_graph(merged, graph or vocab.DEFAULT_KG_GRAPH, None, replace=False)

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
        graph_obj = Graph()
        triples = [tuple(URIRef(t) if isinstance(t, str) and not isinstance(t, Node) else t for t in triple) for triple in triples]
        conf = None
        if confidence is not None:
            conf = _array("confidence", confidence, np.float64, len(triples)).tolist()
        for triple in triples:
            if len(triple) != 3:
                raise KGError(f"add_triples: expected (subject, predicate, object), got {triple!r}")
            graph_obj.add(triple)
        return self._write_graph(graph_obj, graph, dict(zip(triples, conf)) if conf else None, replace=replace)

    def _write_graph(self, graph_obj: Graph, graph: str, confidence: dict | None, replace: bool) -> int:
        columns = ("graph", "s", "s_kind", "p", "o", "o_kind", "o_datatype", "o_lang", "confidence")
        rows = []
        for s, p, o in graph_obj:
            (sv, sk, _, _), (ov, ok, od, ol) = term_to_row(s), term_to_row(o)
            rows.append((graph, sv, sk, str(p), ov, ok, od, ol, confidence.get((s, p, o)) if confidence else None))
        with self.engine.begin() as conn:
            if replace:
                conn.execute(delete(Triple).where(Triple.graph == graph))
            before = conn.execute(select(func.count()).select_from(Triple).where(Triple.graph == graph)).scalar_one()
            for start in range(0, len(rows), self.batch_size):
                self._insert_rows(conn, Triple.__table__, columns, rows[start : start + self.batch_size], ignore=True)
            self._upsert_entities(conn, graph_obj)
            self._bump(conn, graph)
            after = conn.execute(select(func.count()).select_from(Triple).where(Triple.graph == graph)).scalar_one()
        return after - before

    def _upsert_entities(self, conn: Connection, graph_obj: Graph) -> None:
        # An entity is an IRI that the KG labels or types: what alignments may point at.
        labels: dict[str, str | None] = {}
        for s in set(graph_obj.subjects(RDF.type)) | set(graph_obj.subjects(RDFS.label)):
            if isinstance(s, URIRef):
                found = sorted(graph_obj.objects(s, RDFS.label), key=lambda l: (getattr(l, "language", None) not in (None, "en"), str(l)))
                labels[str(s)] = str(found[0]) if found else None
        if not labels:
            return
        existing = dict(conn.execute(select(Entity.iri, Entity.label).where(Entity.iri.in_(list(labels)))).all())
        new = [(iri, label) for iri, label in labels.items() if iri not in existing]
        self._insert_rows(conn, Entity.__table__, ("iri", "label"), new)
        for iri, label in labels.items():
            if iri in existing and label is not None and existing[iri] != label:
                conn.execute(update(Entity).where(Entity.iri == iri).values(label=label))

    def export(self, format: str = "turtle", run_id: int | None = None, path: str | Path | None = None) -> str:
        """Serialize the whole store (KG graphs and runs) or one run as Turtle or N-Triples.

        Returns the text, and also writes it to ``path`` when given.
        """
        tail = graph_tail(None)
        with self.engine.connect() as conn:
            if run_id is not None:
                self._check_run(conn, run_id)
                graphs = [vocab.run_iri(run_id)]
            else:
                graphs = sorted(g for (g,) in conn.execute(select(GraphVersion.graph)))
            text = serialize_lines((line for g in graphs for line in self._lines(conn, g, tail)), format)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    # -- runs and symbols --------------------------------------------------------------------------
    def create_run(
        self,
        name: str,
        config: dict,
        seed: int,
        code_version: str,
        checkpoint_path: str | None = None,
        checkpoint_hash: str | None = None,
    ) -> int:
        """Record a run (what produced the symbols); returns its id."""
        try:
            config = json.loads(json.dumps(config))
        except (TypeError, ValueError) as exc:
            raise KGError(f"create_run: config is not JSON-serialisable: {exc}") from None
        with self.engine.begin() as conn:
            run_id = conn.execute(
                insert(Run).values(
                    name=str(name), config=config, seed=int(seed), code_version=str(code_version),
                    checkpoint_path=None if checkpoint_path is None else str(checkpoint_path),
                    checkpoint_hash=checkpoint_hash,
                )
            ).inserted_primary_key[0]
            self._bump(conn, vocab.run_iri(run_id))
        return int(run_id)

    def add_codes(self, run_id: int, index, norm, usage) -> None:
        """Record a run's codebook entries: code ``index`` (K,), vector ``norm`` (K,), ``usage`` (K,)."""
        index = _array("index", index, np.int64)
        norm = _array("norm", norm, np.float64, len(index))
        usage = _array("usage", usage, np.float64, len(index))
        if len(np.unique(index)) != len(index):
            raise KGError("add_codes: index holds duplicates")
        rows = [(int(run_id), i, n, u) for i, n, u in zip(index.tolist(), norm.tolist(), usage.tolist())]
        with self.engine.begin() as conn:
            self._check_run(conn, run_id)
            try:
                self._insert_rows(conn, Code.__table__, ("run_id", "idx", "norm", "usage"), rows)
            except IntegrityError:
                raise KGError(f"add_codes: run {run_id} already has some of these codes") from None
            self._bump(conn, vocab.run_iri(run_id))

    def add_inputs(self, dataset: str, split: str, keys: Sequence[str]) -> np.ndarray:
        """Register inputs by (dataset, split, key); returns their ids (int64, one per key, in order).

        Idempotent: keys already present keep their ids.
        """
        keys = [str(k) for k in keys]
        with self.engine.begin() as conn:
            known = dict(conn.execute(select(Input.key, Input.id).where(Input.dataset == dataset, Input.split == split)).all())
            next_id = (conn.execute(select(func.max(Input.id))).scalar_one() or 0) + 1
        unique = list(dict.fromkeys(keys))
        new_keys = [k for k in unique if k not in known] if known else unique
        new_ids = range(next_id, next_id + len(new_keys))
        rows = list(zip(new_ids, [dataset] * len(new_keys), [split] * len(new_keys), new_keys))
        for start in range(0, len(rows), self.batch_size):
            with self.engine.begin() as conn:
                self._insert_rows(conn, Input.__table__, ("id", "dataset", "split", "key"), rows[start : start + self.batch_size])
        if not known and len(unique) == len(keys):
            # All keys new and distinct: their ids are consecutive, no lookup needed.
            return np.arange(next_id, next_id + len(keys), dtype=np.int64)
        known.update(zip(new_keys, new_ids))
        return np.fromiter((known[k] for k in keys), dtype=np.int64, count=len(keys))

    def add_assignments(self, run_id: int, input_ids, slot, code, confidence, rank=None) -> int:
        """Record the symbols of a run, one row per (input, slot, rank); all arrays have shape (N,).

        ``rank`` (default 0 everywhere) numbers top-k alternatives; rank 0 is the top symbol. Written in
        batches of ``batch_size`` rows, one transaction each; if a batch fails, the batches of this call
        already written are deleted again, so a call lands whole or not at all. Returns N.
        """
        input_ids = _array("input_ids", input_ids, np.int64)
        n = len(input_ids)
        slot = _array("slot", slot, np.int64, n)
        code = _array("code", code, np.int64, n)
        confidence = _array("confidence", confidence, np.float64, n)
        rank = np.zeros(n, dtype=np.int64) if rank is None else _array("rank", rank, np.int64, n)
        if n and (slot.min() < 0 or rank.min() < 0):
            raise KGError("add_assignments: slot and rank must be >= 0")
        if n and (confidence.min() < 0 or confidence.max() > 1):
            raise KGError("add_assignments: confidence must lie in [0, 1]")
        with self.engine.connect() as conn:
            self._check_run(conn, run_id)
            codes = np.array([c for (c,) in conn.execute(select(Code.idx).where(Code.run_id == int(run_id)))], dtype=np.int64)
        missing = np.setdiff1d(np.unique(code), codes)
        if missing.size:
            raise KGError(f"add_assignments: run {run_id} has no codes {missing[:5].tolist()} (add_codes first)")
        columns = ("run_id", "input_id", "slot", "rank", "code", "confidence")
        run_col = [int(run_id)] * min(n, self.batch_size)
        written: list[tuple[int, int]] = []
        try:
            for start in range(0, n, self.batch_size):
                stop = min(start + self.batch_size, n)
                rows = list(zip(run_col, input_ids[start:stop].tolist(), slot[start:stop].tolist(),
                                rank[start:stop].tolist(), code[start:stop].tolist(), confidence[start:stop].tolist()))
                with self.engine.begin() as conn:
                    self._insert_rows(conn, Assignment.__table__, columns, rows)
                    self._bump(conn, vocab.run_iri(run_id))
                written.append((start, stop))
        except IntegrityError as exc:
            self._undo_assignments(run_id, input_ids, slot, rank, written)
            reason = str(exc.orig).splitlines()[0] if exc.orig else "constraint violated"
            raise KGError(f"add_assignments: run {run_id}: {reason} (unknown input id or duplicate (input, slot, rank)); nothing written") from None
        except BaseException:
            self._undo_assignments(run_id, input_ids, slot, rank, written)
            raise
        return n

    def _undo_assignments(self, run_id, input_ids, slot, rank, written) -> None:
        for start, stop in written:
            keys = list(zip([int(run_id)] * (stop - start), input_ids[start:stop].tolist(), slot[start:stop].tolist(), rank[start:stop].tolist()))
            with self.engine.begin() as conn:
                if conn.dialect.name == "sqlite":
                    conn.exec_driver_sql("DELETE FROM assignment WHERE run_id=? AND input_id=? AND slot=? AND rank=?", keys)
                else:
                    statement = delete(Assignment).where(
                        Assignment.run_id == bindparam("r"), Assignment.input_id == bindparam("i"),
                        Assignment.slot == bindparam("s"), Assignment.rank == bindparam("k"),
                    )
                    conn.execute(statement, [{"r": r, "i": i, "s": s, "k": k} for r, i, s, k in keys])
                self._bump(conn, vocab.run_iri(run_id))

    def add_alignments(self, run_id: int, code, entity_iri: Sequence[str], confidence, method: str) -> None:
        """Map codes of a run to KG entities: ``code`` (M,), ``entity_iri`` (M,), ``confidence`` (M,).

        A code's concept (``skos:exactMatch``/``closeMatch``, ``ns:entity`` and ``ns:hasConcept`` in the
        view) is its most confident alignment over all methods. Re-adding a (code, entity, method)
        replaces its confidence.
        """
        code = _array("code", code, np.int64)
        confidence = _array("confidence", confidence, np.float64, len(code))
        entity_iri = [str(e) for e in entity_iri]
        if len(entity_iri) != len(code):
            raise KGError(f"entity_iri: expected {len(code)} values (one per code), got {len(entity_iri)}")
        method = str(method)
        with self.engine.begin() as conn:
            self._check_run(conn, run_id)
            ids = dict(conn.execute(select(Entity.iri, Entity.id).where(Entity.iri.in_(set(entity_iri)))).all())
            unknown = sorted(set(entity_iri) - set(ids))
            if unknown:
                raise UnknownEntityError(f"add_alignments: unknown entities {unknown[:3]} (load the KG that defines them first)")
            codes = {c for (c,) in conn.execute(select(Code.idx).where(Code.run_id == int(run_id)))}
            missing = sorted(set(code.tolist()) - codes)
            if missing:
                raise KGError(f"add_alignments: run {run_id} has no codes {missing[:5]} (add_codes first)")
            rows = [(int(run_id), c, ids[e], method, conf) for c, e, conf in zip(code.tolist(), entity_iri, confidence.tolist())]
            for r, c, e, m, _ in rows:
                conn.execute(delete(Alignment).where(Alignment.run_id == r, Alignment.code == c, Alignment.entity_id == e, Alignment.method == m))
            self._insert_rows(conn, Alignment.__table__, ("run_id", "code", "entity_id", "method", "confidence"), rows)
            self._choose_concepts(conn, int(run_id))
            self._bump(conn, vocab.run_iri(run_id))

    def _choose_concepts(self, conn: Connection, run_id: int) -> None:
        best: dict[int, tuple[float, int]] = {}
        for c, e, conf in conn.execute(select(Alignment.code, Alignment.entity_id, Alignment.confidence).where(Alignment.run_id == run_id)):
            if c not in best or (conf, -e) > (best[c][0], -best[c][1]):
                best[c] = (conf, e)
        conn.execute(update(Code).where(Code.run_id == run_id).values(entity_id=None, entity_confidence=None))
        for c, (conf, e) in best.items():
            conn.execute(update(Code).where(Code.run_id == run_id, Code.idx == c).values(entity_id=e, entity_confidence=conf))

    # -- RDF view and SPARQL -----------------------------------------------------------------------
    def _versions(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(GraphVersion.graph, GraphVersion.version)).all())

    def _lines(self, conn: Connection, graph: str, tail: str):
        rest = graph[len(vocab.RUN_BASE):] if graph.startswith(vocab.RUN_BASE) else ""
        if rest.isdigit():
            if conn.execute(select(Run.id).where(Run.id == int(rest))).first() is None:
                return iter(())
            return run_lines(conn, int(rest), tail, self.batch_size)
        return kg_lines(conn, graph, tail)

    def sync_rdf(self) -> list[str]:
        """Bring the RDF view up to date with SQL; returns the graphs that were reloaded."""
        with self.engine.connect() as conn:
            return self.view.sync(self.store_id, self._versions(), lambda g: self._lines(conn, g, graph_tail(g)))

    def rebuild_rdf(self) -> list[str]:
        """Rebuild the whole RDF view from SQL; returns the graphs loaded."""
        with self.engine.connect() as conn:
            return self.view.rebuild(self.store_id, self._versions(), lambda g: self._lines(conn, g, graph_tail(g)))

    def sparql(self, query: str, bindings: dict | None = None, limits: QueryLimits | None = None) -> SparqlResult:
        """Run a read-only SPARQL query (SELECT, ASK, CONSTRUCT, DESCRIBE) over the RDF view.

        ``bindings`` maps variable names to values (rdflib terms, or Python str/int/float/bool as
        literals; pass ``URIRef`` for IRIs); they are substituted, never pasted into the text. All
        project prefixes (``ns:``, ``arith:``, ``skos:``, ...) are predeclared. ``limits`` bound its size,
        nesting, time and SERVICE calls (default ``QueryLimits()``: 60 s, no SERVICE; see kg/query_guard.py).
        """
        if self.auto_sync:
            self.sync_rdf()
        return run_query(self.view, query, bindings, limits)

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
    def runs(self) -> list[dict]:
        """All runs as dicts (id, name, config, seed, code_version, checkpoint_path, checkpoint_hash, created)."""
        with self.engine.connect() as conn:
            return [
                {"id": r.id, "name": r.name, "config": r.config, "seed": r.seed, "code_version": r.code_version,
                 "checkpoint_path": r.checkpoint_path, "checkpoint_hash": r.checkpoint_hash,
                 "created": r.created.isoformat() if r.created else None}
                for r in conn.execute(select(Run).order_by(Run.id))
            ]

    def entities(self) -> list[tuple[str, str | None]]:
        """All KG entities as (IRI, label)."""
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(select(Entity.iri, Entity.label).order_by(Entity.id))]


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at each WAL checkpoint, much faster commits
    # Bulk inserts land in indexes out of key order; a page cache that holds them (up to 256 MiB,
    # allocated only as used) halves the insert time of a million assignments against the 2 MiB default.
    cursor.execute("PRAGMA cache_size=-262144")
    cursor.close()
