"""`albert-jax plot WORKDIR`: loss, accuracy and throughput curves from metrics.jsonl, as a PNG."""

from __future__ import annotations

import io
import json
import os
from typing import TYPE_CHECKING

from etils import epath

from albert_jax import storage
from albert_jax import workdir as layout
from albert_jax.errors import InputError

if TYPE_CHECKING:  # matplotlib is imported only when a plot is drawn
    from matplotlib.figure import Figure

# One panel per row: (title, metric keys drawn in it).
_PANELS = (
    ("loss", ("loss", "mlm_loss", "sop_loss", "eval_loss")),
    ("accuracy", ("mlm_accuracy", "sop_accuracy", "eval_mlm_accuracy", "eval_sop_accuracy")),
    ("throughput (examples/s)", ("examples_per_sec",)),
)


def _check_workdir(workdir: str) -> None:
    if epath.Path(workdir).is_file():
        raise InputError(f"{workdir} is a file: give the run's workdir, the folder that holds "
                         f"{layout.METRICS}")


def read_metrics(workdir: str) -> dict[str, tuple[list[int], list[float]]]:
    """Each metric's (steps, values). A resumed run logs some steps again: the last one wins.

    Values that are not numbers (notes a run may log) are left out.
    """
    path = epath.Path(workdir) / layout.METRICS
    if not path.is_file():
        raise InputError(f"{path} does not exist: is {workdir} a pretraining workdir?")
    by_step: dict[str, dict[int, float]] = {}
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:  # not JSON, or not UTF-8
                raise InputError(f"{path}:{number} is not JSON") from None
            step = record.pop("step", None) if isinstance(record, dict) else None
            if not isinstance(step, int) or isinstance(step, bool):
                raise InputError(f"{path}:{number} is not a JSON object with an integer 'step'")
            for key, value in record.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    by_step.setdefault(key, {})[step] = value
    return {key: (sorted(values), [values[s] for s in sorted(values)]) for key, values in by_step.items()}


def plot(workdir: str, output: str | None = None) -> str:
    """Writes the curves to `output` (default WORKDIR/metrics.png) and returns its path.

    The format follows `output`'s extension (.png, .pdf, .svg, ...). The file is written
    whole or not at all: an existing one is replaced only by a complete plot.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    _check_workdir(workdir)
    output = output or str(epath.Path(workdir) / "metrics.png")
    image_format = _image_format(output, FigureCanvasAgg.get_supported_filetypes())
    metrics = read_metrics(workdir)
    if not metrics:
        raise InputError(f"{epath.Path(workdir) / layout.METRICS} holds no metrics yet")
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
    figure.suptitle(storage.absolute(workdir).name)
    figure.tight_layout()
    try:
        _save_atomically(figure, output, image_format)
    finally:
        plt.close(figure)
    return output


def _image_format(output: str, supported: dict[str, str]) -> str:
    """The format named by `output`'s extension; InputError if it has none matplotlib writes,
    or if its folder does not exist."""
    folder = os.path.dirname(output) or "."
    if storage.is_local(output) and not os.path.isdir(folder):
        raise InputError(f"cannot write {output!r}: folder {folder!r} does not exist")
    extension = os.path.splitext(output)[1].lstrip(".").lower()
    if extension not in supported:
        raise InputError(
            f"cannot write {output!r}: its extension must name an image format, one of "
            + ", ".join(f".{name}" for name in sorted(supported))
        )
    return extension


def _save_atomically(figure: Figure, output: str, image_format: str) -> None:
    image = io.BytesIO()
    figure.savefig(image, format=image_format, dpi=100)
    try:
        storage.write_atomically(output, image.getvalue())
    except OSError as error:
        raise InputError(f"cannot write {output!r}: {error.strerror}") from error
