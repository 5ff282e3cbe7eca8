"""Which config keys identify an experiment, and which only say where and how it runs.

Imported by train.py before Hydra starts (job names), so it imports nothing."""

# Knobs that say how or where a run executes, not what it computes: they may differ
# between a run and its continuation (resume=, a re-run sweep) without changing a number.
RUNTIME_KEYS = frozenset(
    {
        "resume",
        "skip_completed",
        "device",
        "threads",
        "progress",
        "checkpoint_every",
        "dataset.root",
        "dataset.idx_dir",
        "dataset.download",
        "dataset.dir",  # where the retinal bipolar files are: not what they hold
        "dataset.counts",
        "dataset.clusters",
    }
)
