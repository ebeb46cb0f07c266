"""Evaluate a checkpoint: `python eval.py ckpt_path=<run_dir>/checkpoints/best-….ckpt [split=val | data.root=…]`."""

import hydra
from omegaconf import DictConfig

from transferlab.evaluation import evaluate


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> float:
    return evaluate(cfg)["acc"]


if __name__ == "__main__":
    main()
