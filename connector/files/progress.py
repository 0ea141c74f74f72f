"""A progress bar (bytes, rate, time left) on a terminal; nothing at all when stderr is a pipe or a file.

A script reading the command's output then gets only the result document.
"""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress_bar(total: int, description: str) -> tqdm:
    return tqdm(
        total=total,
        desc=description,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=not sys.stderr.isatty(),
        dynamic_ncols=True,
    )
