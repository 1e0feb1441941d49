"""The front door: ``run(config) -> PipelineResult`` chains load -> train -> encode -> align -> rules.

Every step is also a function of its own (``pipelines.train_step.train``, ``encode_step.encode``,
``align_step.align``, ``rules_step.apply_rules``) and a CLI subcommand. ``demo`` runs the bundled
digit-addition config into a folder and returns a printable summary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from kg.store import Store
from pipelines.align_step import AlignOutcome, align
from pipelines.config import ExperimentConfig, resolve_path
from pipelines.encode_step import encode
from pipelines.rules_step import RulesOutcome, apply_rules
from pipelines.run_folder import RunResult
from pipelines.train_step import prepare_task, train

DEMO_QUERIES = {
    "test images whose concept is a prime (transitive subClassOf), most confident first": """
        SELECT ?image ?digit ?confidence WHERE {
          ?image ns:hasConcept ?digit .
          ?digit a/rdfs:subClassOf* arith:Prime .
          ?a ns:input ?image ; ns:entity ?digit ; ns:confidence ?confidence .
          FILTER(STRSTARTS(STR(?image), "https://w3id.org/neurosym/input/digits/test/"))
        } ORDER BY DESC(?confidence) LIMIT 5""",
    "images per concept (top symbol)": """
        SELECT ?digit (COUNT(?image) AS ?images) WHERE { ?image ns:hasConcept ?digit }
        GROUP BY ?digit ORDER BY ?digit""",
    "test pairs the rules derived as 'both prime'": """
        SELECT (COUNT(?pair) AS ?pairs) WHERE { ?pair a ns:BothPrimePair }""",
}


@dataclass
class PipelineResult:
    """What ``run`` did: the run folder and store run, each step's outcome and timing."""

    config: ExperimentConfig
    run_dir: Path
    store_url: str
    run_id: int
    trained: RunResult
    aligned: AlignOutcome
    rules: RulesOutcome | None
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict:
        metrics = self.trained.metrics
        return {
            "run_id": self.run_id,
            "run_dir": str(self.run_dir),
            "store": self.store_url,
            "label_acc": round(metrics.get("label_acc", float("nan")), 4),
            "concept_acc": round(metrics.get("concept_acc", float("nan")), 4),
            "concept_acc_hungarian": round(metrics.get("concept_acc_hungarian", float("nan")), 4),
            "codebook_usage": round(metrics.get("train_codebook_usage", float("nan")), 4),
            "codebook_perplexity": round(metrics.get("train_codebook_perplexity", float("nan")), 3),
            "alignment_method": self.aligned.alignment.method,
            "alignment_acc": round(self.aligned.accuracy, 4),
            "aligned_concept_acc": round(self.aligned.concept_acc, 4),
            "derived_facts": self.rules.derived if self.rules else 0,
            **({"trap_verdict": self.trained.extra["trap"]["verdict"]} if "trap" in self.trained.extra else {}),
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }


def run(config: ExperimentConfig, base: Path | None, store: Store, run_dir: str | Path,
        progress: bool = True, resume: bool = True, device: str | None = None) -> PipelineResult:
    """Run every step of the experiment against ``store``; the run folder gets ``pipeline.json``."""
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = now - clock
        clock = now

    prepared = prepare_task(config, base, store)
    lap("load")
    trained = train(config, base, store, run_dir, progress=progress, resume=resume, prepared=prepared)
    lap("train")
    encoded = encode(config, prepared, run_dir, store, device=device or config.train.device)
    lap("encode")
    aligned = align(config, prepared, encoded, store)
    lap("align")
    rules = None
    if config.steps.rules:
        rules = apply_rules(store, [resolve_path(p, base) for p in config.steps.rules], encoded.run_id)
    lap("rules")
    store.sync_rdf()
    lap("rdf_sync")
    result = PipelineResult(config, Path(run_dir), str(store.engine.url), encoded.run_id, trained, aligned, rules, seconds)
    trained.extra.update({"store_run_id": encoded.run_id, "alignment": aligned.alignment.to_json(),
                          "alignment_acc": aligned.accuracy, "pipeline": result.summary()})
    trained.save()
    return result


def demo_queries(store: Store) -> dict[str, str]:
    """The demo's three example queries and their answers as text tables."""
    return {title: store.sparql(query).serialize("table") for title, query in DEMO_QUERIES.items()}
