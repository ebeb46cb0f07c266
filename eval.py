"""Evaluate a checkpoint: `python eval.py ckpt_path=<run_dir>/checkpoints/best-….ckpt [split=val | data.root=…]`."""

import hydra
from omegaconf import DictConfig

from transferlab.launch.startup import prepare

prepare()  # first: the configs' resolvers and the environment; nothing heavy, so --help stays fast

from transferlab.launch.cli import user_errors  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> float:
    with user_errors():
        from transferlab.commands.eval import (
            evaluate,  # torch and Lightning: imported when the command runs, not for --help
        )

        return evaluate(cfg)["acc"]


if __name__ == "__main__":
    main()
