"""Progress of a training loop: a tqdm bar on a terminal; elsewhere (a log file, a batch
job, a pipe) a log line at every epoch's end and at least every 30 seconds, with the
iteration, the epochs done, the latest losses and the time left."""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger("ucl.progress")
LOG_EVERY_SECONDS = 30.0


class Progress:
    def __init__(self, total: int, initial: int, per_epoch: int, desc: str, show: bool | None):
        self.total, self.per_epoch, self.desc = total, max(per_epoch, 1), desc
        self.show_bar = sys.stderr.isatty() if show is None else bool(show)
        self.bar = tqdm(
            total=total, initial=initial, desc=desc, dynamic_ncols=True, leave=False,
            disable=not self.show_bar,
        )  # fmt: skip
        self.start_step, self.started = initial, time.perf_counter()
        self.last_line = self.started
        self.latest: dict[str, float] = {}

    def update(self, step: int, epoch_ended: bool) -> None:
        self.bar.update(1)
        if self.show_bar:
            return
        now = time.perf_counter()
        if epoch_ended or now - self.last_line >= LOG_EVERY_SECONDS or step == self.total:
            self.last_line = now
            log.info("%s", self.line(step, now))

    def metrics(self, metrics: dict[str, float]) -> None:
        """The latest evaluation, shown beside the bar or in the next line."""
        self.latest = {k: float(v) for k, v in metrics.items() if k.endswith("loss")}
        self.bar.set_postfix({k.split("/")[-1]: f"{v:.4g}" for k, v in list(metrics.items())[-3:]})

    def line(self, step: int, now: float) -> str:
        elapsed = now - self.started
        done = step - self.start_step
        left = elapsed / done * (self.total - step) if done > 0 else float("nan")
        losses = ", ".join(f"{k} {v:.4g}" for k, v in self.latest.items())
        return (
            f"{self.desc}: iteration {step}/{self.total} "
            f"(epoch {step / self.per_epoch:.1f}/{self.total / self.per_epoch:.1f})"
            + (f", {losses}" if losses else "")
            + f", {_duration(elapsed)} elapsed, {_duration(left)} left"
        )

    def close(self) -> None:
        self.bar.close()


def _duration(seconds: float) -> str:
    if seconds != seconds:  # nan: not known yet
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min"
