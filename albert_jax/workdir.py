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


def checkpoint_params(workdir: str | os.PathLike, step: int) -> str:
    """The parameters of the checkpoint at `step`."""
    return os.path.join(workdir, CHECKPOINTS, str(step), PARAMS)


def checkpoint_steps_on_disk(workdir: str | os.PathLike) -> list[int]:
    """The step folders under WORKDIR/checkpoints, complete or not, in ascending order."""
    directory = os.path.join(workdir, CHECKPOINTS)
    if not os.path.isdir(directory):
        return []
    return sorted(int(name) for name in os.listdir(directory) if name.isdigit())
