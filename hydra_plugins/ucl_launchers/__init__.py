"""ucl's Hydra plugins: the submitit launchers that wait for every job (ucl_launchers.py)."""
