"""Query-answering accuracy: SPARQL questions about the test images over the model's symbols,
scored against the same questions answered from the true labels.

    python bench/query_accuracy.py --seeds 0,1,2 --json PATH

For each seed: train the default digit-addition config, run the pipeline into a fresh store, and
add a *gold* run whose symbols are the true digits. Every question is one SPARQL query with the run
bound as ``?run``; its answer set over the model's run is scored against the gold run's (precision,
recall, F1). Also trains the same network with a task head instead of the constraint (a learned table of
label logits per code pair; its codes are an unknown permutation, ``--head-codes`` of them, more
than the ten digits by default so that the model need not merge two digits into one code) and
reports the share of used codes that label-free alignment maps to the digit their images mostly
show, and how many of the ten digits it recovers. JSON: ``macro_f1``, ``per_question``,
``label_free_alignment_acc``, ``label_free_digits_recovered`` (medians over seeds), and ``seeds``
with each seed's figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rdflib import URIRef

from kg.rdf import vocab
from kg.store import Store
from neurosym.version import code_version
from pipelines.align_step import align
from pipelines.config import load_config
from pipelines.encode_step import encode
from pipelines.run import run
from pipelines.train_step import prepare_task, train
from _output import emit  # noqa: E402  (bench/ is on sys.path when a script runs)

TEST = 'FILTER(STRSTARTS(STR(?img), "https://w3id.org/neurosym/input/digits/test/"))'
PAIR = "?pair ns:first ?x ; ns:second ?y . GRAPH ?run { ?x ns:hasConcept ?a . ?y ns:hasConcept ?b }"


def image_class(cls: str) -> str:
    return f"SELECT ?img WHERE {{ GRAPH ?run {{ ?img ns:hasConcept ?d }} ?d a/rdfs:subClassOf* {cls} . {TEST} }}"


QUESTIONS = {
    "images showing a prime": image_class("arith:Prime"),
    "images showing an even digit": image_class("arith:Even"),
    "images showing an odd digit": image_class("arith:Odd"),
    "images showing a composite": image_class("arith:Composite"),
    "images showing 7": f"SELECT ?img WHERE {{ GRAPH ?run {{ ?img ns:hasConcept arith:n7 }} {TEST} }}",
    "images showing 0": f"SELECT ?img WHERE {{ GRAPH ?run {{ ?img ns:hasConcept arith:n0 }} {TEST} }}",
    "pairs that sum to 10": f"SELECT ?pair WHERE {{ {PAIR} ?f ns:addend1 ?a ; ns:addend2 ?b ; ns:sum arith:n10 }}",
    "pairs whose sum is prime": f"SELECT ?pair WHERE {{ {PAIR} ?f ns:addend1 ?a ; ns:addend2 ?b ; ns:sum ?s . ?s a arith:Prime }}",
    "pairs whose sum exceeds 12": f"SELECT ?pair WHERE {{ {PAIR} ?f ns:addend1 ?a ; ns:addend2 ?b ; ns:sum ?s . arith:n12 ns:lessThan ?s }}",
    "pairs whose second digit succeeds the first": f"SELECT ?pair WHERE {{ {PAIR} ?a ns:successor ?b }}",
    "pairs whose first digit is smaller": f"SELECT ?pair WHERE {{ {PAIR} ?a ns:lessThan ?b }}",
    "pairs of equal digits": f"SELECT ?pair WHERE {{ {PAIR} FILTER(?a = ?b) }}",
    "images showing the successor of test image digit-24's digit": (
        "SELECT ?img WHERE { GRAPH ?run { <https://w3id.org/neurosym/input/digits/test/digit-24> ns:hasConcept ?a . "
        f"?img ns:hasConcept ?b }} ?a ns:successor ?b . {TEST} }}"
    ),
}


def add_gold_run(store: Store, prepared, config) -> int:
    """A run whose symbols are the true labels, aligned code i -> symbol i, for the reference answers."""
    relation = prepared.relation
    run_id = store.create_run("gold-labels", {"source": "true labels"}, config.train.seed, code_version())
    store.add_codes(run_id, np.arange(len(relation.symbols)), np.ones(len(relation.symbols)), np.full(len(relation.symbols), 0.1))
    for split, data, keys in (("train", prepared.train, prepared.train_keys), ("test", prepared.test, prepared.test_keys)):
        ids = store.add_inputs(config.task.dataset, split, keys)
        store.add_assignments(run_id, ids, np.zeros(len(ids), dtype=np.int64), data.symbols.numpy(), np.ones(len(ids)))
    store.add_alignments(run_id, np.arange(len(relation.symbols)), list(relation.symbols), np.ones(len(relation.symbols)), "gold")
    return run_id


def answers(store: Store, query: str, run_id: int) -> set[str]:
    return {str(row[0]) for row in store.sparql(query, {"run": URIRef(vocab.run_iri(run_id))}).rows}


def score(predicted: set[str], gold: set[str]) -> dict[str, float]:
    hits = len(predicted & gold)
    precision = hits / len(predicted) if predicted else float(not gold)
    recall = hits / len(gold) if gold else float(not predicted)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "gold": len(gold), "predicted": len(predicted)}


def label_free_alignment(seed: int, workdir: Path, num_codes: int) -> dict:
    """Train with a task head (no knowledge in the loss), align label-free, score the codes."""
    config, base = load_config(None, **{"train.seed": seed, "task.objective": "head", "steps.align_method": "label_free"})
    config.model.concept.num_codes = num_codes
    with Store.open(workdir / f"head{seed}.sqlite") as store:
        prepared = prepare_task(config, base, store)
        trained = train(config, base, store, workdir / f"head{seed}", progress=False, resume=False, prepared=prepared)
        encoded = encode(config, prepared, workdir / f"head{seed}", store)
        outcome = align(config, prepared, encoded, store)
    return {
        "label_free_alignment_acc": outcome.accuracy,
        "label_free_digits_recovered": outcome.recovered,
        "label_free_codes_used": int(len(set(encoded.splits["train"].codes[:, 0].tolist()))),
        "head_label_acc": trained.metrics["label_acc"],
        "head_concept_acc_via_alignment": outcome.concept_acc,
    }


def run_seed(seed: int, workdir: Path, head_codes: int) -> dict:
    config, base = load_config(None, **{"train.seed": seed})
    with Store.open(workdir / f"seed{seed}.sqlite") as store:
        result = run(config, base, store, workdir / f"seed{seed}", progress=False, resume=False)
        gold = add_gold_run(store, prepare_task(config, base, store), config)
        started = time.perf_counter()
        per_question = {q: score(answers(store, text, result.run_id), answers(store, text, gold)) for q, text in QUESTIONS.items()}
        query_seconds = time.perf_counter() - started
    row = {
        "seed": seed,
        "macro_f1": statistics.mean(s["f1"] for s in per_question.values()),
        "concept_acc": result.trained.metrics["concept_acc"],
        "query_seconds": round(query_seconds, 2),
        "per_question": per_question,
        **label_free_alignment(seed, workdir, head_codes),
    }
    print(json.dumps({k: v for k, v in row.items() if k != "per_question"}), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--json", dest="json_path", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--head-codes", type=int, default=20,
                        help="codebook size K of the head-trained model (more codes than digits: many-to-one)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_seed(int(s), Path(tmp), args.head_codes) for s in args.seeds.split(",")]
    per_question = {
        q: {k: statistics.median(r["per_question"][q][k] for r in rows) for k in ("precision", "recall", "f1")}
        for q in QUESTIONS
    }
    result = {
        "macro_f1": statistics.median(r["macro_f1"] for r in rows),
        "label_free_alignment_acc": statistics.median(r["label_free_alignment_acc"] for r in rows),
        "label_free_digits_recovered": statistics.median(r["label_free_digits_recovered"] for r in rows),
        "head_codes": args.head_codes,
        "per_question": per_question,
        "questions": len(QUESTIONS),
        "seeds": rows,
    }
    emit(result, args.json_path)


if __name__ == "__main__":
    main()
