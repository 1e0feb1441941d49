"""Pipeline step *encode*: run a trained model over the dataset and write every input's symbols.

Writes one store run (provenance: config, seed, code version, checkpoint path and SHA-256), its
codebook (code vector norms, usage), the inputs, and for every (input, slot) the top-k codes with
their probabilities, in bulk. Test tuples (e.g. image pairs) become ``ns:first``/``ns:second``
facts in their own named graph, so rules and queries can talk about pairs. Every test group is
explained through the task's knowledge (``pipelines/explain_step.py``), in the same hidden run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kg.store import Store
from kg.rdf.vocab import input_iri, member_predicate, tuple_iri, tuples_graph
from neurosym.config import to_dict
from neurosym.errors import ConfigError
from neurosym.tasks import encode_codes
from neurosym.train import load_checkpoint, select_device
from neurosym.version import code_version
from pipelines.config import ExperimentConfig
from pipelines.explain_step import knowledge_of, write_explanations
from pipelines.train_step import PreparedTask, build_model, file_hash



@dataclass
class EncodedSplit:
    """One split's symbols. Shapes: codes/confidence ``[N, S]`` (top code), log_probs ``[N, S, K]``."""

    keys: list[str]
    input_ids: np.ndarray
    codes: np.ndarray
    confidence: np.ndarray
    log_probs: np.ndarray


@dataclass
class EncodedRun:
    run_id: int
    splits: dict[str, EncodedSplit]
    test_tuples: np.ndarray  # (P, A) indices into the test split
    test_tuple_labels: np.ndarray  # (P,) label indices, (P, E) for a program's E label positions
    explained: int = 0  # test groups explained in the store


def load_trained_model(config: ExperimentConfig, prepared: PreparedTask, run_dir: Path) -> torch.nn.Module:
    """Rebuild the model from the config and load the run's checkpoint (errors if they disagree)."""
    checkpoint = Path(run_dir) / "checkpoint.pt"
    if not checkpoint.exists():
        raise ConfigError(f"{checkpoint}: no checkpoint; train the run first")
    model = build_model(config, prepared)
    try:
        model.load_state_dict(load_checkpoint(checkpoint)["model"])
    except RuntimeError as exc:
        raise ConfigError(f"{checkpoint}: checkpoint is from another architecture ({str(exc).splitlines()[0]})") from None
    return model.eval()


def encode(config: ExperimentConfig, prepared: PreparedTask, run_dir: str | Path, store: Store,
           device: str = "auto") -> EncodedRun:
    """Encode the train and test splits with the trained model and write them to the store."""
    run_dir = Path(run_dir)
    model = load_trained_model(config, prepared, run_dir)
    target = select_device(device)
    model.to(target)
    checkpoint = run_dir / "checkpoint.pt"
    code_norms = model.concept.code_vectors().detach().float().norm(dim=-1).cpu().numpy()  # (K,)
    num_codes = model.concept.num_codes
    splits: dict[str, EncodedSplit] = {}
    usage = np.zeros(num_codes)
    top_k = min(config.steps.top_k, num_codes)
    # The run stays hidden until everything below is written: a killed encode leaves no half run.
    with store.writing_run(config.name, to_dict(config), config.train.seed, code_version(),
                           str(checkpoint.resolve()), file_hash(checkpoint)) as run_id:
        assignment_rows = []  # per split: (input id, slot, rank, code, probability), each [N * S * k]
        for name, data, keys in (("train", prepared.train, prepared.train_keys), ("test", prepared.test, prepared.test_keys)):
            codes, log_probs = encode_codes(model, data.inputs, target)
            probs = log_probs.exp()
            top_p, top_c = probs.topk(top_k, dim=-1)  # (N, S, k)
            input_ids = store.add_inputs(config.task.dataset, name, keys)
            splits[name] = EncodedSplit(keys, input_ids, codes.numpy(), top_p[..., 0].numpy(), log_probs.numpy())
            usage += np.bincount(codes.reshape(-1).numpy(), minlength=num_codes)
            n, slots, _ = top_c.shape
            grid = np.meshgrid(np.arange(n), np.arange(slots), np.arange(top_k), indexing="ij")
            assignment_rows.append((input_ids[grid[0]].ravel(), grid[1].ravel(), grid[2].ravel(),
                                    top_c.numpy().ravel(), top_p.numpy().clip(0, 1).ravel()))
        store.add_codes(run_id, np.arange(num_codes), code_norms, usage / usage.sum())
        for ids, slot, rank, code, confidence in assignment_rows:
            store.add_assignments(run_id, ids, slot, code, confidence, rank=rank)
        members, labels = prepared.test_tuples(config)
        write_tuples(store, config.task.dataset, splits["test"], members.numpy())
        test = splits["test"]
        explained = write_explanations(store, run_id, knowledge_of(prepared, config), test.log_probs, test.input_ids)
    return EncodedRun(run_id, splits, members.numpy(), labels.numpy(), explained)


def write_tuples(store: Store, dataset: str, split: EncodedSplit, members: np.ndarray) -> None:
    """Test tuples as facts: ``<tuple> ns:first <input>; ns:second <input>`` (graph ``graph:tuples``)."""
    triples = []
    for index, row in enumerate(members):
        subject = tuple_iri(dataset, index)
        for position, member in enumerate(row):
            obj = input_iri(dataset, "test", split.keys[member])
            triples.append((subject, member_predicate(position), obj))
    store.add_triples(triples, graph=tuples_graph(dataset), replace=True)
