"""Knowledge as a compiled conjunctive query with latent variables: exact inference by tensor contraction.

A query joins relations (factors): each factor is a 0/1 table over some of the query's variables,
``table[v_1, .., v_k] = 1`` where the KG holds the fact. Every example binds A variables to neural
inputs (their symbol distributions ``p_j``) and E variables to its observed label (evidence); the
rest are latent and summed out:

    P(label) = sum over latent values of  prod_factors table(...) * prod_j p_j(v_j)

``-log P(label)`` is the loss. The sum is a tensor contraction (one einsum over all factors and input
distributions), evaluated pairwise in an order found by ``opt_einsum`` (which finds good orders for
contractions of dozens of tensors far better than a hand-written rule) and computed in log space
(``neurosym.logspace``), so a probability of 1e-100 at N = 15 stays finite, as do the gradients where
some paths are impossible. Steps of the order that are the same contraction over other variables
(the N adders' digit steps) run stacked as one operation. The same program with ``max`` in place of ``sum`` gives the most probable
explanation (MPE): the values of every variable that best explain the label, read from the gradient
of the max-product value with respect to one zero "probe" per variable (the classic derivative trick).

Digit addition with one factor ``add(a, b, s)`` and no latent variable is ``TupleConstraint``; N-digit
addition is N full-adder factors ``fa(a_i, b_i, c_i, s_i, c_i+1)`` chained through latent carries,
which the contraction evaluates in time linear in N (enumerating digit tuples is ``10^(2N)``).

Shape legend: B batch, A inputs per example, K symbols per input, E evidence variables.
"""

from __future__ import annotations

from dataclasses import dataclass

import opt_einsum
import torch
from torch import Tensor, nn

from neurosym import logspace
from neurosym.errors import ConfigError, NonFiniteError, ShapeError

BATCH = "__batch__"
STACK = "__stack__"  # the axis of a group of alike steps run as one (see QueryConstraint._waves)


@dataclass
class _Group:
    """Steps of one wave of the plan that are one contraction over other variables (``_waves``)."""

    inputs: list[list[int]]  # per step, its input nodes
    outputs: list[int]  # per step, its result node
    needed: set[str]  # the indices the step keeps (stacked: in the shared pattern, with STACK)
    stacked: list[tuple[str, ...]]  # stacked: each input position's indices in the shared pattern; [] for one step
    results: list[tuple[str, ...]]  # per step, the indices of its result

    def __len__(self) -> int:
        return len(self.outputs)


@dataclass(frozen=True)
class Factor:
    """One relation of the query: ``table`` is a 0/1 (bool) tensor with one axis per variable."""

    name: str
    variables: tuple[str, ...]
    table: Tensor

    def __post_init__(self) -> None:
        if self.table.dim() != len(self.variables):
            raise ConfigError(f"factor {self.name}: {len(self.variables)} variables but a {self.table.dim()}-d table")
        if len(set(self.variables)) != len(self.variables):
            raise ConfigError(f"factor {self.name}: a variable occurs twice in {self.variables}")
        if not bool(self.table.any()):
            raise ConfigError(f"factor {self.name}: the relation has no rows")


@dataclass
class Explanation:
    """The most probable explanation. Shapes: ``values`` maps each variable to ``[B]`` value indices;
    ``log_prob`` ``[B]`` is its log-probability (``-inf``: no assignment is consistent)."""

    values: dict[str, Tensor]
    log_prob: Tensor


class QueryConstraint(nn.Module):
    """Negative log-probability of the observed label under a compiled conjunctive query.

    Args:
        factors: the query's relations over its variables.
        domains: size of each variable's domain (axis length in every factor it appears in).
        inputs: the A variables bound to the inputs of an example, in order (domain K each).
        evidence: the E variables observed as the label, in order.

    Shapes:
        log_probs ``[B, A, K]`` (log-distributions over each input's symbols), labels ``[B, E]``
        (value indices, or ``[B]`` when E = 1) -> scalar loss; ``log_likelihood`` -> ``[B]``.
    """

    def __init__(self, factors: list[Factor], domains: dict[str, int], inputs: list[str], evidence: list[str]) -> None:
        super().__init__()
        if not factors:
            raise ConfigError("the query has no relations")
        variables = {v for factor in factors for v in factor.variables}
        for role, names in (("input", inputs), ("label", evidence)):
            for name in names:
                if name not in variables:
                    raise ConfigError(f"{role} variable {name!r} occurs in no relation of the query")
        if len(set(inputs)) != len(inputs) or len(set(evidence)) != len(evidence):
            raise ConfigError("a variable is bound to two inputs (or two label positions)")
        if set(inputs) & set(evidence):
            raise ConfigError(f"variables {sorted(set(inputs) & set(evidence))} are bound to both an input and the label")
        for factor in factors:
            for variable, size in zip(factor.variables, factor.table.shape):
                if domains.get(variable) != size:
                    raise ConfigError(f"factor {factor.name}: variable {variable!r} has an axis of {size}, "
                                      f"its domain has {domains.get(variable)}")
        self.variables = [tuple(factor.variables) for factor in factors]
        self.domains = dict(domains)
        self.inputs, self.evidence = list(inputs), list(evidence)
        self.num_symbols = domains[inputs[0]] if inputs else 0
        if any(domains[v] != self.num_symbols for v in inputs):
            raise ConfigError("every input variable needs the same domain (the concept layer's K codes)")
        for index, factor in enumerate(factors):  # 0 where the fact holds, IMPOSSIBLE where it does not
            log_table = torch.zeros(factor.table.shape).masked_fill(~factor.table.bool(), logspace.IMPOSSIBLE)
            self.register_buffer(f"log_table_{index}", log_table, persistent=False)
        self._paths: dict[tuple, list] = {}  # key -> plan (see _plan)
        self._wave_cache: dict[tuple, list] = {}  # key -> waves of the plan (see _waves)

    @property
    def arity(self) -> int:
        return len(self.inputs)

    def tables(self) -> list[Tensor]:
        return [getattr(self, f"log_table_{index}") for index in range(len(self.variables))]

    # -- evaluation ------------------------------------------------------------------------------

    def _check(self, log_probs: Tensor, labels: Tensor | None) -> Tensor | None:
        expected = [self.arity, self.num_symbols]
        if log_probs.dim() != 3 or list(log_probs.shape[1:]) != expected:
            raise ShapeError(f"query constraint log_probs: expected [B, {expected[0]}, {expected[1]}], "
                             f"got {list(log_probs.shape)}")
        if labels is None:
            return None
        if labels.dim() == 1 and len(self.evidence) == 1:
            labels = labels.unsqueeze(1)
        if labels.shape != (log_probs.shape[0], len(self.evidence)):
            raise ShapeError(f"query constraint labels: expected [{log_probs.shape[0]}, {len(self.evidence)}] "
                             f"(one value per label variable {self.evidence}), got {list(labels.shape)}")
        for position, variable in enumerate(self.evidence):
            column = labels[:, position]
            if bool((column < 0).any()) or bool((column >= self.domains[variable]).any()):
                raise ConfigError(f"label position {position} ({variable}) has values outside [0, "
                                  f"{self.domains[variable]})")
        return labels

    def _operands(self, log_probs: Tensor, labels: Tensor | None, probes: list[str]):
        """Log-potentials with their index names: factors (evidence axes gathered per example),
        input distributions, and zero probes for the variables whose MPE values are wanted."""
        observed = {v: labels[:, i] for i, v in enumerate(self.evidence)} if labels is not None else {}
        operands = []
        for variables, table in zip(self.variables, self.tables()):
            seen = [axis for axis, v in enumerate(variables) if v in observed]
            if seen:
                rest = [axis for axis, v in enumerate(variables) if v not in observed]
                # Observed axes first, then one gather per example: [B, *unobserved axes].
                table = table.permute(seen + rest)[tuple(observed[variables[axis]] for axis in seen)]
                operands.append((table, (BATCH,) + tuple(variables[axis] for axis in rest)))
            else:
                operands.append((table, variables))
        log_probs = log_probs.clamp_min(logspace.IMPOSSIBLE)  # log(0) = -inf would poison the gradients
        for position, variable in enumerate(self.inputs):
            operands.append((log_probs[:, position, :], (BATCH, variable)))
        for variable in probes:
            operands.append((log_probs.new_zeros(log_probs.shape[0], self.domains[variable]).requires_grad_(),
                             (BATCH, variable)))
        return operands

    def _plan(self, operands, key: tuple) -> list[tuple[tuple[int, ...], set[str]]]:
        """The pairwise order (opt_einsum's) and, per step, the indices later steps still need.
        Operand names depend only on ``key``, so both are computed once per key."""
        if key not in self._paths:
            symbols = {}
            for _, names in operands:
                for name in names:
                    symbols.setdefault(name, opt_einsum.get_symbol(len(symbols)))
            terms = ",".join("".join(symbols[n] for n in names) for _, names in operands)
            shapes = [tuple(t.shape) for t, _ in operands]
            output = symbols.get(BATCH, "")  # no batch axis without an input or an observed label
            path, _ = opt_einsum.contract_path(f"{terms}->{output}", *shapes, shapes=True)  # optimize="auto"
            plan, work = [], [set(names) for _, names in operands]
            for step in path:
                picked = set().union(*(work[i] for i in step))
                for i in sorted(step, reverse=True):
                    work.pop(i)
                needed = {BATCH}.union(*work)
                plan.append((step, needed))
                work.append(picked & needed)
            self._paths[key] = plan
        return self._paths[key]

    def _waves(self, operands, key: tuple) -> list[list[_Group]]:
        """The pairwise plan as waves of groups of steps. Cached per ``key``, like the plan.

        Nodes are the operands, then one per step's result. A step joins the wave of its depth; within a
        wave, steps that are the same contraction over other variables (the N adders' digit steps: same
        index pattern, same domain sizes) form one group, which ``_contract`` runs as one stacked
        operation: at batch 64 each pairwise step is a handful of small kernels, so the contraction's
        time is the number of kernel launches, not arithmetic.
        """
        if key in self._wave_cache:
            return self._wave_cache[key]
        names = [tuple(n) for _, n in operands]  # each node's indices, as _step leaves them
        depth = [0] * len(operands)
        work = list(range(len(operands)))
        alike: dict[int, dict[tuple, list]] = {}
        for step, needed in self._plan(operands, key):
            inputs = [work[i] for i in step]
            for i in sorted(step, reverse=True):
                work.pop(i)
            names.append(self._step_indices([names[i] for i in inputs], needed))
            depth.append(1 + max(depth[i] for i in inputs))
            work.append(len(names) - 1)
            canon = self._canonical([names[i] for i in inputs])
            pattern = [tuple(canon[n] for n in names[i]) for i in inputs]
            shared_needed = {canon[n] for n in canon if n in needed}
            signature = (tuple(pattern), frozenset(shared_needed),
                         tuple(sorted((canon[n], self.domains.get(n, 0)) for n in canon)))
            alike.setdefault(depth[-1], {}).setdefault(signature, []).append(
                (inputs, len(names) - 1, needed, pattern, shared_needed))
        waves = []
        for level in sorted(alike):
            groups = []
            for members in alike[level].values():
                inputs, outputs, needed, pattern, shared_needed = (list(column) for column in zip(*members))
                if len(members) == 1:
                    groups.append(_Group(inputs, outputs, needed[0], [], [names[outputs[0]]]))
                else:  # the shared pattern with a stack axis in front; the results keep their own indices
                    stacked = [(STACK,) + indices for indices in pattern[0]]
                    groups.append(_Group(inputs, outputs, {STACK} | shared_needed[0], stacked,
                                         [names[out] for out in outputs]))
            waves.append(groups)
        self._wave_cache[key] = waves
        return waves

    @staticmethod
    def _canonical(input_names: list[tuple[str, ...]]) -> dict[str, str]:
        """Index names renamed by order of first appearance (the batch axis keeps its name)."""
        canon: dict[str, str] = {}
        for names in input_names:
            for name in names:
                canon.setdefault(name, name if name == BATCH else f"v{len(canon)}")
        return canon

    def _contract(self, operands, key: tuple, semiring: str, batch_size: int) -> Tensor:
        """Contract every operand down to the batch axis, in the cached order, each wave's groups of
        alike steps stacked into one operation (see ``_waves``). ``[B]``."""
        nodes: dict[int, tuple[Tensor, tuple[str, ...]]] = dict(enumerate(operands))
        for wave in self._waves(operands, key):
            for group in wave:
                if not group.stacked:
                    (inputs,), (out,) = group.inputs, group.outputs
                    nodes[out] = self._step([nodes.pop(i) for i in inputs], group.needed, semiring)
                    continue
                stacked = [(torch.stack([nodes[inputs[position]][0] for inputs in group.inputs]), indices)
                           for position, indices in enumerate(group.stacked)]
                tensor, _ = self._step(stacked, group.needed, semiring)
                for out, indices, part in zip(group.outputs, group.results, tensor.unbind(0)):
                    nodes[out] = (part, indices)
                for inputs in group.inputs:
                    for i in inputs:
                        del nodes[i]
        (tensor, names), = nodes.values()  # the last step keeps the batch axis alone, where there is one
        if names != (BATCH,):  # no operand has a batch axis (no input, no evidence): the same for every example
            tensor = tensor.reshape(()).expand(batch_size)
        return tensor

    @staticmethod
    def _step(picked, needed: set[str], semiring: str) -> tuple[Tensor, tuple[str, ...]]:
        """One step of the plan: join the picked operands, reducing every index not ``needed``."""
        tensor, names = picked[0]
        if len(picked) == 1:
            return logspace.reduce(tensor, names, needed, semiring)
        keeps = QueryConstraint._join_keeps([n for _, n in picked], needed)
        for (other, other_names), keep in zip(picked[1:], keeps):
            tensor, names = logspace.contract(tensor, names, other, other_names, keep, semiring)
        return tensor, names

    @staticmethod
    def _step_indices(picked: list[tuple[str, ...]], needed: set[str]) -> tuple[str, ...]:
        """The indices ``_step`` leaves, from the picked operands' indices alone."""
        if len(picked) == 1:
            return logspace.kept(picked[0], needed)
        names = picked[0]
        for other, keep in zip(picked[1:], QueryConstraint._join_keeps(picked, needed)):
            names = logspace.kept(logspace.joined(names, other), keep)
        return names

    @staticmethod
    def _join_keeps(picked: list[tuple[str, ...]], needed: set[str]) -> list[set[str]]:
        """For each pairwise join of a step's operands (the 2nd into the 1st, then the 3rd, ...), the
        indices it keeps: those later steps need, and those an operand of this step not yet joined
        shares (summing one out before that operand is multiplied in would be wrong). opt_einsum's
        paths here are pairwise, but a step may join more."""
        return [needed.union(*picked[position + 1:]) for position in range(1, len(picked))]

    def log_likelihood(self, log_probs: Tensor, labels: Tensor) -> Tensor:
        """``[B, A, K]``, ``[B, E]`` -> ``[B]``: log P(label) (``logspace.is_impossible`` where no
        assignment explains it)."""
        labels = self._check(log_probs, labels)
        operands = self._operands(log_probs.float(), labels, [])
        return self._contract(operands, ("sum", True), "sum", log_probs.shape[0])

    def forward(self, log_probs: Tensor, labels: Tensor) -> Tensor:
        if bool(torch.isnan(log_probs).any()):
            raise NonFiniteError("query constraint: log_probs hold NaN")
        log_p = self.log_likelihood(log_probs, labels)
        if bool(logspace.is_impossible(log_p).any()):
            raise NonFiniteError("query constraint: an observed label has no assignment that explains it; "
                                 "check that the KG's relations cover every label")
        return -log_p.mean()

    def explain(self, log_probs: Tensor, labels: Tensor | None = None) -> Explanation:
        """The most probable values of every variable (max-product), given the label if passed.

        Without ``labels`` the label variables are latent too, so their values are the label the
        model predicts: for a relation that is a function of the inputs, the one that the most probable
        symbols give.
        """
        labels = self._check(log_probs, labels)
        value, gradients = self._probe_gradients(log_probs, labels, "max", "max")
        values = {v: g.argmax(-1) for v, g in gradients.items()}
        if labels is not None:
            values.update({v: labels[:, i] for i, v in enumerate(self.evidence)})
        log_prob = value.detach().masked_fill(logspace.is_impossible(value.detach()), float("-inf"))
        return Explanation(values=values, log_prob=log_prob)

    def marginals(self, log_probs: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        """``P(variable = value | inputs[, label])`` of every variable not observed: ``[B, domain]`` each.

        One backward pass through the sum-product contraction with a zero probe per variable: the
        derivative of ``log Z`` by a probe added to the log-potential of ``variable = value`` is the
        marginal probability of that value (rows where no assignment is consistent hold NaN).
        """
        labels = self._check(log_probs, labels)
        value, gradients = self._probe_gradients(log_probs, labels, "sum", "marginal")
        impossible = logspace.is_impossible(value).unsqueeze(1)
        return {v: g.masked_fill(impossible, float("nan")) for v, g in gradients.items()}

    def _probe_gradients(self, log_probs: Tensor, labels: Tensor | None, semiring: str,
                         plan: str) -> tuple[Tensor, dict[str, Tensor]]:
        """The contraction's value ``[B]`` in ``semiring`` and its gradient by a zero probe on every
        unobserved variable, ``[B, domain]`` each (the derivative trick of ``explain`` and ``marginals``).
        ``plan`` names the cached contraction order."""
        observed = set(self.evidence) if labels is not None else set()
        wanted = sorted({v for names in self.variables for v in names} - observed)
        with torch.enable_grad():
            operands = self._operands(log_probs.detach().float(), labels, wanted)
            value = self._contract(operands, (plan, labels is not None), semiring, log_probs.shape[0])
            probes = [tensor for tensor, _ in operands[len(operands) - len(wanted):]]  # [-0:] would be all
            grads = torch.autograd.grad(value.sum(), probes)  # every probe is multiplied into the value
        return value.detach(), dict(zip(wanted, grads))

    def predict(self, log_probs: Tensor) -> Tensor:
        """``[B, A, K]`` -> ``[B, E]``: the label of the most probable explanation."""
        explanation = self.explain(log_probs)
        return torch.stack([explanation.values[v] for v in self.evidence], dim=1)
