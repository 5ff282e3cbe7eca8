"""ucl's SLURM and local submitit launchers for Hydra (conf/hydra/launcher/): Hydra's own,
waiting for every job of a sweep (ucl/launchers.py says why)."""

try:
    from hydra_plugins.hydra_submitit_launcher import submitit_launcher
except ImportError:  # the `launchers` extra is not installed: no submitit launchers at all
    submitit_launcher = None

if submitit_launcher is not None:
    from ucl.launchers import Waiting

    class SlurmLauncher(Waiting, submitit_launcher.SlurmLauncher):
        pass

    class LocalLauncher(Waiting, submitit_launcher.LocalLauncher):
        pass

    class DetachedSlurmLauncher(Waiting, submitit_launcher.SlurmLauncher):
        detach = True
