"""Explanations of groups: marginals against brute-force enumeration, values that reproduce the predicted
label, true values that the true digits imply."""

from __future__ import annotations

import itertools

import pytest
import torch

from neurosym.errors import ConfigError
from neurosym.explanation import consistent, explain_groups
from neurosym.query_constraint import Factor, QueryConstraint


def brute_force(log_probs: torch.Tensor, n: int) -> list[dict[str, torch.Tensor]]:
    """Per group, P(variable = value) of every variable of N-digit addition, by enumerating the 10^(2N)
    digit tuples (the carries and sum digits are functions of the digits)."""
    out = []
    for group in log_probs.exp():
        sums: dict[str, torch.Tensor] = {}
        for digits in itertools.product(range(10), repeat=2 * n):
            weight = torch.prod(torch.stack([group[j, d] for j, d in enumerate(digits)]))
            a = digits[:n][::-1]  # a0 is the least significant: inputs are most significant first
            b = digits[n:][::-1]
            carry, assignment = 0, {"c0": 0}
            for i in range(n):
                total = a[i] + b[i] + carry
                assignment |= {f"a{i}": a[i], f"b{i}": b[i], f"s{i}": total % 10, f"c{i + 1}": total // 10}
                carry = total // 10
            for name, value in assignment.items():
                size = 1 if name == "c0" else 2 if name.startswith("c") else 10
                sums.setdefault(name, torch.zeros(size))[value] += weight
        out.append(sums)
    return out


def test_marginals_equal_brute_force_enumeration(adder_chain):
    query = adder_chain(2)
    log_probs = torch.randn(3, 4, 10, generator=torch.Generator().manual_seed(3)).mul(2).log_softmax(-1)
    got = query.marginals(log_probs)
    for b, expected in enumerate(brute_force(log_probs, 2)):
        assert set(got) == set(expected)
        for name, probs in expected.items():
            assert torch.allclose(got[name][b], probs, atol=1e-5), name


def test_marginals_given_the_label_sum_to_one_and_fix_the_label(adder_chain):
    query = adder_chain(2)
    log_probs = torch.randn(2, 4, 10, generator=torch.Generator().manual_seed(4)).log_softmax(-1)
    labels = query.predict(log_probs)
    got = query.marginals(log_probs, labels)
    assert "s0" not in got and "c2" not in got  # observed
    for probs in got.values():
        assert torch.allclose(probs.sum(-1), torch.ones(2), atol=1e-5)


def test_explanations_reproduce_the_prediction_and_the_truth(adder_chain):
    n, query = 2, adder_chain(2)
    generator = torch.Generator().manual_seed(6)
    true_symbols = torch.randint(0, 10, (8, 2 * n), generator=generator)
    log_probs = (torch.randn(8, 2 * n, 10, generator=generator) + 3 * torch.nn.functional.one_hot(true_symbols, 10)).log_softmax(-1)
    out = explain_groups(query, log_probs, true_symbols=true_symbols, chunk=3)  # chunks are stitched
    assert torch.equal(out.predicted, query.predict(log_probs))
    for b in range(8):
        digits = [out.values[v][b].item() for v in query.inputs]
        a, c = int("".join(map(str, digits[:n]))), int("".join(map(str, digits[n:])))
        assert "".join(str(out.values[v][b].item()) for v in query.evidence) == f"{a + c:0{n + 1}d}"
        true = [out.true_values[v][b].item() for v in query.inputs]
        assert true == true_symbols[b].tolist()
        assert out.correct[b].item() == (out.predicted[b] == out.true_labels[b]).all().item()
    # the probability of each explained value is its marginal
    marginals = query.marginals(log_probs)
    for name, values in out.values.items():
        assert torch.allclose(out.probability[name], marginals[name].gather(1, values[:, None]).squeeze(1))
    # a right prediction whose inputs are read by the argmax: the explained digits are that argmax
    right = out.correct.nonzero().flatten().tolist()
    assert right
    for b in right:
        assert [out.values[v][b].item() for v in query.inputs] == log_probs[b].argmax(-1).tolist()


def test_a_flat_relation_predicts_by_the_label_marginal():
    table = torch.zeros(3, 3, 2, dtype=torch.bool)
    for a, b in itertools.product(range(3), repeat=2):
        table[a, b, int(a == b)] = True
    query = QueryConstraint([Factor("same", ("a", "b", "y"), table)], {"a": 3, "b": 3, "y": 2}, ["a", "b"], ["y"])
    # The single best pair (0, 0) says y = 1; the marginal P(y = 1) is the diagonal's 0.34, so y = 0.
    probs = torch.tensor([[[0.4, 0.3, 0.3], [0.4, 0.32, 0.28]]]).log()
    marginal = explain_groups(query, probs, label_from="marginal")
    assert marginal.predicted.tolist() == [[0]]
    assert marginal.probability["y"].item() == pytest.approx(1 - (0.16 + 0.096 + 0.084), abs=1e-5)
    assert (marginal.values["a"].item(), marginal.values["b"].item()) == (0, 1)  # the best pair with y = 0
    assert explain_groups(query, probs).predicted.tolist() == [[1]]
    with pytest.raises(ConfigError, match="label_from"):
        explain_groups(query, probs, label_from="vote")


def test_an_exact_tie_still_gives_values_that_satisfy_the_relations(adder_chain):
    """The same image twice: (3, 5) and (5, 3) explain a sum of 8 equally well; the derivative trick alone
    splits its gradient between them and can read 3 + 3 or 5 + 5."""
    query = adder_chain(1)
    image = torch.tensor([0.01, 0.01, 0.01, 0.3, 0.01, 0.3, 0.01, 0.01, 0.01, 0.33]).log()
    log_probs = torch.stack([image, image]).unsqueeze(0)  # (1, 2, 10)
    labels = torch.tensor([[0, 8]])  # c1 = 0, s0 = 8
    plain = query.explain(log_probs, labels).values
    assert (plain["a0"].item(), plain["b0"].item()) in ((3, 3), (5, 5))  # the trick alone breaks the relation
    out = explain_groups(query, log_probs, label_from="marginal")
    values = {v: out.values[v].item() for v in out.values}
    assert values["s0"] == (values["a0"] + values["b0"]) % 10 and values["c1"] == (values["a0"] + values["b0"]) // 10
    assert consistent(query, out.values).all()
