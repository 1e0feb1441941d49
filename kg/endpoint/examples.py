"""Example queries written for the store at hand, for the endpoint's query page.

Each example names what the store holds (its most used predicates and classes, its latest run, the
entity with most inputs), so that every one answers with rows on any KG; an example whose ingredient
is missing (no runs, no typed entities, no explanations) is left out; where a run has explanations,
three examples ask about them (wrong predictions, predicted labels, accuracy per variable). Everything is read from SQL with one indexed
query each, so that building the page costs milliseconds even beside a million assignments.
"""

from __future__ import annotations

import re

from sqlalchemy import text

from kg.rdf.prefixes import RDF_TYPE
from kg.rdf.vocab import PREFIXES

_LOCAL = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def short(iri: str) -> str:
    """``prefix:local`` where a predeclared prefix fits, else ``<iri>``."""
    for prefix, base in PREFIXES.items():
        if iri.startswith(base) and _LOCAL.fullmatch(iri[len(base):]):
            return f"{prefix}:{iri[len(base):]}"
    return f"<{iri}>"


def example_queries(store, limit: int = 20) -> dict[str, str]:
    """Name -> SPARQL text of the examples that fit ``store`` (a ``kg.store.Store``)."""
    examples: dict[str, str] = {}
    with store.engine.connect() as conn:
        predicates = [p for (p,) in conn.execute(text(
            "SELECT p FROM triple WHERE p <> :type GROUP BY p ORDER BY COUNT(*) DESC, p LIMIT 2"), {"type": RDF_TYPE})]
        classes = [c for (c,) in conn.execute(text(
            "SELECT o FROM triple WHERE p = :type AND o_kind = 'iri' GROUP BY o ORDER BY COUNT(*) DESC, o LIMIT 1"),
            {"type": RDF_TYPE})]
        run = conn.execute(text("SELECT MAX(id) FROM run WHERE complete")).scalar()
        explained = conn.execute(text(
            "SELECT MAX(e.run_id) FROM explanation e JOIN run r ON r.id = e.run_id WHERE r.complete")).scalar()
        entity = None
        if run is not None:
            entity = conn.execute(text(
                "SELECT e.iri FROM code c JOIN entity e ON e.id = c.entity_id WHERE c.run_id = :run"
                " ORDER BY c.usage DESC, e.iri LIMIT 1"), {"run": run}).scalar()
    for predicate in predicates:
        examples[f"facts: {short(predicate)}"] = f"SELECT ?s ?o WHERE {{ ?s {short(predicate)} ?o }} LIMIT {limit}"
    if classes:
        examples[f"members of {short(classes[0])}"] = (
            f"SELECT ?x ?label WHERE {{\n  ?x a {short(classes[0])} .\n  OPTIONAL {{ ?x rdfs:label ?label }}\n}} LIMIT {limit}")
    examples["classes"] = "SELECT ?class (COUNT(?x) AS ?members) WHERE { ?x a ?class }\nGROUP BY ?class ORDER BY DESC(?members) LIMIT 20"
    if run is not None:
        examples["runs"] = ("SELECT ?run ?label ?seed ?started WHERE {\n  ?run a ns:Run ; rdfs:label ?label ; ns:seed ?seed ;"
                            " prov:startedAtTime ?started .\n} ORDER BY DESC(?started)")
        examples[f"codebook of run {run}"] = (
            f"SELECT ?notation ?match ?entity WHERE {{\n  run:{run} ns:codebook ?codebook .\n"
            "  ?code skos:inScheme ?codebook ; skos:notation ?notation .\n"
            "  OPTIONAL { ?code ?match ?entity FILTER(?match IN (skos:exactMatch, skos:closeMatch)) }\n} ORDER BY ?notation")
        examples["inputs per concept"] = (
            "SELECT ?entity (COUNT(?input) AS ?inputs) WHERE { ?input ns:hasConcept ?entity }\n"
            "GROUP BY ?entity ORDER BY DESC(?inputs)")
    if explained is not None:
        examples.update(explanation_queries(explained, limit))
    if entity is not None:
        examples[f"most confident inputs of {short(entity)}"] = (
            f"SELECT ?input ?confidence WHERE {{\n  ?a ns:entity {short(entity)} ; ns:confidence ?confidence ; ns:input ?input .\n"
            "} ORDER BY DESC(?confidence) LIMIT 10")
    return examples


def explanation_queries(run: int, limit: int = 20) -> dict[str, str]:
    """Examples over the explanations of ``run`` (the bundled queries 06-08, for one run)."""
    return {
        f"wrong predictions of run {run}, with the values that differ": (
            f"SELECT ?group ?variable ?role ?value ?probability ?true WHERE {{\n"
            f"  ?x ns:correct false ; ns:group ?group ; prov:wasGeneratedBy run:{run} ; ns:binding ?b .\n"
            "  ?b ns:variable ?v ; ns:value ?value ; ns:probability ?probability ; ns:trueValue ?true .\n"
            "  ?v rdfs:label ?variable ; ns:role ?role .\n"
            f"  FILTER(?value != ?true && ?role != \"label\")\n}} ORDER BY ?group DESC(?role) ?variable LIMIT {limit * 5}"),
        f"predicted labels of run {run}": (
            f"SELECT ?group ?variable ?predicted ?probability ?true ?correct WHERE {{\n"
            f"  ?x ns:group ?group ; prov:wasGeneratedBy run:{run} ; ns:correct ?correct ; ns:binding ?b .\n"
            "  ?b ns:variable ?v ; ns:value ?predicted ; ns:probability ?probability ; ns:trueValue ?true .\n"
            f"  ?v ns:role \"label\" ; rdfs:label ?variable .\n}} ORDER BY ?group ?variable LIMIT {limit * 5}"),
        f"accuracy per variable of run {run}": (
            "SELECT ?role ?variable (AVG(IF(?value = ?true, 1.0, 0.0)) AS ?accuracy) WHERE {\n"
            f"  ?x prov:wasGeneratedBy run:{run} ; ns:binding ?b .\n"
            "  ?b ns:variable ?v ; ns:value ?value ; ns:trueValue ?true .\n"
            "  ?v rdfs:label ?variable ; ns:role ?role .\n} GROUP BY ?role ?variable ORDER BY ?role ?variable"),
    }
