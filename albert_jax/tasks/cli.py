"""`albert-jax finetune` (train a task, see `tasks.registry`), and `albert-jax evaluate ...`:
score a predictions file against gold labels, one JSON line out."""

from __future__ import annotations

import argparse
import csv
import io
import json
from typing import Any

import numpy as np

from albert_jax.errors import InputError
from albert_jax.tasks.files import read_text
from albert_jax.tasks.glue_tasks import GLUE_TASKS, GlueTask, glue_task

_MISMATCHED = "mnli-mm"

_GLUE_HELP = f"""\
Score GLUE predictions against gold labels and print one JSON line of metrics, e.g.
{{"f1": 0.91, "accuracy": 0.875}} for MRPC (fractions, not percent).

TASK: {", ".join(GLUE_TASKS)} (or as the GLUE folders spell them: SST-2, STS-B, ...),
or {_MISMATCHED}: MNLI's mismatched dev set, whose metrics are named *_mm.

LABELS, by file name ending:
  .tsv    the task's dev set as GLUE distributes it: CoLA without a header row, label in
          column 2; the others with a header row naming the label column: label (SST-2,
          QNLI, RTE, WNLI), Quality (MRPC), is_duplicate (QQP), score (STS-B), gold_label
          (MNLI dev_matched.tsv / dev_mismatched.tsv).
  .jsonl  one JSON object per line: {{"label": ...}}, optionally with "id".
PREDICTIONS, by file name ending:
  .tsv    a GLUE submission file: the header row index<TAB>prediction, then one row each.
  .jsonl  one JSON object per line: {{"label": ...}}, optionally with "id".

Rows pair up in order; when both files are JSONL and give ids, the ids must agree. A label is
written as GLUE spells it, or as its index in this list (the original ALBERT's order):
  CoLA, SST-2, MRPC, QQP, WNLI: 0, 1   QNLI, RTE: entailment, not_entailment
  MNLI: contradiction, entailment, neutral   STS-B: a number
"""

_SQUAD_HELP = """\
Score SQuAD predictions as the official evaluation scripts do, and print their metrics as one
JSON line (percent). v1.1: exact_match, f1 (questions without a prediction score 0). v2.0:
exact, f1, total and the same for HasAns_ and NoAns_ questions; with --na-prob-file also
best_exact, best_f1 and their thresholds (every question needs a prediction, "" for no answer).

DATA is the dataset file (e.g. dev-v2.0.json); PREDICTIONS is a JSON object mapping question
id to answer text. The version comes from DATA's "version" field unless --squad-version says.
"""

# A row of a labels or predictions file: its location ("FILE:LINE"), value and id (None: none).
_Row = tuple[str, Any, Any]


_FINETUNE_HELP = """\
Fine-tune a pretrained ALBERT on a task. The config names the task and carries the paper's
recipe for it; --config.init_from names the pretrained model: a Hugging Face directory, an
original TF release, a pretraining workdir, or save_pretrained output. The tokenizer is found
beside it (or give --config.tokenizer). Rerunning the same command resumes.

WORKDIR gets eval_results.json (dev metrics of the best and of the final checkpoint, and how the
best was chosen), dev_predictions.jsonl, metrics.jsonl, and best/: the best model, which
transformers' AlbertFor*.from_pretrained loads. With --config.seeds=0,1,2,3,4 each seed runs in
WORKDIR/seed_<n>, and WORKDIR/eval_results.json holds every seed's results and their median."""


def register(subparsers: Any) -> None:
    """Adds the `finetune` and `evaluate` commands to the `albert-jax` parser."""
    from albert_jax.train.cli import _OVERRIDES_HELP, add_cluster_arguments

    finetune = subparsers.add_parser(
        "finetune", help="fine-tune a pretrained ALBERT on a task (GLUE, a local table, RACE, tagging)",
        description=_FINETUNE_HELP, epilog=_OVERRIDES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    finetune.add_argument("--config", metavar="FILE[:ARG]", required=True,
                          help="the task's config, e.g. configs/finetune/glue.py:sst2")
    finetune.add_argument("--workdir", metavar="DIR", help="where the run's files go "
                          "(default: albert_jax_workdirs/<config name>)")
    add_cluster_arguments(finetune)
    finetune.set_defaults(run=_finetune, accepts_overrides=True)

    predict = subparsers.add_parser(
        "predict", help="run a fine-tuned model over a file of inputs",
        description="Run the best model of a fine-tuning run (else its newest checkpoint) over FILE, "
                    "read in the layout of the run's task: a table with the training columns "
                    "(local classification), a GLUE test.tsv (GLUE), RACE article files (RACE), "
                    "CoNLL-style files (tagging). Labels in the input are not needed.")
    predict.add_argument("--workdir", required=True, metavar="DIR", help="the fine-tuning run")
    predict.add_argument("--input", required=True, metavar="FILE", help="the examples to predict")
    predict.add_argument("--output", required=True, metavar="FILE", help="where the predictions go")
    predict.add_argument("--format", default="jsonl", choices=("jsonl", "tsv", "glue"),
                         help="jsonl: one JSON object per example (label names and probabilities); "
                              "tsv: guid<TAB>prediction; glue: a GLUE submission file, "
                              "index<TAB>prediction (default: jsonl)")
    predict.set_defaults(run=_predict)

    evaluate = subparsers.add_parser(
        "evaluate",
        help="score predictions against gold labels (GLUE, SQuAD)",
        description="Score a predictions file against gold labels; prints one JSON line of metrics.",
    )
    commands = evaluate.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")

    glue = commands.add_parser(
        "glue",
        help="GLUE dev-set metrics",
        description=_GLUE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    glue.add_argument("task", type=_glue_task_name, metavar="TASK")
    glue.add_argument("labels", metavar="LABELS", help="gold labels (.tsv or .jsonl)")
    glue.add_argument("predictions", metavar="PREDICTIONS", help="predicted labels (.tsv or .jsonl)")
    glue.set_defaults(run=_evaluate_glue)

    squad = commands.add_parser(
        "squad",
        help="SQuAD v1.1 / v2.0 metrics, as the official scripts",
        description=_SQUAD_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    squad.add_argument("data", metavar="DATA.json", help="the SQuAD dataset file")
    squad.add_argument("predictions", metavar="PREDICTIONS.json", help="question id -> answer text")
    squad.add_argument(
        "--na-prob-file", metavar="FILE", help="v2.0: JSON object, question id -> probability of no answer"
    )
    squad.add_argument(
        "--na-prob-thresh",
        type=float,
        metavar="T",
        help='v2.0: answer "" where the no-answer probability exceeds T (default: 1.0)',
    )
    squad.add_argument("--squad-version", choices=("1.1", "2.0"), help="override DATA's version field")
    squad.set_defaults(run=_evaluate_squad)


def _finetune(args: argparse.Namespace, overrides: list[str]) -> int:
    from albert_jax.tasks import finetune
    from albert_jax.train import config as config_lib
    from albert_jax.train import mesh
    from albert_jax.train.cli import compilation_cache, default_workdir

    config = config_lib.load_config(args.config, overrides)
    seeds = finetune.parse_seeds(config)
    mesh.initialize_distributed(args.coordinator_address, args.num_processes, args.process_id)
    workdir = args.workdir or default_workdir(args.config)
    print(f"albert-jax finetune: workdir {workdir}", flush=True)
    with compilation_cache():  # a rerun, a resume or another seed's run compiles nothing again
        finetune.run_seeds(config, workdir, seeds)
    return 0


def _glue_task_name(value: str) -> str:
    """TASK in any spelling as its canonical name ("SST-2" -> "sst2"), or mnli-mm."""
    if value.lower() == _MISMATCHED:
        return _MISMATCHED
    try:
        return glue_task(value).name
    except InputError as error:
        raise argparse.ArgumentTypeError(f"{error}, or {_MISMATCHED}") from None


def _predict(args: argparse.Namespace, _overrides: list[str]) -> int:
    from albert_jax.tasks import finetune
    from albert_jax.train.cli import compilation_cache
    from albert_jax.train.mesh import all_devices

    all_devices()  # JAX starts here, where a backend that cannot start is one line
    with compilation_cache():
        count = finetune.predict(args.workdir, args.input, args.output, args.format)
    print(f"albert-jax predict: {count} predictions -> {args.output}")
    return 0


def _evaluate_glue(args: argparse.Namespace, _overrides: list[str]) -> int:
    from albert_jax.tasks.metrics import glue_metrics

    mismatched = args.task == _MISMATCHED
    task = glue_task("mnli" if mismatched else args.task)
    labels = _read_labels(args.labels, task)
    predictions = _read_predictions(args.predictions)
    if len(labels) != len(predictions):
        raise InputError(
            f"{args.labels} has {len(labels)} labels but {args.predictions} has {len(predictions)} predictions"
        )
    for (label_at, _, label_id), (prediction_at, _, prediction_id) in zip(labels, predictions):
        if label_id is not None and prediction_id is not None and label_id != prediction_id:
            raise InputError(f"{label_at} has id {label_id!r} but {prediction_at} has id {prediction_id!r}")
    metrics = glue_metrics(task.name, _values(labels, task), _values(predictions, task), mismatched=mismatched)
    print(json.dumps(metrics))
    return 0


def _evaluate_squad(args: argparse.Namespace, _overrides: list[str]) -> int:
    from albert_jax.tasks import squad_metrics

    dataset = squad_metrics.read_dataset(args.data, version=args.squad_version)
    if dataset.version == squad_metrics.V1 and args.na_prob_thresh is not None:
        raise InputError(f"--na-prob-thresh is for SQuAD 2.0, and {args.data} is SQuAD 1.1")
    metrics = squad_metrics.evaluate(
        dataset,
        squad_metrics.read_predictions(args.predictions),
        squad_metrics.read_na_probs(args.na_prob_file) if args.na_prob_file else None,
        1.0 if args.na_prob_thresh is None else args.na_prob_thresh,
    )
    print(json.dumps(metrics))
    return 0


def _read_labels(path: str, task: GlueTask) -> list[_Row]:
    if path.endswith(".jsonl"):
        return _read_jsonl(path)
    rows = _read_tsv(path)
    if task.label_header is None:
        column = task.train_dev_columns.label
    else:
        header = rows.pop(0)[1] if rows else []
        if task.label_header not in header:
            raise InputError(
                f"{path}: the header row ({', '.join(header)}) has no column {task.label_header!r}; "
                f"expected the {task.name} dev set as GLUE distributes it"
            )
        column = header.index(task.label_header)
    for line, row in rows:
        if len(row) <= column:
            raise InputError(f"{path}:{line} has {len(row)} columns, and the label is in column {column + 1}")
    return _nonempty(path, [(f"{path}:{line}", row[column], None) for line, row in rows])


def _read_predictions(path: str) -> list[_Row]:
    if path.endswith(".jsonl"):
        return _read_jsonl(path)
    rows = _read_tsv(path)
    if not rows or [name.lower() for name in rows[0][1]] != ["index", "prediction"]:
        raise InputError(f"{path} must begin with the header row index<TAB>prediction (GLUE's submission format)")
    for line, row in rows[1:]:
        if len(row) != 2:
            raise InputError(f"{path}:{line} has {len(row)} columns, not index<TAB>prediction")
    return _nonempty(path, [(f"{path}:{line}", row[1], None) for line, row in rows[1:]])


def _read_tsv(path: str) -> list[tuple[int, list[str]]]:
    """(line number, columns) of each non-empty line."""
    if not path.endswith(".tsv"):
        raise InputError(f"{path}: a labels or predictions file must end in .tsv or .jsonl")
    # GLUE's TSVs are unquoted: MNLI's text holds stray quotes.
    reader = csv.reader(io.StringIO(read_text(path), newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    return [(reader.line_num, row) for row in reader if row]


def _read_jsonl(path: str) -> list[_Row]:
    rows = []
    # Split at newlines only: JSON text may hold other line separators, such as U+2028.
    for number, line in enumerate(read_text(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise InputError(f"{path}:{number} is not JSON") from None
        if not isinstance(record, dict) or "label" not in record:
            raise InputError(f'{path}:{number} is not a JSON object with a "label"')
        rows.append((f"{path}:{number}", record["label"], record.get("id")))
    return _nonempty(path, rows)


def _nonempty(path: str, rows: list[_Row]) -> list[_Row]:
    if not rows:
        raise InputError(f"{path} holds no examples")
    return rows


def _values(rows: list[_Row], task: GlueTask) -> np.ndarray:
    """Class ids (or STS-B scores) of the rows' values, which may be label names or numbers."""
    if task.is_regression:
        return np.array([_score(value, at) for at, value, _ in rows], dtype=np.float64)
    return np.array([_class_id(value, at, task) for at, value, _ in rows], dtype=np.int64)


def _class_id(value: Any, at: str, task: GlueTask) -> int:
    if isinstance(value, str) and value in task.labels:
        return task.labels.index(value)
    if isinstance(value, str) and value.isdecimal():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(task.labels):
        return value
    raise InputError(
        f"{at}: {value!r} is not a {task.name} label ({', '.join(task.labels)}) or a class id 0..{len(task.labels) - 1}"
    )


def _score(value: Any, at: str) -> float:
    try:
        score = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        score = None
    if score is None or not np.isfinite(score):
        raise InputError(f"{at}: {value!r} is not a finite number (an STS-B score)")
    return score
