import pytest
import torch

from neurosym.errors import ConfigError, ShapeError
from neurosym.model import ConceptConfig, ConceptTransformer, ModelConfig, TupleClassifier


@pytest.mark.parametrize("kind", ["gumbel", "vq"])
@pytest.mark.parametrize(
    "config, inputs",
    [
        (dict(input="patches"), torch.rand(3, 8, 8)),
        (dict(input="tokens", vocab_size=20), torch.randint(0, 20, (3, 9))),
        (dict(input="features", feature_dim=5), torch.rand(3, 4, 5)),
    ],
)
def test_every_input_adapter_feeds_the_concept_layer(kind, config, inputs):
    model = ConceptTransformer(ModelConfig(d_model=16, n_heads=2, concept=ConceptConfig(kind=kind, num_slots=2), num_classes=3, **config))
    out = model(inputs)
    assert out.concepts.codes.shape == (3, 2)
    assert out.concepts.log_probs.shape == (3, 2, 10)
    assert out.logits.shape == (3, 3)


@pytest.mark.parametrize("kind", ["gumbel", "vq"])
def test_upper_blocks_see_only_the_discrete_state(kind):
    torch.manual_seed(0)
    config = ModelConfig(d_model=16, n_heads=2, n_layers=3, concept_depth=1, num_classes=2,
                         concept=ConceptConfig(kind=kind, slots="tokens", num_codes=4))
    model = ConceptTransformer(config).eval()
    images = torch.rand(32, 8, 8)
    nudged = images + 0.01 * torch.randn(32, 8, 8)  # other continuous states, mostly the same codes
    out = model(torch.cat([images, nudged]))
    slots, _ = model.encode(torch.cat([images, nudged]))
    # Two inputs with the same codes must get identical outputs, whatever their continuous states.
    codes = out.concepts.codes
    same = [i for i in range(32) if torch.equal(codes[i], codes[32 + i])]
    assert len(model.upper) == 2 and len(model.lower) == 1
    assert len(same) >= 4, f"only {len(same)} nudged inputs kept their codes"
    for i in same:
        assert not torch.allclose(slots[i], slots[32 + i], atol=1e-4)  # the continuous states differ
        assert torch.allclose(out.logits[i], out.logits[32 + i], atol=1e-6)
    # And the quantized state is exactly the code vectors.
    table = model.concept.embedding if kind == "gumbel" else model.concept.codebook
    assert torch.allclose(out.concepts.quantized, table[codes], atol=1e-5)


@pytest.mark.parametrize("layers, side", [(2, 7), (3, 4)])
def test_each_strided_stem_layer_halves_the_token_map(layers, side):
    config = ModelConfig(image_size=28, patch_size=1, stem="strided", stem_channels=4, stem_layers=layers,
                         d_model=16, n_heads=2, n_layers=1)
    model = ConceptTransformer(config)
    tokens = model.adapter(torch.rand(5, 28, 28))
    assert config.patch_tokens == model.adapter.num_tokens == side * side
    assert tokens.shape == (5, side * side, 16)
    assert model(torch.rand(5, 28, 28)).concepts.codes.shape == (5, 1)


def test_tuple_classifier_reads_codes_of_each_input():
    encoder = ConceptTransformer(ModelConfig(d_model=16, n_heads=2))
    model = TupleClassifier(encoder, arity=2, num_labels=19)
    log_p, concepts = model(torch.rand(10, 8, 8))
    assert log_p.shape == (5, 19) and concepts.codes.shape == (10, 1)
    assert torch.allclose(log_p.exp().sum(-1), torch.ones(5), atol=1e-5)


def test_bad_shapes_and_settings_name_the_problem():
    model = ConceptTransformer(ModelConfig(d_model=16, n_heads=2))
    with pytest.raises(ShapeError, match=r"images: expected shape \[B, 1, 8, 8\]"):
        model(torch.rand(3, 7, 7))
    with pytest.raises(ConfigError, match="divisible by n_heads"):
        ModelConfig(d_model=15, n_heads=2)
    with pytest.raises(ConfigError, match="concept.num_codes must be >= 2, got 1"):
        ConceptConfig(num_codes=1)
    with pytest.raises(ConfigError, match="concept_depth"):
        ModelConfig(n_layers=2, concept_depth=5)
    with pytest.raises(ConfigError, match=r"patch_size 2 does not divide the 7x7 map the strided stem leaves \(7\)"):
        ModelConfig(image_size=28, patch_size=2, stem="strided", stem_channels=4)
    with pytest.raises(ConfigError, match="model.stem_layers must be at least 1, got 0"):
        ModelConfig(image_size=28, patch_size=1, stem="strided", stem_channels=4, stem_layers=0)


def test_tuple_head_with_the_true_relation_table_equals_the_constraint():
    from neurosym.constraint import TupleConstraint

    torch.manual_seed(0)
    encoder = ConceptTransformer(ModelConfig(d_model=16, n_heads=2, concept=ConceptConfig(num_codes=4))).eval()
    model = TupleClassifier(encoder, arity=2, num_labels=7, table_scale=1.0)
    relation = torch.tensor([(a, b, a + b) for a in range(4) for b in range(4)])
    table = torch.full((16, 7), -1e4)
    table[relation[:, 0] * 4 + relation[:, 1], relation[:, 2]] = 0.0
    model.table.data.copy_(table)
    images = torch.rand(6, 8, 8)
    log_p, concepts = model(images)
    expected = TupleConstraint(relation).label_log_probs(concepts.log_probs[:, 0, :].reshape(3, 2, 4))
    assert torch.allclose(log_p, expected, atol=1e-4)


def test_head_task_adds_the_batch_diversity_term_to_its_loss():
    """The head objective's loss is the head's NLL plus ``weight * (log K - H(batch-mean probs))``;
    that term is what keeps the head and the codes from settling on one code (TupleHeadTask)."""
    from neurosym.concepts.output import batch_diversity_loss
    from neurosym.tasks import SymbolData, TupleHeadTask

    generator = torch.Generator().manual_seed(0)
    data = SymbolData(torch.rand(40, 8, 8, generator=generator), torch.randint(0, 4, (40,), generator=generator))
    relation = torch.tensor([(a, b, a + b) for a in range(4) for b in range(4)])
    torch.manual_seed(0)
    encoder = ConceptTransformer(ModelConfig(d_model=16, n_heads=2, concept=ConceptConfig(num_codes=4)))
    model = TupleClassifier(encoder, arity=2, num_labels=7).eval()  # eval: no Gumbel noise, same codes twice
    batch = next(iter(TupleHeadTask(data, data, relation, 4, tuples_per_epoch=16, test_tuples=8)
                      .batches(0, torch.Generator().manual_seed(1), 16)))
    plain = TupleHeadTask(data, data, relation, 4, tuples_per_epoch=16, test_tuples=8, diversity_weight=0.0)
    spread = TupleHeadTask(data, data, relation, 4, tuples_per_epoch=16, test_tuples=8, diversity_weight=2.5)
    with torch.no_grad():
        term = batch_diversity_loss(model(batch[0])[1].log_probs.exp())
        difference = spread.loss(model, batch, torch.device("cpu")) - plain.loss(model, batch, torch.device("cpu"))
    assert term > 0
    assert float(difference) == pytest.approx(2.5 * float(term), rel=1e-5)
    assert TupleHeadTask(data, data, relation, 4, tuples_per_epoch=16, test_tuples=8).diversity_weight == 1.0
