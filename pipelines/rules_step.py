"""Pipeline step *rules*: evaluate Horn rules over the KG and a run's symbols, store what they derive.

Each rule's derived triples go to their own named graph, ``graph:rules/run-{id}/{rule_id}``
(``graph:rules/{rule_id}`` without a run), with the derivation's confidence in SQL. The fixpoint is
computed before anything is written, and all graphs are written in one transaction, so a bad rule set
or a kill leaves the store unchanged; applying the same rules again replaces each rule's graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kg.rules.facts import rule_facts
from kg.rules.engine import RuleSet, evaluate, load_rules
from kg.store import Store
from kg.rdf.vocab import rules_graph


@dataclass
class RulesOutcome:
    derived: int
    per_rule: dict[str, int]
    iterations: int
    seconds: float


def apply_rules(store: Store, paths: list[str | Path], run_id: int | None = None, combine: str = "product",
                max_iterations: int = 100) -> RulesOutcome:
    """Load rule files, evaluate them to a fixpoint, and write the derived triples per rule."""
    if run_id is None:
        runs = store.runs()
        run_id = runs[-1]["id"] if runs else None
    if not paths:
        raise ValueError("no rule files given")
    loaded = [load_rules(path) for path in paths]
    rules = RuleSet(
        rules=[rule for ruleset in loaded for rule in ruleset],
        prefixes={k: v for ruleset in loaded for k, v in ruleset.prefixes.items()},
        declared={k: v for ruleset in loaded for k, v in ruleset.declared.items()},
        source=", ".join(str(p) for p in paths),
    )
    predicates = {atom.predicate for rule in rules for atom in rule.body}
    # The graphs this apply replaces are left out of its premises: read back, the facts a previous apply
    # derived would count as known, nothing would be new, and the replace would empty those graphs.
    own = [rules_graph(rule.id, run_id) for rule in rules]
    facts = rule_facts(store, predicates, run_id, exclude_graphs=own)
    result = evaluate(rules, facts, combine=combine, max_iterations=max_iterations)
    by_rule: dict[str, list] = {rule.id: [] for rule in rules}
    for s, p, o, confidence, rule_id in result.derived:
        by_rule[rule_id].append((s, p, o, confidence))
    # Everything is derived before anything is written, and all rules' graphs are written in one
    # transaction: a failing rule set or a killed process leaves the store as it was.
    store.replace_graphs({
        rules_graph(rule_id, run_id): ([(s, p, o) for s, p, o, _ in facts], [c for *_, c in facts])
        for rule_id, facts in by_rule.items()
    })
    return RulesOutcome(len(result.derived), {k: len(v) for k, v in by_rule.items()}, result.iterations, result.seconds)
