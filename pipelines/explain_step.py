"""Part of the pipeline step *encode*: explain every test group of the run through the task's knowledge.

For a ``[task.knowledge]`` program the groups are the disjoint test groups ``GroupTask`` evaluates
(all of them, so that the wrong ones are exactly the ``1 - label_acc`` share); for a flat query they
are the held-out test tuples. Each group's predicted label is the task's own prediction (the label of
the most probable explanation for a program, the most probable label for a flat relation), every
variable's value the most probable explanation given it, with its marginal probability
(``neurosym/explanation.py``); the values the true inputs imply and whether the label was right come
with them. A flat relation is compiled into a one-factor ``QueryConstraint`` over its columns, so both
kinds are explained by the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from kg.sql.explanations import Variable
from kg.store import Store
from neurosym.errors import ConfigError
from neurosym.explanation import explain_groups
from neurosym.group_task import group_indices, label_groups
from neurosym.query_constraint import Factor, QueryConstraint
from pipelines.config import ExperimentConfig
from pipelines.train_step import PreparedTask


@dataclass
class Knowledge:
    """What explaining a run's test groups needs: the constraint, each variable's entity per index,
    the variables as the store records them, how the label is predicted, and the test groups with
    their true labels (``groups`` ``[G, A]`` indices into the test split, ``labels`` ``[G, E]``)."""

    constraint: QueryConstraint
    domains: dict[str, tuple[str | None, ...]]
    variables: list[Variable]
    label_from: str
    groups: torch.Tensor
    labels: torch.Tensor
    test_symbols: torch.Tensor  # [N] the true symbol of every test input


def knowledge_of(prepared: PreparedTask, config: ExperimentConfig) -> Knowledge:
    """The program's test groups, or the flat query's test tuples."""
    if prepared.program is not None:
        return program_knowledge(prepared, config)
    return relation_knowledge(prepared, config)


def program_knowledge(prepared: PreparedTask, config: ExperimentConfig) -> Knowledge:
    """The test groups of a ``[task.knowledge]`` program, as ``GroupTask`` holds them out."""
    program = prepared.program
    constraint = program.constraint
    _, groups = group_indices(len(prepared.train.symbols), len(prepared.test.symbols), constraint.arity,
                              config.train.seed)
    labels, groups = label_groups(constraint, prepared.test.symbols, groups)
    columns: dict[str, list[str]] = {}
    following: dict[str, str] = {}
    last_atom: dict[str, tuple] = {}  # relation -> variables of its previous atom
    for atom in program.atoms:
        names = program.columns.get(atom.relation, ())
        previous = last_atom.get(atom.relation)
        for position, variable in enumerate(atom.variables):
            if position < len(names) and names[position] not in columns.setdefault(variable, []):
                columns[variable].append(names[position])
            if previous is not None and previous[position] != variable:
                following.setdefault(previous[position], variable)
        last_atom[atom.relation] = atom.variables
    order = list(constraint.inputs)
    order += [v for atom in program.atoms for v in atom.variables if v not in constraint.evidence]
    order += list(constraint.evidence)
    order = list(dict.fromkeys(order))
    roles = {v: "input" for v in constraint.inputs} | {v: "label" for v in constraint.evidence}
    variables = [Variable(v, roles.get(v, "latent"), tuple(columns.get(v, ())),
                          constraint.inputs.index(v) if v in constraint.inputs else None, following.get(v))
                 for v in order]
    return Knowledge(constraint, program.domains, variables, "mpe", groups, labels, prepared.test.symbols)


def relation_knowledge(prepared: PreparedTask, config: ExperimentConfig) -> Knowledge:
    """The held-out test tuples of a flat query, its relation as one factor over its columns."""
    relation = prepared.relation
    num_codes, arity = config.model.concept.num_codes, relation.arity
    names = list(relation.columns)
    table = torch.zeros([num_codes] * arity + [len(relation.labels)], dtype=torch.bool)
    table[tuple(relation.tuples.T)] = True
    domains = {v: tuple(relation.symbols) + (None,) * (num_codes - len(relation.symbols)) for v in names[:-1]}
    domains[names[-1]] = tuple(relation.labels)
    constraint = QueryConstraint([Factor("relation", tuple(names), table)], {v: len(d) for v, d in domains.items()},
                                 names[:-1], names[-1:])
    groups, labels = prepared.test_tuples(config)
    variables = [Variable(v, "input", (v,), member=i) for i, v in enumerate(names[:-1])]
    variables.append(Variable(names[-1], "label", (names[-1],)))
    return Knowledge(constraint, domains, variables, "marginal", groups, labels.reshape(len(labels), -1),
                     prepared.test.symbols)


def write_explanations(store: Store, run_id: int, knowledge: Knowledge, log_probs: np.ndarray,
                       input_ids: np.ndarray) -> int:
    """Explain the groups from the test split's concept log-probabilities ``[N, S, K]`` (slot 0) and
    write them to the store; returns how many groups were written."""
    k = knowledge
    grouped = torch.as_tensor(log_probs[:, 0, :])[k.groups]  # (G, A, K)
    members = k.groups
    out = explain_groups(k.constraint, grouped, k.label_from, k.test_symbols[members], k.labels)
    names = [v.name for v in k.variables]
    values = np.empty((len(members), len(names)), dtype=object)
    truth = np.empty_like(values)
    probability = np.empty(values.shape)
    for column, name in enumerate(names):
        domain = np.array(k.domains[name], dtype=object)
        values[:, column] = domain[out.values[name].numpy()]
        truth[:, column] = domain[out.true_values[name].numpy()]
        probability[:, column] = out.probability[name].nan_to_num(0.0).clamp(0, 1).numpy()
    if any(v is None for v in values.ravel()):
        raise ConfigError("an explanation gave an input a code that stands for no symbol of the knowledge")
    return store.add_explanations(run_id, k.variables, input_ids[members.numpy()], values, probability,
                                  truth, out.correct.numpy())
