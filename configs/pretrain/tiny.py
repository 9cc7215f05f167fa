"""A tiny ALBERT pretrained on the built-in corpus: the embedded default, minutes on a laptop CPU.

    albert-jax pretrain                       # the same as:
    albert-jax pretrain --config configs/pretrain/tiny.py --workdir albert_jax_workdirs/tiny

The first run trains a 256-piece SentencePiece tokenizer on the built-in corpus (prose from
Python's own documentation) and prepares its documents; both are cached (~/.cache/albert_jax)
and reused. Everything else is the real recipe at toy scale: ALBERT's parameter-shared encoder,
SOP pairs and n-gram whole-word masking as in the original, LAMB with warmup and linear decay.

On a 2-core CPU the run takes under 5 minutes (tokenizer and data included) and ends with
held-out MLM accuracy 0.226 and SOP accuracy 0.60. For scale, each evaluation prints the trivial
baselines on the same held-out batches beside the accuracies: always predicting the most frequent
masked piece scores 0.131 there, always the majority SOP label 0.586 (chance is 1/256). At this
budget the model is still in the early plateau of post-LN (ALBERT/BERT) training, where it
mostly learns which pieces are likely where; the gains of real pretraining come with far more
steps. The plateau is left after a number of updates more than of tokens: twice as wide (hidden
128) at batch 128 or 64, as many minutes buy ~400 or ~750 steps, and after 200 and 400 steps
that model still scored exactly the constant baselines.

The vocabulary is small on purpose: the corpus is under 2M characters, and 3000 steps of a 90k-
parameter model get further with short pieces (same budget: 0.19 with 512 pieces, 0.15 with
2000).
"""

from albert_jax.train.config import default_config


def get_config():
    config = default_config()
    config.model.preset = "tiny"  # vocab 256, 4 heads; widened below
    config.model.embedding_size = 64
    config.model.hidden_size = 64
    config.model.intermediate_size = 256
    config.model.num_hidden_layers = 4  # four applications of one shared layer
    config.model.max_position_embeddings = 128
    config.model.hidden_dropout_prob = 0.0
    config.model.attention_probs_dropout_prob = 0.0

    config.data.source = "builtin"
    config.seq_length = 64
    config.global_batch_size = 32
    config.num_train_steps = 3000

    config.optimizer = "lamb"
    config.learning_rate = 0.01
    config.warmup_steps = 100

    config.log_every_steps = 250
    config.eval_every_steps = 500
    config.eval_steps = 8
    config.checkpoint_every_steps = 1000
    config.keep_checkpoints = 2
    return config
