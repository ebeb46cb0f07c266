"""Evaluate a checkpoint: `python eval.py ckpt_path=<run_dir>/checkpoints/best-….ckpt [split=val | data.root=…]`."""

import hydra
from omegaconf import DictConfig

import transferlab.resolvers  # noqa: F401  (first: the configs' resolvers; nothing heavy, so --help stays fast)


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> float:
    from transferlab.evaluation import evaluate  # torch and Lightning: imported when the command runs, not for --help

    return evaluate(cfg)["acc"]


if __name__ == "__main__":
    main()
