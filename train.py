"""Train an image classifier: `python train.py strategy=finetune data=folder data.root=/path/to/images`."""

import hydra
from omegaconf import DictConfig

from transferlab.run import run
from transferlab.sweep import record_failure


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    # The returned value is what Hydra sweepers (e.g. Optuna) optimise.
    try:
        return run(cfg)["best_val_acc"]
    except Exception as error:
        # error.txt in the job dir feeds summary.csv; in a multirun, returning lets the other jobs run, where
        # Hydra's basic launcher would abort the whole sweep on the exception. None, not NaN: hydra-optuna-sweeper
        # 1.3.0 records None as a failed trial but crashes the study on NaN (facebookresearch/hydra#2237).
        if not record_failure(cfg.paths.output_dir, error):
            raise
        return None


if __name__ == "__main__":
    main()
