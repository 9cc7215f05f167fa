"""SQuAD v1.1 and v2.0 as fine-tuning tasks: one per head, the recipe, and the run's outputs.

The model reads one window per row (see `features`) and is trained on the window's labels; the
dev set is scored per question after decoding (see `decoding`) with the official metrics
(`squad_metrics`), and the best checkpoint is the one with the highest dev F1. The best
checkpoint's dev answers go to WORKDIR/predictions.json (question id -> answer text), its n-best
lists to nbest_predictions.json and, for SQuAD 2.0, its no-answer scores to null_odds.json, the
files the official evaluation script reads.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from etils import epath

from albert_jax import workdir as layout
from albert_jax.errors import InputError
from albert_jax.model import AlbertConfig, AlbertForQuestionAnswering, AlbertForSquadV2
from albert_jax.tasks import finetune, squad_metrics
from albert_jax.tasks.finetune import EXAMPLE_INDEX, DevSet, Encoded, FinetuneTask
from albert_jax.tasks.losses import counts, mean_loss, question_answering_sums, span_counts
from albert_jax.tasks.squad import decoding
from albert_jax.tasks.squad.features import Features, make_features
from albert_jax.tasks.squad.reader import (
    SquadExample,
    SquadFilesReader,
    SquadTfdsReader,
    gold_answers,
    read_squad_file,
    squad_version,
)
from albert_jax.train.task import Batch, FieldSpec, Sums

PREDICTIONS = "predictions.json"
NBEST = "nbest_predictions.json"
NULL_ODDS = "null_odds.json"
# The loss terms of a span and their counts (`losses.question_answering_sums`).
_SPAN_KEYS = ("start_nll", "end_nll", "start_count", "end_count")
# The original's weight of the answerability loss beside the span loss (run_squad_v2.py).
ANSWERABILITY_WEIGHT = 0.5
# The paper's recipe (Lan et al. 2019, table A.4): learning rate, batch size, train steps
# (2 epochs of v1.1, 3 of v2.0), warmup steps, maximum length; ALBERT dropout 0, classifier 0.1.
PAPER_RECIPES = {"v1.1": (5e-5, 48, 3649, 365, 384), "v2.0": (3e-5, 48, 8144, 814, 512)}


def squad_config(version: str = "v2.0") -> ml_collections.ConfigDict:
    """The fine-tuning config of SQuAD `version` ("v1.1" or "v2.0") with the paper's recipe."""
    version = f"v{squad_version(version)}"
    config = finetune.finetune_config()
    config.task = "squad"
    learning_rate, batch_size, steps, warmup, length = PAPER_RECIPES[version]
    finetune.paper_recipe(config, learning_rate=learning_rate, batch_size=batch_size,
                          train_steps=steps, warmup_steps=warmup, albert_dropout=0.0)
    config.seq_length = length
    # Each evaluation decodes the whole dev set (12k questions for v2.0).
    config.eval_every_steps = 1000
    config.checkpoint_every_steps = 1000
    # "simple": independent start and end logits (transformers' AlbertForQuestionAnswering);
    # "albert_v2": the original's v2 head, AlbertForSquadV2 (end given start, answerability).
    config.head = "simple"
    config.data.version = version
    # Files in SQuAD's JSON layout; without train_file, tfds squad/<version> from tfds_data_dir.
    config.data.train_file = ""
    config.data.dev_file = ""
    config.data.tfds_data_dir = ""
    config.data.max_query_length = 64
    # The step between window starts, in tokens (Hugging Face's `stride` is the overlap).
    config.data.doc_stride = 128
    config.decoding = ml_collections.ConfigDict()
    config.decoding.n_best_size = 20
    config.decoding.max_answer_length = 30
    config.decoding.start_n_top = 5  # the albert_v2 head's beam: starts, and ends per start
    config.decoding.end_n_top = 5
    # SQuAD 2.0: "tune" picks the threshold of the best dev F1 at each evaluation; a number (in
    # no-answer score units) is used as given.
    config.decoding.null_threshold = "tune"
    return config


@dataclasses.dataclass(frozen=True, eq=False)
class SquadTask(FinetuneTask):
    """SQuAD with the simple span head (`AlbertForQuestionAnswering`)."""

    version: str = squad_metrics.V2
    max_query_length: int = 64
    doc_stride: int = 128
    n_best_size: int = 20
    max_answer_length: int = 30
    start_n_top: int = 5
    end_n_top: int = 5
    null_threshold: float | None = None  # None: tuned on the dev set (SQuAD 2.0)

    model_class = AlbertForQuestionAnswering
    sum_keys = (*_SPAN_KEYS, "tokens", "slots")
    #: The names of a span's two scores in nbest_predictions.json.
    score_names = ("start_logit", "end_logit")
    #: Whether the no-answer score is the null span's score less the best span's.
    null_minus_best = True

    @staticmethod
    def head_labels(labels: tuple[str, ...] | None) -> tuple[int, tuple[str, ...]]:
        return 2, ()  # start and end

    def example_spec(self, length: int) -> dict[str, FieldSpec]:
        return {
            "input_ids": ((length,), np.int32),
            "attention_mask": ((length,), np.int32),
            "token_type_ids": ((length,), np.int32),
            "start_positions": ((), np.int32),
            "end_positions": ((), np.int32),
            EXAMPLE_INDEX: ((), np.int32),
        }

    # -- the loss ------------------------------------------------------------------------------

    def logits(self, model, batch: Batch, dropout_key: jax.Array | None):
        return model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], rngs=dropout_key)

    def head_sums(self, out, batch: Batch) -> Sums:
        return question_answering_sums(out.start_logits, out.end_logits, batch["start_positions"],
                                       batch["end_positions"], self.weights(batch))

    def normalisers(self, batch: Batch) -> dict[str, jax.Array]:
        return span_counts(batch["start_positions"], batch["end_positions"], self.weights(batch),
                           batch["input_ids"].shape[-1])

    def _loss_sums(self, sums: Sums) -> Sums:
        return {key: sums[key] for key in _SPAN_KEYS}

    # -- evaluation ----------------------------------------------------------------------------

    def predictions(self, out) -> dict[str, jax.Array]:
        return {"start_logits": out.start_logits, "end_logits": out.end_logits}

    def eval_outputs(self, model, batch: Batch) -> tuple[Sums, dict[str, jax.Array]]:
        # Dev windows carry no labels (a question's gold answers are scored after decoding).
        out = self.logits(model, batch, None)
        return {}, {**self.predictions(out), EXAMPLE_INDEX: batch[EXAMPLE_INDEX]}

    def window_spans(self, features: Features, rows: dict[str, np.ndarray]) -> tuple[list, np.ndarray]:
        """Each window's candidate spans, and its null score."""
        spans = [decoding.simple_spans(window, rows["start_logits"][w], rows["end_logits"][w],
                                       n_best_size=self.n_best_size, max_answer_length=self.max_answer_length)
                 for w, window in enumerate(features.windows)]
        return spans, rows["start_logits"][:, 0] + rows["end_logits"][:, 0]

    def decode(self, examples: Sequence[SquadExample], features: Features,
               rows: dict[str, np.ndarray]) -> list[decoding.Prediction]:
        """One prediction per example from the outputs of its windows (`rows`, in window order)."""
        if len(features.windows) != len(rows[EXAMPLE_INDEX]):
            raise AssertionError(f"{len(rows[EXAMPLE_INDEX])} outputs for {len(features.windows)} windows")
        spans, nulls = self.window_spans(features, rows)
        return decoding.best_answers(examples, features, spans, np.asarray(nulls, np.float64),
                                     n_best_size=self.n_best_size, score_names=self.score_names,
                                     null_minus_best=self.null_minus_best)

    @functools.cached_property
    def _dev(self) -> tuple[list[SquadExample], Features, squad_metrics.SquadDataset]:
        """The dev questions, their windows (tokenized again, as `open_data` did) and gold answers."""
        examples = [example for example, _ in self.dev_examples()]
        return examples, self.features(self._tokenizer(), examples), gold_answers(examples, self.version, self.name)

    def _tokenizer(self):
        from albert_jax import AlbertTokenizer

        return AlbertTokenizer.from_pretrained(self.tokenizer_path)

    def _dev_predictions(self, outputs: dict[str, np.ndarray]) -> tuple[list[decoding.Prediction], float | None, bool]:
        """The dev predictions, and the null threshold (None for SQuAD 1.1) and whether it was tuned."""
        examples, features, gold = self._dev
        predictions = self.decode(examples, features, finetune.real_rows(outputs))
        if self.version == squad_metrics.V1:
            return predictions, None, False
        if self.null_threshold is not None:
            return predictions, self.null_threshold, False
        return predictions, decoding.tune_threshold(gold, predictions), True

    def evaluate(self, sums: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> dict[str, float]:
        """The official metrics; for SQuAD 2.0 at the null threshold (`null_threshold`, and
        `null_threshold_tuned` 1 when it was tuned on this dev set, 0 when given)."""
        predictions, threshold, tuned = self._dev_predictions(outputs)
        gold = self._dev[2]
        if threshold is None:
            return squad_metrics.evaluate(gold, decoding.answered(predictions, None))
        null_scores = {p.qid: p.null_score for p in predictions}
        metrics = squad_metrics.evaluate(gold, decoding.answered(predictions, None), null_scores, threshold)
        return {**metrics, "null_threshold": threshold, "null_threshold_tuned": float(tuned)}

    def write_predictions(self, outputs: dict[str, np.ndarray], workdir: str) -> None:
        """predictions.json, nbest_predictions.json and (SQuAD 2.0) null_odds.json."""
        predictions, threshold, _ = self._dev_predictions(outputs)
        finetune._write_json(epath.Path(workdir) / PREDICTIONS, decoding.answered(predictions, threshold))
        finetune._write_json(epath.Path(workdir) / NBEST, {p.qid: p.nbest for p in predictions})
        if self.version == squad_metrics.V2:
            finetune._write_json(epath.Path(workdir) / NULL_ODDS, {p.qid: p.null_score for p in predictions})

    # -- data ----------------------------------------------------------------------------------

    def features(self, tokenizer, examples: Sequence[SquadExample]) -> Features:
        return make_features(tokenizer, examples, max_length=self.max_length,
                             max_query_length=self.max_query_length, doc_stride=self.doc_stride)

    def encode(self, tokenizer, examples: Sequence[SquadExample]) -> Encoded:
        return self.features(tokenizer, examples).encoded

    def prediction_records(self, examples: Sequence[SquadExample], rows: dict[str, np.ndarray]) -> list[dict]:
        """Per question its id, its answer ("" for none, SQuAD 2.0) and, for SQuAD 2.0, its
        no-answer score; `rows` are the outputs of `encode(examples)`'s windows."""
        predictions = self.decode(examples, self.features(self._tokenizer(), examples), rows)
        threshold = None if self.version == squad_metrics.V1 else self.null_threshold
        answers = decoding.answered(predictions, threshold)
        records = []
        for p in predictions:
            record = {"guid": p.qid, "answer": answers[p.qid]}
            if self.version == squad_metrics.V2:
                record["null_odds"] = p.null_score
            records.append(record)
        return records


@dataclasses.dataclass(frozen=True, eq=False)
class SquadV2HeadTask(SquadTask):
    """SQuAD with the original's v2 head (`AlbertForSquadV2`): the span loss plus half the
    answerability loss (binary cross-entropy of "this window holds no answer")."""

    model_class = AlbertForSquadV2
    sum_keys = (*SquadTask.sum_keys, "nll", "correct", "count")
    score_names = ("start_log_prob", "end_log_prob")
    null_minus_best = False

    def example_spec(self, length: int) -> dict[str, FieldSpec]:
        return {**super().example_spec(length), "is_impossible": ((), np.int32)}

    @staticmethod
    def p_mask(batch: Batch) -> jax.Array:
        """True where no answer starts or ends: all but [CLS] and the context (the tokens of
        type 1 before the last [SEP])."""
        mask = batch["attention_mask"].astype(bool)
        positions = jnp.arange(mask.shape[-1])
        last = jnp.sum(mask, axis=-1, keepdims=True) - 1
        context = (batch["token_type_ids"] == 1) & mask & (positions < last)
        return ~(context | (positions == 0))

    def sums(self, model, batch: Batch, dropout_key: jax.Array | None) -> Sums:
        # Training conditions the end on the gold start (teacher forcing), as the original.
        out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
                    p_mask=self.p_mask(batch), start_positions=batch["start_positions"], rngs=dropout_key)
        return self._sums(out, batch)

    def logits(self, model, batch: Batch, dropout_key: jax.Array | None):
        return model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
                     p_mask=self.p_mask(batch), start_n_top=self.start_n_top, end_n_top=self.end_n_top,
                     rngs=dropout_key)

    def head_sums(self, out, batch: Batch) -> Sums:
        weights = self.weights(batch)
        # The log-probabilities are their own log-softmax, so the span's cross-entropy is theirs.
        sums = question_answering_sums(out.start_log_probs, out.end_log_probs, batch["start_positions"],
                                       batch["end_positions"], weights)
        impossible = batch["is_impossible"].astype(jnp.float32)
        loss = optax.sigmoid_binary_cross_entropy(out.cls_logits, impossible)
        hit = ((out.cls_logits > 0) == (impossible > 0)).astype(jnp.float32)
        return {**sums, "nll": jnp.sum(loss * weights), "correct": jnp.sum(hit * weights), **counts(weights)}

    def normalisers(self, batch: Batch) -> dict[str, jax.Array]:
        return {**super().normalisers(batch), **counts(self.weights(batch))}

    def loss(self, sums: Sums, normalisers: dict[str, jax.Array]) -> jax.Array:
        answerability = mean_loss({"nll": sums["nll"], "count": sums["count"]}, normalisers)
        return mean_loss(self._loss_sums(sums), normalisers) + ANSWERABILITY_WEIGHT * answerability

    def metrics(self, sums: Sums) -> dict[str, jax.Array]:
        """The loss, the answerability classifier's accuracy over windows, the padding share."""
        out = super().metrics(sums)
        out["loss"] = self.loss(sums, sums)
        out["answerability_accuracy"] = sums["correct"] / jnp.maximum(sums["count"], 1.0)
        return out

    def predictions(self, out) -> dict[str, jax.Array]:
        return {name: getattr(out, name) for name in
                ("start_top_log_probs", "start_top_index", "end_top_log_probs", "end_top_index", "cls_logits")}

    def window_spans(self, features: Features, rows: dict[str, np.ndarray]) -> tuple[list, np.ndarray]:
        spans = [decoding.beam_spans(window, rows["start_top_log_probs"][w], rows["start_top_index"][w],
                                     rows["end_top_log_probs"][w], rows["end_top_index"][w],
                                     max_answer_length=self.max_answer_length)
                 for w, window in enumerate(features.windows)]
        return spans, rows["cls_logits"]


HEADS = {"simple": SquadTask, "albert_v2": SquadV2HeadTask}


def _task_fields(config: ml_collections.ConfigDict) -> tuple[type[SquadTask], dict]:
    """The task class of `config.head` and the task's fields from the config, checked."""
    if config.head not in HEADS:
        raise InputError(f"head {config.head!r}: choose {' or '.join(HEADS)}")
    data, decode = config.data, config.decoding
    for where, key in (("data", "max_query_length"), ("data", "doc_stride"), ("decoding", "n_best_size"),
                       ("decoding", "max_answer_length"), ("decoding", "start_n_top"), ("decoding", "end_n_top")):
        if config[where][key] < 1:
            raise InputError(f"{where}.{key} must be positive, got {config[where][key]}")
    return HEADS[config.head], dict(
        version=squad_version(data.version), max_query_length=data.max_query_length,
        doc_stride=data.doc_stride, n_best_size=decode.n_best_size, max_answer_length=decode.max_answer_length,
        start_n_top=decode.start_n_top, end_n_top=decode.end_n_top, null_threshold=_threshold(decode.null_threshold))


def _threshold(value: str | float) -> float | None:
    if str(value) == "tune":
        return None
    try:
        threshold = float(value)
    except ValueError:
        threshold = math.nan
    if not math.isfinite(threshold):
        raise InputError(f"decoding.null_threshold {value!r}: give 'tune' or a finite number")
    return threshold


def _check_lengths(task: SquadTask) -> SquadTask:
    """The checks that need the task's sequence length."""
    if task.max_length - task.max_query_length - 3 < 1:
        raise InputError(f"seq_length {task.max_length} leaves no room for the context after a question of "
                         f"data.max_query_length {task.max_query_length} tokens and [CLS], [SEP], [SEP]")
    for key in ("start_n_top", "end_n_top"):
        if getattr(task, key) > task.lengths[0]:
            raise InputError(f"decoding.{key} must be at most {task.lengths[0]} (the shortest length "
                             f"bucket), got {getattr(task, key)}")
    return task


def make_task(config: ml_collections.ConfigDict) -> SquadTask:
    cls, fields = _task_fields(config)
    data = config.data
    if data.dev_file and not data.train_file:
        raise InputError("data.dev_file is set but data.train_file is not; give both files, or neither "
                         "for tfds squad/<version>")
    if data.train_file:
        reader = SquadFilesReader(fields["version"], train_file=data.train_file, dev_file=data.dev_file or None)
    else:
        reader = SquadTfdsReader(fields["version"], data_dir=data.tfds_data_dir or None)
    dev = [DevSet(tuple(reader.read("dev")))] if "dev" in reader.splits else []
    return _check_lengths(cls.create(
        config, name=f"squad/v{fields['version']}", labels=None, train=reader.read("train"), dev=dev,
        metrics_fn=None, best_metric="f1", **fields))


def for_prediction(config: ml_collections.ConfigDict, model: AlbertConfig, tokenizer_path: Path):
    """The task of a finished SQuAD run, and a reader of files in SQuAD's layout (answers not
    needed). A SQuAD 2.0 run whose threshold was tuned answers "" above the threshold of its
    best checkpoint."""
    cls, fields = _task_fields(config)
    if fields["version"] == squad_metrics.V2 and fields["null_threshold"] is None:
        fields["null_threshold"] = _tuned_threshold(tokenizer_path.parent)
    task = _check_lengths(cls.for_prediction(config, model, None, tokenizer_path, **fields))
    return task, lambda path: read_squad_file(path, task.version, mode="predict")


def _tuned_threshold(workdir: Path) -> float | None:
    record = workdir / layout.BEST / layout.BEST_RECORD
    if record.is_file():
        threshold = json.loads(record.read_text())["metrics"].get("eval_null_threshold")
        if threshold is not None:
            return float(threshold)
    finetune.log.warning("%s records no tuned null threshold: every question gets its best answer; "
                         "null_odds in the output say how likely none is", workdir)
    return None
