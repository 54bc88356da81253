"""Summarize a py-spy ``--format raw`` (folded stacks) profile: where the worker's time goes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path


def summarize(path: Path, top: int = 12) -> dict[str, list[tuple[str, float]]]:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  if " (" in f else f for f in stack.split(";")]  # fmt: skip
        self_time[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    share = lambda c: [(k, v / total) for k, v in c.most_common(top)]  # noqa: E731
    return {"self": share(self_time), "inclusive": share(inclusive), "samples": [("total", float(total))]}
