"""The GPU path: training on CUDA with bf16 autocast, float32 concept numerics, device-side usage
statistics, torch.compile, the consistency terms, and a clear out-of-memory error. Skipped without CUDA."""

from __future__ import annotations

import pytest
import torch

from neurosym.consistency import ConsistencyConfig, ConsistencyTask
from neurosym.errors import MemoryLimitError
from neurosym.model import ConceptTransformer
from neurosym.train import TrainConfig, fit, load_checkpoint


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
CUDA = torch.device("cuda")


@pytest.mark.parametrize("kind", ["gumbel", "vq"])
def test_fit_on_cuda_in_bf16_learns_and_saves_a_cpu_loadable_checkpoint(tmp_path, tiny_model_config, kind, tiny_task):
    torch.manual_seed(0)
    model = ConceptTransformer(tiny_model_config(kind, num_codes=4))
    config = TrainConfig(epochs=6, batch_size=16, device="cuda", bf16=True)
    result = fit(model, tiny_task(tuples_per_epoch=256), config, tmp_path, progress=False)
    assert next(model.parameters()).device.type == "cuda"
    first, last = result.history[0]["train_loss"], result.history[-1]["train_loss"]
    assert torch.isfinite(torch.tensor(last)) and last < first
    state = load_checkpoint(result.checkpoint)
    assert all(t.device.type == "cpu" for t in state["model"].values() if isinstance(t, torch.Tensor))


@pytest.mark.parametrize("kind", ["gumbel", "vq"])
def test_concept_layer_keeps_float32_numerics_and_device_statistics_under_autocast(tiny_model_config, kind):
    torch.manual_seed(0)
    model = ConceptTransformer(tiny_model_config(kind, num_codes=8)).to(CUDA).train()
    images = torch.rand(32, 8, 8, device=CUDA)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(images)
    concepts = out.concepts
    assert concepts.log_probs.dtype == torch.float32 and torch.isfinite(concepts.log_probs).all()
    assert torch.allclose(concepts.log_probs.exp().sum(-1), torch.ones(()), atol=1e-4)
    assert concepts.codes.device.type == "cuda"
    counts = [m.counts for m in model.modules() if hasattr(m, "counts") and isinstance(m.counts, torch.Tensor)]
    assert counts and all(c.device.type == "cuda" for c in counts) and sum(float(c.sum()) for c in counts) > 0


def test_compiled_training_matches_eager_closely(tmp_path, tiny_model_config, tiny_task):
    losses = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        model = ConceptTransformer(tiny_model_config("gumbel", num_codes=4))
        config = TrainConfig(epochs=2, batch_size=16, device="cuda", bf16=False, compile=compiled)
        result = fit(model, tiny_task(), config, tmp_path / str(compiled), progress=False)
        losses[compiled] = [r["train_loss"] for r in result.history]
    assert losses[True] == pytest.approx(losses[False], rel=0.05)


def test_consistency_terms_run_on_cuda(tiny_model_config, tiny_task):
    torch.manual_seed(0)
    base = tiny_task()
    table = torch.rand(4, 4, base.constraint.num_labels)
    task = ConsistencyTask(base, ConsistencyConfig(relation_weight=1.0, geometry_weight=1.0), table, torch.eye(4))
    model = ConceptTransformer(tiny_model_config(num_codes=4)).to(CUDA)
    batch = next(iter(task.batches(0, torch.Generator().manual_seed(0), 8)))
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = task.loss(model, batch, CUDA)
    loss.backward()
    assert loss.device.type == "cuda" and torch.isfinite(loss)
    assert task.label_table.device.type == "cuda"


def test_a_batch_that_does_not_fit_is_one_clear_error(tmp_path, tiny_model_config, tiny_task, loss_override):
    base = tiny_task()

    def huge(model, batch, device):  # asks the allocator for 32 TiB: a plain allocation that fails at once
        torch.empty(2 ** 45, dtype=torch.uint8, device=device)
        return base.loss(model, batch, device)

    model = ConceptTransformer(tiny_model_config(num_codes=4))
    config = TrainConfig(epochs=1, batch_size=16, device="cuda")
    with pytest.raises(MemoryLimitError, match=r"batch of inputs \[32, 8, 8\].*batch_size = 16.*cuda.*Tried to allocate"):
        fit(model, loss_override(base, huge), config, tmp_path, progress=False)
