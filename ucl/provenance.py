"""The code a run ran: the checkout's git commit, whether it had uncommitted changes (and a
hash of them, so two runs on the same changes can be told apart from runs on others), and
the versions of the packages the results depend on. metrics.json records it under `code`.

Computed once per process (a sweep runs many jobs in one process) and never an error: no
git, a dir that is not a checkout or a git that hangs give a plain value saying so. It is
not part of a run's identity, so a new commit never refuses a resume.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]  # the checkout the code lives in (ucl.config.REPO)
PACKAGES = (
    "torch", "torchvision", "numpy", "hydra-core", "omegaconf", "scipy", "scikit-learn",
    "submitit",
)  # fmt: skip
GIT_TIMEOUT_SECONDS = 10
DIFF_HASH_CHARS = 12
UNTRACKED_HASH_BYTES = 10 * 2**20  # larger untracked files enter the hash by their size
NOT_A_CHECKOUT = "not a git checkout"


@cache
def code_version() -> dict[str, Any]:
    """This process's code: git_state of the checkout and the packages' versions."""
    try:
        state = git_state(REPO)
    except Exception as e:  # noqa: BLE001  (a record of the code never stops a run)
        state = {"git": f"git could not be read: {type(e).__name__}: {e}"}
    return {**state, "packages": package_versions()}


def git_state(repo: Path) -> dict[str, Any]:
    """{"commit", "dirty"} (+ "diff", a short sha256 of the uncommitted changes, when dirty),
    or {"git": why there is no commit}. The changes are `git diff HEAD` and the files git
    does not track and does not ignore (a new module the code imports counts)."""
    head = _git(repo, "rev-parse", "--verify", "HEAD")
    if isinstance(head, str):
        return {"git": head}
    commit = head.decode().strip()
    diff = _git(repo, "diff", "--no-ext-diff", "--no-textconv", "--binary", "HEAD")
    untracked = _git(repo, "ls-files", "--others", "--exclude-standard", "-z")
    if isinstance(diff, str) or isinstance(untracked, str):
        return {"commit": commit, "git": diff if isinstance(diff, str) else untracked}
    digest = hashlib.sha256(diff)
    for name in sorted(n for n in untracked.split(b"\0") if n):
        digest.update(b"\0untracked\0" + name + b"\0" + _content_hash(Path(repo) / name.decode()))
    state: dict[str, Any] = {"commit": commit, "dirty": bool(diff or untracked)}
    if state["dirty"]:
        state["diff"] = digest.hexdigest()[:DIFF_HASH_CHARS]
    return state


def _content_hash(path: Path) -> bytes:
    """A file's sha256 (its size alone when large: a data dump left beside the code)."""
    try:
        size = path.stat().st_size
        if size > UNTRACKED_HASH_BYTES:
            return f"size {size}".encode()
        return hashlib.sha256(path.read_bytes()).digest()
    except OSError as e:  # removed meanwhile, or unreadable
        return f"unreadable: {e.strerror}".encode()


def _git(repo: Path, *args: str) -> bytes | str:
    """git's output, or a sentence saying why there is none."""
    # no optional locks: a read must not contend with a commit in the same checkout
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            timeout=GIT_TIMEOUT_SECONDS,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        return "git is not installed"
    except subprocess.TimeoutExpired:
        return f"git did not answer within {GIT_TIMEOUT_SECONDS} s"
    except OSError as e:
        return f"git could not run: {e}"
    if proc.returncode != 0:
        error = proc.stderr.decode(errors="replace").strip()
        if "not a git repository" in error or not Path(repo).is_dir():
            return NOT_A_CHECKOUT
        if "unknown revision" in error or "Needed a single revision" in error:
            return "a git checkout with no commit yet"
        return f"git {args[0]} failed: {error.splitlines()[-1] if error else proc.returncode}"
    return proc.stdout


def package_versions() -> dict[str, str]:
    """The installed version of each of PACKAGES that is installed."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def dirty_warning() -> str | None:
    """One line when the checkout has uncommitted changes (None otherwise)."""
    code = code_version()
    if not code.get("dirty"):
        return None
    return (
        f"the checkout has uncommitted changes (diff {code['diff']}): the runs record "
        f"them as dirty; commit them to tie the results to a commit"
    )
