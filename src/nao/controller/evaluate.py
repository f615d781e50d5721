"""How well a controller ranks and reconstructs unseen architectures of a benchmark table.

For every training size and seed: draw a random test set and a disjoint random training
set (training sets of one seed are nested across sizes), fit the controller(s) on the
training set with ``val_acc`` as target, and measure on the test set Kendall's tau and
pairwise accuracy of the (ensemble-mean) predictions against ``val_acc``, plus the
decoder's reconstruction accuracy (first controller; exact sequence and per token). With
``semi_supervised`` M > 0 the controllers then take SemiNAS' second stage
(:func:`~nao.controller.fit.semi_supervised_fit`) on M random unlabelled architectures
drawn outside the test set.

>>> import numpy as np
>>> from nao.controller.evaluate import summarize
>>> summarize([0.5, 0.7])["mean"]
0.6
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from nao.controller.config import ControllerConfig
from nao.controller.fit import DEFAULT_FIT_STEPS, fit, pretrain_on_space, semi_supervised_fit
from nao.controller.metrics import kendall_tau, pairwise_accuracy, reconstruction_accuracy
from nao.controller.model import EncoderPredictorDecoder
from nao.errors import ConfigError
from nao.evaluators.tabular import TabularBenchmark

METRICS = ("kendall_tau", "pairwise_acc", "recon_acc", "recon_token_acc")


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Mean and standard error of the mean (0 for a single value)."""
    v = np.asarray(values, dtype=float)
    sem = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0
    return {"mean": float(v.mean()), "sem": sem}


def evaluate_once(
    table: TabularBenchmark,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    cfg: ControllerConfig,
    rng: np.random.Generator,
    ensemble: int = 1,
    epochs: int | None = None,
    device: str = "cpu",
    semi_supervised: int = 0,
) -> dict[str, float]:
    """Fit ``ensemble`` controllers on ``train_idx`` rows and score them on ``test_idx`` rows."""
    space, val = table.space, table.metrics["val_acc"]
    train = [table.archs[i] for i in train_idx]
    test = [table.archs[i] for i in test_idx]
    test_keys = {space.key(a) for a in test}
    models = []
    for _ in range(ensemble):
        model = EncoderPredictorDecoder(space, cfg, seed=int(rng.integers(2**31)), device=device)
        pretrain_on_space(model, rng, exclude=test_keys)  # unlabelled, and never a test architecture
        fit(model, train, val[train_idx], rng, epochs=epochs)
        models.append(model)
    if semi_supervised > 0:
        taken = test_keys | {space.key(a) for a in train}
        unlabelled = space.sample_distinct(rng, semi_supervised, taken)
        semi_supervised_fit(models, train, val[train_idx], unlabelled, rng, DEFAULT_FIT_STEPS)
    tokens = models[0].tokens(test)
    pred = np.mean([m.predict(tokens).cpu().numpy() for m in models], axis=0)
    recon = reconstruction_accuracy(tokens.cpu().numpy(), models[0].reconstruct(tokens).cpu().numpy())
    return {
        "kendall_tau": kendall_tau(pred, val[test_idx]),
        "pairwise_acc": pairwise_accuracy(pred, val[test_idx]),
        "recon_acc": recon["exact"],
        "recon_token_acc": recon["per_token"],
    }


def check_sizes(n_rows: int, train_sizes: Sequence[int], test_size: int, seeds: int, source: str) -> None:
    """Raise :class:`ConfigError` (naming the flag) for sizes the table cannot serve."""
    if not train_sizes:
        raise ConfigError("--train-sizes is empty; give e.g. 50,100,200")
    if min(train_sizes) < 2:
        raise ConfigError(f"--train-sizes must all be >= 2, got {min(train_sizes)}")
    if test_size < 2:
        raise ConfigError(f"--test-size must be >= 2, got {test_size}")
    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    need = max(train_sizes) + test_size
    if need > n_rows:
        raise ConfigError(
            f"--train-sizes {max(train_sizes)} + --test-size {test_size} = {need} exceeds the "
            f"{n_rows} architectures in {source}"
        )


def predict_eval(
    table: TabularBenchmark,
    train_sizes: Sequence[int],
    test_size: int,
    seeds: int,
    cfg: ControllerConfig,
    ensemble: int = 1,
    epochs: int | None = None,
    device: str = "cpu",
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
    semi_supervised: int = 0,
) -> dict[str, dict[str, dict[str, float]]]:
    """``{str(size): {metric: {"mean", "sem"}}}`` over ``seeds`` random splits per size.

    ``progress(size, seed, metrics)`` is called after each fit; ``semi_supervised`` is the
    number of pseudo-labelled architectures of SemiNAS' second stage (0: none).
    """
    check_sizes(len(table), train_sizes, test_size, seeds, str(table.path))
    runs: dict[int, list[dict[str, float]]] = {n: [] for n in train_sizes}
    for seed in range(seeds):
        perm = np.random.default_rng(seed).permutation(len(table))
        test_idx, rest = perm[:test_size], perm[test_size:]
        for n in train_sizes:
            rng = np.random.default_rng([seed, n])
            metrics = evaluate_once(table, rest[:n], test_idx, cfg, rng, ensemble, epochs, device, semi_supervised)
            runs[n].append(metrics)
            if progress is not None:
                progress(n, seed, metrics)
    return {str(n): {m: summarize([r[m] for r in runs[n]]) for m in METRICS} for n in train_sizes}
