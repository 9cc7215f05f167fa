"""SQuAD v1.1 or v2.0 (the argument; default v2.0) with the paper's recipe (table A.4).

    albert-jax finetune --config configs/finetune/squad.py:v2.0 --workdir runs/squad2 \
        --config.init_from=path/to/albert-base-v2 \
        --config.data.train_file=train-v2.0.json --config.data.dev_file=dev-v2.0.json

Without data.train_file the data comes from tensorflow-datasets squad/<version>
(pip install 'albert_jax[tf]'). v1.1: learning rate 5e-5, batch 48, 3649 steps (2 epochs),
length 384; v2.0: 3e-5, 48, 8144 steps (3 epochs), length 512; both: 10% warmup, questions cut to
64 tokens, windows `data.doc_stride` = 128 tokens apart (the step between window starts, as in
the original; Hugging Face's `stride` is the overlap between windows, i.e. length - question -
3 - doc_stride here), answers up to 30 tokens from a 20-best.

--config.head=simple (default; transformers' AlbertForQuestionAnswering, loadable both ways) or
albert_v2 (the original's v2 head: end given start, 5x5 beam, answerability classifier).
v2.0's no-answer threshold is tuned on the dev set at each evaluation
(--config.decoding.null_threshold=tune) or given as a number; eval_results.json reports it
(null_threshold, and null_threshold_tuned 1 or 0). WORKDIR gets predictions.json,
nbest_predictions.json and null_odds.json (v2.0) of the best checkpoint.

Expect, from the v2 release's README (dev F1/EM of the original, albert_v2 head for v2.0):
v1.1 90.2/83.2, 91.8/85.2, 92.9/86.4, 94.6/89.1 and v2.0 82.1/79.3, 84.9/81.8, 87.9/84.1,
89.8/86.9 for base / large / xlarge / xxlarge v2.
"""

from albert_jax.tasks.squad import squad_config


def get_config(version: str = "v2.0"):
    return squad_config(version)
