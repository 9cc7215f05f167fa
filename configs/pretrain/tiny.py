"""A tiny ALBERT pretrained on the built-in corpus: the embedded default, minutes on a laptop CPU.

    albert-jax pretrain                       # the same as:
    albert-jax pretrain --config configs/pretrain/tiny.py --workdir albert_jax_workdirs/tiny

The first run trains a 256-piece SentencePiece tokenizer on the built-in corpus (prose from
Python's own documentation) and prepares its documents; both are cached (~/.cache/albert_jax)
and reused. Everything else is the real recipe at toy scale: ALBERT's encoder (factorized
embeddings, the shared layer, here applied once), SOP pairs and n-gram whole-word masking as in
the original, LAMB with warmup and linear decay.

On a 2-core CPU the run takes 2 to 3 minutes (tokenizer and data included) and ends with
held-out MLM accuracy about 0.28, twice what always predicting the most frequent masked piece
scores on the same held-out examples (0.13), and SOP accuracy about 0.66, barely above the
majority label's 0.65 (chance is 1/256 for MLM); each evaluation prints both baselines. This
corpus's sentence pairs carry little order signal: `scripts/sop_signal.py` finds gradient-
boosted trees, fitted on every pair at once, only a few points above the majority too.

Shaped for what a 2-core CPU does well in minutes. At this scale learning depends on the number
of updates more than on the examples or the width (twice as wide at batch 128 scored exactly the
constant baselines after 400 steps). So: one application of the shared layer, whose step costs
a third to a half of two applications' on XLA:CPU (21 vs 55-62 ms on one VM, 11 vs 23-29 ms on
another) and learns as much per step (3000 steps: MLM 0.223 vs 0.224); the larger initializer
range leaves the early plateau of post-LN training sooner (3000 steps: SOP 0.656 vs 0.623). The
paper's configs apply their shared layer 12-24 times.

The vocabulary is small on purpose: the corpus is under 2M characters, and a 90k-parameter
model gets further with short pieces in the same budget (0.19 with 512 pieces, 0.15 with 2000,
measured with an earlier default).
"""

from albert_jax.train.config import default_config


def get_config():
    config = default_config()
    config.model.preset = "tiny"  # vocab 256, 4 heads; widened below
    config.model.embedding_size = 64
    config.model.hidden_size = 64
    config.model.intermediate_size = 256
    config.model.num_hidden_layers = 1  # one application of the shared layer (see above)
    config.model.initializer_range = 0.05
    config.model.max_position_embeddings = 128
    config.model.hidden_dropout_prob = 0.0
    config.model.attention_probs_dropout_prob = 0.0

    config.data.source = "builtin"
    config.seq_length = 64
    config.global_batch_size = 32
    config.num_train_steps = 10_000
    # Ten steps per execution of the compiled program: the same results, a third less time on
    # a 2-core CPU (the step of so small a model is mostly the host's work around it).
    config.steps_per_execution = 10

    config.optimizer = "lamb"
    config.learning_rate = 0.01
    config.warmup_steps = 100

    config.log_every_steps = 500
    config.eval_every_steps = 2000
    config.eval_steps = 16  # 512 held-out examples: SOP accuracy within about +-0.02
    config.checkpoint_every_steps = 2000
    config.keep_checkpoints = 2
    return config
