"""The training config of the golden workdir: the tiny model on synthetic data, every value it
depends on written out, so that a later change of the test configs cannot change it."""

from albert_jax.train.config import default_config


def get_config():
    config = default_config()
    config.model.preset = "tiny"
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
    config.checkpoint_every_steps = 2
    config.keep_checkpoints = 5
    return config
