"""Train an image classifier: `python train.py strategy=finetune data=folder data.root=/path/to/images`."""

import hydra
from omegaconf import DictConfig

from transferlab.launch.startup import prepare

prepare()  # first: the configs' resolvers and the environment; nothing heavy, so --help stays fast

from transferlab.launch.cli import ConfigError, in_multirun, user_errors  # noqa: E402
from transferlab.launch.resume import prepare_launch  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    with user_errors():
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
            return run(launch.cfg, on_start=launch.record)["best_val_acc"]
        except Exception as error:
            if isinstance(error, ConfigError) and not in_multirun():
                raise  # a refused launch writes nothing, not even error.txt (user_errors prints it)
            # error.txt in the job dir feeds summary.csv; in a multirun, returning lets the other jobs run, where
            # Hydra's basic launcher would abort the whole sweep on the exception. None, not NaN: hydra-optuna-sweeper
            # 1.3.0 records None as a failed trial but crashes the study on NaN (facebookresearch/hydra#2237).
            if not record_failure(launch.cfg.paths.output_dir, error):
                raise
            return None


if __name__ == "__main__":
    main()
