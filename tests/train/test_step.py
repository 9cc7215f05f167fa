"""The train step on one device: the loss, gradient accumulation, fresh dropout every step."""

import jax
import numpy as np

from albert_jax.tasks.pretraining import metrics_from_sums
from albert_jax.tasks.registry import resolve
from albert_jax.train import data as data_lib
from albert_jax.train import mesh as mesh_lib
from albert_jax.train import step as step_lib


def program_and_batches(config, num_batches):
    run = resolve(config)
    program = step_lib.build_program(run, mesh_lib.make_mesh(**config.mesh))
    data = run.task.open_data(run.model, config.global_batch_size)
    iterator = data.train_iterator((0, config.global_batch_size))
    batches = [data_lib.global_batch(next(iterator), program.abstract_batch)
               for _ in range(num_batches)]
    return program, batches


def test_loss_is_mlm_at_weighted_positions_plus_sop(tiny_config):
    program, (batch,) = program_and_batches(tiny_config(), 1)
    params = program.init().params
    sums, outputs = program.eval_step(params, batch)
    assert outputs == {}
    metrics = jax.device_get(metrics_from_sums(sums))

    out = program.parts.merge(params, train=False)(
        batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
        masked_lm_positions=batch["masked_lm_positions"])
    logits, sop_logits = np.asarray(out.prediction_logits, np.float64), np.asarray(out.sop_logits, np.float64)
    weights = np.asarray(batch["masked_lm_weights"], np.float64)
    assert 0 < weights.sum() < weights.size, "the synthetic batch should hold unused prediction slots"
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, np.asarray(batch["masked_lm_ids"])[..., None], -1)[..., 0]
    mlm_loss = (nll * weights).sum() / weights.sum()
    sop_log_probs = sop_logits - np.log(np.exp(sop_logits).sum(-1, keepdims=True))
    sop_loss = -np.take_along_axis(sop_log_probs, np.asarray(batch["sentence_order_label"])[:, None], -1).mean()
    correct = (logits.argmax(-1) == np.asarray(batch["masked_lm_ids"])) * weights
    np.testing.assert_allclose(metrics["mlm_loss"], mlm_loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["sop_loss"], sop_loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["loss"], mlm_loss + sop_loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["mlm_accuracy"], correct.sum() / weights.sum(), rtol=1e-6)


def test_gradient_accumulation_equals_the_full_batch(tiny_config):
    results = {}
    for accum in (1, 4):
        program, batches = program_and_batches(tiny_config(f"--config.grad_accum_steps={accum}"), 3)
        state = program.init()
        history = []
        for batch in batches:
            state, metrics = program.train_step(state, batch)
            history.append(jax.device_get(metrics))
        results[accum] = (jax.device_get(state.params), history)
    (params_1, history_1), (params_4, history_4) = results[1], results[4]
    for m1, m4 in zip(history_1, history_4):
        for key in ("loss", "mlm_loss", "mlm_accuracy", "sop_loss", "grad_norm"):
            np.testing.assert_allclose(m4[key], m1[key], rtol=2e-5, err_msg=key)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), params_4, params_1)


def test_dropout_is_fresh_every_step_and_reproducible(tiny_config):
    config = tiny_config("--config.model.hidden_dropout_prob=0.3")
    program, (batch,) = program_and_batches(config, 1)
    state = program.init()

    def loss_at(step):
        # The same parameters and batch; only the step number differs.
        at_step = state.replace(step=jax.numpy.asarray(step, jax.numpy.int32))
        copy = jax.tree.map(lambda x: x.copy(), at_step)  # the step donates its input
        return float(program.train_step(copy, batch)[1]["loss"])

    assert loss_at(3) == loss_at(3)
    assert loss_at(3) != loss_at(4)
