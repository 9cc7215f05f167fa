"""Fine-tuning on any local classification or regression table (TSV, CSV or JSONL).

    albert-jax finetune --config configs/finetune/classification.py --workdir runs/mine \
        --config.init_from=path/to/albert-base-v2 \
        --config.data.train_file=train.tsv --config.data.dev_file=dev.tsv \
        --config.data.text_column=sentence --config.data.label_column=label

Pairs: --config.data.text_pair_column=NAME. Regression: --config.data.task_type=regression.
The class names are the training file's labels, sorted. Dev metrics: accuracy and MCC (plus F1
for two classes), or Pearson and Spearman for regression; the best checkpoint is chosen by
accuracy or Pearson.
"""

from albert_jax.tasks.local import classification_config


def get_config():
    return classification_config()
