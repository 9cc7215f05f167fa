"""Continued pretraining: the state starts from a pretrained model's weights."""

import jax
import numpy as np
import pytest
from flax import nnx

from albert_jax.errors import InputError
from albert_jax.model import AlbertForPreTraining
from albert_jax.tasks.registry import resolve
from albert_jax.train import config as config_lib
from albert_jax.train import loop

# The in-process runs compile the tiny config's programs once, with the session's other runs.
pytestmark = pytest.mark.usefixtures("in_process_cache")


@pytest.mark.parametrize("layout", ["hf", "native"])
def test_training_starts_from_the_pretrained_weights(tiny_config, tmp_path, layout):
    # Step 0 has learning rate 0 (warmup from 0, as in the original): after one step the
    # parameters are still exactly the pretrained ones.
    config = tiny_config("--config.num_train_steps=1", f"--config.init_from={tmp_path / 'pretrained'}")
    pretrained = AlbertForPreTraining(config_lib.model_config(config), rngs=nnx.Rngs(7))
    pretrained.save_pretrained(tmp_path / "pretrained", layout=layout)
    state = loop.train(resolve(config), str(tmp_path / "run"))
    expected = nnx.to_pure_dict(nnx.state(pretrained, nnx.Param))
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(state.params), expected)


def test_a_pretrained_model_of_another_shape_is_refused(tiny_config, tmp_path):
    config = tiny_config(f"--config.init_from={tmp_path / 'pretrained'}")
    other = config_lib.model_config(config).replace(intermediate_size=48)
    AlbertForPreTraining(other, rngs=nnx.Rngs(0)).save_pretrained(tmp_path / "pretrained")
    with pytest.raises(InputError, match="different model than the config's .*intermediate_size 48 -> 64"):
        loop.train(resolve(config), str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
