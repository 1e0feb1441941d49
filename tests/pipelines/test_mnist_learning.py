"""Learning on MNIST-shaped data, fast: a few hundred synthetic 28 x 28 "digits" (ten fixed random
prototypes plus pixel noise) written as IDX files, read by the MNIST loader, and learnt from sums
alone through the 2-digit ``[task.knowledge]`` program of ``data/configs/mnist_addition.toml``
(two full adders from the KG chained by a latent carry). Nothing but the constraint tells the model
which prototype is which digit: with its gradient cut (``log_probs.detach()`` in
``QueryConstraint.forward``) the codes stay near chance and this test fails."""

from __future__ import annotations

import time

import torch

from pipelines.config import DATA_DIR, load_config
from pipelines.train_step import train

#: What the test asks of the run (chance is 0.1 per digit and about 0.01 per 2-digit sum; a run of
#: this config learns both to 1.0, and 0.4 / 0.04 with the constraint's gradient cut).
CONCEPT_ACCURACY = 0.9
LABEL_ACCURACY = 0.8
#: CPU seconds of training, on one thread (about 5 on this 2-core machine). CPU time rather than wall
#: time, which on a shared machine measures the neighbours; one thread, because idle OpenMP threads
#: spin and bill CPU time for waiting.
CPU_SECONDS = 30


def test_two_digit_addition_learns_prototype_digits_from_sums(tmp_path, store, write_prototype_mnist):
    write_prototype_mnist(tmp_path, train=600, test=200)
    overrides = {"task.data_path": str(tmp_path), "train.device": "cpu", "task.augment": "none",
                 "task.test_tuples": 50, "train.epochs": 6, "train.batch_size": 8, "train.warmup_steps": 10,
                 "train.eval_every": 6, "train.probe_starts": 1, "train.reground_at": [0.5]}
    config, base = load_config(DATA_DIR / "configs" / "mnist_addition.toml", **overrides)
    config.task.knowledge.params["n"] = 2
    config.model.d_model, config.model.stem_channels, config.model.n_heads = 32, 8, 2
    torch.set_num_threads(1)
    start = time.process_time()
    result = train(config, base, store, tmp_path / "run", progress=False)
    seconds = time.process_time() - start
    assert result.metrics["concept_acc"] >= CONCEPT_ACCURACY, result.metrics
    assert result.metrics["label_acc"] >= LABEL_ACCURACY, result.metrics
    assert seconds < CPU_SECONDS
