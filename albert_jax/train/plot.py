"""`albert-jax plot WORKDIR`: loss, accuracy and throughput curves from metrics.jsonl, as a PNG."""

from __future__ import annotations

import json
import os

from albert_jax import workdir as layout
from albert_jax.errors import InputError

# One panel per row: (title, metric keys drawn in it).
_PANELS = (
    ("loss", ("loss", "mlm_loss", "sop_loss", "eval_loss")),
    ("accuracy", ("mlm_accuracy", "sop_accuracy", "eval_mlm_accuracy", "eval_sop_accuracy")),
    ("throughput (examples/s)", ("examples_per_sec",)),
)


def read_metrics(workdir: str) -> dict[str, tuple[list[int], list[float]]]:
    """Each metric's (steps, values). A resumed run logs some steps again: the last one wins."""
    path = os.path.join(workdir, layout.METRICS)
    if not os.path.isfile(path):
        raise InputError(f"{path} does not exist: is {workdir} a pretraining workdir?")
    by_step: dict[str, dict[int, float]] = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise InputError(f"{path}:{number} is not JSON") from None
            step = record.pop("step")
            for key, value in record.items():
                by_step.setdefault(key, {})[step] = value
    return {key: (sorted(values), [values[s] for s in sorted(values)]) for key, values in by_step.items()}


def plot(workdir: str, output: str | None = None) -> str:
    """Writes the curves to `output` (default WORKDIR/metrics.png) and returns its path."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    metrics = read_metrics(workdir)
    if not metrics:
        raise InputError(f"{os.path.join(workdir, layout.METRICS)} holds no metrics yet")
    output = output or os.path.join(workdir, "metrics.png")
    figure, axes = plt.subplots(len(_PANELS), 1, figsize=(8, 3 * len(_PANELS)), sharex=True)
    for ax, (title, keys) in zip(axes, _PANELS):
        for key in keys:
            if key in metrics:
                ax.plot(*metrics[key], label=key, marker="." if key.startswith("eval_") else None)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(loc="best", fontsize="small")
    axes[-1].set_xlabel("step")
    figure.suptitle(os.path.basename(os.path.abspath(workdir)))
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)
    return output
