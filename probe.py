"""The linear-probe baseline: `python probe.py data=folder data.root=/path/to/images model=resnet50`."""

import hydra
from omegaconf import DictConfig

from transferlab.linear_probe import linear_probe


@hydra.main(version_base="1.3", config_path="conf", config_name="probe")
def main(cfg: DictConfig) -> float:
    return linear_probe(cfg)["best_val_acc"]


if __name__ == "__main__":
    main()
