"""Ablation of the GNN consistency regularizer where exact knowledge is weak.

    python bench/consistency.py --json bench/consistency.json

Settings (digit pairs from scikit-learn's 8x8 digits, the default model, a short budget):
  missing_facts   labels are sums; the constraint knows only 70% of the addition facts
                  (per seed, 30% removed at random); pairs whose sum no known fact explains are dropped.
  relation_labels labels say only whether ``a ns:lessThan b`` (yes/no), no sums.
  few_pairs       labels are sums; 500 fixed training pairs, reshuffled each epoch.
The KG scorer (R-GCN + ComplEx) is pre-trained by link prediction over ``ns:successor``,
``ns:lessThan`` and the addition facts the constraint knows, in curried form (``n3 --plus/n4--> n7``):
per seed in missing_facts (its 70%), once with all facts otherwise. Reported: filtered MRR and
Hits@k on 10% held-out edges of the binary KG, and on the addition facts removed in missing_facts.
"with" adds the relation term (``curried_label_table`` for sums, ``holds_label_table`` for lessThan)
and, if ``--geometry-weight`` > 0, the geometry term; its time includes the scorer's pre-training.
Each seed trains "without" and "with" side by side (interleaved, same process).
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
from pipelines.consistency_step import (
    ARITH_RELATIONS, PLUS, PairTask, consistency_task, curried_label_table, held_out_metrics, holds_label_table,
    pretrain_kg_scorer, relation_triples, remove_facts,
)
from pipelines.knowledge import relation_from_store
from pipelines.train_step import build_model, prepare_task

LESS_THAN = """SELECT ?a ?b ?lt WHERE { ?a a arith:Digit . ?b a arith:Digit .
                                        BIND(EXISTS { ?a ns:lessThan ?b } AS ?lt) }"""
SETTINGS = ("missing_facts", "relation_labels", "few_pairs")


def scorer_for(store, relations, knowledge, args, seed):
    """(graph, scorer) pre-trained on the binary KG + the known addition facts, curried."""
    link_config = LinkPredictionConfig(seed=seed, test_fraction=0.0, num_layers=args.scorer_layers,
                                       epochs=args.scorer_epochs, lr=args.scorer_lr, negatives=args.scorer_negatives)
    return pretrain_kg_scorer(store, entities=relations["sum"].symbols, config=link_config,
                              extra_triples=relation_triples(relations["sum"], PLUS, knowledge))


def run_once(setting, variant, seed, prepared, relations, scorers, args, workdir) -> dict:
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
    extra = {}
    scorer_seconds = 0.0
    if variant == "with":
        graph, scorer = scorers(setting, seed, knowledge)
        scorer_seconds = scorer.train_seconds
        if setting == "relation_labels":
            table = holds_label_table(graph, scorer, relation, {"true": (ARITH_RELATIONS[1], True),
                                                                "false": (ARITH_RELATIONS[1], False)},
                                      calibrate=args.calibrate)
        else:
            table = curried_label_table(graph, scorer, relation, PLUS, calibrate=args.calibrate)
        if setting == "missing_facts":
            known = {tuple(t) for t in knowledge.tolist()}
            removed = torch.tensor([t for t in relation.tuples.tolist() if tuple(t) not in known])
            extra["removed_facts"] = {k: round(v, 4) for k, v in held_out_metrics(
                graph, scorer, relation_triples(relation, PLUS, removed)).items()}
        weights = ConsistencyConfig(relation_weight=args.relation_weight, geometry_weight=args.geometry_weight)
        task = consistency_task(task, relation, graph, scorer, weights, table)
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
        "fit_seconds": round(result.train_seconds, 2), "scorer_seconds": round(scorer_seconds, 2),
        "train_seconds": round(result.train_seconds + scorer_seconds, 2),
    } | extra
    print(json.dumps(row), flush=True)
    return row


def summarize(rows: list[dict]) -> dict:
    keys = ("concept_acc", "label_acc", "kg_consistency", "train_seconds")
    out = {v: {k: statistics.median(r[k] for r in rows if r["variant"] == v) for k in keys} for v in ("without", "with")}
    out["gain_points"] = round(100 * (out["with"]["concept_acc"] - out["without"]["concept_acc"]), 2)
    # Ratio of summed train times (with: fit + scorer pre-training) over seeds, each pair run back to
    # back on the same machine state.
    out["time_ratio"] = round(sum(r["train_seconds"] for r in rows if r["variant"] == "with")
                              / sum(r["train_seconds"] for r in rows if r["variant"] == "without"), 3)
    # The same ratio for the training loop alone (without the scorer's pre-training).
    out["time_ratio_fit"] = round(sum(r["fit_seconds"] for r in rows if r["variant"] == "with")
                                  / sum(r["fit_seconds"] for r in rows if r["variant"] == "without"), 3)
    out["runs"] = rows
    return out


def plot(output: dict, path: str | Path) -> None:
    """Concept accuracy per seed, without -> with, one panel per setting (lines pair a seed's runs)."""
    from matplotlib.figure import Figure

    settings = list(output["settings"])
    figure = Figure(figsize=(3.2 * len(settings), 3.2), layout="constrained")
    axes = figure.subplots(1, len(settings), sharey=True, squeeze=False)[0]
    for ax, setting in zip(axes, settings):
        result = output["settings"][setting]
        runs = result["runs"]
        for seed in sorted({r["seed"] for r in runs}):
            pair = [next(r["concept_acc"] for r in runs if r["seed"] == seed and r["variant"] == v)
                    for v in ("without", "with")]
            ax.plot([0, 1], pair, marker="o", color="tab:blue" if pair[1] >= pair[0] else "tab:red", alpha=0.7)
        ax.plot([0, 1], [result["without"]["concept_acc"], result["with"]["concept_acc"]], color="black",
                linewidth=3, label="median")
        ax.set_xticks([0, 1], ["without", "with"])
        ax.set_xlim(-0.3, 1.3)
        ax.set_title(f"{setting}\n{result['gain_points']:+.1f} points, time x{result['time_ratio']:.2f}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("concept accuracy (test, grounded)")
    axes[0].legend(loc="lower right", fontsize=8)
    figure.suptitle("GNN consistency regularizer: each line is one seed", fontsize=10)
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--epochs", type=int, default=12, help="Epochs of settings i and ii.")
    parser.add_argument("--pairs", type=int, default=1500, help="Fresh training pairs per epoch (i, ii).")
    parser.add_argument("--few", type=int, default=500, help="Training pairs in all (iii).")
    parser.add_argument("--few-epochs", type=int, default=24, help="Epochs over the few pairs (iii).")
    parser.add_argument("--relation-weight", type=float, default=1.0)
    parser.add_argument("--geometry-weight", type=float, default=0.0)
    parser.add_argument("--scorer-layers", type=int, default=1, help="R-GCN layers of the regularizer's scorer.")
    parser.add_argument("--scorer-epochs", type=int, default=100)
    parser.add_argument("--scorer-lr", type=float, default=0.03)
    parser.add_argument("--scorer-negatives", type=int, default=8)
    parser.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                        help="Raw scorer tables (softmax at temperature 1, plain sigmoids) instead of calibrated ones.")
    parser.add_argument("--json", dest="json_path", default=None)
    parser.add_argument("--plot", default=None, help="Write a per-seed figure (PNG) of concept accuracy.")
    parser.add_argument("--replot", default=None, metavar="JSON", help="Only draw --plot from an earlier --json.")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.replot:
        plot(json.loads(Path(args.replot).read_text()), args.plot or "consistency.png")
        return
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    settings = args.settings.split(",")
    config, base = load_config(None, **{"task.augment": "affine"})
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "kg.sqlite") as store:
        workdir = Path(tmp)
        prepared_task = prepare_task(config, base, store)
        relations = {"sum": prepared_task.relation,
                     "lessThan": relation_from_store(store, LESS_THAN, "lessThan pairs")}
        # Held-out link prediction on the binary KG (successor, lessThan; 10% of edges held out), with
        # the default scorer configuration, one split per seed.
        link_runs = []
        for seed in seeds:
            graph, scorer = pretrain_kg_scorer(store, entities=prepared_task.relation.symbols,
                                               config=LinkPredictionConfig(seed=seed))
            link_runs.append(scorer.metrics | {"train_seconds": scorer.train_seconds})
        link = {k: round(statistics.median(r[k] for r in link_runs), 4) for k in link_runs[0]}
        link |= {"entities": graph.num_entities, "edges": graph.num_edges, "seeds": seeds,
                 "note": "median over seeds (each its own split); default LinkPredictionConfig"}
        print(json.dumps({"link_prediction": link}), flush=True)
        full_scorer = {}

        def scorers(setting, seed, knowledge):
            if knowledge is not None:  # this seed's incomplete KG
                return scorer_for(store, relations, knowledge, args, seed)
            if "full" not in full_scorer:
                full_scorer["full"] = scorer_for(store, relations, None, args, 0)
            return full_scorer["full"]

        prepared = {"config": config, "base": base, "task": prepared_task}
        results = {}
        for setting in settings:
            rows = []
            for seed in seeds:
                for variant in ("without", "with"):
                    rows.append(run_once(setting, variant, seed, prepared, relations, scorers, args, workdir))
            results[setting] = summarize(rows)
            if setting == "missing_facts":
                removed = [r["removed_facts"] for r in rows if "removed_facts" in r]
                results[setting]["removed_facts_link_prediction"] = {
                    k: round(statistics.median(m[k] for m in removed), 4) for k in removed[0]}
    budget = {"epochs": args.epochs, "pairs_per_epoch": args.pairs, "few_pairs": args.few, "few_epochs": args.few_epochs,
              "relation_weight": args.relation_weight, "geometry_weight": args.geometry_weight,
              "calibrate": args.calibrate, "scorer": {"layers": args.scorer_layers, "epochs": args.scorer_epochs, "lr": args.scorer_lr,
                         "negatives": args.scorer_negatives}, "seeds": seeds}
    output = {"link_prediction": link, "budget": budget, "settings": results}
    summary = {s: {k: v for k, v in r.items() if k != "runs"} for s, r in results.items()}
    print(json.dumps(summary, indent=2))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(output, indent=2))
    if args.plot:
        plot(output, args.plot)


if __name__ == "__main__":
    main()
