"""Classify images with a checkpoint: `python predict.py ckpt_path=<run_dir>/checkpoints/best-….ckpt input=photos/`."""

import hydra
from omegaconf import DictConfig

from transferlab.inference import predict


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
