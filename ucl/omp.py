"""How idle OpenMP threads wait, set by ucl's entry points (train.py, scripts/bench.py)
before torch loads its OpenMP runtime, never by `import ucl`: a library that changed the
process's OpenMP behaviour on import would surprise a notebook that imports it.

Sleeping threads (PASSIVE) are what keep a run with one thread per core from becoming
10-60x slower whenever anything else holds a core; docs/performance.md ("Threads") has the
figures and the price on an idle machine. A policy of the user's own wins.
"""

import os

POLICY = "PASSIVE"


def sleeping_threads() -> str:
    """Idle OpenMP threads sleep unless OMP_WAIT_POLICY is already set; the policy in force."""
    return os.environ.setdefault("OMP_WAIT_POLICY", POLICY)
