"""A discrete prefix's chosen anchors as store symbols, written like any other run's codes.

The prefix is one input of the store (dataset ``prefix``, split ``learned``, key = its name); prefix
position p is slot p, its chosen anchor is the code, ``softmax(-distance)`` the confidence. The run's
codebook is the anchor set (norm and usage per anchor).
"""

from __future__ import annotations

import numpy as np
import torch

from kg.store import Store
from neurosym.prefix import DiscretePrefix

PREFIX_DATASET = "prefix"
PREFIX_SPLIT = "learned"


def prefix_assignments(prefix: DiscretePrefix, input_id: int) -> dict[str, np.ndarray]:
    """The arrays ``Store.add_assignments`` takes for one prefix: ``input_ids``, ``slot``, ``code``,
    ``confidence``, each of shape ``(P,)``."""
    codes, confidence = prefix.symbols()
    length = codes.shape[0]
    return {
        "input_ids": np.full(length, int(input_id), dtype=np.int64),
        "slot": np.arange(length, dtype=np.int64),
        "code": codes.cpu().numpy().astype(np.int64),
        "confidence": confidence.double().clamp(0, 1).cpu().numpy(),
    }


def write_prefix_symbols(store: Store, run_id: int, prefix: DiscretePrefix, key: str = "prefix") -> int:
    """Register the anchors as run ``run_id``'s codes and the prefix's symbols as its assignments.

    Returns the number of assignments written (P). The run is hidden while they are written and
    shown again at the end, so a kill half-way leaves no half-written run in sight.
    """
    with torch.no_grad():
        anchors = prefix.anchors.detach().float().cpu()
        codes, _ = prefix.symbols()
    counts = torch.bincount(codes.cpu(), minlength=anchors.shape[0]).double()
    store.reopen_run(run_id)
    store.add_codes(run_id, np.arange(anchors.shape[0]), anchors.norm(dim=-1).numpy(), (counts / counts.sum()).numpy())
    (input_id,) = store.add_inputs(PREFIX_DATASET, PREFIX_SPLIT, [key])
    written = store.add_assignments(run_id, **prefix_assignments(prefix, int(input_id)))
    store.finish_run(run_id)
    return written
