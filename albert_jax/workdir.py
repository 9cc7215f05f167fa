"""The layout of a training workdir, in one place: the trainer writes it, and
`from_pretrained(WORKDIR)` / `AlbertTokenizer.from_pretrained(WORKDIR)` read it.

    WORKDIR/config.json              the model (Hugging Face layout)
    WORKDIR/train_config.json        the training config of the run
    WORKDIR/config_changes.jsonl     changes accepted on resume (--config.accept_changes)
    WORKDIR/spiece.model             the SentencePiece model of the data, when there is one
    WORKDIR/checkpoints/<step>/      params/, train_state/, data/ (orbax)
    WORKDIR/best/                    fine-tuning: the best evaluated model (config.json, params/,
                                     best.json; at the end model.safetensors and the tokenizer)
    WORKDIR/eval_results.json        fine-tuning: dev metrics of the best and the final checkpoint
    WORKDIR/dev_predictions.jsonl    fine-tuning: the best checkpoint's dev predictions
    WORKDIR/metrics.jsonl            one line per logged step and evaluation
    WORKDIR/tensorboard/             TensorBoard event files
"""

from __future__ import annotations

import os

from etils import epath

from albert_jax import storage

MODEL_CONFIG = "config.json"
TRAIN_CONFIG = "train_config.json"
CONFIG_CHANGES = "config_changes.jsonl"
TOKENIZER = "spiece.model"
CHECKPOINTS = "checkpoints"
PARAMS = "params"
BEST = "best"
BEST_RECORD = "best.json"
RESULTS = "eval_results.json"
METRICS = "metrics.jsonl"
TENSORBOARD = "tensorboard"
# What orbax writes last into a checkpoint folder in an object store.
_ORBAX_COMMIT_MARKER = "commit_success.txt"


def checkpoint_params(workdir: str | os.PathLike, step: int) -> epath.Path:
    """The parameters of the checkpoint at `step`."""
    return epath.Path(workdir) / CHECKPOINTS / str(step) / PARAMS


def is_complete(checkpoint_item: epath.Path) -> bool:
    """Whether an item folder of a checkpoint (e.g. `checkpoint_params(...)`) was written to the
    end. Locally orbax renames a folder into place when complete; in an object store, where it
    cannot rename, it writes the folder in place and adds `commit_success.txt` last."""
    if storage.is_local(checkpoint_item):
        return checkpoint_item.is_dir()
    return (checkpoint_item / _ORBAX_COMMIT_MARKER).exists()


def checkpoint_steps_on_disk(workdir: str | os.PathLike) -> list[int]:
    """The step folders under WORKDIR/checkpoints, complete or not, in ascending order."""
    directory = epath.Path(workdir) / CHECKPOINTS
    if not directory.is_dir():
        return []
    return sorted(int(child.name) for child in directory.iterdir() if child.name.isdigit())
