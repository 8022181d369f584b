import pytest
import torch

from lotts_ops.schedule import (
    is_harmonization_step,
    noise_level_to_schedule_percent,
    parse_float_list,
    resolve_start_step,
    step_index,
)

SIGMAS = torch.tensor([14.6, 8.0, 4.0, 2.0, 1.0, 0.5, 0.0])  # 6 steps


def test_resolve_start_step():
    assert resolve_start_step(30, 15, 0.0) == 15
    assert resolve_start_step(30, 15, 0.5) == 15
    assert resolve_start_step(30, 0, 0.1) == 3  # fraction overrides the step
    assert resolve_start_step(30, 29, 0.0) == 29
    assert resolve_start_step(1, 0, 0.0) == 0


@pytest.mark.parametrize(
    ("steps", "start", "fraction", "match"),
    [
        (0, 0, 0.0, "steps"),
        (30, 30, 0.0, r"start_at_step: must be in \[0, 29\]"),
        (30, -1, 0.0, "start_at_step"),
        (30, 0, 0.99, r"start_fraction=0.99.*\[0, 29\]"),
        (30, 0, 1.5, "start_fraction"),
        (30, 0, -0.2, "start_fraction"),
    ],
)
def test_resolve_start_step_rejects(steps, start, fraction, match):
    with pytest.raises(ValueError, match=match):
        resolve_start_step(steps, start, fraction)


def test_step_index_accepts_tensor_shapes_and_floats():
    assert step_index(14.6, SIGMAS) == 0
    assert step_index(torch.tensor(2.0), SIGMAS) == 3
    assert step_index(torch.tensor([0.5]), SIGMAS) == 5  # last step starts at 0.5, never at the trailing 0
    assert step_index(torch.tensor([0.01]), SIGMAS) == 5
    assert step_index(torch.tensor([3.9], dtype=torch.float16), SIGMAS.tolist()) == 2
    with pytest.raises(ValueError, match="sigma"):
        step_index(torch.tensor([1.0, 2.0]), SIGMAS)


def test_is_harmonization_step():
    flags = [is_harmonization_step(s, SIGMAS, 2) for s in SIGMAS[:-1]]
    assert flags == [False, False, False, False, True, True]
    assert not any(is_harmonization_step(s, SIGMAS, 0) for s in SIGMAS[:-1])
    assert all(is_harmonization_step(s, SIGMAS, 6) for s in SIGMAS[:-1])
    with pytest.raises(ValueError, match="global_steps"):
        is_harmonization_step(1.0, SIGMAS, -1)


def test_noise_level_to_schedule_percent():
    assert noise_level_to_schedule_percent(0.0) == 1.0
    assert noise_level_to_schedule_percent(1.0) == 0.0
    assert noise_level_to_schedule_percent(0.3) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="level"):
        noise_level_to_schedule_percent(1.2)


def test_parse_float_list():
    assert parse_float_list("0.2, 0.3", "levels", 0, 1) == [0.2, 0.3]
    assert parse_float_list(" 0.1 0.5,,1 ", "levels", 0, 1) == [0.1, 0.5, 1.0]
    with pytest.raises(ValueError, match="levels.*outside"):
        parse_float_list("0.2, 1.5", "levels", 0, 1)
    with pytest.raises(ValueError, match="levels.*not a number"):
        parse_float_list("0.2, abc", "levels", 0, 1)
    with pytest.raises(ValueError, match="levels.*at least one"):
        parse_float_list(" , ", "levels", 0, 1)
    with pytest.raises(ValueError, match="levels"):
        parse_float_list("nan", "levels", 0, 1)
