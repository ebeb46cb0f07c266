"""Train an image classifier: `python train.py strategy=finetune data=folder data.root=/path/to/images`."""

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from transferlab.launch.startup import prepare

prepare()  # first: the configs' resolvers and the environment; nothing heavy, so --help stays fast

from transferlab.launch.cli import config_errors  # noqa: E402
from transferlab.launch.resume import prepare_launch  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    with config_errors(multirun=multirun):
        # A re-launch into a run dir: its saved config, checked against this launch's overrides before anything
        # is written; a finished run (ckpt_path=auto) is skipped here, before torch is imported.
        launch = prepare_launch(cfg)
        if launch.skip:
            return launch.metrics.get("best_val_acc")
        # Imported here, not at the top: torch and Lightning take seconds, which --help and completion must not.
        from transferlab.commands.train import run
        from transferlab.reports.sweep_summary import record_failure

        # The returned value is what Hydra sweepers (e.g. Optuna) optimise.
        try:
            return run(launch.cfg)["best_val_acc"]
        except Exception as error:
            # error.txt in the job dir feeds summary.csv; in a multirun, returning lets the other jobs run, where
            # Hydra's basic launcher would abort the whole sweep on the exception. None, not NaN: hydra-optuna-sweeper
            # 1.3.0 records None as a failed trial but crashes the study on NaN (facebookresearch/hydra#2237).
            if not record_failure(launch.cfg.paths.output_dir, error):
                raise
            return None


if __name__ == "__main__":
    main()
