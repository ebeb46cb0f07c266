"""Classify images with a checkpoint: `python predict.py ckpt_path=<run_dir>/checkpoints/best-….ckpt input=photos/`."""

import hydra
from omegaconf import DictConfig

from transferlab.launch.startup import prepare

prepare()  # first: the configs' resolvers and the environment; nothing heavy, so --help stays fast

from transferlab.launch.cli import user_errors  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    with user_errors():
        from transferlab.commands.predict import (
            predict,  # torch and Lightning: imported when the command runs, not for --help
        )

        predict(cfg)


if __name__ == "__main__":
    main()
