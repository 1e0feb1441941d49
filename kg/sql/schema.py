"""The SQL schema of the knowledge store (SQLAlchemy 2.x declarative, one schema for SQLite and PostgreSQL).

Tables: ``entity`` (KG entities), ``triple`` (KG facts with a graph name), ``run``, ``code``, ``input``,
``assignment`` (run, input, slot, rank -> code, confidence), ``alignment`` (run, code -> entity,
confidence, method), the explanations of a run's test groups (``explanation``, ``explained_variable``,
``explained_value``: see ``kg/sql/explanations.py``), plus ``meta`` (schema version, store id) and ``graph_version`` (a counter per
named graph, bumped by every write, that the RDF view compares with its own to know what to rebuild).
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    DateTime,
    Boolean,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Bumped whenever a table or column changes; ``Store.open`` refuses a store with another version.
SCHEMA_VERSION = 3


class Base(DeclarativeBase):
    """Declarative base of all store tables."""


class Meta(Base):
    """Key/value facts about the store itself: ``schema_version``, ``store_id``."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class GraphVersion(Base):
    """Write counter of one named graph of the RDF view (a KG graph or a run's graph)."""

    __tablename__ = "graph_version"
    graph: Mapped[str] = mapped_column(String(512), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class Entity(Base):
    """A KG entity (an IRI that a loaded graph labels or types), the target of alignments."""

    __tablename__ = "entity"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    iri: Mapped[str] = mapped_column(String(1024), unique=True)
    label: Mapped[str | None] = mapped_column(Text)


class Triple(Base):
    """One KG fact in a named graph. Terms are kept as RDF terms: kind ``iri``/``bnode``/``literal``,
    with a literal's lexical form, datatype IRI and language tag ('' when absent, so that the
    uniqueness constraint also holds for plain literals)."""

    __tablename__ = "triple"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    graph: Mapped[str] = mapped_column(String(512))
    s: Mapped[str] = mapped_column(Text)
    s_kind: Mapped[str] = mapped_column(String(8))
    p: Mapped[str] = mapped_column(Text)
    o: Mapped[str] = mapped_column(Text)
    o_kind: Mapped[str] = mapped_column(String(8))
    o_datatype: Mapped[str] = mapped_column(String(512), default="")
    o_lang: Mapped[str] = mapped_column(String(64), default="")
    confidence: Mapped[float | None] = mapped_column(Float)
    __table_args__ = (
        UniqueConstraint("graph", "s", "s_kind", "p", "o", "o_kind", "o_datatype", "o_lang", name="uq_triple"),
        Index("ix_triple_p_o", "p", "o"),
    )


class Run(Base):
    """One model run: what produced the symbols (config, seed, code version, checkpoint), and whether
    all of it has been written."""

    __tablename__ = "run"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    config: Mapped[dict] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(Integer)
    code_version: Mapped[str] = mapped_column(String(128))
    checkpoint_path: Mapped[str | None] = mapped_column(Text)
    checkpoint_hash: Mapped[str | None] = mapped_column(String(128))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=lambda: datetime.now(timezone.utc))
    # False until the command writing the run has written all of it: incomplete runs are hidden from
    # the RDF view, listings and exports, and ``neurosym runs prune`` removes them (a killed encode).
    complete: Mapped[bool] = mapped_column(Boolean, default=False)


class Code(Base):
    """One codebook entry of a run. ``entity_id``/``entity_confidence`` cache the chosen alignment
    (the most confident one), which the RDF view and the SQL answers use as the code's concept."""

    __tablename__ = "code"
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    norm: Mapped[float] = mapped_column(Float)
    usage: Mapped[float] = mapped_column(Float)
    entity_id: Mapped[int | None] = mapped_column(ForeignKey("entity.id"))
    entity_confidence: Mapped[float | None] = mapped_column(Float)


class Input(Base):
    """One input item, identified by (dataset, split, key)."""

    __tablename__ = "input"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset: Mapped[str] = mapped_column(String(128))
    split: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(512))
    __table_args__ = (UniqueConstraint("dataset", "split", "key", name="uq_input"),)


class Assignment(Base):
    """The code a run gave one (input, slot); ``rank`` 0 is the top symbol, 1.. the next top-k ones."""

    __tablename__ = "assignment"
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    input_id: Mapped[int] = mapped_column(ForeignKey("input.id"), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True, default=0)
    code: Mapped[int] = mapped_column(Integer)
    confidence: Mapped[float] = mapped_column(Float)
    # Covers "inputs of a code above a confidence" and "top inputs of a code" without touching rows.
    # WITHOUT ROWID on SQLite: the primary key is the table, one B-tree less to fill on bulk inserts.
    __table_args__ = (
        Index("ix_assignment_code", "run_id", "rank", "code", "confidence"),
        {"sqlite_with_rowid": False},
    )


class Alignment(Base):
    """A mapping of one code of a run to a KG entity, with its confidence and the method that found it."""

    __tablename__ = "alignment"
    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entity.id"), primary_key=True)
    method: Mapped[str] = mapped_column(String(64), primary_key=True)
    confidence: Mapped[float] = mapped_column(Float)
    __table_args__ = (
        ForeignKeyConstraint(["run_id", "code"], ["code.run_id", "code.idx"], ondelete="CASCADE"),
    )


class Explanation(Base):
    """One explained test group of a run: its members (input ids, in the order of the input variables)
    and whether the predicted label equals the true one (None where the dataset does not know it)."""

    __tablename__ = "explanation"
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    group_idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    members: Mapped[list] = mapped_column(JSON)
    correct: Mapped[bool | None] = mapped_column(Boolean)


class ExplainedVariable(Base):
    """One variable of the knowledge a run's explanations bind, numbered by ``position``: its name, its
    ``role`` (``input``, ``latent``, ``label``), the relation columns it fills, the member it reads
    (input variables) and the variable filling the same column of the next atom of the same relation."""

    __tablename__ = "explained_variable"
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    columns: Mapped[list] = mapped_column(JSON)
    member: Mapped[int | None] = mapped_column(Integer)
    next_position: Mapped[int | None] = mapped_column(Integer)


class ExplainedValue(Base):
    """The value (an entity IRI) a group's explanation gives one variable, its probability, and the value
    the group's true inputs imply (None where unknown)."""

    __tablename__ = "explained_value"
    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    probability: Mapped[float] = mapped_column(Float)
    true_value: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        ForeignKeyConstraint(["run_id", "group_idx"], ["explanation.run_id", "explanation.group_idx"], ondelete="CASCADE"),
        {"sqlite_with_rowid": False},
    )


def migrate(conn, found: int) -> bool:
    """Bring a store of an older schema version up to ``SCHEMA_VERSION`` in place; False if it cannot.

    Tables new in a version (3: the explanation tables) are made by ``create_all`` before this runs."""
    if found == 1:
        # Version 1 had no run.complete: its runs were written before incomplete runs existed.
        conn.exec_driver_sql("ALTER TABLE run ADD COLUMN complete BOOLEAN NOT NULL DEFAULT TRUE")
    return found in (1, 2)
