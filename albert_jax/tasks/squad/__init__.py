"""SQuAD v1.1 and v2.0 fine-tuning (`configs/finetune/squad.py`).

    albert-jax finetune --config configs/finetune/squad.py:v2.0 --workdir runs/squad2 \\
        --config.init_from=path/to/albert-base-v2 \\
        --config.data.train_file=train-v2.0.json --config.data.dev_file=dev-v2.0.json

Modules: `reader` (questions from SQuAD's JSON layout or tfds `squad/*`), `features` (windows
over long contexts, labels), `decoding` (answers from the model's outputs, the no-answer
threshold), `task` (the two heads as tasks, the recipe, the output files).
"""

from albert_jax.tasks.squad.reader import SquadExample
from albert_jax.tasks.squad.task import HEADS, SquadTask, SquadV2HeadTask, for_prediction, make_task, squad_config

__all__ = ["HEADS", "SquadExample", "SquadTask", "SquadV2HeadTask", "for_prediction", "make_task", "squad_config"]
