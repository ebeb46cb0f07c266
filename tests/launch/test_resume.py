"""Re-launching into a run dir (resume.py) and the fast command line: the rules, without training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from transferlab.launch.cli import ConfigError
from transferlab.launch.resolvers import hydra_subdir, launched_fresh
from transferlab.launch.resume import finished, merge_overrides

REPO = Path(__file__).resolve().parents[2]


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_no_override_resumes_the_saved_config(tmp_path):
    saved = composed("data=folder", "data.root=/images", "strategy=finetune", "optimizer.lr=0.01")
    merged = merge_overrides(saved, composed("ckpt_path=auto"), ["ckpt_path=auto"], run_dir=tmp_path)
    assert merged.data.root == "/images" and merged.strategy.name == "finetune" and merged.optimizer.lr == 0.01


def test_harmless_overrides_apply_and_conflicts_name_both_values(tmp_path):
    saved = composed("data=folder", "data.root=/images", "data.split_seed=3", "~callbacks.progress_bar")
    harmless = ["data.num_workers=0", "trainer.max_epochs=30", "trainer.devices=2", "callbacks=early_stopping"]
    merged = merge_overrides(saved, composed(*harmless), harmless, run_dir=tmp_path)
    assert (merged.data.num_workers, merged.trainer.max_epochs, merged.trainer.devices) == (0, 30, 2)
    assert merged.data.root == "/images" and "early_stopping" in merged.callbacks
    assert "progress_bar" in merged.callbacks  # the group's default came back, as the override asked

    conflicting = ["data.root=/other", "data.split_seed=4", "model=resnet50", "data.num_workers=0"]
    with pytest.raises(ConfigError) as error:
        merge_overrides(saved, composed(*conflicting), conflicting, run_dir=tmp_path)
    message = str(error.value)
    assert "data.root: /images in the run, /other in this launch" in message
    assert "data.split_seed: 3 in the run, 4 in this launch" in message
    assert "model.backbone: resnet18 in the run, resnet50 in this launch" in message
    assert "num_workers:" not in message


def test_a_global_group_conflicts_by_its_option(tmp_path):
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save({"hydra": {"runtime": {"choices": {"experiment": "two_stage"}}}}, tmp_path / ".hydra/hydra.yaml")
    saved = composed("experiment=two_stage")
    same = ["experiment=two_stage"]
    merge_overrides(saved, composed(*same), same, run_dir=tmp_path)
    other = ["experiment=freeze_first_layers"]
    with pytest.raises(ConfigError, match="experiment: two_stage in the run, freeze_first_layers in this launch"):
        merge_overrides(saved, composed(*other), other, run_dir=tmp_path)


def test_a_finished_run_is_skipped_unless_it_is_asked_to_train_longer(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"max_epochs": 10, "epochs": 7}))  # early-stopped at 7
    auto = OmegaConf.create({"ckpt_path": "auto", "trainer": {"max_epochs": 10}})
    assert finished(auto, tmp_path)
    auto.trainer.max_epochs = 20
    assert not finished(auto, tmp_path)
    assert not finished(OmegaConf.create({"ckpt_path": None, "trainer": {"max_epochs": 10}}), tmp_path)


def test_hydra_writes_its_config_only_into_a_new_run_dir(tmp_path):
    assert hydra_subdir(str(tmp_path)) == ".hydra"
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("seed: 1\n")
    assert hydra_subdir(str(tmp_path)) == ".hydra", "asked again within the launch, the answer stays"
    assert launched_fresh(str(tmp_path))
    assert hydra_subdir(str(tmp_path)) is None  # the next launch into it
    assert not launched_fresh(str(tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize(
    "script, args",
    [
        ("train.py", ["--help"]),
        ("train.py", ["--cfg", "job", "strategy=finetune"]),
        ("train.py", ["-sc", "query=bash"]),
        ("eval.py", ["--help"]),
        ("predict.py", ["--cfg", "job"]),
        ("export.py", ["--help"]),
        ("probe.py", ["--help"]),
    ],
)
def test_help_config_and_completion_import_no_torch(script, args):
    # What makes them answer in a second or two instead of ~14 s: torch and Lightning are imported by the task
    # function only. -X importtime lists every module imported.
    env = {**os.environ, "COMP_LINE": f"python {script} strat", "COMP_POINT": "25"}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(REPO / script), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import")}
    assert not imported & {"torch", "pytorch_lightning", "lightning_fabric"}, script
    if args == ["--help"] and script == "train.py":
        assert "feature_extraction" in result.stdout and "root/train/<class>" in result.stdout
        assert "-sc install=bash" in result.stdout
    if args[:2] == ["-sc", "query=bash"]:
        assert "strategy=" in result.stdout
