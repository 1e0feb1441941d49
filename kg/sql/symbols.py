"""Runs and their symbols in SQL: create, fill (codes, inputs, assignments, alignments), finish, delete.

A run is written by several calls (an encode writes a million assignments in batches), so it is
created *incomplete* and marked complete by ``finish_run`` when its writer is done. Until then the RDF
view, ``Store.runs`` and exports do not show it; a writer killed half-way leaves an incomplete run
that ``delete_runs(incomplete=True)`` (``neurosym runs prune``) removes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from kg.rdf import vocab
from kg.errors import KGError, UnknownEntityError
from kg.sql.schema import Alignment, Assignment, Code, Entity, GraphVersion, Input, Run, Triple
from kg.sql.explanations import delete_explanations
from kg.sql.writes import as_array, bump, check_run, insert_rows


def create_run(engine: Engine, name: str, config: dict, seed: int, code_version: str,
               checkpoint_path: str | None, checkpoint_hash: str | None, complete: bool) -> int:
    try:
        config = json.loads(json.dumps(config))
    except (TypeError, ValueError) as exc:
        raise KGError(f"create_run: config is not JSON-serialisable: {exc}") from None
    with engine.begin() as conn:
        run_id = conn.execute(
            insert(Run).values(
                name=str(name), config=config, seed=int(seed), code_version=str(code_version),
                checkpoint_path=None if checkpoint_path is None else str(checkpoint_path),
                checkpoint_hash=checkpoint_hash, complete=bool(complete),
            )
        ).inserted_primary_key[0]
        bump(conn, vocab.run_iri(run_id))
    return int(run_id)


def set_complete(engine: Engine, run_id: int, complete: bool) -> None:
    with engine.begin() as conn:
        check_run(conn, run_id)
        conn.execute(update(Run).where(Run.id == int(run_id)).values(complete=bool(complete)))
        bump(conn, vocab.run_iri(run_id))


def delete_runs(engine: Engine, run_ids: Sequence[int] | None = None, incomplete: bool = False) -> list[int]:
    """Delete runs (given ids, or all incomplete ones) with their codes, assignments, alignments,
    explanations and rule graphs, in one transaction; returns the ids deleted."""
    with engine.begin() as conn:
        if incomplete:
            ids = [r for (r,) in conn.execute(select(Run.id).where(Run.complete.is_(False)).order_by(Run.id))]
        else:
            ids = [int(r) for r in run_ids or []]
            for run_id in ids:
                check_run(conn, run_id)
        for run_id in ids:
            delete_explanations(conn, run_id)
            conn.execute(delete(Assignment).where(Assignment.run_id == run_id))
            conn.execute(delete(Alignment).where(Alignment.run_id == run_id))
            conn.execute(delete(Code).where(Code.run_id == run_id))
            conn.execute(delete(Run).where(Run.id == run_id))
            prefix = vocab.run_rules_graphs(run_id)
            conn.execute(delete(Triple).where(Triple.graph.startswith(prefix, autoescape=True)))
            # No counter means no graph: the view drops these graphs on its next sync.
            conn.execute(delete(GraphVersion).where(GraphVersion.graph.startswith(prefix, autoescape=True)))
            conn.execute(delete(GraphVersion).where(GraphVersion.graph == vocab.run_iri(run_id)))
    return ids


def add_codes(engine: Engine, run_id: int, index, norm, usage) -> None:
    index = as_array("index", index, np.int64)
    norm = as_array("norm", norm, np.float64, len(index))
    usage = as_array("usage", usage, np.float64, len(index))
    if len(np.unique(index)) != len(index):
        raise KGError("add_codes: index holds duplicates")
    rows = [(int(run_id), i, n, u) for i, n, u in zip(index.tolist(), norm.tolist(), usage.tolist())]
    with engine.begin() as conn:
        check_run(conn, run_id)
        try:
            insert_rows(conn, Code.__table__, ("run_id", "idx", "norm", "usage"), rows)
        except IntegrityError:
            raise KGError(f"add_codes: run {run_id} already has some of these codes") from None
        bump(conn, vocab.run_iri(run_id))


def add_inputs(engine: Engine, dataset: str, split: str, keys: Sequence[str], batch_size: int) -> np.ndarray:
    keys = [str(k) for k in keys]
    unique = list(dict.fromkeys(keys))
    # One transaction: two writers minting ids at once wait for each other instead of colliding.
    with engine.begin() as conn:
        known = dict(conn.execute(select(Input.key, Input.id).where(Input.dataset == dataset, Input.split == split)).all())
        next_id = (conn.execute(select(func.max(Input.id))).scalar_one() or 0) + 1
        new_keys = [k for k in unique if k not in known] if known else unique
        new_ids = range(next_id, next_id + len(new_keys))
        rows = list(zip(new_ids, [dataset] * len(new_keys), [split] * len(new_keys), new_keys))
        for start in range(0, len(rows), batch_size):
            insert_rows(conn, Input.__table__, ("id", "dataset", "split", "key"), rows[start : start + batch_size])
    if not known and len(unique) == len(keys):
        # All keys new and distinct: their ids are consecutive, no lookup needed.
        return np.arange(next_id, next_id + len(keys), dtype=np.int64)
    known.update(zip(new_keys, new_ids))
    return np.fromiter((known[k] for k in keys), dtype=np.int64, count=len(keys))


def add_assignments(engine: Engine, run_id: int, input_ids, slot, code, confidence, rank, batch_size: int) -> int:
    input_ids = as_array("input_ids", input_ids, np.int64)
    n = len(input_ids)
    slot = as_array("slot", slot, np.int64, n)
    code = as_array("code", code, np.int64, n)
    confidence = as_array("confidence", confidence, np.float64, n)
    rank = np.zeros(n, dtype=np.int64) if rank is None else as_array("rank", rank, np.int64, n)
    if n and (slot.min() < 0 or rank.min() < 0):
        raise KGError("add_assignments: slot and rank must be >= 0")
    if n and (confidence.min() < 0 or confidence.max() > 1):
        raise KGError("add_assignments: confidence must lie in [0, 1]")
    columns = ("run_id", "input_id", "slot", "rank", "code", "confidence")
    # One transaction for the whole call: SQLite and PostgreSQL hold millions of uncommitted rows
    # without trouble, and a failure or a kill leaves nothing of it behind.
    try:
        with engine.begin() as conn:
            check_run(conn, run_id)
            codes = np.array([c for (c,) in conn.execute(select(Code.idx).where(Code.run_id == int(run_id)))], dtype=np.int64)
            missing = np.setdiff1d(np.unique(code), codes)
            if missing.size:
                raise KGError(f"add_assignments: run {run_id} has no codes {missing[:5].tolist()} (add_codes first)")
            run_col = [int(run_id)] * min(n, batch_size)
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                rows = list(zip(run_col, input_ids[start:stop].tolist(), slot[start:stop].tolist(),
                                rank[start:stop].tolist(), code[start:stop].tolist(), confidence[start:stop].tolist()))
                insert_rows(conn, Assignment.__table__, columns, rows)
            bump(conn, vocab.run_iri(run_id))
    except IntegrityError as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig else "constraint violated"
        raise KGError(f"add_assignments: run {run_id}: {reason} (unknown input id or duplicate (input, slot, rank)); nothing written") from None
    return n


def add_alignments(engine: Engine, run_id: int, code, entity_iri: Sequence[str], confidence, method: str) -> None:
    code = as_array("code", code, np.int64)
    confidence = as_array("confidence", confidence, np.float64, len(code))
    entity_iri = [str(e) for e in entity_iri]
    if len(entity_iri) != len(code):
        raise KGError(f"entity_iri: expected {len(code)} values (one per code), got {len(entity_iri)}")
    method = str(method)
    with engine.begin() as conn:
        check_run(conn, run_id)
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
        insert_rows(conn, Alignment.__table__, ("run_id", "code", "entity_id", "method", "confidence"), rows)
        _choose_concepts(conn, int(run_id))
        bump(conn, vocab.run_iri(run_id))


def _choose_concepts(conn: Connection, run_id: int) -> None:
    best: dict[int, tuple[float, int]] = {}
    for c, e, conf in conn.execute(select(Alignment.code, Alignment.entity_id, Alignment.confidence).where(Alignment.run_id == run_id)):
        if c not in best or (conf, -e) > (best[c][0], -best[c][1]):
            best[c] = (conf, e)
    conn.execute(update(Code).where(Code.run_id == run_id).values(entity_id=None, entity_confidence=None))
    for c, (conf, e) in best.items():
        conn.execute(update(Code).where(Code.run_id == run_id, Code.idx == c).values(entity_id=e, entity_confidence=conf))


def list_runs(engine: Engine, include_incomplete: bool) -> list[dict]:
    query = select(Run).order_by(Run.id)
    if not include_incomplete:
        query = query.where(Run.complete.is_(True))
    with engine.connect() as conn:
        return [
            {"id": r.id, "name": r.name, "config": r.config, "seed": r.seed, "code_version": r.code_version,
             "checkpoint_path": r.checkpoint_path, "checkpoint_hash": r.checkpoint_hash,
             "created": r.created.isoformat() if r.created else None, "complete": bool(r.complete)}
            for r in conn.execute(query)
        ]
