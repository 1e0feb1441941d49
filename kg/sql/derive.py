"""What RDF the SQL rows become: the N-Quads of each named graph of the view (and of exports).

A KG graph is its ``triple`` rows. A run's graph (named by the run IRI) holds:

- the run: ``ns:Run`` / ``prov:Activity`` with label, seed, config, code version, checkpoint;
- its codebook: a ``skos:ConceptScheme``; each code a ``skos:Concept`` with ``skos:notation``, norm,
  usage and ``skos:exactMatch`` (confidence >= 0.5) or ``skos:closeMatch`` to its chosen entity;
- each alignment as an ``ns:Alignment`` node (code, entity, confidence, method);
- each assignment as a node per (input, slot[, rank]) with ``ns:input``, ``ns:code``, ``ns:entity``
  (the code's chosen entity), ``ns:confidence`` (``xsd:double``), and ``ns:slot`` / ``ns:rank`` when
  not 0; plus the shortcut ``input ns:hasConcept entity`` for the top symbol (rank 0);
- the explanations of its test groups (``ns:Explanation``, their bindings and the ``ns:Variable`` nodes
  they bind; see ``kg/sql/explanations.py``).

Assignment nodes carry no ``rdf:type`` triple (their type follows from ``rdfs:domain`` of ``ns:input``),
and no ``ns:slot 0``: Oxigraph indexes each quad of a named graph six ways, about 9 µs per quad on two
cores, so at a million rows every triple per row costs about 9 s of build time (``VOCABULARY`` 2 dropped
the slot-0 triple, a sixth of a single-slot run's view).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from sqlalchemy import Connection, select

from kg.rdf import vocab
from kg.rdf.terms import nt_literal, nt_term
from kg.sql.explanations import explanation_lines
from kg.sql.schema import Alignment, Assignment, Code, Entity, Input, Run, Triple
from kg.rdf.prefixes import PROV_NS, RDF_NS, RDFS_NS, SKOS_NS, XSD_NS

_NS = str(vocab.NS)

#: Version of what the view derives from the tables; a view built under another one is rebuilt.
#: 1: every assignment node had ``ns:slot``; 2: ``ns:slot`` only when not 0 (like ``ns:rank``).
VOCABULARY = 2


def graph_tail(graph: str | None) -> str:
    """The end of each line: `` <graph> .`` for N-Quads, `` .`` for N-Triples (graph None)."""
    return f" <{graph}> .\n" if graph else " .\n"


def kg_lines(conn: Connection, graph: str, tail: str) -> Iterator[str]:
    """The lines of one KG graph, from its ``triple`` rows."""
    rows = conn.execute(
        select(Triple.s, Triple.s_kind, Triple.p, Triple.o, Triple.o_kind, Triple.o_datatype, Triple.o_lang)
        .where(Triple.graph == graph)
        .order_by(Triple.id)
    )
    for s, s_kind, p, o, o_kind, o_datatype, o_lang in rows:
        yield f"{nt_term(s, s_kind)} <{p}> {nt_term(o, o_kind, o_datatype, o_lang)}{tail}"


def run_lines(conn: Connection, run_id: int, tail: str, batch: int = 100_000) -> Iterator[str]:
    """The lines of one run's graph (run, codebook, codes, alignments, assignments), streamed."""
    run = conn.execute(select(Run).where(Run.id == run_id)).one()
    r = f"<{vocab.run_iri(run_id)}>"
    cb = f"<{vocab.codebook_iri(run_id)}>"
    yield f"{r} <{RDF_NS}type> <{_NS}Run>{tail}"
    yield f"{r} <{RDF_NS}type> <{PROV_NS}Activity>{tail}"
    yield f"{r} <{RDFS_NS}label> {nt_literal(run.name)}{tail}"
    yield f"{r} <{_NS}seed> {nt_literal(int(run.seed))}{tail}"
    yield f"{r} <{_NS}config> {nt_literal(json.dumps(run.config, sort_keys=True))}{tail}"
    yield f"{r} <{_NS}codeVersion> {nt_literal(run.code_version)}{tail}"
    if run.checkpoint_path:
        yield f"{r} <{_NS}checkpoint> {nt_literal(run.checkpoint_path)}{tail}"
    if run.checkpoint_hash:
        yield f"{r} <{_NS}checkpointHash> {nt_literal(run.checkpoint_hash)}{tail}"
    created = run.created.isoformat() if run.created else None
    if created:
        yield f'{r} <{PROV_NS}startedAtTime> "{created}"^^<{XSD_NS}dateTime>{tail}'
    yield f"{r} <{_NS}codebook> {cb}{tail}"
    yield f"{cb} <{RDF_NS}type> <{SKOS_NS}ConceptScheme>{tail}"
    yield f"{cb} <{RDFS_NS}label> {nt_literal(f'codebook of run {run_id}')}{tail}"
    yield f"{cb} <{PROV_NS}wasGeneratedBy> {r}{tail}"

    # code index -> (code IRI term, entity IRI term or None)
    codes: dict[int, tuple[str, str | None]] = {}
    for idx, norm, usage, entity_iri, entity_conf in conn.execute(
        select(Code.idx, Code.norm, Code.usage, Entity.iri, Code.entity_confidence)
        .outerjoin(Entity, Entity.id == Code.entity_id)
        .where(Code.run_id == run_id)
        .order_by(Code.idx)
    ):
        c = f"<{vocab.code_iri(run_id, idx)}>"
        e = f"<{entity_iri}>" if entity_iri else None
        codes[idx] = (c, e)
        yield f"{c} <{RDF_NS}type> <{SKOS_NS}Concept>{tail}"
        yield f"{c} <{SKOS_NS}inScheme> {cb}{tail}"
        yield f"{c} <{SKOS_NS}notation> {nt_literal(int(idx))}{tail}"
        yield f"{c} <{_NS}norm> {nt_literal(float(norm))}{tail}"
        yield f"{c} <{_NS}usage> {nt_literal(float(usage))}{tail}"
        if e:
            match = "exactMatch" if entity_conf >= vocab.EXACT_MATCH_THRESHOLD else "closeMatch"
            yield f"{c} <{SKOS_NS}{match}> {e}{tail}"

    for idx, entity_id, entity_iri, method, conf in conn.execute(
        select(Alignment.code, Alignment.entity_id, Entity.iri, Alignment.method, Alignment.confidence)
        .join(Entity, Entity.id == Alignment.entity_id)
        .where(Alignment.run_id == run_id)
        .order_by(Alignment.code, Alignment.entity_id, Alignment.method)
    ):
        al = f"<{vocab.alignment_iri(run_id, idx, entity_id, method)}>"
        yield f"{al} <{RDF_NS}type> <{_NS}Alignment>{tail}"
        yield f"{al} <{_NS}code> {codes[idx][0]}{tail}"
        yield f"{al} <{_NS}entity> <{entity_iri}>{tail}"
        yield f"{al} <{_NS}confidence> {nt_literal(float(conf))}{tail}"
        yield f"{al} <{_NS}method> {nt_literal(method)}{tail}"
        yield f"{al} <{PROV_NS}wasGeneratedBy> {r}{tail}"

    yield from _assignment_lines(conn, run_id, codes, tail, batch)
    yield from explanation_lines(conn, run_id, tail, batch=batch)


def _assignment_lines(
    conn: Connection, run_id: int, codes: dict[int, tuple[str, str | None]], tail: str, batch: int
) -> Iterator[str]:
    # The hot loop of a view build (one iteration per assignment): constant parts are hoisted, and one
    # f-string emits all lines of a row; the IRIs come from kg.rdf.vocab, their one home.
    p_input, p_slot, p_rank = f"<{_NS}input>", f"<{_NS}slot>", f"<{_NS}rank>"
    p_code, p_entity, p_conf, p_has = f"<{_NS}code>", f"<{_NS}entity>", f"<{_NS}confidence>", f"<{_NS}hasConcept>"
    integer, double = f"^^<{XSD_NS}integer>", f"^^<{XSD_NS}double>"
    prefixes: dict[tuple[str, str], str] = {}
    result = conn.execution_options(yield_per=batch).execute(
        select(
            Assignment.input_id, Assignment.slot, Assignment.rank, Assignment.code, Assignment.confidence,
            Input.dataset, Input.split, Input.key,
        )
        .join(Input, Input.id == Assignment.input_id)
        .where(Assignment.run_id == run_id)
    )
    for rows in result.partitions():
        out = []
        for input_id, slot, rank, code, conf, dataset, split, key in rows:
            prefix = prefixes.get((dataset, split))
            if prefix is None:
                prefix = prefixes[(dataset, split)] = vocab.input_iri(dataset, split, "")
            i = f"<{prefix}{vocab.iri_segment(key)}>"
            c, e = codes[code]
            a = f"<{vocab.assignment_iri(run_id, input_id, slot, rank)}>"
            line = f"{a} {p_input} {i}{tail}{a} {p_code} {c}{tail}{a} {p_conf} \"{conf!r}\"{double}{tail}"
            if slot:
                line += f"{a} {p_slot} \"{slot}\"{integer}{tail}"
            if rank:
                line += f"{a} {p_rank} \"{rank}\"{integer}{tail}"
            if e:
                line += f"{a} {p_entity} {e}{tail}"
                if rank == 0:
                    line += f"{i} {p_has} {e}{tail}"
            out.append(line)
        yield "".join(out)
