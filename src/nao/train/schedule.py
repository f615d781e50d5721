"""Learning-rate schedules shared by every trainer (the classifier and the conv supernet).

>>> cosine_lr(0.1, 0.0, 0.0), cosine_lr(0.1, 0.0, 0.5), cosine_lr(0.1, 0.0, 2.0)
(0.1, 0.05, 0.0)
"""

from __future__ import annotations

import math


def cosine_lr(lr_max: float, lr_min: float, progress: float) -> float:
    """Cosine annealing from ``lr_max`` (``progress`` 0) to ``lr_min`` (``progress`` >= 1).

    ``progress`` is the fraction of the schedule done; values past 1 stay at ``lr_min`` so a
    run that trains longer than planned (an extra round) keeps the floor rather than rising again.
    """
    return lr_min + 0.5 * (lr_max - lr_min) * (1.0 + math.cos(math.pi * min(progress, 1.0)))
