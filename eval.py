"""Evaluate a trained run: `python eval.py run_dir=outputs/2026-11-23/20-14-05 split=test`."""

import hydra
from omegaconf import DictConfig

from transferlab.evaluation import evaluate


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> float:
    return evaluate(cfg)["acc"]


if __name__ == "__main__":
    main()
