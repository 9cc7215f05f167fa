"""GLUE: the TSV folders read with the original processors' columns, headers and labels, and
tfds `glue/<task>` giving the same examples (label ids turned back into the original's names)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.text import glue as tfds_glue

from albert_jax.errors import InputError
from albert_jax.tasks.examples import TextExample
from albert_jax.tasks.glue_tasks import GLUE_TASKS, glue_task
from albert_jax.tasks.readers import GlueTfdsReader, GlueTsvReader
from tests.tasks.readers.tfds_fakes import mock_data, prepare, serve
from tests.without_tensorflow import run_without_tensorflow

P = "p\tp\tp\tp"  # MNLI's four parse columns
MNLI_HEADER = "index\tpromptID\tpairID\tgenre\ts1_bp\ts2_bp\ts1_p\ts2_p\tsentence1\tsentence2"
MNLI_DEV_HEADER = f"{MNLI_HEADER}\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label"
STSB_HEADER = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2"
STSB_ROW = "main-captions\tMSRvid\t2012test\t0001\tnone\tnone"
PAIR_HEADER = "index\tsentence1\tsentence2"

# The GLUE download in miniature: real headers and column layouts, odd quotes kept as text.
GLUE_FILES = {
    "CoLA": {  # no header in train and dev
        "train.tsv": ["gj04\t1\t\tOur friends won't buy this analysis.", "gj04\t0\t*\tThey drank the pub."],
        "dev.tsv": ["cj99\t1\t\tThe sailors rode the breeze."],
        "test.tsv": ["index\tsentence", "0\tBill whistled past the house.", "1\tThe car honked its way."],
    },
    "SST-2": {
        "train.tsv": [
            "sentence\tlabel",
            "hide new secretions from the parental units \t0",
            'the greatest "musicians\t1',
        ],
        "dev.tsv": ["sentence\tlabel", "it 's a charming journey . \t1"],
        "test.tsv": ["index\tsentence", "0\tuneasy mishmash of styles"],
    },
    "MRPC": {
        "train.tsv": [
            "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String",
            "1\t702876\t702977\tAmrozi accused his brother.\tReferring to him as the witness.",
            "0\t2108705\t2108831\tYucaipa owned Dominick 's.\tYucaipa bought Dominick 's.",
        ],
        "dev.tsv": ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String", "1\t1355540\t1355592\tHe said so.\tHe said it."],
        "test.tsv": ["index\t#1 ID\t#2 ID\t#1 String\t#2 String", "0\t1089874\t1089925\tPCCW 's chief.\tThe chief."],
    },
    "QQP": {  # the second training row lacks fields: the original and tfds skip it
        "train.tsv": [
            "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
            "133273\t213221\t213222\tHow is the life of a math student?\tWhich level is enough?\t0",
            "402555\t536040\t536041\tHow do I control my emotions?",
            "363362\t79149\t79150\tWhat causes stool color to change?\tWhat makes it black?\t1",
        ],
        "dev.tsv": [
            "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
            "40066\t1\t2\tWhat is Sanskrit?\tIs it hard?\t0",
        ],
        "test.tsv": ["id\tquestion1\tquestion2", "0\tWould the idea be good?\tWhy do we need it?"],
    },
    "STS-B": {
        "train.tsv": [
            f"{STSB_HEADER}\tscore",
            f"0\t{STSB_ROW}\tA plane is taking off.\tAn air plane is taking off.\t5.000",
            f"1\t{STSB_ROW}\tA man is playing a flute.\tA man is playing a bamboo flute.\t3.800",
        ],
        "dev.tsv": [f"{STSB_HEADER}\tscore", f"0\t{STSB_ROW}\tA man with a hat.\tA man wearing a hat.\t0.250"],
        "test.tsv": [STSB_HEADER, f"0\t{STSB_ROW}\tA girl is styling her hair.\tA girl is brushing her hair."],
    },
    "MNLI": {  # train has one annotator label before gold_label, dev has five
        "train.tsv": [
            f"{MNLI_HEADER}\tlabel1\tgold_label",
            f"0\t31193\t31193n\tgovernment\t{P}\tConceptually cream skimming.\tProduct and geography. "
            "\tneutral\tneutral",
            f"1\t101457\t101457e\ttelephone\t{P}\tyou know during the season\tYou lose the things."
            "\tentailment\tentailment",
            f"2\t134793\t134793c\tfiction\t{P}\tGets you there.\tIt won't.\tcontradiction\tcontradiction",
        ],
        "dev_matched.tsv": [
            MNLI_DEV_HEADER,
            f"0\t63735\t63735n\tslate\t{P}\tThe new rights are nice\tEveryone likes them\tneutral\tentailment"
            "\tneutral\tneutral\tneutral\tneutral",
        ],
        "dev_mismatched.tsv": [
            MNLI_DEV_HEADER,
            f"0\t75290\t75290c\tletters\t{P}\tYou helped.\tYou were no help.\tcontradiction\tcontradiction"
            "\tcontradiction\tcontradiction\tcontradiction\tcontradiction",
        ],
        "test_matched.tsv": [MNLI_HEADER, f"0\t31493\t31493\ttravel\t{P}\tHierbas, ans seco.\tThe drink is made."],
        "test_mismatched.tsv": [MNLI_HEADER, f"0\t16130\t16130\tfacetoface\t{P}\tWhat changed?\tNothing did."],
    },
    "QNLI": {
        "train.tsv": [
            "index\tquestion\tsentence\tlabel",
            "0\tWhat came into force?\tThe new constitution.\tentailment",
            "1\tWhat is the first major city?\tThe city is on the river.\tnot_entailment",
        ],
        "dev.tsv": ["index\tquestion\tsentence\tlabel", "0\tWhat is it?\tIt is a thing.\tentailment"],
        "test.tsv": ["index\tquestion\tsentence", "0\tWhat organization is devoted?\tThe organization is."],
    },
    "RTE": {
        "train.tsv": [
            f"{PAIR_HEADER}\tlabel",
            "0\tNo Weapons of Mass Destruction Found.\tWeapons found.\tnot_entailment",
            "1\tA place of sorrow.\tPope buried.\tentailment",
        ],
        "dev.tsv": [f"{PAIR_HEADER}\tlabel", "0\tDana Reeve died.\tChristopher Reeve had an accident.\tnot_entailment"],
        "test.tsv": [PAIR_HEADER, "0\tMexico opened.\tMexico is open."],
    },
    "WNLI": {
        "train.tsv": [
            f"{PAIR_HEADER}\tlabel",
            "0\tI stuck a pin through a carrot.\tThe carrot had a hole.\t1",
            "1\tJohn couldn't see the stage.\tJohn is so short.\t0",
        ],
        "dev.tsv": [f"{PAIR_HEADER}\tlabel", "0\tThe drain is clogged.\tThe hair is clogged.\t0"],
        "test.tsv": [PAIR_HEADER, "0\tMaude and Dora had seen the trains.\tThe trains were seen."],
    },
}

# What the original processors make of those files: (guid, text_a, text_b, label).
EXPECTED = {
    ("cola", "train"): [
        ("train-0", "Our friends won't buy this analysis.", None, "1"),
        ("train-1", "They drank the pub.", None, "0"),
    ],
    ("cola", "dev"): [("dev-0", "The sailors rode the breeze.", None, "1")],
    ("cola", "test"): [
        ("test-0", "Bill whistled past the house.", None, None),
        ("test-1", "The car honked its way.", None, None),
    ],
    ("sst2", "train"): [
        ("train-0", "hide new secretions from the parental units ", None, "0"),
        ("train-1", 'the greatest "musicians', None, "1"),
    ],
    ("sst2", "dev"): [("dev-0", "it 's a charming journey . ", None, "1")],
    ("sst2", "test"): [("test-0", "uneasy mishmash of styles", None, None)],
    ("mrpc", "train"): [
        ("train-0", "Amrozi accused his brother.", "Referring to him as the witness.", "1"),
        ("train-1", "Yucaipa owned Dominick 's.", "Yucaipa bought Dominick 's.", "0"),
    ],
    ("mrpc", "dev"): [("dev-0", "He said so.", "He said it.", "1")],
    ("mrpc", "test"): [("test-0", "PCCW 's chief.", "The chief.", None)],
    ("qqp", "train"): [
        ("train-0", "How is the life of a math student?", "Which level is enough?", "0"),
        ("train-2", "What causes stool color to change?", "What makes it black?", "1"),
    ],
    ("qqp", "dev"): [("dev-0", "What is Sanskrit?", "Is it hard?", "0")],
    ("qqp", "test"): [("test-0", "Would the idea be good?", "Why do we need it?", None)],
    ("stsb", "train"): [
        ("train-0", "A plane is taking off.", "An air plane is taking off.", 5.0),
        ("train-1", "A man is playing a flute.", "A man is playing a bamboo flute.", 3.8),
    ],
    ("stsb", "dev"): [("dev-0", "A man with a hat.", "A man wearing a hat.", 0.25)],
    ("stsb", "test"): [("test-0", "A girl is styling her hair.", "A girl is brushing her hair.", None)],
    ("mnli", "train"): [
        ("train-0", "Conceptually cream skimming.", "Product and geography. ", "neutral"),
        ("train-1", "you know during the season", "You lose the things.", "entailment"),
        ("train-2", "Gets you there.", "It won't.", "contradiction"),
    ],
    ("mnli", "dev"): [("dev-0", "The new rights are nice", "Everyone likes them", "neutral")],
    ("mnli", "dev_mismatched"): [("dev_mismatched-0", "You helped.", "You were no help.", "contradiction")],
    ("mnli", "test"): [("test-0", "Hierbas, ans seco.", "The drink is made.", None)],
    ("mnli", "test_mismatched"): [("test_mismatched-0", "What changed?", "Nothing did.", None)],
    ("qnli", "train"): [
        ("train-0", "What came into force?", "The new constitution.", "entailment"),
        ("train-1", "What is the first major city?", "The city is on the river.", "not_entailment"),
    ],
    ("qnli", "dev"): [("dev-0", "What is it?", "It is a thing.", "entailment")],
    ("qnli", "test"): [("test-0", "What organization is devoted?", "The organization is.", None)],
    ("rte", "train"): [
        ("train-0", "No Weapons of Mass Destruction Found.", "Weapons found.", "not_entailment"),
        ("train-1", "A place of sorrow.", "Pope buried.", "entailment"),
    ],
    ("rte", "dev"): [("dev-0", "Dana Reeve died.", "Christopher Reeve had an accident.", "not_entailment")],
    ("rte", "test"): [("test-0", "Mexico opened.", "Mexico is open.", None)],
    ("wnli", "train"): [
        ("train-0", "I stuck a pin through a carrot.", "The carrot had a hole.", "1"),
        ("train-1", "John couldn't see the stage.", "John is so short.", "0"),
    ],
    ("wnli", "dev"): [("dev-0", "The drain is clogged.", "The hair is clogged.", "0")],
    ("wnli", "test"): [("test-0", "Maude and Dora had seen the trains.", "The trains were seen.", None)],
}

# tfds class id -> the original's label name, written out here independently of the reader.
TFDS_ID_TO_LABEL = {
    "cola": ("0", "1"),  # unacceptable, acceptable
    "sst2": ("0", "1"),  # negative, positive
    "mrpc": ("0", "1"),  # not_equivalent, equivalent
    "qqp": ("0", "1"),  # not_duplicate, duplicate
    "mnli": ("entailment", "neutral", "contradiction"),
    "qnli": ("entailment", "not_entailment"),
    "rte": ("entailment", "not_entailment"),
    "wnli": ("0", "1"),  # not_entailment, entailment: the reverse of RTE's order
}
TFDS_SPLIT = {"dev": "validation", "dev_mismatched": "validation_mismatched", "test_mismatched": "test_mismatched"}


def write_glue(root: Path, files=GLUE_FILES) -> Path:
    for folder, tables in files.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name, lines in tables.items():
            (root / folder / name).write_text("".join(line + "\n" for line in lines))
    return root


@pytest.fixture(scope="module")
def glue_dir(tmp_path_factory) -> Path:
    return write_glue(tmp_path_factory.mktemp("glue"))


@pytest.fixture(scope="module")
def tfds_glue_dir(tmp_path_factory, glue_dir) -> Path:
    """Every task but MRPC (which tfds builds from Microsoft's files) prepared by tfds' own GLUE
    builder from the TSV files above."""
    data_dir = tmp_path_factory.mktemp("tfds")
    for task in GLUE_TASKS:
        if task != "mrpc":
            prepare(tfds_glue.Glue, "glue", data_dir, glue_dir, config=task)
    return data_dir


def as_tuples(examples: list[TextExample]) -> list[tuple]:
    assert all(type(example) is TextExample for example in examples)
    return [(e.guid, e.text_a, e.text_b, e.label) for e in examples]


@pytest.mark.parametrize(("task", "split"), list(EXPECTED))
def test_tsv_reads_as_the_original(glue_dir, task, split):
    reader = GlueTsvReader(task, glue_dir)
    assert as_tuples(reader.read(split)) == EXPECTED[task, split]


def test_tasks_splits_and_labels():
    assert list(GLUE_TASKS) == ["cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli"]
    assert {task for task, _ in EXPECTED} == set(GLUE_TASKS)
    for task in GLUE_TASKS:
        assert {split for name, split in EXPECTED if name == task} == set(GLUE_TASKS[task].splits)
    assert GlueTsvReader("mnli", ".").labels == ("contradiction", "entailment", "neutral")
    assert GlueTsvReader("rte", ".").labels == ("entailment", "not_entailment")
    assert GlueTfdsReader("cola").labels == ("0", "1")
    assert GlueTfdsReader("stsb").labels is None
    assert glue_task("SST-2") is glue_task("sst-2") is glue_task("sst2") and glue_task("STS-B").name == "stsb"
    assert GlueTsvReader("SST-2", ".").task is GlueTfdsReader("sst2").task


@pytest.mark.parametrize(("task", "split"), [key for key in EXPECTED if key[0] != "mrpc"])
def test_tfds_gives_the_same_examples_as_the_tsv(glue_dir, tfds_glue_dir, task, split):
    from_tfds = GlueTfdsReader(task, data_dir=tfds_glue_dir).read(split)
    assert from_tfds == GlueTsvReader(task, glue_dir).read(split)


@pytest.mark.parametrize("task", [task for task in GLUE_TASKS if task != "stsb"])
def test_tfds_label_ids_become_the_original_names(task):
    split = "validation_matched" if task == "mnli" else "validation"
    with mock_data(num_examples=24):  # random texts, ids and class ids
        raw = tfds.builder(f"glue/{task}").as_data_source(split)
        raw = sorted((raw[i] for i in range(len(raw))), key=lambda record: int(record["idx"]))
        examples = GlueTfdsReader(task).read("dev")
    assert {int(record["label"]) for record in raw} == set(range(len(TFDS_ID_TO_LABEL[task])))
    assert [e.label for e in examples] == [TFDS_ID_TO_LABEL[task][int(r["label"])] for r in raw]
    assert [e.guid for e in examples] == [f"dev-{int(r['idx'])}" for r in raw]
    assert all(type(e) is TextExample and isinstance(e.text_a, str) for e in examples)
    assert all((e.text_b is None) == (task in ("cola", "sst2")) for e in examples)


def test_tfds_test_labels_and_float_scores():
    records = {
        "test": [{"idx": 1, "label": -1, "premise": b"b", "hypothesis": b"y"},
                 {"idx": 0, "label": -1, "premise": b"a", "hypothesis": b"x"}],
    }
    with mock_data(as_data_source_fn=serve({"test_matched": records["test"]})):
        assert GlueTfdsReader("mnli").read("test") == [
            TextExample("test-0", "a", "x", None),
            TextExample("test-1", "b", "y", None),
        ]
    scores = [{"idx": 0, "label": -1.0, "sentence1": "a", "sentence2": "b"}]
    with mock_data(as_data_source_fn=serve({"test": scores})):
        assert GlueTfdsReader("stsb").read("test")[0].label is None


def test_tfds_through_tensorflow_when_there_is_no_data_source():
    """TFRecord datasets (tfds' default for GLUE) are read with tf.data."""

    def no_data_source(builder, split, **kwargs):
        raise NotImplementedError("stored as TFRecord")

    with mock_data(num_examples=12, as_data_source_fn=no_data_source):
        raw = list(tfds.as_numpy(tfds.builder("glue/mnli").as_dataset(split="validation_mismatched")))
        examples = GlueTfdsReader("mnli").read("dev_mismatched")
    raw.sort(key=lambda record: int(record["idx"]))
    assert [e.label for e in examples] == [TFDS_ID_TO_LABEL["mnli"][int(r["label"])] for r in raw]
    assert [e.text_a for e in examples] == [r["premise"].decode() for r in raw]


# ---------------------------------------------------------------------------------------------
# Bad input


def test_missing_files_and_folders(tmp_path):
    with pytest.raises(InputError, match=r"GLUE mnli: no file .*MNLI/dev_mismatched.tsv'.*DATA_DIR/MNLI/"):
        GlueTsvReader("mnli", tmp_path).read("dev_mismatched")
    with pytest.raises(InputError, match="unknown GLUE task 'mnli-mm'; the tasks are cola, sst2"):
        GlueTsvReader("mnli-mm", tmp_path)
    with pytest.raises(InputError, match="has no split 'validation'; it has train, dev, test"):
        GlueTsvReader("rte", tmp_path).read("validation")


@pytest.mark.parametrize(
    ("task", "lines", "message"),
    [
        ("rte", [PAIR_HEADER + "\tlabel", "0\ta\tb\tentailment", "1\ta\tb\tneutral"],
         r"train.tsv:3: label 'neutral' is not one of entailment, not_entailment$"),
        ("cola", ["gj04\t1\t\tFine.", "gj04\tyes\t\tNot fine."], r"train.tsv:2: label 'yes' is not one of 0, 1"),
        ("stsb", [f"{STSB_HEADER}\tscore", f"0\t{STSB_ROW}\ta\tb\thigh"], r"train.tsv:2: label 'high' is not a number"),
        ("stsb", [f"{STSB_HEADER}\tscore", f"0\t{STSB_ROW}\ta\tb\tnan"], r"train.tsv:2: label 'nan' is not a number"),
        ("mnli", [MNLI_HEADER, "0\t1\t1n\tslate\tp\tp"],
         r"train.tsv:2: 6 tab-separated fields; GLUE mnli rows have at least 10"),
        ("sst2", ["sentence\tlabel"], r"train.tsv: no examples"),
        ("sst2", [], r"train.tsv: no examples"),
    ],
)
def test_bad_rows(tmp_path, task, lines, message):
    folder = glue_task(task).folder
    write_glue(tmp_path, {folder: {"train.tsv": lines}})
    with pytest.raises(InputError, match=message) as error:
        GlueTsvReader(task, tmp_path).read("train")
    assert "\n" not in str(error.value)


def test_a_misaligned_row_is_cut_short_in_the_message(tmp_path):
    long = "a sentence that has moved into the label column of this row"
    write_glue(tmp_path, {"RTE": {"train.tsv": [PAIR_HEADER + "\tlabel", f"0\ta\t{long}"]}})
    with pytest.raises(InputError, match=r"train.tsv:2: label 'a sentence that has moved into the l\.\.\. is not one"):
        GlueTsvReader("rte", tmp_path).read("train")


def test_not_utf8(tmp_path):
    write_glue(tmp_path, {"RTE": {"dev.tsv": [PAIR_HEADER + "\tlabel", "0\ta\tb\tentailment"]}})
    with open(tmp_path / "RTE" / "dev.tsv", "ab") as file:
        file.write(b"1\t\xff\xfe\tb\tentailment\n")
    with pytest.raises(InputError, match=r"dev.tsv:3: not UTF-8 text"):
        GlueTsvReader("rte", tmp_path).read("dev")


def test_tfds_dataset_not_prepared(tmp_path):
    with pytest.raises(InputError, match=r"tfds dataset 'glue/cola' is not prepared in .*tfds build glue/cola"):
        GlueTfdsReader("cola", data_dir=tmp_path).read("train")




def test_without_tensorflow_the_error_names_the_extra(tmp_path, tfds_glue_dir):
    """A TFRecord dataset needs TensorFlow; an ArrayRecord one reads without it."""
    # The prepared RTE files, declared TFRecord: tfds then refuses random access, as for a real
    # TFRecord dataset, without TensorFlow having to write one.
    prepared = tfds_glue_dir / "glue" / "rte" / "2.0.0"
    tfrecord_dir = tmp_path / "tfrecord"
    relabelled = tfrecord_dir / "glue" / "rte" / "2.0.0"
    relabelled.mkdir(parents=True)
    for file in prepared.iterdir():
        if file.name != "dataset_info.json":
            os.symlink(file, relabelled / file.name)
    info = (prepared / "dataset_info.json").read_text()
    assert '"fileFormat": "array_record"' in info
    (relabelled / "dataset_info.json").write_text(info.replace('"array_record"', '"tfrecord"'))
    output = run_without_tensorflow(f"""
        from albert_jax.errors import InputError
        from albert_jax.tasks.readers import GlueTfdsReader

        print(len(GlueTfdsReader("rte", data_dir={str(tfds_glue_dir)!r}).read("train")))
        for data_dir in ({str(tfrecord_dir)!r}, {str(tmp_path / "empty")!r}):
            try:
                GlueTfdsReader("rte", data_dir=data_dir).read("train")
            except InputError as error:
                print(error)
        """, tmp_path)
    array_record, tfrecord, unprepared = output.strip().splitlines()[-3:]
    assert array_record == "2"
    assert tfrecord == (
        "tfds dataset 'glue/rte' is stored as tfrecord; reading it needs TensorFlow: "
        "pip install 'albert_jax[tf]' (or rebuild it with --file_format array_record)"
    )
    assert unprepared.startswith("tfds dataset 'glue/rte' is not prepared in")
