"""Classify images with a checkpoint: `python predict.py ckpt_path=<run_dir>/checkpoints/best-….ckpt input=photos/`."""

import hydra
from omegaconf import DictConfig

import transferlab.resolvers  # noqa: F401  (first: the configs' resolvers; nothing heavy, so --help stays fast)


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    from transferlab.inference import predict  # torch and Lightning: imported when the command runs, not for --help

    predict(cfg)


if __name__ == "__main__":
    main()
