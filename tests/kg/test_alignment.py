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
    with pytest.raises(KGError, match=r"allowed tuples must be \[R, 3\], got \(3, 2\)"):
        alignment.label_free(ENTITIES, np.zeros((4, 2)), np.zeros(4), np.zeros((3, 2)), 10)
    with pytest.raises(KGError, match=r"tuple_codes must be \[P, A\] with P = 4 labels, got \(4,\)"):
        alignment.label_free(ENTITIES, np.zeros(4), np.zeros(4), np.zeros((3, 2)), 10)
    with pytest.raises(KGError, match=r"with P = 3 labels, got \(4, 2\)"):
        alignment.label_free(ENTITIES, np.zeros((4, 2)), np.zeros(3), np.zeros((3, 3)), 10)


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


# Exact maps and confidences on small hand-made cases (each method's arithmetic, not only its gist).
CODES = np.array([0, 0, 0, 1, 1, 3, 4])
TRUTH = np.array([2, 2, 5, 0, 0, 0, 7])  # code 2 unused; codes 3 and 4 seen once each


def test_majority_maps_each_code_to_its_most_shown_entity_with_that_share():
    result = alignment.majority(ENTITIES, CODES, TRUTH.astype(float), num_codes=6)  # labels may come as floats
    assert result.entities == ENTITIES and result.method == "majority"
    assert result.entity.tolist() == [2, 0, -1, 0, 7, -1]
    assert result.confidence.tolist() == pytest.approx([2 / 3, 1.0, 0.0, 1.0, 1.0, 0.0])
    assert result.rows() == [(0, "n2", pytest.approx(2 / 3)), (1, "n0", 1.0), (3, "n0", 1.0), (4, "n7", 1.0)]
    assert result.to_json()[0] == {"code": 0, "entity": "n2", "confidence": 0.6667}
    assert [result.iri(k) for k in range(6)] == ["n2", "n0", None, "n0", "n7", None]


def test_hungarian_is_one_to_one_and_scores_agreement_even_with_more_codes_than_entities():
    entities = ("a", "b", "c")
    codes = np.array([0, 0, 1, 1, 1, 2, 3, 4, 4])
    truth = np.array([0, 0, 1, 1, 0, 2, 2, 0, 1])
    result = alignment.hungarian(entities, codes, truth, num_codes=5)
    assert result.entities == entities and result.method == "hungarian"
    # codes 0, 1, 2 take a, b, c (2 + 2 + 1 agreements); codes 3 and 4 are left without an entity
    assert result.entity.tolist() == [0, 1, 2, -1, -1]
    assert result.confidence.tolist() == pytest.approx([1.0, 2 / 3, 1.0, 0.0, 0.0])
    unused = alignment.hungarian(ENTITIES, np.array([0, 0]), np.array([4, 4]), num_codes=3)
    assert unused.entity[0] == 4 and unused.confidence.tolist() == [1.0, 0.0, 0.0]


def test_constraint_alignment_scores_unused_codes_zero():
    result = alignment.from_constraint(ENTITIES, np.array([0, 0, 3]), np.array([0.9, 0.5, 0.4]), num_codes=12)
    assert result.entities == ENTITIES and result.method == "constraint"
    assert result.confidence.tolist() == pytest.approx([0.7, 0, 0, 0.4] + [0.0] * 8)
    assert result.low_confidence() == [1, 2, 3, 4, 5, 6, 7, 8, 9]  # code 0 at 0.7 is sure; 10, 11 unaligned
    exactly = alignment.CodeAlignment(ENTITIES, np.array([0, 1]), np.array([0.5, 0.49]), "test")
    assert exactly.low_confidence() == [1]  # 0.5 is not below the threshold of 0.5
    assert exactly.rows() == [(0, "n0", 0.5), (1, "n1", 0.49)]


def test_accuracy_edges():
    one = alignment.CodeAlignment(ENTITIES, np.array([0]), np.ones(1), "test")
    assert one.accuracy(np.array([0, 0]), np.array([0, 0])) == 1.0
    three = alignment.CodeAlignment(ENTITIES, np.array([0, 0, 0]), np.ones(3), "test")
    assert three.accuracy(np.array([0, 1, 2]), np.array([0, 0, 0])) == 1.0  # three codes, all right
    assert three.accuracy(np.array([0, 1, 2]), np.array([0, 0, 1])) == pytest.approx(2 / 3)
    assert three.accuracy(np.array([], dtype=int), np.array([], dtype=int)) == 0.0


def sum_confidence(entity: np.ndarray, codes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per code: share of the tuples it appears in that the map makes a true sum (the brute-force definition)."""
    ok = entity[codes].sum(1) == labels
    return np.array([ok[(codes == k).any(1)].mean() if (codes == k).any() else 0.0 for k in range(len(entity))])


def test_label_free_confidence_is_the_share_of_a_codes_tuples_the_map_allows():
    perm, digits, codes = permuted_pairs(noise=0.05)
    labels = digits.sum(1)
    labels[0], codes[0] = 18, perm[[9, 9]]  # the largest allowed tuple is observed too
    result = alignment.label_free(ENTITIES, codes, labels.astype(float), ADDITION.astype(float), num_codes=11)
    assert result.entity.dtype.kind == "i" and result.method == "label_free" and result.entities == ENTITIES
    assert (result.entity[perm] == np.arange(10)).all() and result.entity[10] == -1
    assert result.confidence == pytest.approx(sum_confidence(np.where(result.entity >= 0, result.entity, 0), codes, labels))


def test_label_free_with_labels_no_map_allows_still_answers():
    codes = np.array([[0, 1], [1, 0]])
    result = alignment.label_free(ENTITIES, codes, np.array([40, 41]), ADDITION, num_codes=2)  # sums past 18
    assert result.confidence.tolist() == [0.0, 0.0]
    small = alignment.label_free(ENTITIES, codes, np.array([1, 1]), ADDITION, num_codes=2, num_labels=19)
    assert sorted(small.entity.tolist()) == [0, 1] and small.confidence.tolist() == [1.0, 1.0]


def test_label_free_is_deterministic_among_equally_good_maps():
    codes = np.array([[0, 1], [2, 3]])
    labels = np.array([30, 30])  # no map explains either tuple: every map is as good as any other
    first = alignment.label_free(ENTITIES, codes, labels, ADDITION, num_codes=4)
    again = alignment.label_free(ENTITIES, codes, labels, ADDITION, num_codes=4)
    assert first.entity.tolist() == again.entity.tolist()


@pytest.mark.parametrize("seed", range(6))
def test_label_free_from_one_start_reaches_the_best_map_on_small_problems(seed):
    """Four codes, four digits, sums with noise: three local-search starts find a map as good as the
    best of all 4^4 maps (found here by brute force); one start alone can stop short."""
    import itertools

    rng = np.random.default_rng(seed)
    entities, allowed = ENTITIES[:4], np.array([(a, b, a + b) for a in range(4) for b in range(4)])
    perm = rng.permutation(4)
    digits = rng.integers(0, 4, (40, 2))
    codes = perm[digits]
    noisy = rng.random(codes.shape) < 0.15
    codes[noisy] = rng.integers(0, 4, noisy.sum())
    labels = digits.sum(1)

    def score(mapping):
        return int((np.asarray(mapping)[codes].sum(1) == labels).sum())

    best = max(score(m) for m in itertools.product(range(4), repeat=4))
    result = alignment.label_free(entities, codes, labels, allowed, num_codes=4, restarts=3, seed=seed)
    assert score(result.entity) == best


def test_low_confidence_lists_every_aligned_code_below_the_threshold_including_entity_0():
    result = alignment.CodeAlignment(ENTITIES, np.array([0, 1, -1, 0]), np.array([0.2, 0.9, 0.1, 0.5]), "test")
    assert result.low_confidence() == [0]  # code 2 is unaligned; 0.5 is not below 0.5
    assert result.low_confidence(0.6) == [0, 3]


def test_codes_and_alignments_of_the_wrong_size_are_one_exact_line():
    with pytest.raises(KGError) as caught:
        alignment.CodeAlignment(ENTITIES, np.array([0, 1]), np.array([0.5]), "test")
    assert str(caught.value) == "alignment: entity and confidence must have one value per code"
    with pytest.raises(KGError) as caught:
        alignment.majority(ENTITIES, np.array([3, 10]), np.array([0, 0]), 10)  # the codebook's size is one too many
    assert str(caught.value) == "alignment: codes must be in [0, 10), got values up to 10"
    assert alignment.majority(ENTITIES, np.array([9]), np.array([4]), 10).iri(9) == ENTITIES[4]  # its largest code is in
