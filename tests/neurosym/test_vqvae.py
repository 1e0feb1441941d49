import pytest
import torch

from neurosym.data.digits import load_digit_splits
from neurosym.errors import ConfigError, ShapeError
from neurosym.reconstruction import ReconstructionTask, code_statistics, load_generator, save_generator
from neurosym.prior import CodePrior, PriorConfig
from neurosym.train import TrainConfig, fit
from neurosym.vqvae import VQVAE, VQVAEConfig, check_code_bits, pack_codes, unpack_codes, vqvae_concept

TINY = dict(d_model=16, n_heads=2, encoder_layers=1, decoder_layers=1)


@pytest.mark.parametrize("kind", ["vq", "gumbel", "none"])
@pytest.mark.parametrize("config, inputs", [
    (dict(input="patches"), torch.rand(3, 8, 8)),
    (dict(input="patches", slots="pooled", num_slots=3), torch.rand(3, 1, 8, 8)),
    (dict(input="tokens", vocab_size=11, seq_len=5), torch.randint(0, 11, (3, 5))),
    (dict(input="features", feature_dim=6, slots="pooled", num_slots=4), torch.rand(3, 6)),
])
def test_every_input_is_rebuilt_from_its_codes(kind, config, inputs):
    slots = {key: config.pop(key) for key in ("slots", "num_slots") if key in config}
    model = VQVAE(VQVAEConfig(concept=vqvae_concept(kind=kind, num_codes=8, **slots), **TINY, **config))
    out = model(inputs)
    slots = model.config.num_slots
    assert out.concepts.codes.shape == (3, slots)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    if config["input"] == "tokens":
        assert out.reconstruction.shape == (3, 5, 11)
    elif config["input"] == "features":
        assert out.reconstruction.shape == (3, 1, 6)
    else:
        assert out.reconstruction.shape == (3, 1, 8, 8)
    out.loss.backward()
    assert model.position.grad.abs().sum() > 0  # the reconstruction's gradient reaches the encoder


def test_decoder_beats_the_mean_image_after_a_few_steps(tmp_path):
    torch.set_num_threads(1)  # tiny matrices: a second thread only adds contention on a shared machine
    torch.manual_seed(0)
    train, test = load_digit_splits()
    model = VQVAE(VQVAEConfig(concept=vqvae_concept(num_codes=16), d_model=32, n_heads=2, encoder_layers=1, decoder_layers=1))
    mean_mse = float(((test.images - train.images.mean(0)) ** 2).mean())
    fit(model, ReconstructionTask(train.images[:256], test.images[:128]),
        TrainConfig(epochs=8, batch_size=32, lr=5e-3, warmup_steps=5, device="cpu", eval_every=8), tmp_path,
        progress=False)
    stats = code_statistics(model, test.images)
    assert stats["recon"] < 0.8 * mean_mse
    assert stats["usage"] > 0.5
    decoded = model.decode_codes(stats["codes"][:4])
    assert decoded.shape == (4, 1, 8, 8) and decoded.min() >= 0 and decoded.max() <= 1


def test_code_bits_over_the_store_integer_is_a_clear_error():
    check_code_bits(16, 64)  # 96 bits, one store integer per slot: fine
    with pytest.raises(ConfigError, match=r"S\*log2 K = 16\*log2\(64\) = 96.0 bits"):
        pack_codes(torch.zeros(1, 16, dtype=torch.long), 64)
    with pytest.raises(ConfigError, match=r"num_codes K = .* bits per slot"):
        VQVAEConfig(concept=vqvae_concept(num_codes=2 ** 64))


def test_pack_round_trips_when_the_codes_fit():
    codes = torch.randint(0, 64, (5, 10))  # 60 bits
    assert torch.equal(unpack_codes(pack_codes(codes, 64), 10, 64), codes)


def test_wrong_input_size_and_bad_codes_are_named():
    model = VQVAE(VQVAEConfig(**TINY))
    with pytest.raises(ShapeError, match="images"):
        model(torch.rand(2, 6, 6))
    with pytest.raises(ConfigError, match=r"codes must lie in \[0, 64\)"):
        model.decode_codes(torch.full((1, 16), 64))


def test_generator_checkpoint_round_trips_and_rejects_other_architectures(tmp_path):
    vqvae, prior = VQVAE(VQVAEConfig(**TINY)), CodePrior(PriorConfig(d_model=16, n_heads=2, n_layers=1))
    save_generator(tmp_path / "g.pt", vqvae, prior)
    loaded, _ = load_generator(tmp_path / "g.pt")
    assert torch.equal(loaded.to_code.weight, vqvae.to_code.weight)
    torch.save({"model": vqvae.state_dict(), "epoch": 3}, tmp_path / "train.pt")
    with pytest.raises(ConfigError, match="not a VQ-VAE \\+ prior checkpoint"):
        load_generator(tmp_path / "train.pt")
    state = torch.load(tmp_path / "g.pt", weights_only=False)
    state["vqvae_config"]["d_model"] = 32
    torch.save(state, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="vqvae weights do not fit its config"):
        load_generator(tmp_path / "other.pt")


def test_sample_command_writes_a_png_grid_and_rejects_other_checkpoints(tmp_path, cli_runner):
    from pipelines.cli import main

    vqvae, prior = VQVAE(VQVAEConfig(**TINY)), CodePrior(PriorConfig(d_model=16, n_heads=2, n_layers=1))
    save_generator(tmp_path / "g.pt", vqvae, prior)
    result = cli_runner.invoke(main, ["sample", "--checkpoint", str(tmp_path / "g.pt"), "--out", str(tmp_path / "grid.png"),
                                      "--count", "6", "--columns", "3"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    torch.save({"model": {}, "epoch": 1}, tmp_path / "other.pt")
    result = cli_runner.invoke(main, ["sample", "--checkpoint", str(tmp_path / "other.pt"), "--out", str(tmp_path / "x.png")])
    assert result.exit_code != 0
    assert "not a VQ-VAE + prior checkpoint" in result.output and "Traceback" not in result.output


def test_vq_data_init_starts_the_codebook_on_the_states_once():
    from neurosym.concepts import VectorQuantizer

    torch.manual_seed(0)
    layer = VectorQuantizer(2, 4, data_init=True, dead_code_threshold=0)
    far = torch.randn(16, 1, 2) * 0.1 + 5
    assert layer(far).codes.unique().numel() > 1  # a random N(0, 1) codebook would put them all on one code
    assert (layer.codebook - 5).abs().max() < 1
    reloaded = VectorQuantizer(2, 4, data_init=True, dead_code_threshold=0)
    reloaded.load_state_dict(layer.state_dict())
    reloaded(torch.randn(16, 1, 2) - 5)
    assert (reloaded.codebook > 0).all()  # a loaded codebook is not initialised again (that would put it near -5)
