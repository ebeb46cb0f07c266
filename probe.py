"""The linear-probe baseline: `python probe.py data=folder data.root=/path/to/images model=resnet50`."""

import hydra
from omegaconf import DictConfig

import transferlab.resolvers  # noqa: F401  (first: the configs' resolvers; nothing heavy, so --help stays fast)


@hydra.main(version_base="1.3", config_path="conf", config_name="probe")
def main(cfg: DictConfig) -> float:
    from transferlab.linear_probe import (
        linear_probe,  # torch and Lightning: imported when the command runs, not for --help
    )

    return linear_probe(cfg)["best_val_acc"]


if __name__ == "__main__":
    main()
