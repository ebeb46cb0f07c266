"""Schedules keep every group's learning rate in proportion and follow their shape over the run."""

from __future__ import annotations

import pytest
import torch

from transferlab.training.schedules import one_cycle, plateau, step, warmup_cosine


def two_group_optimizer() -> torch.optim.Optimizer:
    head, backbone = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    return torch.optim.SGD([{"params": [head], "lr": 0.1}, {"params": [backbone], "lr": 0.01}], lr=0.1)


def run_schedule(config: dict, steps: int) -> list[list[float]]:
    optimizer, lrs = config["scheduler"].optimizer, []
    for _ in range(steps):
        lrs.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        config["scheduler"].step()
    return lrs


def test_warmup_cosine_rises_then_decays_keeping_the_ratio() -> None:
    config = warmup_cosine(two_group_optimizer(), total_steps=20, steps_per_epoch=5, warmup_epochs=1)
    assert config["interval"] == "step"
    lrs = run_schedule(config, 20)
    head = [lr[0] for lr in lrs]
    assert head[0] == pytest.approx(0.001)  # warm-up starts at 1% of the rate
    assert max(head) == pytest.approx(0.1, rel=1e-6) and head.index(max(head)) == 5
    assert head[-1] < 0.01 and head[6:] == sorted(head[6:], reverse=True)
    for head_lr, backbone_lr in lrs:
        assert backbone_lr == pytest.approx(head_lr / 10)


def test_one_cycle_peaks_at_each_groups_own_rate() -> None:
    lrs = run_schedule(one_cycle(two_group_optimizer(), total_steps=20, steps_per_epoch=5), 20)
    assert max(lr[0] for lr in lrs) == pytest.approx(0.1, rel=1e-3)
    assert max(lr[1] for lr in lrs) == pytest.approx(0.01, rel=1e-3)


def test_step_and_plateau_step_per_epoch() -> None:
    assert step(two_group_optimizer(), total_steps=1, steps_per_epoch=1)["interval"] == "epoch"
    config = plateau(two_group_optimizer(), total_steps=1, steps_per_epoch=1, patience=0)
    assert config["monitor"] == "val/loss" and config["interval"] == "epoch"


@pytest.mark.parametrize(
    "overrides",
    [
        ("trainer.max_epochs=-1", "+trainer.max_steps=7"),  # Lightning's "no epoch limit", ended by steps
        ("trainer.max_epochs=null", "+trainer.max_steps=7"),
        ("trainer.max_epochs=-1", "scheduler=step", "+trainer.max_time=00:00:00:02"),  # ended by time
    ],
)
def test_trainer_values_lightning_calls_special_train_to_the_end(config, tmp_path, overrides) -> None:
    """Issue 24: -1, null, max_steps and max_time end a run as Lightning documents, with a schedule that fits."""
    from transferlab.commands.train import run

    metrics = run(config(*overrides, output_dir=tmp_path / "run"))
    assert metrics["epochs"] >= 1 and 0 <= metrics["test_acc"] <= 1


def test_a_run_stopped_before_its_first_validation_says_so(config, tmp_path) -> None:
    from transferlab.commands.train import run

    cfg = config("trainer.max_epochs=-1", "+trainer.max_steps=3", output_dir=tmp_path / "run")
    with pytest.raises(
        ValueError, match=r"ended at step 3 \(trainer.max_steps=3.*before its first validation \(an epoch is 5"
    ):
        run(cfg)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_schedule_that_needs_a_length_says_so_for_a_run_without_one(config, tmp_path) -> None:
    from transferlab.commands.train import run

    cfg = config("trainer.max_epochs=-1", "scheduler=cosine", output_dir=tmp_path / "run")
    with pytest.raises(ValueError, match=r"scheduler=cosine plans .* trainer.max_epochs=-1 with no trainer.max_steps"):
        run(cfg)
