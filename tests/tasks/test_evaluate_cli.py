"""`albert-jax evaluate glue|squad`: file formats, one JSON line out, one-line errors with exit 2."""

from __future__ import annotations

import json
import re

import pytest

import albert_jax.cli


@pytest.fixture(autouse=True)
def evaluate_command_only(monkeypatch):
    """The parser with this package's commands alone, whatever other packages register."""
    monkeypatch.setattr(albert_jax.cli, "_COMMAND_MODULES", ("albert_jax.tasks.cli",))


def _main(*argv: object) -> int:
    return albert_jax.cli.main([str(arg) for arg in argv])


def _metrics(capsys) -> dict:
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out
    return json.loads(out)


def _error(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("albert-jax evaluate: error: "), captured.err
    return lines[0]


@pytest.fixture
def write(tmp_path):
    def write(name: str, text: str) -> str:
        (tmp_path / name).write_text(text, encoding="utf-8")
        return str(tmp_path / name)

    return write


@pytest.mark.parametrize("command", [["evaluate"], ["evaluate", "glue"], ["evaluate", "squad"]])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        _main(*command, "--help")
    assert exit_.value.code == 0
    assert f"usage: albert-jax {' '.join(command)}" in capsys.readouterr().out


def _tsv(*rows: list[str]) -> str:
    return "".join("\t".join(row) + "\n" for row in rows)


def _jsonl(*records: dict) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


# tp=2, fn=1, fp=1, tn=1: accuracy 3/5, F1 2/3, MCC 1/6.
GOLD, PREDICTED = ["1", "1", "0", "0", "1"], ["1", "0", "0", "1", "1"]


def test_mrpc_dev_tsv_with_bom_and_submission_tsv(write, capsys):
    dev = "\ufeff" + _tsv(
        ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
        *[[label, "1", "2", 'a "quoted', "b"] for label in GOLD],
    )
    submission = _tsv(["index", "prediction"], *[[str(i), p] for i, p in enumerate(PREDICTED)])
    assert _main("evaluate", "glue", "MRPC", write("dev.tsv", dev), write("MRPC.tsv", submission)) == 0
    assert _metrics(capsys) == pytest.approx({"f1": 2 / 3, "accuracy": 3 / 5})


def test_cola_dev_tsv_has_no_header(write, capsys):
    dev = _tsv(*[["gj04", label, "", "A sentence."] for label in GOLD])
    predictions = _jsonl(*[{"label": int(p)} for p in PREDICTED])
    assert _main("evaluate", "glue", "cola", write("dev.tsv", dev), write("p.jsonl", predictions)) == 0
    assert _metrics(capsys) == pytest.approx({"mcc": 1 / 6})


def test_mnli_matched_and_mismatched_label_names_and_ids(write, capsys):
    header = ["index", "promptID", "pairID", "genre", "s1bp", "s2bp", "s1p", "s2p", "sentence1", "sentence2"]
    header += [f"label{i}" for i in range(1, 6)] + ["gold_label"]
    gold = ["entailment", "neutral", "contradiction", "neutral"]
    dev = write("dev_mismatched.tsv", _tsv(header, *[[str(i)] + ["x"] * 14 + [g] for i, g in enumerate(gold)]))
    # Names and indices into (contradiction, entailment, neutral) mix freely.
    predictions = write("p.jsonl", _jsonl(*[{"label": p} for p in ["entailment", 2, "2", 1]]))
    for mismatched in ("mnli-mm", "MNLI-MM"):
        assert _main("evaluate", "glue", mismatched, dev, predictions) == 0
        assert _metrics(capsys) == {"accuracy_mm": 0.5}
    assert _main("evaluate", "glue", "MNLI", dev, predictions) == 0
    assert _metrics(capsys) == {"accuracy": 0.5}


def test_stsb_scores_and_jsonl_labels_with_ids(write, capsys):
    # Ids may hold line separators other than newline.
    labels = write("gold.jsonl", _jsonl(*[{"id": f"{i}\u2028", "label": s} for i, s in enumerate([1, 2, 3, 4])]))
    predicted = ["1.0", 3, 2.0, 4]
    predictions = write("p.jsonl", _jsonl(*[{"id": f"{i}\u2028", "label": s} for i, s in enumerate(predicted)]))
    for task in ("sts-b", "STS-B", "stsb"):
        assert _main("evaluate", "glue", task, labels, predictions) == 0
        assert _metrics(capsys) == pytest.approx({"pearson": 0.8, "spearman": 0.8})


def test_qnli_dev_tsv_with_crlf_and_odd_line_separators(write, capsys):
    gold = ["entailment", "not_entailment", "entailment"]
    rows = [[str(i), "q\u2028?", "s\x0c", g] for i, g in enumerate(gold)]
    dev = write("dev.tsv", _tsv(["index", "question", "sentence", "label"], *rows).replace("\n", "\r\n"))
    submission = write(
        "QNLI.tsv", _tsv(["index", "prediction"], ["0", "entailment"], ["1", "entailment"], ["2", "entailment"])
    )
    assert _main("evaluate", "glue", "qnli", dev, submission) == 0
    assert _metrics(capsys) == pytest.approx({"accuracy": 2 / 3})


@pytest.mark.parametrize(
    ("task", "labels", "predictions", "message"),
    [
        (
            "rte",
            ("gold.jsonl", '{"label": 0}\n{"label": 1}\n'),
            ("p.jsonl", '{"label": 0}\n'),
            r"gold.jsonl has 2 labels but \S*p.jsonl has 1 predictions",
        ),
        (
            "rte",
            ("gold.jsonl", '{"label": "yes"}\n'),
            ("p.jsonl", '{"label": 0}\n'),
            r"gold.jsonl:1: 'yes' is not a rte label \(entailment, not_entailment\) or a class id 0..1",
        ),
        (
            "rte",
            ("gold.jsonl", '\n{"label": 0}\n{"label": 2}\n'),
            ("p.jsonl", '{"label": 0}\n{"label": 0}\n'),
            r"gold.jsonl:3: 2 is not a rte label",
        ),
        (
            "rte",
            ("gold.jsonl", '{"label": 0}\n[1]\n'),
            ("p.jsonl", "{}"),
            r'gold.jsonl:2 is not a JSON object with a "label"',
        ),
        ("rte", ("gold.jsonl", '{"label": 0}\n{"label": 0\n'), ("p.jsonl", "{}"), r"gold.jsonl:2 is not JSON"),
        ("rte", ("gold.jsonl", ""), ("p.jsonl", "{}"), r"gold.jsonl holds no examples"),
        (
            "rte",
            ("gold.jsonl", '{"id": "a", "label": 0}\n{"id": "b", "label": 0}\n'),
            ("p.jsonl", '{"id": "a", "label": 0}\n{"id": "c", "label": 0}\n'),
            r"gold.jsonl:2 has id 'b' but \S*p.jsonl:2 has id 'c'",
        ),
        (
            "rte",
            ("gold.jsonl", '{"label": 0}\n'),
            ("p.csv", "index,prediction\n0,0\n"),
            r"p.csv: a labels or predictions file must end in .tsv or .jsonl",
        ),
        (
            "rte",
            ("gold.jsonl", '{"label": 0}\n'),
            ("p.tsv", "0\t0\n"),
            r"p.tsv must begin with the header row index<TAB>prediction",
        ),
        (
            "rte",
            ("gold.jsonl", '{"label": 0}\n'),
            ("p.tsv", "index\tprediction\n0\n"),
            r"p.tsv:2 has 1 columns, not index<TAB>prediction",
        ),
        (
            "sst-2",
            ("test.tsv", "index\tsentence\n0\tgood\n"),
            ("p.jsonl", '{"label": 0}\n'),
            r"test.tsv: the header row \(index, sentence\) has no column 'label'; expected the sst2 dev set",
        ),
        (
            "cola",
            ("dev.tsv", "gj04\t1\t\tok\ngj04\n"),
            ("p.jsonl", '{"label": 0}\n'),
            r"dev.tsv:2 has 1 columns, and the label is in column 2",
        ),
        (
            "sts-b",
            ("gold.jsonl", '{"label": "high"}\n'),
            ("p.jsonl", '{"label": 1}\n'),
            r"gold.jsonl:1: 'high' is not a finite number",
        ),
    ],
)
def test_glue_bad_input_is_one_line_exit_2(write, capsys, task, labels, predictions, message):
    assert _main("evaluate", "glue", task, write(*labels), write(*predictions)) == 2
    assert len(re.findall(message, _error(capsys))) == 1


def test_glue_missing_file_and_unknown_task(tmp_path, write, capsys):
    gold = write("gold.jsonl", '{"label": 0}\n')
    assert _main("evaluate", "glue", "rte", gold, tmp_path / "none.jsonl") == 2
    assert f"no file '{tmp_path / 'none.jsonl'}'" in _error(capsys)
    (tmp_path / "folder.jsonl").mkdir()
    assert _main("evaluate", "glue", "rte", gold, tmp_path / "folder.jsonl") == 2
    assert "folder.jsonl': Is a directory" in _error(capsys)
    (tmp_path / "binary.jsonl").write_bytes(b'{"label": 0}\n\xff\xfe{')
    assert _main("evaluate", "glue", "rte", gold, tmp_path / "binary.jsonl") == 2
    assert "binary.jsonl:2: not UTF-8 text" in _error(capsys)
    with pytest.raises(SystemExit) as exit_:
        _main("evaluate", "glue", "sst", gold, gold)
    assert exit_.value.code == 2
    assert "argument TASK: unknown GLUE task 'sst'; the tasks are cola, sst2, " in capsys.readouterr().err


@pytest.mark.parametrize("task", ["sst2", "SST-2", "sst-2", "Sst2"])
def test_glue_task_in_any_spelling(write, capsys, task):
    dev = write("dev.tsv", _tsv(["sentence", "label"], *[["a film .", label] for label in GOLD]))
    submission = write("SST-2.tsv", _tsv(["index", "prediction"], *[[str(i), p] for i, p in enumerate(PREDICTED)]))
    assert _main("evaluate", "glue", task, dev, submission) == 0
    assert _metrics(capsys) == pytest.approx({"accuracy": 3 / 5})


def test_glue_help_lists_the_canonical_names(capsys):
    with pytest.raises(SystemExit):
        _main("evaluate", "glue", "--help")
    assert "TASK: cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli (or as the GLUE folders" in capsys.readouterr().out


def _squad(version: str, *qas: dict) -> dict:
    return {"version": version, "data": [{"title": "t", "paragraphs": [{"context": "c", "qas": list(qas)}]}]}


SQUAD_V2 = _squad(
    "v2.0",
    {"id": "q1", "answers": [{"text": "Paris", "answer_start": 0}]},
    {"id": "q2", "answers": [], "is_impossible": True},
    {"id": "q3", "answers": [], "is_impossible": True},
    {"id": "q4", "answers": [{"text": "the red fox", "answer_start": 0}]},
)
SQUAD_PREDICTIONS = {"q1": "paris", "q2": "", "q3": "London", "q4": "red fox jumped"}


def test_squad_v2_with_na_probs(write, capsys):
    data = write("dev-v2.0.json", json.dumps(SQUAD_V2))
    predictions = write("predictions.json", json.dumps(SQUAD_PREDICTIONS))
    na_probs = write("na_prob.json", json.dumps({"q1": 0.1, "q2": 0.9, "q3": 0.8, "q4": 0.3}))
    assert _main("evaluate", "squad", data, predictions, "--na-prob-file", na_probs, "--na-prob-thresh", 0.5) == 0
    # Hand-computed in test_squad_metrics.test_v2_threshold_and_sweep_by_hand.
    assert _metrics(capsys) == pytest.approx(
        {
            "exact": 75.0,
            "f1": 95.0,
            "total": 4,
            "HasAns_exact": 50.0,
            "HasAns_f1": 90.0,
            "HasAns_total": 2,
            "NoAns_exact": 100.0,
            "NoAns_f1": 100.0,
            "NoAns_total": 2,
            "best_exact": 75.0,
            "best_exact_thresh": 0.1,
            "best_f1": 95.0,
            "best_f1_thresh": 0.3,
        }
    )
    assert _main("evaluate", "squad", data, predictions) == 0
    assert _metrics(capsys)["exact"] == 50.0


def test_squad_v1(write, capsys):
    dataset = _squad(
        "1.1",
        {"id": "q1", "answers": [{"text": "Paris"}, {"text": "in Paris"}]},
        {"id": "q4", "answers": [{"text": "the red fox"}]},
    )
    data = write("dev-v1.1.json", json.dumps(dataset))
    # q1 right; q4 "red fox jumped" vs "red fox": F1 0.8.
    assert _main("evaluate", "squad", data, write("p.json", json.dumps(SQUAD_PREDICTIONS))) == 0
    assert _metrics(capsys) == pytest.approx({"exact_match": 50.0, "f1": 90.0})
    assert _main("evaluate", "squad", data, write("p.json", "{}"), "--na-prob-thresh", 0.5) == 2
    assert "--na-prob-thresh is for SQuAD 2.0, and" in _error(capsys)


@pytest.mark.parametrize(
    ("data", "predictions", "message"),
    [
        ({"data": "nope"}, SQUAD_PREDICTIONS, r"data.json is not a SQuAD dataset"),
        (
            SQUAD_V2,
            {"x1": "a", "x2": "b", "x3": "c"},
            r"the predictions are not for \S*data.json: 3 of their 3 question ids are not in it, e.g. 'x1'",
        ),
        (SQUAD_V2, {"q1": "Paris"}, r"question 'q2' of \S*data.json has no prediction \(3 of 4 have none\)"),
    ],
)
def test_squad_bad_input_is_one_line_exit_2(write, capsys, data, predictions, message):
    data, predictions = write("data.json", json.dumps(data)), write("p.json", json.dumps(predictions))
    assert _main("evaluate", "squad", data, predictions) == 2
    assert len(re.findall(message, _error(capsys))) == 1
