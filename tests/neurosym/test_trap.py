"""The trap verdict and the trap check: a start whose symbols the knowledge cannot reconcile with the
labels is reported, never silent, and dropped for a new start where the config asks for it."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from neurosym.errors import ConfigError
from neurosym.group_task import GroupTask
from neurosym.tasks import SymbolData
from neurosym.train import TrainConfig, fit
from neurosym.trap import TrapWarning, dropped_at_check
from concept_models import NamedConcepts  # noqa: E402  (tests/ is on sys.path)

IDENTITY = list(range(10))
OFF_BY_ONE = [(d + 1) % 10 for d in range(10)]  # symbol d read as code d + 1: every sum off by two


def Named(naming: list[int]) -> NamedConcepts:  # noqa: N802  (reads as the class it builds)
    """Code ``naming[s]`` for symbol s, confidently enough that a few small steps cannot rename it (a
    trap by construction)."""
    return NamedConcepts(naming, confidence=8.0)


@pytest.fixture
def two_digit_task(adder_chain):
    symbols = torch.randint(0, 10, (1200,), generator=torch.Generator().manual_seed(0))
    data = SymbolData(F.one_hot(symbols, 10), symbols)
    return GroupTask(data, data, adder_chain(2), seed=0)


def settings(**overrides) -> TrainConfig:
    return TrainConfig(**{"epochs": 2, "batch_size": 20, "lr": 1e-4, "warmup_steps": 0, "device": "cpu"} | overrides)


def test_a_trapped_start_is_reported_with_the_figure_it_rests_on(tmp_path, two_digit_task):
    with pytest.warns(TrapWarning, match=r"training ended trapped: the model's explanations reproduce 0\.0% "
                                         r"of the checked training labels \(train.trap_threshold = 0.5\)"):
        result = fit(Named(OFF_BY_ONE), two_digit_task, settings(), tmp_path / "run", resume=False, progress=False)
    assert result.verdict.verdict == "trapped"
    assert result.verdict.explained_share == result.metrics["train_explained"] == 0.0
    assert result.verdict.threshold == 0.5 and result.verdict.restarts == 0
    assert result.metrics["concept_acc"] == 0.0  # still off by one: the small steps did not rename it


def test_a_healthy_run_says_so_without_a_warning(tmp_path, two_digit_task):
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrapWarning)
        result = fit(Named(IDENTITY), two_digit_task, settings(), tmp_path / "run", resume=False, progress=False)
    assert result.verdict.verdict == "healthy"
    assert result.verdict.explained_share == result.metrics["train_explained"] > 0.99


def test_a_start_trapped_at_the_check_is_dropped_and_a_new_one_goes_on(tmp_path, two_digit_task):
    starts = iter([Named(IDENTITY)])
    model = Named(OFF_BY_ONE)
    config = settings(epochs=3, trap_check_at=1, trap_restarts=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrapWarning)
        result = fit(model, two_digit_task, config, tmp_path / "run", resume=False, progress=False,
                     restart=lambda: next(starts))
    assert result.verdict.verdict == "healthy" and result.verdict.restarts == 1
    assert result.verdict.dropped_shares == (0.0,)
    assert [(row.get("start", 0), row["epoch"]) for row in result.history] == [(0, 1), (1, 1), (1, 2), (1, 3)]
    assert result.history[0]["check_explained"] == 0.0 and result.history[1]["check_explained"] > 0.99
    assert result.metrics["concept_acc"] > 0.99
    assert torch.equal(model.concept.to_logits.weight.argmax(1), torch.arange(10))  # the caller's object holds it


def test_a_run_that_stays_trapped_after_its_restarts_is_reported(tmp_path, two_digit_task):
    config = settings(epochs=2, trap_check_at=1, trap_restarts=1)
    with pytest.warns(TrapWarning, match="after 1 restart"):
        result = fit(Named(OFF_BY_ONE), two_digit_task, config, tmp_path / "run", resume=False, progress=False,
                     restart=lambda: Named(OFF_BY_ONE))
    assert result.verdict.verdict == "trapped" and result.verdict.dropped_shares == (0.0,)


def test_a_killed_run_resumes_in_the_start_that_replaced_the_trapped_one(tmp_path, two_digit_task):
    config = settings(epochs=3, trap_check_at=1, trap_restarts=1)
    whole = fit(Named(OFF_BY_ONE), two_digit_task, config, tmp_path / "whole", resume=False, progress=False,
                restart=lambda: Named(IDENTITY))
    fit(Named(OFF_BY_ONE), two_digit_task, config, tmp_path / "killed", resume=False, progress=False,
        restart=lambda: Named(IDENTITY), stop_after_epoch=2)
    resumed = fit(Named(OFF_BY_ONE), two_digit_task, config, tmp_path / "killed", resume=True, progress=False,
                  restart=lambda: Named(IDENTITY))
    assert resumed.verdict.restarts == 1
    assert [row["train_loss"] for row in resumed.history] == [row["train_loss"] for row in whole.history]


@pytest.mark.parametrize("overrides,message", [
    ({"trap_threshold": 0.0}, r"train.trap_threshold must be in \(0, 1\) .*got 0.0"),
    ({"trap_threshold": 1.0}, r"train.trap_threshold must be in \(0, 1\) .*got 1.0"),
    ({"trap_check_threshold": 1.5}, r"train.trap_check_threshold must be in \(0, 1\) \(a rate per input\), got 1.5"),
    ({"trap_restarts": -1}, "train.trap_restarts must be >= 0, got -1"),
    ({"trap_restarts": 1, "trap_check_at": 2}, r"train.trap_check_at = 2 does not fit a run of 2 epoch\(s\): "
                                                r"train.trap_restarts = 1 needs a check after an epoch in \[1, epochs - 1\]"),
    ({"trap_restarts": 1, "trap_check_at": 0}, r"train.trap_check_at = 0 does not fit a run of 2 epoch\(s\)"),
    ({"trap_check_at": 1}, "checks for nothing to do: set train.trap_restarts >= 1"),
])
def test_settings_that_cannot_fit_the_run_are_one_error_before_training(overrides, message):
    with pytest.raises(ConfigError, match=message):
        settings(**overrides)


@pytest.mark.parametrize("share,arity,dropped", [(0.8, 2, True), (0.82, 2, False), (0.04, 30, True), (0.05, 30, False)])
def test_the_check_asks_a_rate_per_input_whatever_the_group_size(share, arity, dropped):
    assert dropped_at_check(share, 0.9, arity) is dropped


def test_restarts_need_a_task_that_can_tell_and_a_way_to_build_the_model(tmp_path, two_digit_task):
    config = settings(trap_check_at=1, trap_restarts=1)
    with pytest.raises(ConfigError, match="train.trap_restarts needs .* a way to build the model again"):
        fit(Named(IDENTITY), two_digit_task, config, tmp_path / "run", resume=False, progress=False)

    class NoLabels:
        def steps_per_epoch(self, batch_size):
            return 1

    with pytest.raises(ConfigError, match="NoLabels cannot say how much of its labels a model explains"):
        fit(Named(IDENTITY), NoLabels(), config, tmp_path / "run", resume=False, progress=False,
            restart=lambda: Named(IDENTITY))
