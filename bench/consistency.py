"""Ablation of the GNN consistency regularizer where exact knowledge is weak.

    python bench/consistency.py --json bench/consistency.json

Settings (digit pairs from scikit-learn's 8x8 digits, the default model, a short budget):
  missing_facts   labels are sums; the constraint knows only 70% of the addition facts
                  (per seed, 30% removed at random); pairs whose sum no known fact explains are dropped.
  relation_labels labels say only whether ``a ns:lessThan b`` (yes/no), no sums.
  few_pairs       labels are sums; 500 fixed training pairs, reshuffled each epoch.
The KG scorer (R-GCN + ComplEx over ``ns:successor`` and ``ns:lessThan`` of the arithmetic KG) is
pre-trained once by link prediction (10% held-out edges; filtered MRR and Hits@10 reported). Each
seed trains "without" and "with" the regularizer side by side (interleaved, same process).
Prints JSON lines per run and writes a JSON object: ``link_prediction``, ``settings`` (per setting:
``without``/``with`` medians, ``gain_points``, ``time_ratio``, ``runs``) and the budget used.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch

from kg.store import Store
from neurosym.consistency import ConsistencyConfig, tuple_consistency
from neurosym.gnn import LinkPredictionConfig
from neurosym.tasks import encode_codes
from neurosym.train import TrainConfig, fit, seed_everything
from pipelines.config import load_config
from pipelines.consistency_step import ARITH_RELATIONS, PairTask, consistency_task, pretrain_kg_scorer, remove_facts
from pipelines.knowledge import relation_from_store
from pipelines.train_step import build_model, prepare_task

LESS_THAN = """SELECT ?a ?b ?lt WHERE { ?a a arith:Digit . ?b a arith:Digit .
                                        BIND(EXISTS { ?a ns:lessThan ?b } AS ?lt) }"""
SETTINGS = ("missing_facts", "relation_labels", "few_pairs")


def run_once(setting, variant, seed, prepared, relations, graph, scorer, args, workdir) -> dict:
    config = prepared["config"]
    relation = relations["lessThan" if setting == "relation_labels" else "sum"]
    task_options = dict(tuples_per_epoch=args.pairs, test_tuples=1000)
    knowledge, pool = None, 0
    if setting == "missing_facts":
        knowledge = remove_facts(relation.tuples, 0.3, torch.Generator().manual_seed(seed))
    if setting == "few_pairs":
        pool = args.few
    task = PairTask(prepared["task"].train, prepared["task"].test, relation.tuples, len(relation.symbols),
                    knowledge=knowledge, pool=pool, pool_seed=seed, **task_options)
    if variant == "with":
        weights = ConsistencyConfig(relation_weight=args.relation_weight if setting == "relation_labels" else 0.0,
                                    geometry_weight=args.geometry_weight)
        label_relations = {"true": (ARITH_RELATIONS[1], True), "false": (ARITH_RELATIONS[1], False)}
        task = consistency_task(task, relation, graph, scorer, weights,
                                label_relations if setting == "relation_labels" else None)
    epochs = args.few_epochs if setting == "few_pairs" else args.epochs
    train_config = TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, seed=seed, device="cpu", eval_every=epochs)
    seed_everything(seed)
    model = build_model(config, relation)
    result = fit(model, task, train_config, workdir / f"{setting}-{variant}-{seed}", resume=False, progress=False)
    # Consistency with the full KG: the argmax symbols of each test pair with its true label.
    members, labels = task.test_members, task.test_labels
    codes = encode_codes(model, task.test.inputs[members.reshape(-1)], torch.device("cpu"))[0][:, 0]
    row = {
        "setting": setting, "variant": variant, "seed": seed,
        "concept_acc": result.metrics["concept_acc"], "label_acc": result.metrics["label_acc"],
        "kg_consistency": tuple_consistency(codes.view(-1, 2), labels, relation.tuples),
        "train_seconds": round(result.train_seconds, 2),
    }
    print(json.dumps(row), flush=True)
    return row


def summarize(rows: list[dict]) -> dict:
    keys = ("concept_acc", "label_acc", "kg_consistency", "train_seconds")
    out = {v: {k: statistics.median(r[k] for r in rows if r["variant"] == v) for k in keys} for v in ("without", "with")}
    out["gain_points"] = round(100 * (out["with"]["concept_acc"] - out["without"]["concept_acc"]), 2)
    # Ratio of summed train times over seeds, each pair run back to back on the same machine state.
    out["time_ratio"] = round(sum(r["train_seconds"] for r in rows if r["variant"] == "with")
                              / sum(r["train_seconds"] for r in rows if r["variant"] == "without"), 3)
    out["runs"] = rows
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--epochs", type=int, default=12, help="Epochs of settings i and ii.")
    parser.add_argument("--pairs", type=int, default=1500, help="Fresh training pairs per epoch (i, ii).")
    parser.add_argument("--few", type=int, default=500, help="Training pairs in all (iii).")
    parser.add_argument("--few-epochs", type=int, default=24, help="Epochs over the few pairs (iii).")
    parser.add_argument("--relation-weight", type=float, default=1.0)
    parser.add_argument("--geometry-weight", type=float, default=1.0)
    parser.add_argument("--json", dest="json_path", default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    settings = args.settings.split(",")
    config, base = load_config(None, **{"task.augment": "affine"})
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "kg.sqlite") as store:
        workdir = Path(tmp)
        prepared_task = prepare_task(config, base, store)
        relations = {"sum": prepared_task.relation,
                     "lessThan": relation_from_store(store, LESS_THAN, "lessThan pairs")}
        graph, scorer = pretrain_kg_scorer(store, entities=prepared_task.relation.symbols,
                                           config=LinkPredictionConfig(seed=0))
        link = {k: round(v, 4) for k, v in scorer.metrics.items()} | {"train_seconds": round(scorer.train_seconds, 2),
                                                                      "entities": graph.num_entities, "edges": graph.num_edges}
        print(json.dumps({"link_prediction": link}), flush=True)
        prepared = {"config": config, "base": base, "task": prepared_task}
        results = {}
        for setting in settings:
            rows = []
            for seed in seeds:
                for variant in ("without", "with"):
                    rows.append(run_once(setting, variant, seed, prepared, relations, graph, scorer, args, workdir))
            results[setting] = summarize(rows)
    budget = {"epochs": args.epochs, "pairs_per_epoch": args.pairs, "few_pairs": args.few, "few_epochs": args.few_epochs,
              "relation_weight": args.relation_weight, "geometry_weight": args.geometry_weight, "seeds": seeds}
    output = {"link_prediction": link, "budget": budget, "settings": results}
    summary = {s: {k: v for k, v in r.items() if k != "runs"} for s, r in results.items()}
    print(json.dumps(summary, indent=2))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(output, indent=2))


if __name__ == "__main__":
    main()
