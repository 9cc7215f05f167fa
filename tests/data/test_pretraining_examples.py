"""SOP pairs and n-gram masking (albert_jax.data.pretraining): statistics over more than 10k
generated seq-512 examples, the original's rules on hand-made documents, and determinism."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from albert_jax.data import pretraining as pt
from albert_jax.errors import InputError
from tests.data.pretraining_corpus import (
    NUM_SPECIAL,
    TaggedDocuments,
    synthetic_documents,
    synthetic_vocab,
)

CONFIG = pt.PretrainingDataConfig()  # the original's defaults: seq 512, 20 predictions, 3-grams
VOCAB = synthetic_vocab()


@dataclasses.dataclass
class Generated:
    pairs: list[pt.SentencePair]
    tokens: list[np.ndarray]
    maskable: list[np.ndarray]
    masked: list[pt.MaskedLm]


def generate(documents, config, num_documents=None, epoch=0) -> Generated:
    out = Generated([], [], [], [])
    for index in range(num_documents or len(documents)):
        rng = pt.document_rng(config.seed, epoch, index)
        for pair in pt.create_sentence_pairs(documents[index], documents, index, config, rng):
            tokens, maskable = pt.layout_pair(pair, VOCAB)
            out.pairs.append(pair)
            out.tokens.append(tokens)
            out.maskable.append(maskable)
            out.masked.append(pt.create_masked_lm_predictions(tokens, maskable, config, VOCAB, rng))
    return out


@pytest.fixture(scope="module")
def documents():
    return synthetic_documents(6000)


@pytest.fixture(scope="module")
def generated(documents) -> Generated:
    result = generate(documents, CONFIG)
    assert len(result.pairs) >= 10_000
    return result


# --- statistics over the generated examples ---------------------------------------------------


def test_masked_count_is_the_budget_apart_from_rare_shortfalls(generated):
    counts = np.array([len(m.positions) for m in generated.masked])
    budgets = np.array([pt.masking_budget(len(t), CONFIG) for t in generated.tokens])
    lengths = np.array([len(t) for t in generated.tokens])
    expected = np.minimum(20, np.maximum(1, np.round(0.15 * lengths)))
    np.testing.assert_array_equal(budgets, expected)
    assert (counts <= budgets).all()
    assert (counts < budgets).mean() < 0.05
    assert counts.sum() / budgets.sum() > 0.99


def test_shortfalls_stay_rare_on_short_sequences():
    # Few candidate words per sequence: the greedy pass is most likely to fall short here.
    config = dataclasses.replace(CONFIG, max_seq_length=16)
    vocab_rng = np.random.default_rng(0)
    short = total = 0
    for _ in range(3000):
        length = int(vocab_rng.integers(5, 17))
        tokens = vocab_rng.integers(NUM_SPECIAL, VOCAB.size, length).astype(np.int32)
        maskable = np.ones(length, dtype=bool)
        maskable[[0, length // 2, length - 1]] = False
        masked = pt.create_masked_lm_predictions(tokens, maskable, config, VOCAB, vocab_rng)
        budget = pt.masking_budget(length, config)
        assert len(masked.positions) <= budget
        short += len(masked.positions) < budget
        total += 1
    assert short / total < 0.05


def test_span_lengths_follow_one_over_n(generated):
    spans = np.concatenate([m.spans for m in generated.masked])
    drawn = np.bincount(spans[:, 2], minlength=4)[1:] / len(spans)
    np.testing.assert_allclose(drawn, np.array([6, 3, 2]) / 11, atol=0.02)
    # Kept spans only lose words to the end of the sequence or the budget, never gain any.
    assert (spans[:, 1] >= 1).all() and (spans[:, 1] <= spans[:, 2]).all()


def test_replacement_mix_is_80_10_10(generated):
    shown = np.concatenate([m.input_ids[m.positions] for m in generated.masked])
    labels = np.concatenate([m.labels for m in generated.masked])
    as_mask = shown == VOCAB.mask_id
    unchanged = shown == labels
    mix = np.array([as_mask.mean(), unchanged.mean(), (~as_mask & ~unchanged).mean()])
    np.testing.assert_allclose(mix, [0.8, 0.1, 0.1], atol=0.02)


def test_labels_are_the_original_tokens_and_only_masked_positions_change(generated):
    for tokens, masked in zip(generated.tokens[:2000], generated.masked[:2000]):
        np.testing.assert_array_equal(masked.labels, tokens[masked.positions])
        assert (np.diff(masked.positions) > 0).all()
        untouched = np.ones(len(tokens), dtype=bool)
        untouched[masked.positions] = False
        np.testing.assert_array_equal(masked.input_ids[untouched], tokens[untouched])


def test_sentence_order_labels_are_balanced(generated):
    labels = np.array([p.label for p in generated.pairs])
    random_b = np.array([p.b_is_random for p in generated.pairs])
    # Swapping is the only source of label 1 for pairs from one document.
    assert abs(labels[~random_b].mean() - 0.5) < 0.02
    # The single-sentence fallback always gives label 1; it is a small share of the pairs.
    assert (labels[random_b] == 1).all()
    assert random_b.mean() < 0.1


def test_no_special_position_masked_and_spans_cover_whole_words(generated):
    for tokens, maskable, masked in zip(generated.tokens, generated.maskable, generated.masked):
        assert maskable[masked.positions].all()
        # A piece starts a word if the table says so or it opens a segment.
        starts = VOCAB.word_start[tokens] | ~np.concatenate(([True], maskable[:-1]))
        assert starts[masked.spans[:, 0]].all()
        is_masked = np.zeros(len(tokens) + 1, dtype=bool)
        is_masked[masked.positions] = True
        continuation = maskable & ~starts
        # A masked continuation piece has its word's previous piece masked, and vice versa.
        np.testing.assert_array_equal(is_masked[1:-1][continuation[1:]], is_masked[:-2][continuation[1:]])


def test_examples_have_the_batch_layout(documents):
    config = dataclasses.replace(CONFIG, max_seq_length=128)
    for index in range(50):
        examples = pt.document_examples(documents[index], documents, index, 3, config, VOCAB)
        rng = pt.document_rng(config.seed, 3, index)
        pairs = pt.create_sentence_pairs(documents[index], documents, index, config, rng)
        assert len(examples) == len(pairs)
        for example, pair in zip(examples, pairs):
            assert {k: (v.shape, v.dtype) for k, v in example.items()} == {
                "input_ids": ((128,), np.int32),
                "attention_mask": ((128,), np.int32),
                "token_type_ids": ((128,), np.int32),
                "masked_lm_positions": ((20,), np.int32),
                "masked_lm_ids": ((20,), np.int32),
                "masked_lm_weights": ((20,), np.int32),
                "sentence_order_label": ((), np.int32),
            }
            len_a, len_b = len(pair.tokens_a), len(pair.tokens_b)
            length = len_a + len_b + 3
            assert len_a >= 1 and len_b >= 1 and length <= 128
            np.testing.assert_array_equal(example["attention_mask"], np.arange(128) < length)
            np.testing.assert_array_equal(
                example["token_type_ids"], (np.arange(128) >= len_a + 2) & (np.arange(128) < length)
            )
            ids = example["input_ids"]
            assert ids[0] == VOCAB.cls_id and ids[len_a + 1] == ids[length - 1] == VOCAB.sep_id
            assert (ids[length:] == VOCAB.pad_id).all()
            weights = example["masked_lm_weights"]
            num = int(weights.sum())
            assert (weights[:num] == 1).all() and num == pt.masking_budget(length, config)
            original = ids.copy()
            original[example["masked_lm_positions"][:num]] = example["masked_lm_ids"][:num]
            np.testing.assert_array_equal(original[1 : len_a + 1], pair.tokens_a)
            np.testing.assert_array_equal(original[len_a + 2 : length - 1], pair.tokens_b)
            assert (example["masked_lm_positions"][num:] == 0).all()
            assert example["sentence_order_label"] == pair.label


# --- the original's rules on hand-made input ---------------------------------------------------


def reference_truncation_lengths(len_a: int, len_b: int, max_num_tokens: int) -> tuple[int, int]:
    """The original's loop: drop a token from the longer segment (B on ties) until it fits."""
    while len_a + len_b > max_num_tokens:
        if len_a > len_b:
            len_a -= 1
        else:
            len_b -= 1
    return len_a, len_b


def test_truncation_matches_the_token_by_token_rule():
    rng = np.random.default_rng(0)
    for len_a in range(1, 25):
        for len_b in range(1, 25):
            for max_num_tokens in (2, 5, 17, 30, 60):
                a = np.arange(len_a)
                b = np.arange(100, 100 + len_b)
                cut_a, cut_b = pt.truncate_seq_pair(a, b, max_num_tokens, rng)
                expected = reference_truncation_lengths(len_a, len_b, max_num_tokens)
                assert (len(cut_a), len(cut_b)) == expected
                # What is left is a contiguous run of each segment.
                assert (np.diff(cut_a) == 1).all() and (np.diff(cut_b) == 1).all()


def test_truncation_cuts_front_and_back_evenly():
    rng = np.random.default_rng(0)
    a = np.arange(200)
    fronts = [pt.truncate_seq_pair(a, a[:1], 101, rng)[0][0] for _ in range(400)]
    # 100 removals from A, each from the front with probability 1/2.
    assert abs(np.mean(fronts) - 50) < 1.5


def test_greedy_spans_fall_back_to_shorter_ngrams_and_skip_overlaps():
    # Five words of 1, 2, 1, 3 and 1 pieces.
    bounds = [0, 1, 3, 4, 7, 8]
    # Word 1 as a 3-gram needs 6 pieces: over the budget of 4, so it shrinks to a 2-gram (3).
    # Word 3 then needs 3 more: skipped. Word 0 fits exactly and fills the budget.
    taken = bytearray(5)
    spans = pt._choose_spans(bounds, taken, [1, 3, 0, 4], [3, 1, 1, 1], budget=4)
    assert spans == [(1, 2, 3), (0, 1, 1)]
    assert list(taken) == [1, 1, 1, 0, 0]
    # A span overlapping a taken word is skipped whole, even if a shorter one would fit.
    taken = bytearray([0, 0, 1, 0, 0])
    assert pt._choose_spans(bounds, taken, [1, 4], [2, 1], budget=10) == [(4, 1, 1)]
    # Near the end an n-gram has fewer words than drawn.
    assert pt._choose_spans(bounds, bytearray(5), [4], [3], budget=10) == [(4, 1, 3)]


def sentences(*lengths: int, start: int = NUM_SPECIAL) -> dict[str, np.ndarray]:
    """A document whose tokens count up from `start`, so slices of it are recognisable."""
    lengths = np.array(lengths, dtype=np.int32)
    return {
        "token_ids": np.arange(start, start + lengths.sum(), dtype=np.int32),
        "sentence_lengths": lengths,
    }


def test_chunks_split_at_sentences_into_consecutive_segments():
    # Ten sentences of 10 tokens and a target of 50: chunks of exactly 5 sentences, no
    # truncation, so every pair is A = the first k sentences of its chunk and B the rest.
    config = dataclasses.replace(CONFIG, max_seq_length=53, short_seq_prob=0.0)
    document = sentences(*[10] * 10)
    tokens = document["token_ids"]
    seen = {0: 0, 1: 0}
    for seed in range(40):
        rng = pt.document_rng(seed, 0, 0)
        pairs = pt.create_sentence_pairs(document, [document], 0, config, rng)
        assert len(pairs) == 2
        for chunk, pair in enumerate(pairs):
            first, second = (pair.tokens_a, pair.tokens_b) if pair.label == 0 else (pair.tokens_b, pair.tokens_a)
            np.testing.assert_array_equal(np.concatenate([first, second]), tokens[50 * chunk : 50 * chunk + 50])
            assert len(first) % 10 == 0 and 10 <= len(first) <= 40
            seen[pair.label] += 1
    assert seen[0] > 10 and seen[1] > 10


def test_single_sentence_chunk_takes_b_from_another_document():
    # Others: 20 sentences of 10 tokens, counting up from a distinct start per document.
    others = [sentences(*[10] * 20, start=1000 * (i + 1)) for i in range(5)]
    lone = sentences(10)
    documents = [lone, *others]
    config = dataclasses.replace(CONFIG, max_seq_length=53, short_seq_prob=0.0)
    for seed in range(30):
        rng = pt.document_rng(seed, 0, 0)
        (pair,) = pt.create_sentence_pairs(lone, documents, 0, config, rng)
        assert pair.label == 1 and pair.b_is_random
        np.testing.assert_array_equal(pair.tokens_a, lone["token_ids"])
        # B: consecutive whole sentences of one other document, from a random sentence on,
        # until it reaches the target length less A (50 - 10), or the document ends.
        first, offset = divmod(int(pair.tokens_b[0]), 1000)
        assert first >= 1 and offset % 10 == 0
        np.testing.assert_array_equal(pair.tokens_b, np.arange(len(pair.tokens_b)) + pair.tokens_b[0])
        assert len(pair.tokens_b) == min(40, 200 - offset)


def test_degenerate_documents_do_not_fail():
    config = dataclasses.replace(CONFIG, max_seq_length=32)
    tiny = sentences(1)
    rng = np.random.default_rng(0)
    # A one-token document alone in its corpus pairs with itself.
    (pair,) = pt.create_sentence_pairs(tiny, [tiny], 0, config, rng)
    assert len(pair.tokens_a) == len(pair.tokens_b) == 1
    # Empty documents and empty sentences give nothing, and are never the random other one.
    empty = {"token_ids": np.zeros(0, np.int32), "sentence_lengths": np.zeros(0, np.int32)}
    hollow = {"token_ids": np.zeros(0, np.int32), "sentence_lengths": np.zeros(3, np.int32)}
    assert pt.create_sentence_pairs(empty, [empty], 0, config, rng) == []
    assert pt.create_sentence_pairs(hollow, [hollow], 0, config, rng) == []
    for _ in range(20):
        (pair,) = pt.create_sentence_pairs(tiny, [tiny, empty, hollow], 0, config, rng)
        np.testing.assert_array_equal(pair.tokens_b, tiny["token_ids"])
    # One sentence far longer than the sequence is truncated to fit.
    huge = sentences(5000)
    for pair in pt.create_sentence_pairs(huge, [huge, sentences(3000)], 0, config, rng):
        assert len(pair.tokens_a) + len(pair.tokens_b) == 29
        tokens, maskable = pt.layout_pair(pair, VOCAB)
        masked = pt.create_masked_lm_predictions(tokens, maskable, config, VOCAB, rng)
        assert len(masked.positions) == pt.masking_budget(32, config)


def test_short_sequences_with_short_seq_prob():
    documents = [sentences(*[20] * 100, start=NUM_SPECIAL)]
    lengths = {}
    for prob in (0.0, 1.0):
        config = dataclasses.replace(CONFIG, short_seq_prob=prob)
        pairs = [
            pair
            for seed in range(30)
            for pair in pt.create_sentence_pairs(documents[0], documents, 0, config, pt.document_rng(seed, 0, 0))
        ]
        lengths[prob] = np.mean([len(p.tokens_a) + len(p.tokens_b) for p in pairs])
    # Full-length targets fill the sequence; random targets are uniform on [2, 509].
    assert lengths[0.0] > 480 and lengths[1.0] < 350


def test_random_next_sentence_option():
    config = dataclasses.replace(CONFIG, random_next_sentence=True, max_seq_length=128)
    documents = TaggedDocuments(300)
    pairs = [
        (index, pair)
        for index in range(300)
        for pair in pt.create_sentence_pairs(documents[index], documents, index, config, pt.document_rng(0, 0, index))
    ]
    for index, pair in pairs:
        assert pair.label == int(pair.b_is_random)  # no swaps in this mode
        assert (pair.tokens_a == NUM_SPECIAL + index).all()
        assert (pair.tokens_b == NUM_SPECIAL + index).all() != pair.b_is_random
    assert 0.45 < np.mean([p.label for _, p in pairs]) < 0.7


def test_random_next_sentence_puts_unused_sentences_back():
    # Sentences of 10 tokens, a target of 50, no truncation: reading A (and B when it is the
    # true continuation) of each pair in turn gives back the whole document.
    config = dataclasses.replace(CONFIG, random_next_sentence=True, max_seq_length=53, short_seq_prob=0.0)
    document = sentences(*[10] * 30)
    other = sentences(*[10] * 30, start=1000)
    for seed in range(10):
        pairs = pt.create_sentence_pairs(document, [document, other], 0, config, pt.document_rng(seed, 0, 0))
        assert any(p.b_is_random for p in pairs)
        read = [p.tokens_a if p.b_is_random else np.concatenate(p[:2]) for p in pairs]
        np.testing.assert_array_equal(np.concatenate(read), document["token_ids"])


def test_ngram_length_options():
    assert pt.PretrainingDataConfig(favor_shorter_ngram=False).ngram_probabilities() == (
        pytest.approx(np.array([2, 3, 6]) / 11)
    )
    assert pt.PretrainingDataConfig(ngram=1).ngram_probabilities() == pytest.approx([1.0])
    config = dataclasses.replace(CONFIG, favor_shorter_ngram=False)
    rng = np.random.default_rng(0)
    drawn = []
    for _ in range(300):
        tokens = rng.integers(NUM_SPECIAL, VOCAB.size, 500).astype(np.int32)
        maskable = np.ones(500, dtype=bool)
        maskable[[0, 250, 499]] = False
        drawn.append(pt.create_masked_lm_predictions(tokens, maskable, config, VOCAB, rng).spans)
    spans = np.concatenate(drawn)
    shares = np.bincount(spans[:, 2], minlength=4)[1:] / len(spans)
    np.testing.assert_allclose(shares, np.array([2, 3, 6]) / 11, atol=0.04)


def test_without_whole_word_masking_spans_start_anywhere():
    config = dataclasses.replace(CONFIG, do_whole_word_mask=False)
    rng = np.random.default_rng(0)
    starts = []
    for _ in range(100):
        tokens = rng.integers(NUM_SPECIAL, VOCAB.size, 300).astype(np.int32)
        maskable = np.ones(300, dtype=bool)
        maskable[[0, 150, 299]] = False
        masked = pt.create_masked_lm_predictions(tokens, maskable, config, VOCAB, rng)
        assert maskable[masked.positions].all()
        starts.append(VOCAB.word_start[tokens[masked.spans[:, 0]]])
    # About 30% of pieces continue a word; here spans may start on them.
    assert 0.15 < 1 - np.concatenate(starts).mean() < 0.45


def test_permutation_adds_a_disjoint_permuted_set():
    config = dataclasses.replace(CONFIG, do_permutation=True)
    assert config.num_prediction_slots == 40
    rng = np.random.default_rng(0)
    unmasked_config = dataclasses.replace(config, do_permutation=False)
    for _ in range(100):
        tokens = rng.permutation(np.arange(NUM_SPECIAL, NUM_SPECIAL + 400)).astype(np.int32)
        maskable = np.ones(400, dtype=bool)
        maskable[[0, 200, 399]] = False
        state = rng.bit_generator.state
        masked = pt.create_masked_lm_predictions(tokens, maskable, config, VOCAB, rng)
        # The masking pass draws first, so replaying it without permutation finds its part.
        rng_replay = np.random.default_rng()
        rng_replay.bit_generator.state = state
        plain = pt.create_masked_lm_predictions(tokens, maskable, unmasked_config, VOCAB, rng_replay)
        permuted = np.setdiff1d(masked.positions, plain.positions)
        assert len(plain.positions) == 20 and len(permuted) == 20
        np.testing.assert_array_equal(masked.input_ids[plain.positions], plain.input_ids[plain.positions])
        # Distinct tokens make the permutation visible: same multiset, moved around.
        np.testing.assert_array_equal(np.sort(masked.input_ids[permuted]), np.sort(tokens[permuted]))
        assert (masked.input_ids[permuted] != tokens[permuted]).any()
        np.testing.assert_array_equal(masked.labels, tokens[masked.positions])


def test_no_masking_with_zero_probability():
    config = dataclasses.replace(CONFIG, masked_lm_prob=0.0)
    tokens, maskable = pt.layout_pair(pt.SentencePair(np.arange(5, 50), np.arange(5, 9), 0, False), VOCAB)
    masked = pt.create_masked_lm_predictions(tokens, maskable, config, VOCAB, np.random.default_rng())
    assert len(masked.positions) == 0
    np.testing.assert_array_equal(masked.input_ids, tokens)


# --- determinism ---------------------------------------------------------------------------------


def test_same_seed_same_examples_other_seed_or_pass_other_masks(documents):
    def examples(seed, epoch):
        config = dataclasses.replace(CONFIG, seed=seed, max_seq_length=128)
        return [
            example
            for index in range(40)
            for example in pt.document_examples(documents[index], documents, index, epoch, config, VOCAB)
        ]

    def positions(batch):
        return [tuple(e["masked_lm_positions"]) for e in batch]

    first = examples(1, 0)
    again = examples(1, 0)
    assert len(first) == len(again)
    for a, b in zip(first, again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    for other in (examples(2, 0), examples(1, 1)):
        shared = set(positions(first)) & set(positions(other))
        assert len(shared) < 0.05 * len(first)


def test_config_rejects_bad_values():
    for bad in (
        {"max_seq_length": 4},
        {"max_predictions_per_seq": 0},
        {"masked_lm_prob": 1.5},
        {"ngram": 0},
        {"short_seq_prob": -0.1},
        {"seed": -1},
        {"seed": 2**32},
    ):
        with pytest.raises(InputError):
            pt.PretrainingDataConfig(**bad)
    with pytest.raises(InputError):
        pt.Vocab(size=10, pad_id=0, cls_id=2, sep_id=3, mask_id=4, word_start=np.ones(9, bool))
