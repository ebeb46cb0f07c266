"""The linear-probe baseline: `python probe.py data=folder data.root=/path/to/images model=resnet50`."""

import hydra
from omegaconf import DictConfig

from transferlab.launch.startup import prepare

prepare()  # first: the configs' resolvers and the environment; nothing heavy, so --help stays fast

from transferlab.launch.cli import user_errors  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="probe")
def main(cfg: DictConfig) -> float:
    with user_errors():
        from transferlab.commands.probe import linear_probe  # torch and Lightning: imported when the command runs

        return linear_probe(cfg)["best_val_acc"]


if __name__ == "__main__":
    main()
