"""Classify images with a trained run: `python predict.py run_dir=outputs/2026-11-23/20-14-05 inputs=photos/`."""

import hydra
from omegaconf import DictConfig

from transferlab.inference import predict


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
