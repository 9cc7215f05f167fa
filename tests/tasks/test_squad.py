"""SQuAD: reading, windows, labels and offsets, decoding and the null threshold, parity of both
heads with transformers, bad input, and a tiny model that learns toy SQuAD with either head."""

from __future__ import annotations

import json
import logging
import os
import random
import re
from pathlib import Path
from unittest import mock

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from albert_jax.cli import main
from albert_jax.tasks import squad_metrics
from albert_jax.tasks.squad import decoding, features
from albert_jax.tasks.squad.reader import SquadExample, SquadFilesReader, SquadTfdsReader, read_squad_file
from tests.tasks.conftest import FILLER, NEGATIVE, POSITIVE
from tests.tasks.test_finetune_bad_input import fails_cleanly

# In-process commands compile through the session's cache (not the user's albert_jax cache).
pytestmark = pytest.mark.usefixtures("in_process_cache")
SQUAD = "finetune/squad.py"
# One length bucket (one compiled step) of windows of 12 context tokens, 6 apart: most contexts
# of the toy task span several windows. Its question is always the same, so 1 token of it does.
FAST = ["--config.learning_rate=2e-3", "--config.warmup_steps=10", "--config.global_batch_size=16",
        "--config.num_train_steps=100", "--config.eval_every_steps=50", "--config.log_every_steps=50",
        "--config.checkpoint_every_steps=100", "--config.seq_length=16", "--config.data.doc_stride=6",
        "--config.data.max_query_length=1"]
QUESTION = "the bad one"


# -- toy SQuAD: the answer is a "bad" word and the "good" word after it -------------------------


def toy_paragraph(rng: random.Random, qid: str, answerable: bool, words: int) -> dict:
    context = [rng.choice(FILLER) for _ in range(words)]
    qa = {"id": qid, "question": QUESTION, "answers": [], "is_impossible": not answerable}
    if answerable:
        answer = f"{rng.choice(NEGATIVE)} {rng.choice(POSITIVE)}"
        at = rng.randint(0, len(context))
        start = len(" ".join(context[:at])) + (at > 0)
        context.insert(at, answer)
        qa["answers"] = [{"text": answer, "answer_start": start}]
    return {"context": " ".join(context), "qas": [qa]}


def write_squad(path: Path, paragraphs: list[dict], version: str) -> Path:
    path.write_text(json.dumps({"version": version, "data": [{"title": "toy", "paragraphs": paragraphs}]}))
    return path


@pytest.fixture(scope="module")
def squad_files(tmp_path_factory) -> dict[str, Path]:
    """train/dev files of toy SQuAD 1.1 and 2.0 (40% unanswerable), contexts of 4 to 30 words."""
    root = tmp_path_factory.mktemp("squad")
    files = {}
    for version in ("v1.1", "v2.0"):
        rng = random.Random(version)
        for split, count in (("train", 300), ("dev", 60)):
            paragraphs = [toy_paragraph(rng, f"{split}-{i}", version == "v1.1" or rng.random() < 0.6,
                                        rng.randint(4, 30)) for i in range(count)]
            files[f"{split}-{version}"] = write_squad(root / f"{split}-{version}.json", paragraphs, version)
    return files


@pytest.fixture(scope="module")
def tokenizer(pretrained_dir):
    from albert_jax import AlbertTokenizer

    return AlbertTokenizer.from_pretrained(pretrained_dir)


def squad_args(pretrained_dir, squad_files, version, head="simple"):
    return ["--config", f"{SQUAD}:{version}", f"--config.init_from={pretrained_dir}",
            f"--config.data.train_file={squad_files['train-' + version]}",
            f"--config.data.dev_file={squad_files['dev-' + version]}", f"--config.head={head}"]


# -- reading -------------------------------------------------------------------------------------


def test_questions_in_file_order_with_training_spans(squad_files):
    train = SquadFilesReader("2.0", train_file=squad_files["train-v2.0"]).read("train")
    assert [e.qid for e in train[:3]] == ["train-0", "train-1", "train-2"]
    for example in train:
        if example.answers:
            start, end = example.answer_span
            assert example.context[start:end] == example.answers[0]
        else:
            assert example.answer_span is None
    dev = SquadFilesReader("2.0", train_file=squad_files["train-v2.0"], dev_file=squad_files["dev-v2.0"]).read("dev")
    assert all(e.answer_span is None for e in dev) and any(e.answers for e in dev)


def test_tfds_squad_gives_the_same_questions_as_its_files(tmp_path, squad_files):
    import tensorflow_datasets as tfds
    from etils import epath
    from tensorflow_datasets.datasets.squad import squad_dataset_builder

    source = tmp_path / "downloads"
    source.mkdir()
    for split in ("train", "dev"):
        (source / f"{split}-v2.0.json").write_text(squad_files[f"{split}-v2.0"].read_text())

    class Local(squad_dataset_builder.Builder, skip_registration=True):
        code_path = None  # skips the checksum lookup tfds 4.9.10 cannot do on Python 3.11

    Local.name = "squad"

    def download(self, urls):
        return {split: epath.Path(source) / os.path.basename(url) for split, url in urls.items()}

    with mock.patch.object(tfds.download.DownloadManager, "download_and_extract", download):
        Local(config="v2.0", data_dir=tmp_path / "tfds", file_format="array_record").download_and_prepare()
    files = SquadFilesReader("2.0", train_file=source / "train-v2.0.json", dev_file=source / "dev-v2.0.json")
    reader = SquadTfdsReader("2.0", data_dir=tmp_path / "tfds")
    for split in ("train", "dev"):
        by_id = {e.qid: e for e in reader.read(split)}  # tfds stores them in its own order
        assert [by_id[e.qid] for e in files.read(split)] == files.read(split)


def test_prediction_input_needs_no_answers(tmp_path):
    path = write_squad(tmp_path / "in.json", [{"context": "a b", "qas": [{"id": "q", "question": "?"}]}], "1.1")
    assert read_squad_file(path, "1.1", mode="predict") == [SquadExample("q", "?", "a b", ())]


def squad_file(tmp_path, qas, context="the cat sat on a good mat", version="v1.1"):
    return write_squad(tmp_path / "bad.json", [{"context": context, "qas": qas}], version)


ANSWER = {"text": "good mat", "answer_start": 17}


@pytest.mark.parametrize("qas,version,message", [
    ([{"id": "q1", "question": "what?", "answers": []}], "v1.1",
     "question 'q1' has no answer, which SQuAD 1.1 does not allow"),
    ([{"id": "q1", "question": "what?", "answers": [{"text": "good mat", "answer_start": 16}]}], "v1.1",
     "question 'q1': the answer 'good mat' is not at answer_start 16 of the context, which has ' good ma' there"),
    ([{"id": "q1", "question": "what?", "answers": [ANSWER]}, {"id": "q1", "question": "who?", "answers": [ANSWER]}],
     "v1.1", "question id 'q1' appears twice (again at data[0].paragraphs[0].qas[1])"),
    ([{"id": "q1", "question": "what?", "answers": [ANSWER], "is_impossible": True}], "v2.0",
     "question 'q1' is marked is_impossible but has 1 answer(s)"),
])
def test_bad_training_data_is_one_line_naming_the_question(capsys, tmp_path, pretrained_dir, squad_files,
                                                           qas, version, message):
    bad = squad_file(tmp_path, qas, version=version)
    args = squad_args(pretrained_dir, squad_files, version)
    fails_cleanly(capsys, tmp_path / "run", [*args, f"--config.data.train_file={bad}"], message)


def test_bad_decoding_settings(capsys, tmp_path, pretrained_dir, squad_files):
    args = squad_args(pretrained_dir, squad_files, "v2.0")
    fails_cleanly(capsys, tmp_path / "run", [*args, "--config.decoding.null_threshold=maybe"],
                  "decoding.null_threshold 'maybe': give 'tune' or a finite number")
    fails_cleanly(capsys, tmp_path / "run", [*args, "--config.head=xlnet"], "head 'xlnet': choose simple or albert_v2")
    fails_cleanly(capsys, tmp_path / "run", [*args, "--config.seq_length=64", "--config.data.max_query_length=61"],
                  "seq_length 64 leaves no room for the context")
    fails_cleanly(capsys, tmp_path / "run", [*args, "--config.data.train_file="],
                  "data.dev_file is set but data.train_file is not")


# -- windows, labels, offsets --------------------------------------------------------------------


def original_max_context(windows, w, position):
    """The original's _check_is_max_context, transcribed."""
    best_score, best = None, None
    for index, (start, length) in enumerate(windows):
        end = start + length - 1
        if start <= position <= end:
            score = min(position - start, end - position) + 0.01 * length
            if best_score is None or score > best_score:
                best_score, best = score, index
    return best == w


@pytest.mark.parametrize("tokens,room,stride", [(20, 7, 3), (30, 8, 8), (9, 9, 2), (25, 6, 10), (0, 5, 2)])
def test_windows_step_by_doc_stride_and_score_each_token_once(tokens, room, stride):
    windows = features.window_starts(tokens, room, stride)
    assert windows[0][0] == 0 and windows[-1][0] + windows[-1][1] == tokens
    # doc_stride is the step between window starts, shortened only so no token is skipped.
    assert all(b[0] - a[0] == min(stride, a[1]) for a, b in zip(windows, windows[1:]))
    scored = features.max_context(windows, tokens)
    for w, (start, length) in enumerate(windows):
        assert list(scored[w]) == [original_max_context(windows, w, start + i) for i in range(length)]
    assert sorted(start + i for (start, _), s in zip(windows, scored) for i in np.flatnonzero(s)) == list(range(tokens))


def test_windows_without_the_answer_are_labelled_with_cls(tokenizer):
    context = " ".join(["cat"] * 20 + ["bad", "good"] + ["dog"] * 5)
    start = context.index("bad")
    examples = [SquadExample("a", QUESTION, context, ("bad good",), (start, start + 8)),
                SquadExample("b", QUESTION, context, ())]
    made = features.make_features(tokenizer, examples, max_length=16, max_query_length=8, doc_stride=4)
    encoded, windows = made.encoded, made.windows
    for w, window in enumerate(windows):
        first, last = encoded.values["start_positions"][w], encoded.values["end_positions"][w]
        if window.question == 1 or encoded.values["is_impossible"][w]:
            assert (first, last, encoded.values["is_impossible"][w]) == (0, 0, 1)
            continue
        start, end = made.char_span(w, first, last)
        assert context[start:end] == "bad good"
        assert encoded.tokens["token_type_ids"][w][first] == 1
    holding = [w for w, window in enumerate(windows) if window.question == 0 and not encoded.values["is_impossible"][w]]
    assert 1 <= len(holding) < len([w for w in windows if w.question == 0])


ACCENTED = "Ça   fait  très   bien,\tl’été à  Zürich  —  naïve   café."


def test_answers_map_to_the_exact_characters_of_accented_and_spaced_text(tokenizer):
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", ACCENTED)]
    examples = [SquadExample(str(i), "where", ACCENTED, (ACCENTED[a:b],), (a, b)) for i, (a, b) in enumerate(words)]
    made = features.make_features(tokenizer, examples, max_length=64, max_query_length=8, doc_stride=16)
    assert len(made.windows) == len(examples)  # one window each: every answer aligned
    for w, window in enumerate(made.windows):
        first, last = made.encoded.values["start_positions"][w], made.encoded.values["end_positions"][w]
        start, end = made.char_span(w, first, last)
        assert ACCENTED[start:end] == examples[window.question].answers[0]


def test_an_answer_no_token_covers_is_reported_not_dropped_silently(tokenizer, caplog):
    context = "the cat   sat"
    examples = [SquadExample("white-space", QUESTION, context, (" ",), (8, 9)),
                SquadExample("fine", QUESTION, context, ("cat",), (4, 7))]
    with caplog.at_level(logging.WARNING, logger="albert_jax"):
        made = features.make_features(tokenizer, examples, max_length=32, max_query_length=8, doc_stride=8)
    assert "1 of 2 training questions have an answer that no token of the context covers" in caplog.text
    assert "'white-space'" in caplog.text
    assert {window.question for window in made.windows} == {1}


# -- decoding --------------------------------------------------------------------------------------


def window(question, offset, doc_start, scored):
    return features.Window(question, offset, doc_start, np.asarray(scored, bool))


def test_simple_spans_respect_max_context_order_and_length():
    w = window(0, 2, 0, [1, 0, 1, 1, 1])  # context at positions 2..6; position 3 is scored elsewhere
    start = np.array([9, 9, 1, 8, 0, 3, 2, 0], float)  # CLS and the question score high: never chosen
    end = np.array([9, 9, 0, 1, 5, 2, 4, 9], float)
    spans = decoding.simple_spans(w, start, end, n_best_size=20, max_answer_length=2)
    assert {(s.start, s.end) for s in spans} == {(2, 2), (2, 3), (4, 4), (4, 5), (5, 5), (5, 6), (6, 6)}
    best = max(spans, key=lambda s: s.score)
    assert (best.start, best.end, best.score) == (5, 6, 7.0)
    # The best 2 starts (5, 6) times the best 2 ends (4, 6), of those allowed.
    spans = decoding.simple_spans(w, start, end, n_best_size=2, max_answer_length=2)
    assert {(s.start, s.end) for s in spans} == {(5, 6), (6, 6)}


def test_a_question_is_answered_from_the_window_with_the_best_span():
    context = "zero one two three four five six seven"
    spans = np.array([[m.start(), m.end()] for m in re.finditer(r"\S+", context)])
    made = features.Features([window(0, 3, 0, [1, 1, 1, 1, 0]), window(0, 3, 3, [0, 1, 1, 1, 1])],
                             [spans], encoded=None)
    per_window = [[decoding.Span(4, 5, 1.0, 1.0)], [decoding.Span(5, 6, 2.0, 1.5), decoding.Span(4, 4, 0.5, 0.5)]]
    example = SquadExample("q", QUESTION, context, ())
    [simple] = decoding.best_answers([example], made, per_window, np.array([0.5, 1.0]), n_best_size=20,
                                     score_names=("start_logit", "end_logit"), null_minus_best=True)
    assert simple.text == "five six"  # window 1, positions 5-6: context tokens 5 and 6
    assert [e["text"] for e in simple.nbest] == ["five six", "one two", "four"]
    assert simple.null_score == pytest.approx(0.5 - 3.5)  # the smallest null less the best span
    assert sum(e["probability"] for e in simple.nbest) == pytest.approx(1.0)
    [beam] = decoding.best_answers([example], made, per_window, np.array([0.5, 1.0]), n_best_size=1,
                                   score_names=("start_log_prob", "end_log_prob"), null_minus_best=False)
    assert (beam.null_score, len(beam.nbest), beam.nbest[0]["end_log_prob"]) == (0.5, 1, 1.5)


@pytest.mark.parametrize("answerable", [0.8, 0.0])
def test_the_tuned_threshold_gives_the_best_f1(answerable):
    rng = np.random.default_rng(0)
    answers, predictions = {}, []
    for i in range(40):
        qid = f"q{i}"
        answers[qid] = ("red car",) if rng.random() < answerable else ()
        text = "red car" if rng.random() < 0.7 else "blue sky"
        predictions.append(decoding.Prediction(qid, text, [], float(rng.normal() - 2.0)))  # all negative
    gold = squad_metrics.SquadDataset("toy", "2.0", answers)
    threshold = decoding.tune_threshold(gold, predictions)
    at_threshold = squad_metrics.evaluate(gold, decoding.answered(predictions, threshold))
    null_scores = {p.qid: p.null_score for p in predictions}
    best = squad_metrics.evaluate(gold, decoding.answered(predictions, None), null_scores)["best_f1"]
    assert at_threshold["f1"] == pytest.approx(best)
    if not answerable:  # answering nothing is best, below every (negative) score
        assert at_threshold["f1"] == 100.0 and threshold < min(null_scores.values())


# -- parity with transformers ------------------------------------------------------------------------


def test_the_simple_heads_loss_and_gradients_equal_transformers(tmp_path, pretrained_dir, squad_files, tokenizer):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from albert_jax import AlbertForQuestionAnswering
    from albert_jax.model.pretrained import params_to_hf
    from albert_jax.tasks.registry import resolve
    from albert_jax.train import config as config_lib
    from tests.model.reference import hf_config, randomize

    reference = randomize(transformers.AlbertForQuestionAnswering(
        hf_config(vocab_size=tokenizer.vocab_size, max_position_embeddings=64, num_labels=2,
                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)), seed=4)
    reference.save_pretrained(tmp_path / "hf")
    config = config_lib.load_config(f"{SQUAD}:v2.0", [
        *squad_args(tmp_path / "hf", squad_files, "v2.0")[2:], f"--config.tokenizer={pretrained_dir / 'spiece.model'}",
        "--config.seq_length=32", "--config.data.doc_stride=8", "--config.data.max_query_length=8"])
    task = resolve(config).task
    encoded = task.encode(tokenizer, task.train[:6])
    assert encoded.values["is_impossible"].min() == 0 and encoded.values["is_impossible"].max() == 1
    batch = encoded.batch(np.array([0, 1, 2, 3, 4, 5, -1]), 32)  # the last row pads the batch

    model = AlbertForQuestionAnswering.from_pretrained(tmp_path / "hf")
    model.eval()
    jax_batch = {k: jnp.asarray(v) for k, v in batch.items()}
    loss, grads = nnx.jit(nnx.value_and_grad(
        lambda m: task.loss(task.sums(m, jax_batch, None), task.normalisers(jax_batch))))(model)

    real = {k: torch.from_numpy(v[:6].astype(np.int64)) for k, v in batch.items()}
    theirs = reference(input_ids=real["input_ids"], attention_mask=real["attention_mask"],
                       token_type_ids=real["token_type_ids"], start_positions=real["start_positions"],
                       end_positions=real["end_positions"]).loss
    theirs.backward()
    assert abs(float(loss) - theirs.item()) < 1e-5
    ours = params_to_hf({path: np.asarray(v.get_value()) for path, v in nnx.to_flat_state(grads)}, model.config)
    compared = 0
    for name, param in reference.named_parameters():
        ours_grad = ours[name]
        if name == "albert.embeddings.word_embeddings.weight":
            # torch never trains an embedding's padding_idx row (transformers sets it to <pad>).
            ours_grad = ours_grad.copy()
            ours_grad[tokenizer.pad_token_id] = 0
        difference = np.max(np.abs(ours_grad - param.grad.numpy()))
        assert difference < 1e-5, f"{name}: {difference}"
        compared += 1
    assert compared > 10


def test_the_v2_head_equals_transformers_xlnet_poolers():
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from transformers import XLNetConfig
    from transformers.models.xlnet import modeling_xlnet as xlnet

    from albert_jax.model import AlbertConfig, AlbertForSquadV2

    config = AlbertConfig.preset("tiny", classifier_dropout_prob=0.0)
    model = AlbertForSquadV2(config, rngs=nnx.Rngs(0))
    model.eval()
    rng = np.random.default_rng(0)
    reference = {"start_logits": xlnet.XLNetPoolerStartLogits, "end_logits": xlnet.XLNetPoolerEndLogits,
                 "answer_class": xlnet.XLNetPoolerAnswerClass}
    reference = {name: cls(XLNetConfig(d_model=config.hidden_size, layer_norm_eps=config.layer_norm_eps))
                 for name, cls in reference.items()}
    with torch.no_grad():  # the same random weights on both sides (no zero biases to hide behind)
        for name, module in reference.items():
            for layer_name, layer in module.named_children():
                if not hasattr(layer, "weight"):  # the activation
                    continue
                ours = getattr(getattr(model, name), layer_name)
                weight = rng.normal(0, 0.3, tuple(layer.weight.shape)).astype(np.float32)
                layer.weight.copy_(torch.from_numpy(weight))
                bias = (rng.normal(0, 0.3, tuple(layer.bias.shape)).astype(np.float32) if layer.bias is not None
                        else np.zeros(1, np.float32))
                if layer.bias is not None:
                    layer.bias.copy_(torch.from_numpy(bias))
                if isinstance(layer, torch.nn.LayerNorm):
                    ours.scale[...], ours.bias[...] = weight, bias
                else:
                    ours.kernel[...], ours.bias[...] = weight.T, bias
    ids = rng.integers(5, config.vocab_size, (3, 12)).astype(np.int32)
    types = (np.arange(12) >= 5).astype(np.int32)[None].repeat(3, 0)
    p_mask = np.ones((3, 12), bool)
    p_mask[:, 0] = p_mask[:, 5:11] = False
    start_positions = np.array([6, 0, 9])

    @nnx.jit
    def run(model):  # one compiled program: eager runs of the encoder are slow
        return (model.albert(ids, token_type_ids=types).last_hidden_state,
                model(ids, token_type_ids=types, p_mask=p_mask, start_positions=start_positions),
                model(ids, token_type_ids=types, p_mask=p_mask, start_n_top=3, end_n_top=2))

    hidden, trained, beam = run(model)
    hidden = torch.from_numpy(np.array(hidden))
    mask = torch.from_numpy(p_mask.astype(np.float32))

    def close(ours, theirs, where, keep=None):
        difference = np.abs(np.asarray(ours) - theirs.detach().numpy())
        assert np.max(difference if keep is None else difference[keep]) < 1e-5, where

    start_logits = reference["start_logits"](hidden, p_mask=mask)
    pooled = torch.einsum("blh,bl->bh", hidden, torch.softmax(start_logits, -1))
    cls_logits = reference["answer_class"](hidden, start_states=pooled, cls_index=torch.zeros(3, dtype=torch.long))
    close(trained.start_log_probs, torch.log_softmax(start_logits, -1), "start", keep=~p_mask)
    end_logits = reference["end_logits"](hidden, start_positions=torch.from_numpy(start_positions), p_mask=mask)
    close(trained.end_log_probs, torch.log_softmax(end_logits, -1), "end given the gold start", keep=~p_mask)
    close(trained.cls_logits, cls_logits, "answerability")

    top_start, top_start_index = torch.topk(torch.log_softmax(start_logits, -1), 3)
    assert np.array_equal(np.asarray(beam.start_top_index), top_start_index.numpy())
    close(beam.start_top_log_probs, top_start, "start beam")
    for i in range(3):
        ends = reference["end_logits"](hidden, start_positions=top_start_index[:, i], p_mask=mask)
        top_end, top_end_index = torch.topk(torch.log_softmax(ends, -1), 2)
        assert np.array_equal(np.asarray(beam.end_top_index)[:, 2 * i:2 * i + 2], top_end_index.numpy())
        close(np.asarray(beam.end_top_log_probs)[:, 2 * i:2 * i + 2], top_end, f"end beam of start {i}")
    close(beam.cls_logits, cls_logits, "answerability at inference")


# -- a tiny model learns toy SQuAD ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def simple_v1_run(tmp_path_factory, pretrained_dir, squad_files):
    workdir = tmp_path_factory.mktemp("squad_v1_simple")
    assert main(["finetune", "--workdir", str(workdir), *squad_args(pretrained_dir, squad_files, "v1.1"), *FAST]) == 0
    return workdir


def test_the_simple_head_learns_squad_v1(simple_v1_run, squad_files):
    results = json.loads((simple_v1_run / "eval_results.json").read_text())
    assert results["best"]["f1"] >= 80 and results["best"]["exact_match"] >= 70, results
    assert "highest dev f1" in results["selection"]
    predictions = json.loads((simple_v1_run / "predictions.json").read_text())
    gold = squad_metrics.read_dataset(str(squad_files["dev-v1.1"]))
    assert squad_metrics.evaluate(gold, predictions)["f1"] == pytest.approx(results["best"]["f1"])
    nbest = json.loads((simple_v1_run / "nbest_predictions.json").read_text())
    assert set(nbest) == set(predictions) and not (simple_v1_run / "null_odds.json").exists()
    first = nbest["dev-0"]
    assert first[0]["text"] == predictions["dev-0"]
    assert set(first[0]) == {"text", "probability", "start_logit", "end_logit"}
    assert len(first) <= 20 and len({entry["text"] for entry in first}) == len(first)


def test_a_long_context_is_answered_from_the_right_window(simple_v1_run, tmp_path):
    rng = random.Random(7)
    paragraphs = [toy_paragraph(rng, f"long-{i}", True, 40) for i in range(20)]
    inputs = write_squad(tmp_path / "long.json", paragraphs, "1.1")
    assert main(["predict", "--workdir", str(simple_v1_run), "--input", str(inputs),
                 "--output", str(tmp_path / "out.jsonl")]) == 0
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    right = [r["answer"] == p["qas"][0]["answers"][0]["text"] for r, p in zip(records, paragraphs)]
    assert sum(right) >= 16, records  # 40 words: 5+ windows each, most without the answer


def test_the_best_simple_model_loads_in_transformers(simple_v1_run):
    transformers = pytest.importorskip("transformers")
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(simple_v1_run / "best")
    tokenizer = transformers.AlbertTokenizer.from_pretrained(simple_v1_run / "best")
    inputs = tokenizer(QUESTION, "the cat sat on a poor great mat", return_tensors="pt")
    out = model(**inputs)
    tokens = inputs["input_ids"][0, out.start_logits.argmax():out.end_logits.argmax() + 1]
    assert tokenizer.decode(tokens) == "poor great"


def test_the_albert_v2_head_learns_squad_v2(tmp_path, pretrained_dir, squad_files):
    assert main(["finetune", "--workdir", str(tmp_path), *squad_args(pretrained_dir, squad_files, "v2.0", "albert_v2"),
                 *FAST]) == 0
    results = json.loads((tmp_path / "eval_results.json").read_text())
    best = results["best"]
    assert best["f1"] >= 80 and best["HasAns_f1"] >= 70 and best["NoAns_f1"] >= 70, results
    assert best["null_threshold_tuned"] == 1.0 and best["f1"] == best["best_f1"]
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any("answerability_accuracy" in r for r in records)
    # The official evaluation of the written files at the threshold used gives the same numbers.
    null_odds = json.loads((tmp_path / "null_odds.json").read_text())
    predictions = json.loads((tmp_path / "predictions.json").read_text())
    assert set(null_odds) == set(predictions)
    gold = squad_metrics.read_dataset(str(squad_files["dev-v2.0"]))
    official = squad_metrics.evaluate(gold, predictions, null_odds, best["null_threshold"])
    assert official["f1"] == pytest.approx(best["f1"]) and official["exact"] == pytest.approx(best["exact"])
    first = json.loads((tmp_path / "nbest_predictions.json").read_text())["dev-0"][0]
    assert set(first) == {"text", "probability", "start_log_prob", "end_log_prob"}
    # predict reuses the tuned threshold of the best checkpoint: the same answers again.
    assert main(["predict", "--workdir", str(tmp_path), "--input", str(squad_files["dev-v2.0"]),
                 "--output", str(tmp_path / "out.jsonl")]) == 0
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["guid"] for r in records] == list(predictions)
    assert np.allclose([r["null_odds"] for r in records], [null_odds[r["guid"]] for r in records], atol=1e-4)
    # Only a question whose score is the threshold itself might fall on the other side.
    assert sum(r["answer"] != predictions[r["guid"]] for r in records) <= 1
