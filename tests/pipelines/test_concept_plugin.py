"""A concept layer defined and registered here, in the test, runs through the whole CLI pipeline:
adding a layer touches its own file and the registry only."""

import json

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from kg.store import Store
from neurosym.concepts import CodebookUsage, ConceptLayer, ConceptOutput, register, straight_through
from neurosym.concepts.registry import unregister
from neurosym.config import dump_toml, to_dict
from neurosym.model import ConceptTransformer
from neurosym.train import save_checkpoint
from pipelines.cli import main
from pipelines.config import load_config


class FixedProjectionConcepts(ConceptLayer):
    """Code = argmax of a fixed random projection of the slot state; no parameters of its own (the
    encoder below learns to steer states into the right cell). Shapes: ``[B, S, D]`` -> codes ``[B, S]``,
    probs/log_probs ``[B, S, K]``, quantized ``[B, S, D]``."""

    def __init__(self, dim: int, num_codes: int) -> None:
        super().__init__()
        self.num_codes = num_codes
        generator = torch.Generator().manual_seed(0)
        self.register_buffer("projection", torch.randn(dim, num_codes, generator=generator))
        self.register_buffer("vectors", torch.randn(num_codes, dim, generator=generator))
        self.usage = CodebookUsage(num_codes)

    def forward(self, x: Tensor) -> ConceptOutput:
        log_probs = F.log_softmax(x.float() @ self.projection, dim=-1)  # (B, S, K)
        codes = log_probs.argmax(-1)
        probs = straight_through(F.one_hot(codes, self.num_codes).to(log_probs), log_probs.exp())
        self.usage.update(codes)
        return ConceptOutput(codes=codes, probs=probs, log_probs=log_probs, quantized=probs @ self.vectors,
                             aux_loss=x.new_zeros(()))

    def code_vectors(self, which: str = "embedding") -> Tensor:
        return self.projection.t() if which == "readout" else self.vectors


@pytest.fixture
def fixed_projection_kind():
    register("fixed_projection")(FixedProjectionConcepts)
    yield "fixed_projection"
    unregister("fixed_projection")


def tiny_config(tmp_path, kind: str):
    """The bundled digit-addition experiment, cut to seconds, with concept layer ``kind``, as a TOML file."""
    config, _ = load_config(None, **{"model.concept.kind": kind, "train.epochs": 1, "train.device": "cpu",
                                     "task.tuples_per_epoch": 300, "task.test_tuples": 50,
                                     "model.d_model": 16, "model.n_heads": 2, "model.stem_channels": 4})
    path = tmp_path / f"{kind}.toml"
    path.write_text(dump_toml(config))
    return path, config


def test_a_layer_registered_by_a_test_trains_encodes_and_aligns(tmp_path, cli_runner, fixed_projection_kind):
    path, config = tiny_config(tmp_path, fixed_projection_kind)
    store, run_dir = str(tmp_path / "s.sqlite"), str(tmp_path / "run")
    trained = cli_runner.invoke(main, ["train", str(path), "--run-dir", run_dir, "--store", store])
    assert trained.exit_code == 0, trained.output
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["config"]["model"]["concept"]["kind"] == "fixed_projection"
    assert 0 < result["metrics"]["train_codebook_usage"] <= 1  # the trainer read the layer's statistics
    aligned = cli_runner.invoke(main, ["align", run_dir, "--method", "hungarian", "--device", "cpu", "--store", store])
    assert aligned.exit_code == 0, aligned.output
    answer = json.loads(aligned.output)
    assert answer["method"] == "hungarian" and len(answer["alignment"]) > 0
    with Store.open(store) as opened:
        codes = opened.sparql("SELECT (COUNT(?c) AS ?n) WHERE { ?c skos:inScheme ?s ; skos:notation ?k }").rows
        assert int(codes[0][0]) == config.model.concept.num_codes  # the run's codebook is in the RDF view


def test_encoding_a_continuous_model_is_one_line_error(tmp_path, cli_runner):
    path, config = tiny_config(tmp_path, "none")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.toml").write_text(dump_toml(to_dict(config)))
    save_checkpoint(run_dir / "checkpoint.pt", {"model": ConceptTransformer(config.model).state_dict()})
    store = tmp_path / "s.sqlite"
    result = cli_runner.invoke(main, ["encode", str(run_dir), "--device", "cpu", "--store", str(store)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ContinuousConcepts (concept kind 'none') emits no discrete codes")
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    with Store.open(store) as opened:
        assert opened.runs(include_incomplete=True) == []  # nothing written
