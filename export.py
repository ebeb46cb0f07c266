"""Export a checkpoint to ONNX or TorchScript: `python export.py ckpt_path=<run>/checkpoints/best-….ckpt`."""

import hydra
from omegaconf import DictConfig

import transferlab.resolvers  # noqa: F401  (first: the configs' resolvers; nothing heavy, so --help stays fast)


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: DictConfig) -> None:
    from transferlab.export import export  # torch and Lightning: imported when the command runs, not for --help

    export(cfg)


if __name__ == "__main__":
    main()
