"""Train an image classifier: `python train.py strategy=finetune data=folder data.root=/path/to/images`."""

import hydra
from omegaconf import DictConfig

from transferlab.run import run


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    # The returned value is what Hydra sweepers (e.g. Optuna) optimise.
    return run(cfg)["best_val_acc"]


if __name__ == "__main__":
    main()
