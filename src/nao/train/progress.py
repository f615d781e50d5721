"""A small wrapper around tqdm for training loops: one bar per epoch, or silence.

>>> bar = EpochBar(total=3, desc="epoch 1/1", quiet=True)
>>> for _ in range(3):
...     bar.update(1, loss=0.5, acc=0.25, images_per_s=100.0)
>>> bar.close()
"""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


class EpochBar:
    """Progress over the steps of one epoch, showing loss, accuracy and images/s.

    ``quiet=True`` disables all output; so does a stderr that is not a terminal (a log file would
    otherwise fill with carriage-return redraws; the per-epoch summary line is logged either way).
    """

    def __init__(self, total: int, desc: str, quiet: bool = False) -> None:
        # disable=None: tqdm's own switch for "off unless stderr is a TTY".
        self._bar = None if quiet else tqdm(total=total, desc=desc, leave=False, file=sys.stderr,
                                            dynamic_ncols=True, disable=None)

    def update(self, steps: int, **stats: float) -> None:
        if self._bar is None:
            return
        self._bar.update(steps)
        if stats:
            self._bar.set_postfix(
                {k.replace("images_per_s", "img/s"): f"{v:.3g}" if k != "images_per_s" else f"{v:.0f}" for k, v in stats.items()},
                refresh=False,
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
