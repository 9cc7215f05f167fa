"""Reading a prepared tfds split without TensorFlow, and the errors for what is not there."""

from __future__ import annotations

import pytest
import tensorflow_datasets as tfds

from albert_jax.errors import InputError
from albert_jax.tasks.readers.tfds_source import dataset_name, text, texts, tfds_builder, tfds_examples


class ReadersTinyDataset(tfds.core.GeneratorBasedBuilder):
    """300 labelled texts: more than one block of random-access reads."""

    VERSION = tfds.core.Version("1.0.0")
    code_path = None  # see tests/data/test_corpus.py: no checksums to find

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {"text": tfds.features.Text(), "label": tfds.features.ClassLabel(names=["no", "yes"])}
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i in range(300):
            yield i, {"text": f"text {i} é", "label": i % 2}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    ReadersTinyDataset(data_dir=data_dir, file_format="array_record").download_and_prepare()
    return data_dir


def test_reads_every_example(data_dir):
    builder = tfds_builder("readers_tiny_dataset", data_dir)
    assert dataset_name(builder) == "readers_tiny_dataset"
    examples = list(tfds_examples(builder, "train"))
    assert sorted(text(example["text"]) for example in examples) == sorted(f"text {i} é" for i in range(300))
    assert all((int(text(e["text"]).split()[1]) % 2) == int(e["label"]) for e in examples)


def test_unknown_split_and_dataset(data_dir, tmp_path):
    builder = tfds_builder("readers_tiny_dataset", data_dir)
    with pytest.raises(InputError, match=r"^tfds dataset 'readers_tiny_dataset': Unknown split 'dev'.*\['train'\]"):
        list(tfds_examples(builder, "dev"))
    with pytest.raises(InputError, match=r"^tfds dataset 'no_such_dataset' \(data dir '.*'\): ") as error:
        tfds_builder("no_such_dataset", tmp_path)
    assert "\n" not in str(error.value)


def test_text_values_in_every_form():
    import numpy as np

    assert text(b"caf\xc3\xa9") == text("café") == text(np.array("café", dtype=object)) == "café"
    assert text(np.array(b"x", dtype=object)) == "x"
    assert texts(np.array([b"a", b"b"], dtype=object)) == ("a", "b")
