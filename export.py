"""Export a checkpoint to ONNX or TorchScript: `python export.py ckpt_path=<run>/checkpoints/best-….ckpt`."""

import hydra
from omegaconf import DictConfig

from transferlab.launch.startup import prepare

prepare()  # first: the configs' resolvers and the environment; nothing heavy, so --help stays fast

from transferlab.launch.cli import user_errors  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: DictConfig) -> None:
    with user_errors():
        from transferlab.commands.export import (
            export,  # torch and Lightning: imported when the command runs, not for --help
        )

        export(cfg)


if __name__ == "__main__":
    main()
