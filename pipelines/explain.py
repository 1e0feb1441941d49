"""``neurosym explain``: what a run concluded about its test groups, read back from the store.

>>> with Store.open("runs/neurosym.sqlite") as store:                # doctest: +SKIP
...     print(render(explain(store, 1, wrong=True), "table", store))

Each group shows its inputs (the values of the input variables: the digits the model read), its latent
values and its label, predicted against true, each value with its probability; entities are shown by
their ``rdfs:label`` where the KG gives one (``arith:n7`` is ``7``). The explanations are written by
``encode`` (``pipelines/explain_step.py``); the formats are ``table``, ``json`` and ``turtle`` (the
explanations' own triples, as in the run's named graph).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

from kg.errors import KGError
from kg.sql.explanations import GroupExplanation
from kg.store import Store

FORMATS = ("table", "json", "turtle")


def explain(store: Store, run_id: int, groups: Sequence[int] = (), wrong: bool = False) -> list[GroupExplanation]:
    """The explanations of a run's test ``groups`` (all when empty; only wrong predictions with
    ``wrong``). A run without explanations is one error saying why."""
    if store.explanation_count(run_id) == 0:
        config = next((r["config"] for r in store.runs(include_incomplete=True) if r["id"] == run_id), {}) or {}
        task = config.get("task") or {}
        if not task.get("knowledge") and not task.get("query"):
            raise KGError(f"run {run_id} has no task program or query to explain its predictions by")
        raise KGError(f"run {run_id} has no explanations (it was encoded before encode wrote them); "
                      "encode its run folder again: neurosym encode RUN_DIR")
    return store.explanations(run_id, list(groups) or None, wrong)


def render(explained: list[GroupExplanation], format: str, store: Store, run_id: int) -> str:
    """The explanations as text in one of ``FORMATS``."""
    if format == "json":
        return json.dumps([asdict(e) for e in explained], indent=2)
    if format == "turtle":
        return store.explanations_rdf(run_id, [e.group for e in explained], "turtle")
    if format != "table":
        raise KGError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    names = {iri: label for iri, label in store.entities() if label}
    return "\n".join(_table(e, names) for e in explained)


def failures_html(store: Store, run_id: int, limit: int = 20) -> str:
    """The report's section on explained failures: how many test groups are wrong, and for the first
    ``limit`` of them the label, predicted against true, and every value behind it that differs from
    the one the true inputs imply, with its probability."""
    import html

    esc = html.escape
    total = store.explanation_count(run_id)
    if not total:
        return "<h2>Explained failures</h2><p>The run has no explanations (its task has no program or query, or it was encoded before encode wrote them).</p>"
    wrong = store.explanations(run_id, wrong=True)
    names = {iri: label for iri, label in store.entities() if label}

    def show(value: str | None) -> str:
        return esc("?" if value is None else names.get(value, value))

    parts = [f"<h2>Explained failures</h2><p>{len(wrong)} of {total} explained test groups are predicted wrong"
             f"{f'; the first {limit}' if len(wrong) > limit else ''}. Each differing value: explained "
             "(probability) / implied by the true inputs. <code>neurosym explain RUN --wrong</code> lists them all.</p>",
             "<table><tr><th>group</th><th>predicted</th><th>true</th><th>latent values that differ</th>"
             "<th>inputs read differently</th></tr>"]
    for e in wrong[:limit]:
        label = [b for b in e.bindings if b.role == "label"]
        cells = []
        for role in ("latent", "input"):
            cells.append(", ".join(f"{esc(b.variable)}: {show(b.value)} ({b.probability:.2f}) / {show(b.true_value)}"
                                   for b in e.bindings if b.role == role and b.true_value not in (None, b.value)))
        parts.append(f"<tr><td>{e.group}</td><td>{' '.join(show(b.value) for b in label)}</td>"
                     f"<td>{' '.join(show(b.true_value) for b in label)}</td><td>{cells[0]}</td><td>{cells[1]}</td></tr>")
    parts.append("</table>")
    return "\n".join(parts)


def _table(e: GroupExplanation, names: dict[str, str]) -> str:
    def show(value: str | None) -> str:
        return "?" if value is None else names.get(value, value)

    verdict = {True: "right", False: "WRONG", None: "truth unknown"}[e.correct]
    label = [b for b in e.bindings if b.role == "label"]
    lines = [f"group {e.group}: {verdict}; predicted {' '.join(show(b.value) for b in label)}"
             + ("" if e.correct is None else f", true {' '.join(show(b.true_value) for b in label)}")]
    width = max(len(b.variable) for b in e.bindings)
    for role, title in (("input", "inputs"), ("latent", "latent"), ("label", "label")):
        rows = [b for b in e.bindings if b.role == role]
        if not rows:
            continue
        lines.append(f"  {title}:")
        for b in rows:
            differs = b.true_value is not None and b.true_value != b.value
            true = f"  true {show(b.true_value)}" if differs else ""
            lines.append(f"    {b.variable:<{width}}  {show(b.value):>6}  p={b.probability:.3f}{true}")
    lines.append(f"  members: {' '.join(m.rsplit('/', 1)[-1] for m in e.members)}")
    return "\n".join(lines)
