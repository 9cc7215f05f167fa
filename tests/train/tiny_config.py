"""The trainer tests' config: a tiny model on synthetic data, seconds to compile and run."""

from albert_jax.train.config import default_config


def get_config():
    config = default_config()
    config.model.preset = "tiny"  # vocab 256, E 16, H 32, 4 heads, mlp 64, 2 layers
    # No dropout: the tests compare runs whose batches split differently; dropout's RNG also
    # triples the compile time on CPU.
    config.model.hidden_dropout_prob = 0.0
    config.model.attention_probs_dropout_prob = 0.0
    config.model.classifier_dropout_prob = 0.0
    config.data.source = "synthetic"
    config.data.max_predictions_per_seq = 5
    config.seq_length = 32
    config.global_batch_size = 16
    config.num_train_steps = 10
    config.learning_rate = 0.01
    config.warmup_steps = 2
    config.log_every_steps = 1
    config.eval_steps = 0
    config.checkpoint_every_steps = 5
    config.keep_checkpoints = 2
    return config
