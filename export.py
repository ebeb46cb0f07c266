"""Export a trained run to ONNX and TorchScript: `python export.py run_dir=outputs/2026-11-23/20-14-05`."""

import hydra
from omegaconf import DictConfig

from transferlab.export import export


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: DictConfig) -> None:
    export(cfg)


if __name__ == "__main__":
    main()
