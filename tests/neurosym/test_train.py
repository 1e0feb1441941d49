import csv

import pytest
import torch

from neurosym.config import load_toml
from neurosym.errors import ConfigError, NonFiniteError
from neurosym.model import ConceptTransformer
from neurosym.tasks import RelationTask, SupervisedTask, SymbolData
from neurosym.train import TrainConfig, fit, load_checkpoint, select_device


@pytest.mark.parametrize("kind", ["gumbel", "vq"])
def test_killed_run_resumes_bit_for_bit(tmp_path, tiny_model_config, kind, tiny_task):
    config = TrainConfig(epochs=3, batch_size=16, seed=3, device="cpu")
    model_config = tiny_model_config(kind, num_codes=4)

    torch.manual_seed(0)
    straight = fit(ConceptTransformer(model_config), tiny_task(), config, tmp_path / "straight", progress=False)

    torch.manual_seed(0)
    fit(ConceptTransformer(model_config), tiny_task(), config, tmp_path / "killed", progress=False, stop_after_epoch=1)
    torch.manual_seed(123)  # the resumed process starts from a different RNG state
    resumed = fit(ConceptTransformer(model_config), tiny_task(), config, tmp_path / "killed", progress=False)

    assert resumed.resumed_from_epoch == 1
    a = load_checkpoint(straight.checkpoint)["model"]
    b = load_checkpoint(resumed.checkpoint)["model"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["train_loss"] for r in straight.history] == [r["train_loss"] for r in resumed.history]


def test_run_folder_holds_config_metrics_and_checkpoint(tmp_path, tiny_model_config, tiny_task):
    config = TrainConfig(epochs=2, batch_size=16, device="cpu")
    result = fit(ConceptTransformer(tiny_model_config(num_codes=4)), tiny_task(), config, tmp_path, progress=False,
                 run_config={"train": {"epochs": 2}})
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"train_loss", "label_acc", "concept_acc", "temperature", "train_codebook_perplexity"} <= set(rows[0])
    assert "epochs = 2" in (tmp_path / "config.toml").read_text()
    state = load_checkpoint(result.checkpoint)
    assert {"model", "optimizer", "scheduler", "rng", "epoch", "code_version"} <= set(state)
    assert not list(tmp_path.glob("*.tmp"))


def test_constraint_training_learns_symbols_from_labels_alone(tmp_path, tiny_model_config, tiny_task):
    config = TrainConfig(epochs=4, batch_size=32, lr=5e-3, warmup_steps=5, device="cpu")
    torch.manual_seed(0)
    result = fit(ConceptTransformer(tiny_model_config(num_codes=4)), tiny_task(tuples_per_epoch=256), config,
                 tmp_path, progress=False)
    first, last = result.history[0], result.history[-1]
    assert last["train_loss"] < first["train_loss"]
    assert last["concept_acc"] > 0.5  # chance is 0.25


def test_supervised_task_trains(tmp_path, tiny_model_config, tiny_task):
    task = tiny_task()
    supervised = SupervisedTask(task.train, task.test, num_codes=4, inputs_per_epoch=256)
    result = fit(ConceptTransformer(tiny_model_config(num_codes=4)), supervised,
                 TrainConfig(epochs=3, batch_size=32, lr=5e-3, device="cpu", warmup_steps=5), tmp_path, progress=False)
    assert result.metrics["concept_acc"] > 0.5


def test_nan_loss_names_the_epoch(tmp_path, tiny_model_config, tiny_task):
    class NanTask(RelationTask):
        def loss(self, model, batch, device):
            return super().loss(model, batch, device) * float("nan")

    base = tiny_task()
    task = NanTask(base.train, base.test, base.tuples, 4, tuples_per_epoch=16, test_tuples=8)
    with pytest.raises(NonFiniteError, match="epoch 1"):
        fit(ConceptTransformer(tiny_model_config(num_codes=4)), task, TrainConfig(epochs=1, device="cpu"), tmp_path, progress=False)


def test_nan_inputs_are_rejected():
    with pytest.raises(NonFiniteError, match="inputs"):
        SymbolData(torch.tensor([[float("nan")]]), torch.tensor([0]))


def test_device_selection_errors_clearly_without_cuda():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ConfigError, match="not auto, cpu, cuda"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            select_device("cuda")


def test_checkpoint_of_another_architecture_is_refused(tmp_path, tiny_model_config, tiny_task):
    config = TrainConfig(epochs=1, batch_size=16, device="cpu")
    fit(ConceptTransformer(tiny_model_config(num_codes=4)), tiny_task(), config, tmp_path, progress=False)
    other = tiny_model_config(num_codes=4, n_layers=3)
    with pytest.raises(ConfigError, match="does not fit this model"):
        fit(ConceptTransformer(other), tiny_task(), TrainConfig(epochs=2, batch_size=16, device="cpu"), tmp_path, progress=False)


def test_unknown_config_key_is_named(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text("epochs = 3\nlearning_rate = 0.1\n")
    with pytest.raises(ConfigError, match="unknown config key 'learning_rate'"):
        load_toml(TrainConfig, path)
    path.write_text("epochs = 'many'\n")
    with pytest.raises(ConfigError, match="'epochs': expected int"):
        load_toml(TrainConfig, path)
    path.write_text("epochs = 0\n")
    with pytest.raises(ConfigError, match="train.epochs must be >= 1, got 0"):
        load_toml(TrainConfig, path)


def test_shuffled_batches_give_every_rank_the_same_number_of_steps():
    from neurosym.tasks import shuffled_batches

    data = torch.arange(11)
    shares = [list(shuffled_batches(data, torch.Generator().manual_seed(0), 4, rank, 2)) for rank in range(2)]
    assert len(shares[0]) == len(shares[1]) == 3
    seen = torch.cat([torch.cat(batches) for batches in shares])
    assert len(seen) == 10 and len(set(seen.tolist())) == 10  # disjoint, one item dropped


@pytest.mark.parametrize("error", [
    torch.OutOfMemoryError("Tried to allocate 12.00 GiB. Device 0 has 1.00 GiB free.\nmore detail"),
    RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 12884901888 bytes."),
])
def test_out_of_memory_in_a_step_is_one_line_naming_the_batch(tmp_path, tiny_model_config, tiny_task, loss_override,
                                                              error):
    from neurosym.errors import MemoryLimitError

    def out_of_memory(model, batch, device):
        raise error

    config = TrainConfig(epochs=1, batch_size=16, device="cpu")
    oom = loss_override(tiny_task(), out_of_memory)
    with pytest.raises(MemoryLimitError) as info:
        fit(ConceptTransformer(tiny_model_config(num_codes=4)), oom, config, tmp_path, progress=False)
    message = str(info.value)
    assert "\n" not in message and "[32, 8, 8]" in message and "12" in message and "allocate" in message
    assert "lower train.batch_size" in message
