"""`albert-jax finetune` end to end on tasks the tests make: the model learns, the best
checkpoint is kept and exported, and the outputs are what the README promises."""

from __future__ import annotations

import json

import numpy as np
import pytest

from albert_jax.cli import main

# Runs that differ only in their seed or data compile one program between them.
pytestmark = pytest.mark.usefixtures("in_process_cache")

CLASSIFICATION = "finetune/classification.py"  # shipped configs are found by name
# Small and fast: the toy tasks need a high learning rate and a few hundred examples.
FAST = ["--config.learning_rate=2e-3", "--config.warmup_steps=10", "--config.global_batch_size=16",
        "--config.num_train_steps=120", "--config.eval_every_steps=40", "--config.log_every_steps=40",
        "--config.checkpoint_every_steps=60", "--config.seq_length=32"]


@pytest.fixture(scope="module")
def sentiment_run(tmp_path_factory, pretrained_dir, sentiment_files):
    train, dev = sentiment_files
    workdir = tmp_path_factory.mktemp("sentiment_run")
    assert main(["finetune", "--config", CLASSIFICATION, "--workdir", str(workdir),
                 f"--config.init_from={pretrained_dir}", f"--config.data.train_file={train}",
                 f"--config.data.dev_file={dev}", "--config.data.text_column=sentence", *FAST]) == 0
    return workdir


def test_a_tiny_model_learns_a_local_classification_task(sentiment_run):
    results = json.loads((sentiment_run / "eval_results.json").read_text())
    assert results["best"]["accuracy"] >= 0.9, results
    assert results["best_step"] in (40, 80, 120) and results["final_step"] == 120
    assert "highest dev accuracy" in results["selection"]
    predictions = [json.loads(line) for line in (sentiment_run / "dev_predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 60
    assert {p["label"] for p in predictions} <= {"neg", "pos"}
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-5 for p in predictions)
    accuracy = np.mean([p["label"] == p["gold"] for p in predictions])
    assert accuracy == pytest.approx(results["best"]["accuracy"])
    records = [json.loads(line) for line in (sentiment_run / "metrics.jsonl").read_text().splitlines()]
    assert all(0 <= r["padding_fraction"] < 1 for r in records if "padding_fraction" in r)


def test_several_steps_per_execution_fine_tune_exactly_as_one(sentiment_run, tmp_path, pretrained_dir,
                                                              sentiment_files):
    # Batches come in length buckets: executions of 4 where all 4 share a width, one at a time
    # otherwise; either way the same updates.
    train, dev = sentiment_files
    assert main(["finetune", "--config", CLASSIFICATION, "--workdir", str(tmp_path),
                 f"--config.init_from={pretrained_dir}", f"--config.data.train_file={train}",
                 f"--config.data.dev_file={dev}", "--config.data.text_column=sentence", *FAST,
                 "--config.steps_per_execution=4"]) == 0
    results = [json.loads((workdir / "eval_results.json").read_text()) for workdir in (sentiment_run, tmp_path)]
    assert results[0] == results[1]
    assert (tmp_path / "dev_predictions.jsonl").read_text() == (sentiment_run / "dev_predictions.jsonl").read_text()


@pytest.mark.usefixtures("needs_gpu")
@pytest.mark.parametrize("packing", ["false", "true"])
def test_a_tiny_model_learns_with_cudnn_attention(tmp_path, pretrained_dir, sentiment_files, packing):
    train, dev = sentiment_files
    assert main(["finetune", "--config", CLASSIFICATION, "--workdir", str(tmp_path),
                 f"--config.init_from={pretrained_dir}", f"--config.data.train_file={train}",
                 f"--config.data.dev_file={dev}", "--config.data.text_column=sentence", *FAST,
                 "--config.model.dtype=bfloat16", "--config.model.attention_implementation=cudnn",
                 "--config.model.attention_probs_dropout_prob=0.0",
                 f"--config.data.packing={packing}"]) == 0
    results = json.loads((tmp_path / "eval_results.json").read_text())
    assert results["best"]["accuracy"] >= 0.9, results


def test_the_best_model_loads_in_transformers_with_its_labels(sentiment_run):
    transformers = pytest.importorskip("transformers")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(sentiment_run / "best")
    assert type(model).__name__ == "AlbertForSequenceClassification"
    assert model.config.id2label == {0: "neg", 1: "pos"}
    tokenizer = transformers.AlbertTokenizer.from_pretrained(sentiment_run / "best")
    inputs = tokenizer(["the cat sat on a good mat", "the dog ran on an awful road"], return_tensors="pt", padding=True)
    assert model(**inputs).logits.argmax(-1).tolist() == [1, 0]


def test_a_tiny_model_learns_a_regression_task(tmp_path, pretrained_dir, scores_files):
    train, dev = scores_files
    assert main(["finetune", "--config", CLASSIFICATION, "--workdir", str(tmp_path),
                 f"--config.init_from={pretrained_dir}", f"--config.data.train_file={train}",
                 f"--config.data.dev_file={dev}", "--config.data.label_column=score",
                 "--config.data.task_type=regression", *FAST,
                 # FAST's 120 steps learn the scores from most starts, not from all.
                 "--config.num_train_steps=240"]) == 0
    results = json.loads((tmp_path / "eval_results.json").read_text())
    assert results["best"]["pearson"] >= 0.8, results
    first = json.loads((tmp_path / "dev_predictions.jsonl").read_text().splitlines()[0])
    assert set(first) == {"guid", "dev_set", "score", "gold"}


def test_a_tiny_model_learns_multiple_choice_in_the_race_layout(tmp_path, pretrained_dir, race_dir):
    assert main(["finetune", "--config", "finetune/race.py", "--workdir", str(tmp_path),
                 f"--config.init_from={pretrained_dir}", f"--config.data_dir={race_dir}",
                 "--config.data.max_qa_length=16", *FAST]) == 0
    results = json.loads((tmp_path / "eval_results.json").read_text())
    assert results["best"]["accuracy"] >= 0.7, results  # chance: 0.25
    first = json.loads((tmp_path / "dev_predictions.jsonl").read_text().splitlines()[0])
    assert first["answer"] in "ABCD" and len(first["probabilities"]) == 4


def test_a_tiny_model_learns_tagging_in_the_conll_format(tmp_path, pretrained_dir, conll_files):
    train, dev = conll_files
    assert main(["finetune", "--config", "finetune/tagging.py", "--workdir", str(tmp_path),
                 f"--config.init_from={pretrained_dir}", f"--config.data.train_file={train}",
                 f"--config.data.dev_file={dev}", *FAST]) == 0
    results = json.loads((tmp_path / "eval_results.json").read_text())
    assert results["best"]["f1"] >= 0.8, results
    first = json.loads((tmp_path / "dev_predictions.jsonl").read_text().splitlines()[0])
    assert len(first["tags"]) == len(first["words"]) == len(first["gold"])
    assert main(["predict", "--workdir", str(tmp_path), "--input", str(dev),
                 "--output", str(tmp_path / "tags.jsonl")]) == 0
    predicted = [json.loads(line) for line in (tmp_path / "tags.jsonl").read_text().splitlines()]
    assert predicted[0]["words"] == first["words"] and len(predicted[0]["tags"]) == len(first["words"])


def test_predict_writes_labels_and_probabilities(sentiment_run, tmp_path):
    inputs = tmp_path / "inputs.tsv"
    inputs.write_text("sentence\nthe cat sat on a good mat\nthe dog ran on an awful road\n")
    assert main(["predict", "--workdir", str(sentiment_run), "--input", str(inputs),
                 "--output", str(tmp_path / "out.jsonl")]) == 0
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["label"] for r in records] == ["pos", "neg"]
    assert main(["predict", "--workdir", str(sentiment_run), "--input", str(inputs),
                 "--output", str(tmp_path / "out.tsv"), "--format", "tsv"]) == 0
    assert (tmp_path / "out.tsv").read_text().splitlines()[1:] == ["test-0\tpos", "test-1\tneg"]


def test_glue_from_the_glue_folder_layout_to_a_submission_file(tmp_path, pretrained_dir, sentiment_files):
    glue = tmp_path / "glue" / "SST-2"
    glue.mkdir(parents=True)
    for name, path in zip(("train", "dev"), sentiment_files):
        rows = [line.split("\t") for line in path.read_text().splitlines()[1:]]
        glue.joinpath(f"{name}.tsv").write_text(
            "sentence\tlabel\n" + "".join(f"{text}\t{int(label == 'pos')}\n" for text, label in rows))
    glue.joinpath("test.tsv").write_text("index\tsentence\n0\tthe cat sat on a good mat\n1\tthe dog ran on an awful road\n")
    workdir = tmp_path / "run"
    assert main(["finetune", "--config", "finetune/glue.py:SST-2", "--workdir", str(workdir),
                 f"--config.init_from={pretrained_dir}", f"--config.data_dir={tmp_path / 'glue'}", *FAST]) == 0
    results = json.loads((workdir / "eval_results.json").read_text())
    assert results["best"]["accuracy"] >= 0.9, results
    assert main(["predict", "--workdir", str(workdir), "--input", str(glue / "test.tsv"),
                 "--output", str(tmp_path / "SST-2.tsv"), "--format", "glue"]) == 0
    assert (tmp_path / "SST-2.tsv").read_text().splitlines() == ["index\tprediction", "0\t1", "1\t0"]


def test_seeds_run_one_fine_tuning_each_and_report_the_median(tmp_path, pretrained_dir, sentiment_files):
    train, dev = sentiment_files
    short = [arg for arg in FAST if "num_train_steps" not in arg and "eval_every" not in arg]
    assert main(["finetune", "--config", CLASSIFICATION, "--workdir", str(tmp_path),
                 f"--config.init_from={pretrained_dir}", f"--config.data.train_file={train}",
                 f"--config.data.dev_file={dev}", "--config.data.text_column=sentence", *short,
                 "--config.num_train_steps=20", "--config.eval_every_steps=10", "--config.seeds=3,7"]) == 0
    per_seed = {seed: json.loads((tmp_path / f"seed_{seed}" / "eval_results.json").read_text()) for seed in (3, 7)}
    summary = json.loads((tmp_path / "eval_results.json").read_text())
    assert summary["seeds"] == {str(seed): results for seed, results in per_seed.items()}
    accuracies = [results["best"]["accuracy"] for results in per_seed.values()]
    assert summary["median"]["accuracy"] == pytest.approx(np.median(accuracies))
    assert "median over seeds 3, 7" in summary["protocol"]
    train_configs = [json.loads((tmp_path / f"seed_{seed}" / "train_config.json").read_text()) for seed in (3, 7)]
    assert [c["seed"] for c in train_configs] == [3, 7]
