"""Export a checkpoint to ONNX or TorchScript: `python export.py ckpt_path=<run>/checkpoints/best-….ckpt`."""

import hydra
from omegaconf import DictConfig

from transferlab.export import export


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: DictConfig) -> None:
    export(cfg)


if __name__ == "__main__":
    main()
