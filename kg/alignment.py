"""Alignment: which KG entity each code of a run's codebook stands for, with a confidence.

Shape legend: N inputs, K codes, E entities, P tuples, A inputs per tuple.

Methods (all return a ``CodeAlignment``):

- ``from_constraint``: the codes were trained through a constraint whose i-th symbol is entity i,
  so code i *is* that entity; confidence is the model's mean probability for the inputs it chose.
- ``majority``: a few labelled inputs vote; confidence is the code's precision on them.
- ``hungarian``: the one-to-one map that maximises code/entity co-occurrence.
- ``label_free``: no entity labels at all. Tuples of inputs with an observed label (e.g. the sum of
  two digits) and the KG's allowed tuples are enough: search for the code -> entity map under which
  the largest share of observed ``(codes..., label)`` tuples is allowed by the KG. Local search
  (reassign one code, swap two) from random starts; many-to-one maps are allowed, so a codebook
  larger than the entity set works, and codes whose tuples are rarely allowed get a low confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kg.errors import KGError

#: Alignments below this confidence are marked as doubtful (``skos:closeMatch`` in the RDF view).
LOW_CONFIDENCE = 0.5


@dataclass(frozen=True)
class CodeAlignment:
    """A code -> entity map. Shapes: entity ``[K]`` (index into ``entities``, -1: unaligned),
    confidence ``[K]`` in [0, 1]."""

    entities: tuple[str, ...]
    entity: np.ndarray
    confidence: np.ndarray
    method: str

    def __post_init__(self) -> None:
        if self.entity.shape != self.confidence.shape:
            raise KGError("alignment: entity and confidence must have one value per code")

    @property
    def num_codes(self) -> int:
        return self.entity.shape[0]

    def iri(self, code: int) -> str | None:
        index = int(self.entity[code])
        return self.entities[index] if index >= 0 else None

    def rows(self) -> list[tuple[int, str, float]]:
        """``(code, entity IRI, confidence)`` for every aligned code."""
        return [(k, self.entities[e], float(c)) for k, (e, c) in enumerate(zip(self.entity, self.confidence)) if e >= 0]

    def low_confidence(self, threshold: float = LOW_CONFIDENCE) -> list[int]:
        return [k for k in range(self.num_codes) if self.entity[k] >= 0 and self.confidence[k] < threshold]

    def accuracy(self, codes: np.ndarray, true_entity: np.ndarray) -> float:
        """Share of codes mapped to the entity most of their inputs truly show.

        The denominator is the number of codes in use, but never fewer than the number of entities
        the inputs show: a model that merges two digits into one code cannot score 1.0.
        Shapes: codes ``[N]``, true_entity ``[N]`` (entity indices).
        """
        correct, used = 0, 0
        for code in np.unique(codes):
            truth = np.bincount(true_entity[codes == code]).argmax()
            used += 1
            correct += int(self.entity[code] == truth)
        return correct / max(used, len(np.unique(true_entity)), 1)

    def recovered(self, codes: np.ndarray, true_entity: np.ndarray) -> int:
        """How many of the entities the inputs show have a code correctly mapped to them."""
        found = set()
        for code in np.unique(codes):
            truth = np.bincount(true_entity[codes == code]).argmax()
            if self.entity[code] == truth:
                found.add(int(truth))
        return len(found)

    def to_json(self) -> list[dict]:
        return [{"code": k, "entity": e, "confidence": round(c, 4)} for k, e, c in self.rows()]


def _check_codes(codes: np.ndarray, num_codes: int) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.int64)
    if codes.size and (codes.min() < 0 or codes.max() >= num_codes):
        raise KGError(f"alignment: codes must be in [0, {num_codes}), got values up to {codes.max()}")
    return codes


def from_constraint(entities: tuple[str, ...], codes: np.ndarray, confidence: np.ndarray, num_codes: int) -> CodeAlignment:
    """Code i is the constraint's i-th symbol; codes past the symbols stay unaligned.

    Shapes: codes ``[N]`` (top code per input), confidence ``[N]`` (its probability).
    """
    codes = _check_codes(codes, num_codes)
    entity = np.where(np.arange(num_codes) < len(entities), np.arange(num_codes), -1)
    sums = np.bincount(codes, weights=confidence, minlength=num_codes)
    counts = np.bincount(codes, minlength=num_codes)
    mean = np.divide(sums, counts, out=np.zeros(num_codes), where=counts > 0)
    return CodeAlignment(tuple(entities), entity, np.where(entity >= 0, mean, 0.0), "constraint")


def cooccurrence(codes: np.ndarray, true_entity: np.ndarray, num_codes: int, num_entities: int) -> np.ndarray:
    """``[N]`` x ``[N]`` -> counts ``[K, E]``."""
    codes = _check_codes(codes, num_codes)
    flat = codes * num_entities + np.asarray(true_entity, dtype=np.int64)
    return np.bincount(flat, minlength=num_codes * num_entities).reshape(num_codes, num_entities)


def majority(entities: tuple[str, ...], codes: np.ndarray, true_entity: np.ndarray, num_codes: int) -> CodeAlignment:
    """Each code takes the entity most of its labelled examples show; confidence = that share.

    Shapes: codes ``[n]`` and true_entity ``[n]`` for the few labelled examples.
    """
    counts = cooccurrence(codes, true_entity, num_codes, len(entities))
    totals = counts.sum(1)
    entity = np.where(totals > 0, counts.argmax(1), -1)
    precision = np.divide(counts.max(1), totals, out=np.zeros(num_codes), where=totals > 0)
    return CodeAlignment(tuple(entities), entity, precision, "majority")


def hungarian(entities: tuple[str, ...], codes: np.ndarray, true_entity: np.ndarray, num_codes: int) -> CodeAlignment:
    """One-to-one map maximising co-occurrence; confidence = share of the code's inputs that agree."""
    from scipy.optimize import linear_sum_assignment

    counts = cooccurrence(codes, true_entity, num_codes, len(entities))
    rows, cols = linear_sum_assignment(counts, maximize=True)
    entity = np.full(num_codes, -1)
    entity[rows] = cols
    totals = counts.sum(1)
    agree = counts[np.arange(num_codes), np.maximum(entity, 0)]
    confidence = np.where((entity >= 0) & (totals > 0), agree / np.maximum(totals, 1), 0.0)
    return CodeAlignment(tuple(entities), entity, confidence, "hungarian")


class _TupleScorer:
    """Counts how many observed (codes..., label) tuples a code -> entity map makes KG-allowed."""

    def __init__(self, tuple_codes: np.ndarray, labels: np.ndarray, allowed: np.ndarray, num_entities: int,
                 num_labels: int) -> None:
        observed = np.concatenate([tuple_codes, labels[:, None]], axis=1)
        self.observed, self.counts = np.unique(observed, axis=0, return_counts=True)  # (U, A + 1), (U,)
        self.arity = tuple_codes.shape[1]
        radix = [num_entities] * self.arity + [num_labels]
        self.weights = np.array([int(np.prod(radix[i + 1:])) for i in range(len(radix))], dtype=np.int64)
        self.allowed_ids = np.unique(allowed.astype(np.int64) @ self.weights)

    def allowed(self, mapping: np.ndarray) -> np.ndarray:
        """``[U]`` bool: is each distinct observed tuple allowed under ``mapping`` ``[K]``?"""
        symbols = mapping[self.observed[:, :-1]]  # (U, A)
        ids = symbols @ self.weights[:-1] + self.observed[:, -1]
        where = np.searchsorted(self.allowed_ids, ids).clip(max=self.allowed_ids.size - 1)
        return (self.allowed_ids[where] == ids) & (symbols >= 0).all(1)

    def score(self, mapping: np.ndarray) -> int:
        return int(self.counts[self.allowed(mapping)].sum())


def label_free(
    entities: tuple[str, ...],
    tuple_codes: np.ndarray,
    labels: np.ndarray,
    allowed: np.ndarray,
    num_codes: int,
    num_labels: int | None = None,
    restarts: int = 20,
    seed: int = 0,
) -> CodeAlignment:
    """Recover code -> entity from tuples of codes, their observed labels and the KG's allowed tuples.

    Shapes: tuple_codes ``[P, A]`` (top code of each input of each tuple), labels ``[P]`` (label
    index), allowed ``[R, A + 1]`` (entity indices, then label index, as the constraint query gives).
    Confidence of a code: the share of observed tuples containing it that the final map allows.
    """
    tuple_codes = _check_codes(tuple_codes, num_codes)
    labels = np.asarray(labels, dtype=np.int64)
    allowed = np.asarray(allowed, dtype=np.int64)
    if tuple_codes.ndim != 2 or tuple_codes.shape[0] != labels.shape[0]:
        raise KGError(f"label_free: tuple_codes must be [P, A] with P = {labels.shape[0]} labels, got {tuple_codes.shape}")
    if allowed.ndim != 2 or allowed.shape[1] != tuple_codes.shape[1] + 1:
        raise KGError(f"label_free: allowed tuples must be [R, {tuple_codes.shape[1] + 1}], got {allowed.shape}")
    num_entities = len(entities)
    num_labels = num_labels or int(max(allowed[:, -1].max(), labels.max())) + 1
    scorer = _TupleScorer(tuple_codes, labels, allowed, num_entities, num_labels)
    rng = np.random.default_rng(seed)
    best_map, best_score = None, -1
    for _ in range(restarts):
        mapping = rng.permutation(max(num_codes, num_entities))[:num_codes] % num_entities
        score = scorer.score(mapping)
        improved = True
        while improved:
            improved = False
            for code in range(num_codes):
                # Move one code to another entity (allows many-to-one) ...
                for entity in range(num_entities):
                    if entity == mapping[code]:
                        continue
                    old = mapping[code]
                    mapping[code] = entity
                    candidate = scorer.score(mapping)
                    if candidate > score:
                        score, improved = candidate, True
                    else:
                        mapping[code] = old
                # ... or swap it with another code (keeps one-to-one maps one-to-one).
                for other in range(code + 1, num_codes):
                    mapping[[code, other]] = mapping[[other, code]]
                    candidate = scorer.score(mapping)
                    if candidate > score:
                        score, improved = candidate, True
                    else:
                        mapping[[code, other]] = mapping[[other, code]]
        if score > best_score:
            best_map, best_score = mapping.copy(), score
    allowed_mask = scorer.allowed(best_map)
    confidence = np.zeros(num_codes)
    for code in range(num_codes):
        involved = (scorer.observed[:, :-1] == code).any(1)
        total = scorer.counts[involved].sum()
        confidence[code] = scorer.counts[involved & allowed_mask].sum() / total if total else 0.0
    used = np.isin(np.arange(num_codes), tuple_codes)
    entity = np.where(used, best_map, -1)
    return CodeAlignment(tuple(entities), entity, np.where(used, confidence, 0.0), "label_free")
