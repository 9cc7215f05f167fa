"""RACE reading comprehension (multiple choice) with the paper's recipe, as the v2 release ran it.

    albert-jax finetune --config configs/finetune/race.py --workdir runs/race \
        --config.init_from=path/to/albert-base-v2 --config.data_dir=path/to/RACE

data_dir is the RACE download as it comes (RACE/{train,dev,test}/{high,middle}/*.txt);
without it the data comes from tensorflow-datasets race/<level> (pip install 'albert_jax[tf]').
--config.data.level=high|middle|all. The paper's dev numbers for comparison (v2 release README):
66.8 (base), 75.2 (large), 80.7 (xlarge), 86.8 (xxlarge); the paper's best single model (Table
13, ALBERT 1.5M steps) reached 89.4 on the test set.
"""

from albert_jax.tasks.race import race_config


def get_config():
    return race_config()
