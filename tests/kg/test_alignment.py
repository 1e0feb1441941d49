import numpy as np
import pytest

from kg import alignment
from kg.errors import KGError

ENTITIES = tuple(f"n{i}" for i in range(10))
ADDITION = np.array([(a, b, a + b) for a in range(10) for b in range(10)])


def permuted_pairs(num_codes=10, seed=1, noise=0.02):
    rng = np.random.default_rng(seed)
    perm = rng.permutation(num_codes)[:10]  # code of digit d
    digits = rng.integers(0, 10, (3000, 2))
    codes = perm[digits]
    flip = rng.random(codes.shape) < noise
    codes[flip] = rng.integers(0, num_codes, flip.sum())
    return perm, digits, codes


def test_label_free_recovers_a_permutation_from_sums_alone():
    perm, digits, codes = permuted_pairs()
    result = alignment.label_free(ENTITIES, codes, digits.sum(1), ADDITION, num_codes=10)
    assert (result.entity[perm] == np.arange(10)).all()
    assert (result.confidence > 0.9).all()
    assert result.method == "label_free"


def test_label_free_handles_more_codes_than_entities():
    rng = np.random.default_rng(3)
    perm, digits, codes = permuted_pairs()
    split = {3: 10, 7: 11}  # digits 3 and 7 are written with two codes each
    for digit, extra in split.items():
        codes[(digits == digit) & (rng.random(digits.shape) < 0.5)] = extra
    result = alignment.label_free(ENTITIES, codes, digits.sum(1), ADDITION, num_codes=13)
    assert (result.entity[perm] == np.arange(10)).all()
    assert result.entity[10] == 3 and result.entity[11] == 7
    assert result.entity[12] == -1  # never used: unaligned
    assert result.iri(10) == "n3" and result.iri(12) is None


def test_majority_and_hungarian_and_accuracy():
    perm, digits, codes = permuted_pairs(noise=0.0)
    flat_codes, flat_digits = codes.ravel(), digits.ravel()
    few = alignment.majority(ENTITIES, flat_codes[:60], flat_digits[:60], 10)
    assert few.accuracy(flat_codes, flat_digits) == pytest.approx(np.mean(few.entity[np.unique(flat_codes[:60])] >= 0))
    best = alignment.hungarian(ENTITIES, flat_codes, flat_digits, 10)
    assert (best.entity[perm] == np.arange(10)).all()
    assert best.accuracy(flat_codes, flat_digits) == 1.0
    wrong = alignment.CodeAlignment(ENTITIES, np.roll(best.entity, 1), np.ones(10), "test")
    assert wrong.accuracy(flat_codes, flat_digits) == 0.0


def test_constraint_alignment_reads_code_i_as_symbol_i_and_marks_doubtful_codes():
    codes = np.array([0, 0, 1, 2, 11])
    confidence = np.array([0.9, 0.7, 0.3, 0.6, 0.99])
    result = alignment.from_constraint(ENTITIES, codes, confidence, num_codes=12)
    assert result.entity[:10].tolist() == list(range(10)) and result.entity[10:].tolist() == [-1, -1]
    assert result.confidence[0] == pytest.approx(0.8)
    assert result.low_confidence() == [1, 3, 4, 5, 6, 7, 8, 9]


def test_bad_inputs_raise():
    with pytest.raises(KGError, match=r"codes must be in \[0, 10\)"):
        alignment.majority(ENTITIES, np.array([12]), np.array([0]), 10)
    with pytest.raises(KGError, match="allowed tuples must be"):
        alignment.label_free(ENTITIES, np.zeros((4, 2)), np.zeros(4), np.zeros((3, 2)), 10)


def test_accuracy_counts_merged_entities_as_missing():
    codes = np.array([0, 0, 1, 1])
    truth = np.array([0, 1, 2, 2])  # code 0 shows both entity 0 and entity 1
    merged = alignment.CodeAlignment(ENTITIES, np.array([0, 2]), np.ones(2), "test")
    assert merged.accuracy(codes, truth) == pytest.approx(2 / 3)  # 2 right codes, 3 entities shown


def test_recovered_counts_entities_with_a_correct_code():
    codes = np.array([0, 0, 1, 1, 2])
    truth = np.array([0, 0, 2, 2, 2])  # codes 1 and 2 both show entity 2
    mapped = alignment.CodeAlignment(ENTITIES, np.array([0, 2, 5]), np.ones(3), "test")
    assert mapped.recovered(codes, truth) == 2
