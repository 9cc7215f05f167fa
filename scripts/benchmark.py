"""The pretraining train step of albert_jax beside Hugging Face's FlaxAlbert and PyTorch ALBERT.

It times one full train step (forward, backward, optimizer update) of each, every implementation
in its own worker process (one library's threads never slow another's steps):

- albert_jax: the trainer's own jitted step (`train.step.build_program`), LAMB as in the
  original, the MLM head at the masked positions only.
- transformers 4.57 `FlaxAlbertForPreTraining`: logits at every position, the loss taken at the
  masked positions, then `optax.lamb` after global-norm clipping, all in one jitted function.
- transformers `AlbertForPreTraining` on PyTorch: the same loss, `clip_grad_norm_`, then the
  LAMB written below (the original's: no bias correction, decay and trust ratio skip LayerNorm
  and biases).

All three get the same config (an albert_jax preset, float32), the same batches and dropout as
the preset says. The batches are full rows of random words (`--data synthetic`, no padding,
`--predictions` masked positions per row), or the built-in corpus's examples as the trainer makes
them (`--data corpus`, real lengths: padded rows for all three, and one more albert_jax row fed
packed rows, `data.packing`). After `--warmup` steps each, the steps alternate A B C A B C (only
one worker computes at a time; the others wait on a pipe) and the table gives medians.

Measured, and how:
- tokens/s: batch x sequence / median step time; useful/s: the real (non-padding) tokens of
  a batch (the mean over the batches) / median step time; "ours x" is the first row's useful/s
  over that row's (with `--data corpus`, the first row is albert_jax on packed rows).
- model TFLOP/s: useful FLOPs only, counted once (`metrics.train_flops_per_example`: 3x the
  forward matmuls of every layer application, attention scores and mixing, the pooler and SOP
  classifier, and the MLM head at the masked positions only), whatever the implementation
  actually computes. Peers that compute the MLM logits at every position get no credit for it.
- matmul rate: jitted `jnp.dot` at the layer's own shapes ([B*S, H] x [H, H] four times,
  [B*S, H] x [H, I], [B*S, I] x [I, H]), run as one more worker whose "step" is those six
  matmuls, timed in turn with the others (the machine's speed drifts within a run): their FLOPs
  over the median time. Each of its calls runs them 20 times over, so that waking up from the
  others' turns weighs on it no more than on a train step.
- compile: seconds to lower and compile the jitted step (PyTorch: none, it runs eagerly).
- peak memory: JAX, XLA's `memory_analysis()` of the compiled step (arguments + outputs -
  donated aliases + temporaries: the state, the batch and the step's working memory). PyTorch,
  in a fresh child process with glibc's mmap threshold pinned low (so freed memory goes back
  to the OS): the bytes of parameters and optimizer moments, plus the rise of the process's peak
  resident memory (VmHWM, reset through /proc/self/clear_refs) during one step after warm-up.
- faults MiB: the worker's minor page faults during a step (median), in MiB of pages: memory
  the kernel had to map and zero. XLA:CPU maps a step's working memory afresh every execution,
  so on a CPU the larger the working memory, the more of the step goes to the kernel; with
  `--steps-per-execution N` albert_jax maps it once per N steps (one more row, timed per call of
  N steps and reported per step).

The machine is usually shared: compare only within one run, and rerun to confirm.

    python scripts/benchmark.py                               # base-v1, batch 8, seq 128 and 512
    python scripts/benchmark.py --seq 128 --steps 2 --warmup 1 --only albert_jax flax
    python scripts/benchmark.py --seq 512 --remat none matmuls    # a row per remat policy
    python scripts/benchmark.py --seq 512 --data corpus           # real lengths, packed and padded
    python scripts/benchmark.py --seq 128 --steps-per-execution 4  # and 4 steps per execution
    python scripts/benchmark.py --seq 128 --only albert_jax --env XLA_FLAGS=...   # an A/B of variables
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import multiprocessing
import os
import resource
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from albert_jax.model.config import REMAT_POLICIES, AlbertConfig
from albert_jax.tasks import registry
from albert_jax.train import config as config_lib
from albert_jax.train import data as data_lib
from albert_jax.train import mesh as mesh_lib
from albert_jax.train import step as step_lib
from albert_jax.train.config import Run

IMPLEMENTATIONS = ("albert_jax", "flax", "torch")
LABELS = {"albert_jax": "albert_jax", "flax": "transformers FlaxAlbert",
          "torch": "transformers PyTorch"}
DEFAULT_REMAT = AlbertConfig.remat_policy
# The embedded default's tokenizer: the built-in corpus's lengths as `data inspect` measures them.
CORPUS_VOCAB = 256
PAGE = os.sysconf("SC_PAGE_SIZE")
# The original's optimizer settings (train/config.py defaults).
LR, B1, B2, EPS, WEIGHT_DECAY, CLIP = 1e-4, 0.9, 0.999, 1e-6, 0.01, 1.0


@dataclasses.dataclass
class Implementation:
    step: Callable[[], None]  # one call: `steps` train steps on its next batches, finished when it returns
    compile_s: float | None
    peak_bytes: int | None
    useful_tokens: float  # real (non-padding) tokens per step, the mean over its batches
    steps: int = 1  # steps per call: albert_jax's steps_per_execution, the matmul reference's repeats


def _useful_tokens(batches: list[dict[str, np.ndarray]]) -> float:
    return float(np.mean([np.count_nonzero(b["attention_mask"]) for b in batches]))


def make_run(preset: str, batch: int, seq: int, predictions: int, *, packing: bool = False,
             source: str = "synthetic", steps_per_execution: int = 1, **model: object) -> Run:
    config = config_lib.default_config()
    config.model.preset = preset
    config.model.dtype = "float32"
    for key, value in model.items():
        config.model[key] = value
    config.global_batch_size, config.seq_length = batch, seq
    config.data.source = source
    config.data.packing = packing
    config.data.max_predictions_per_seq = predictions
    config.warmup_steps, config.num_train_steps = 10, 1000
    config.steps_per_execution = steps_per_execution
    return config_lib.resolve(config, registry.make_task)


def corpus_batches(args, seq: int, packing: bool) -> list[dict[str, np.ndarray]]:
    """`args.corpus_batches` training batches of the built-in corpus as the trainer makes them:
    padded rows, or packed rows (`data.packing`).

    The corpus is tokenized with the embedded default's 256-piece tokenizer (the one `albert-jax
    data inspect --padding` measured); its ids are valid ids of any larger vocabulary, and the
    lengths of the examples are all that matters to the step's cost.
    """
    run = make_run(args.preset, args.batch, seq, args.predictions, packing=packing,
                   source="builtin", vocab_size=CORPUS_VOCAB)
    iterator = run.task.open_data(run.model, args.batch).train_iterator((0, args.batch))
    try:
        return [{k: np.asarray(v) for k, v in next(iterator).items()} for _ in range(args.corpus_batches)]
    finally:
        iterator.close()


def make_batch(config: AlbertConfig, batch: int, seq: int, predictions: int) -> dict[str, np.ndarray]:
    """Full rows [CLS] A [SEP] B [SEP] of random words, `predictions` masked positions each."""
    rng = np.random.default_rng(0)
    ids = rng.integers(5, config.vocab_size, (batch, seq)).astype(np.int32)
    split = seq // 2
    ids[:, [0, split, seq - 1]] = (2, 3, 3)
    candidates = np.setdiff1d(np.arange(1, seq - 1), [split])
    positions = np.sort(np.stack([rng.choice(candidates, predictions, replace=False)
                                  for _ in range(batch)]), axis=1).astype(np.int32)
    masked_ids = np.take_along_axis(ids, positions, axis=1)
    np.put_along_axis(ids, positions, 4, axis=1)
    types = np.zeros_like(ids)
    types[:, split + 1:] = 1
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": types,
            "masked_lm_positions": positions, "masked_lm_ids": masked_ids,
            "masked_lm_weights": np.ones_like(positions),
            "sentence_order_label": rng.integers(0, 2, batch).astype(np.int32)}


def _jax_peak(compiled) -> int:
    m = compiled.memory_analysis()
    return (m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
            + m.temp_size_in_bytes)


def _timed_compile(jitted, *args):
    start = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    return compiled, time.perf_counter() - start


# -- albert_jax -----------------------------------------------------------------------------------


def albert_jax(run: Run, batches: list[dict[str, np.ndarray]]) -> Implementation:
    """The trainer's step; with `steps_per_execution` N > 1, its program of N steps per
    execution, fed N consecutive batches (of the cycle) per call."""
    program = step_lib.build_program(run, mesh_lib.make_mesh(-1, 1, 1))
    state = program.init()
    count = run.config.steps_per_execution
    if count == 1:
        jitted, abstract = program.train_step, program.abstract_batch
        calls = [{k: jax.device_put(v, program.batch_sharding[k]) for k, v in b.items()} for b in batches]
    else:
        jitted, abstract = program.train_steps, program.abstract_batches_of(count, max(program.abstract_batches))
        calls = [data_lib.global_batches([batches[(i + j) % len(batches)] for j in range(count)], abstract)
                 for i in range(len(batches))]
    device_batches = itertools.cycle(calls)
    compiled, compile_s = _timed_compile(jitted, state, abstract)

    def step():
        nonlocal state
        state, metrics = compiled(state, next(device_batches))
        jax.block_until_ready(metrics)

    return Implementation(step, compile_s, _jax_peak(compiled), _useful_tokens(batches), count)


# -- transformers' Flax ALBERT ---------------------------------------------------------------------


def _hf_config(config: AlbertConfig):
    import transformers

    return transformers.AlbertConfig(**{k: v for k, v in config.to_hf_dict().items()
                                        if k not in ("dtype", "param_dtype", "torch_dtype")})


def _pretraining_loss(prediction_logits, sop_logits, batch, take):
    """Mean MLM loss at the masked positions + mean SOP loss (weights are all 1 here)."""
    logits = take(prediction_logits, batch["masked_lm_positions"])
    mlm = optax.softmax_cross_entropy_with_integer_labels(logits, batch["masked_lm_ids"])
    sop = optax.softmax_cross_entropy_with_integer_labels(sop_logits, batch["sentence_order_label"])
    return jnp.mean(mlm) + jnp.mean(sop)


def flax_albert(run: Run, batches: list[dict[str, np.ndarray]]) -> Implementation:
    import transformers

    seq = batches[0]["input_ids"].shape[1]
    model = transformers.FlaxAlbertForPreTraining(_hf_config(run.model), input_shape=(1, seq), seed=0)
    decay = jax.tree_util.tree_map_with_path(
        lambda path, _: getattr(path[-1], "key", None) not in ("bias", "scale"), model.params)
    optimizer = optax.chain(optax.clip_by_global_norm(CLIP),
                            optax.lamb(LR, B1, B2, EPS, weight_decay=WEIGHT_DECAY, mask=decay))

    def take(logits, positions):
        return jnp.take_along_axis(logits, positions[..., None], axis=1)

    def loss_fn(params, batch, key):
        out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
                    params=params, dropout_rng=key, train=True)
        return _pretraining_loss(out.prediction_logits, out.sop_logits, batch, take)

    def train_step(params, opt_state, batch, step):
        key = jax.random.fold_in(jax.random.key(0), step)
        loss, grads = jax.value_and_grad(loss_fn)(params, batch, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    params = model.params
    opt_state = optimizer.init(params)
    device_batches = [{k: jnp.asarray(v) for k, v in b.items()} for b in batches]
    compiled, compile_s = _timed_compile(jax.jit(train_step, donate_argnums=(0, 1)),
                                         params, opt_state, device_batches[0], 0)
    count = 0

    def step():
        nonlocal params, opt_state, count
        params, opt_state, loss = compiled(params, opt_state, device_batches[count % len(batches)], count)
        count += 1
        jax.block_until_ready(loss)

    return Implementation(step, compile_s, _jax_peak(compiled), _useful_tokens(batches))


# -- transformers' PyTorch ALBERT ------------------------------------------------------------------


def _torch_parts(config: AlbertConfig, batches: list[dict[str, np.ndarray]]):
    """The model, its LAMB and a step function (cycling over `batches`), all on the CPU."""
    import torch
    import transformers

    torch.manual_seed(0)
    model = transformers.AlbertForPreTraining(_hf_config(config))
    model.train()
    decay = [p for n, p in model.named_parameters() if not ("bias" in n or "LayerNorm" in n)]
    rest = [p for n, p in model.named_parameters() if "bias" in n or "LayerNorm" in n]
    optimizer = _torch_lamb()([{"params": decay, "decay": True}, {"params": rest, "decay": False}])
    batches = itertools.cycle([{k: torch.from_numpy(v).long() for k, v in b.items()} for b in batches])

    def take(logits, positions):
        return torch.gather(logits, 1, positions[..., None].expand(-1, -1, logits.shape[-1]))

    def step():
        tensors = next(batches)
        out = model(input_ids=tensors["input_ids"], attention_mask=tensors["attention_mask"],
                    token_type_ids=tensors["token_type_ids"])
        logits = take(out.prediction_logits, tensors["masked_lm_positions"])
        mlm = torch.nn.functional.cross_entropy(logits.flatten(0, 1), tensors["masked_lm_ids"].flatten())
        loss = mlm + torch.nn.functional.cross_entropy(out.sop_logits, tensors["sentence_order_label"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return model, optimizer, step


def _torch_lamb() -> type:
    """The LAMB optimizer class for PyTorch (defined on demand: torch is imported lazily)."""
    import torch

    class TorchLamb(torch.optim.Optimizer):
        """The original ALBERT's LAMB: moments without bias correction, decoupled weight decay
        and the trust ratio ||w|| / ||update|| on the groups marked `decay`."""

        def __init__(self, groups):
            super().__init__(groups, {"decay": True})

        @torch.no_grad()
        def step(self):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if not state:
                        state["m"], state["v"] = torch.zeros_like(p), torch.zeros_like(p)
                    m, v = state["m"], state["v"]
                    m.mul_(B1).add_(p.grad, alpha=1 - B1)
                    v.mul_(B2).addcmul_(p.grad, p.grad, value=1 - B2)
                    update = m / (v.sqrt() + EPS)
                    if group["decay"]:
                        update.add_(p, alpha=WEIGHT_DECAY)
                        w_norm, u_norm = p.norm(), update.norm()
                        ratio = torch.where((w_norm > 0) & (u_norm > 0), w_norm / u_norm, 1.0)
                        update.mul_(ratio)
                    p.add_(update, alpha=-LR)

    return TorchLamb


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def _torch_peak_child(config: AlbertConfig, batches: list[dict[str, np.ndarray]], out) -> None:
    model, optimizer, step = _torch_parts(config, batches)
    step()  # creates the optimizer state and warms the allocator
    resident = sum(t.nbytes for t in model.parameters())
    resident += sum(t.nbytes for s in optimizer.state.values() for t in s.values())
    before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident size
    step()
    out.put(resident + (_status_kib("VmHWM") - before) * 1024)


def torch_peak_bytes(config: AlbertConfig, batches: list[dict[str, np.ndarray]]) -> int:
    """Peak memory of one PyTorch step, measured in a fresh process (see the module docstring)."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    saved = {k: os.environ.get(k) for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}
    os.environ.update(MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="65536")
    try:
        child = context.Process(target=_torch_peak_child, args=(config, batches, out))
        child.start()
        peak = out.get()
        child.join()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return peak


def pytorch_albert(run: Run, batches: list[dict[str, np.ndarray]], measure_memory: bool) -> Implementation:
    peak = torch_peak_bytes(run.model, batches) if measure_memory else None
    _, _, step = _torch_parts(run.model, batches)
    return Implementation(step, None, peak, _useful_tokens(batches))


# -- the ceiling and the run ------------------------------------------------------------------------


def layer_matmuls(config: AlbertConfig, tokens: int) -> list[tuple[int, int, int]]:
    """The (m, k, n) of one layer's weight matmuls: Q, K, V, output, and the feed-forward pair."""
    H, I = config.hidden_size, config.intermediate_size
    return [(tokens, H, H)] * 4 + [(tokens, H, I), (tokens, I, H)]


# The six matmuls take tens of milliseconds; a call repeats them so that the worker's wake-up
# (its threads, caches and memory idle while the others ran their steps) is a small part of it,
# as it is of a train step of seconds.
MATMUL_REPEATS = 20


def matmul_reference(config: AlbertConfig, tokens: int) -> Implementation:
    """The ceiling: jitted float32 `jnp.dot` at each of `layer_matmuls`, timed per "step" of one
    each (a call runs MATMUL_REPEATS of them)."""
    dot = jax.jit(jnp.dot)
    rng = np.random.default_rng(0)
    operands = [(jnp.asarray(rng.standard_normal((m, k), np.float32)),
                 jnp.asarray(rng.standard_normal((k, n), np.float32)))
                for m, k, n in layer_matmuls(config, tokens)]

    def step():
        for _ in range(MATMUL_REPEATS):
            for a, b in operands:
                dot(a, b).block_until_ready()

    step()  # compiles
    return Implementation(step, None, None, 0.0, steps=MATMUL_REPEATS)


def _variable(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"NAME=VALUE, not {text!r}")
    return name, value


def _ours_label(policy: str) -> str:
    return "albert_jax" if policy == DEFAULT_REMAT else f"albert_jax remat={policy}"


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of the table: which implementation, and for albert_jax its packing, remat and
    steps per execution."""
    name: str
    kind: str  # one of IMPLEMENTATIONS, or "matmul" (the ceiling)
    packing: bool = False
    remat: str = DEFAULT_REMAT
    steps_per_execution: int = 1
    environment: tuple[tuple[str, str], ...] = ()  # variables added to the worker's environment


def _build(args, seq: int, row: Row, batches, measure_memory: bool) -> Implementation:
    if row.kind == "matmul":
        return matmul_reference(make_run(args.preset, args.batch, seq, args.predictions).model,
                                args.batch * seq)
    if row.kind == "albert_jax":
        return albert_jax(make_run(args.preset, args.batch, seq, args.predictions, packing=row.packing,
                                   steps_per_execution=row.steps_per_execution, remat_policy=row.remat),
                          batches)
    run = make_run(args.preset, args.batch, seq, args.predictions)
    if row.kind == "flax":
        return flax_albert(run, batches)
    return pytorch_albert(run, batches, measure_memory)


def _serve(connection, args, seq: int, row: Row, batches, measure_memory: bool) -> None:
    """A worker process: builds one implementation, then times one call per request, and
    answers with the seconds and page faults per train step."""
    impl = _build(args, seq, row, batches, measure_memory)
    connection.send((impl.compile_s, impl.peak_bytes, impl.useful_tokens))
    while connection.recv() == "step":
        faults, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        impl.step()
        elapsed = time.perf_counter() - start
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        connection.send((elapsed / impl.steps, faults / impl.steps))


@contextlib.contextmanager
def _environment_added(variables: tuple[tuple[str, str], ...]):
    """os.environ with `variables` set, while the block runs."""
    saved = {name: os.environ.get(name) for name, _ in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


class Worker:
    """An implementation in its own process, so that no library's threads (PyTorch's OpenMP pool
    spins on after each of its parallel regions) or allocator state slow another's steps; the
    parent asks each worker for one step at a time and only one computes at a time."""

    def __init__(self, environment: tuple[tuple[str, str], ...], *args) -> None:
        self._connection, child_end = multiprocessing.Pipe()
        self._process = multiprocessing.get_context("spawn").Process(target=_serve, args=(child_end, *args))
        with _environment_added(environment):  # a spawned process starts with os.environ
            self._process.start()
        child_end.close()  # so that a worker's death ends the parent's wait (EOFError)
        self.compile_s, self.peak_bytes, self.useful_tokens = self._receive()

    def _receive(self):
        try:
            return self._connection.recv()
        except EOFError:
            self._process.join()
            raise RuntimeError(f"a benchmark worker exited with code {self._process.exitcode}") from None

    def step(self) -> tuple[float, int]:
        """One step: its seconds, and the page faults the worker took meanwhile."""
        self._connection.send("step")
        return self._receive()

    def close(self) -> None:
        try:
            self._connection.send("stop")
        except OSError:  # the worker is gone already
            pass
        self._connection.close()
        self._process.join()


def benchmark(args, seq: int) -> None:
    run = make_run(args.preset, args.batch, seq, args.predictions)
    if args.data == "corpus":
        batches = corpus_batches(args, seq, packing=False)
        packed = corpus_batches(args, seq, packing=True)
    else:
        batches = [make_batch(run.model, args.batch, seq, args.predictions)]
    rows = []
    if "albert_jax" in args.only:
        # First, the reference row: packed rows with --data corpus, N steps per execution with
        # --steps-per-execution N (beside one per execution).
        reference = Row(_ours_label(args.remat[0]), "albert_jax", remat=args.remat[0])
        if args.data == "corpus":
            reference = dataclasses.replace(reference, name=reference.name + " packed", packing=True)
        if args.steps_per_execution > 1:
            rows.append(dataclasses.replace(reference, name=f"{reference.name} {args.steps_per_execution}/exec",
                                            steps_per_execution=args.steps_per_execution))
        if args.data == "corpus":
            rows.append(reference)
        rows += [Row(_ours_label(policy), "albert_jax", remat=policy) for policy in args.remat]
        if args.env:
            rows.append(Row(f"{_ours_label(args.remat[0])} + env", "albert_jax", remat=args.remat[0],
                            environment=tuple(args.env)))
    rows += [Row(kind, kind) for kind in args.only if kind != "albert_jax"]
    if not args.memory_only:
        rows.append(Row("matmul", "matmul"))
    data = (f"built-in corpus batches ({args.corpus_batches}, cycled)" if args.data == "corpus"
            else "full rows")
    impls: dict[str, Worker] = {}
    try:
        for row in rows:  # one at a time: each compiles (or measures memory) on an idle machine
            impls[row.name] = Worker(row.environment, args, seq, row, packed if row.packing else batches,
                                     not args.skip_torch_memory)
        if args.memory_only:
            print(f"\n{args.preset}, float32, batch {args.batch} x seq {seq}, {data}: compile and peak memory only")
            for name, impl in impls.items():
                compile_s = f"{impl.compile_s:.1f} s" if impl.compile_s is not None else "-"
                peak = f"{impl.peak_bytes / 2**20:.0f} MiB" if impl.peak_bytes is not None else "-"
                print(f"{LABELS.get(name, name):<30} compile {compile_s:>8}   peak {peak:>10}", flush=True)
            return
        times: dict[str, list[float]] = {name: [] for name in impls}
        faults: dict[str, list[int]] = {name: [] for name in impls}
        for impl in impls.values():
            for _ in range(args.warmup):
                impl.step()
        for _ in range(args.steps):
            for name, impl in impls.items():
                seconds, step_faults = impl.step()
                times[name].append(seconds)
                faults[name].append(step_faults)
    finally:
        for impl in impls.values():
            impl.close()
    matmul_flops = sum(2.0 * m * k * n for m, k, n in layer_matmuls(run.model, args.batch * seq))
    rate = matmul_flops / statistics.median(times.pop("matmul"))
    flops = run.task.flops_per_example(run.model) * args.batch

    tokens = args.batch * seq
    useful = {name: impls[name].useful_tokens / statistics.median(t) for name, t in times.items()}
    reference = useful[rows[0].name] if rows[0].kind == "albert_jax" else None
    print(f"\n{args.preset}, float32, batch {args.batch} x seq {seq}, {data}, {args.predictions} masked "
          f"positions per example; {args.steps} alternating steps after {args.warmup} warm-up, each "
          f"implementation in its own process; useful work {flops / 1e12:.3f} TFLOP per step; matmul "
          f"rate {rate / 1e9:.0f} GFLOP/s (timed in turn with the steps)")
    for row in rows:
        if row.environment:
            print(f"{row.name}: " + " ".join(f"{name}={value}" for name, value in row.environment))
    print(f"{'implementation':<34}{'s/step':>8}{'tokens/s':>10}{'useful/s':>10}{'ours x':>8}{'TFLOP/s':>9}"
          f"{'of matmul':>11}{'compile s':>11}{'peak MiB':>10}{'faults MiB':>12}")
    for name, samples in times.items():
        impl, median = impls[name], statistics.median(samples)
        ratio = f"{reference / useful[name]:.2f}x" if reference else "-"
        compile_s = f"{impl.compile_s:.1f}" if impl.compile_s is not None else "-"
        peak = f"{impl.peak_bytes / 2**20:.0f}" if impl.peak_bytes is not None else "-"
        print(f"{LABELS.get(name, name):<34}{median:>8.2f}{tokens / median:>10.0f}{useful[name]:>10.0f}"
              f"{ratio:>8}{flops / median / 1e12:>9.3f}{flops / median / rate:>10.0%}{compile_s:>11}{peak:>10}"
              f"{statistics.median(faults[name]) * PAGE / 2**20:>12.0f}")
    print("samples (s): " + "; ".join(f"{n} " + " ".join(f"{t:.2f}" for t in s) for n, s in times.items()),
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="base-v1", help="albert_jax preset (v1: dropout 0.1)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--predictions", type=int, default=20, help="masked positions per row")
    parser.add_argument("--steps", type=int, default=5, help="timed steps of each implementation")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--only", nargs="+", choices=IMPLEMENTATIONS, default=list(IMPLEMENTATIONS))
    parser.add_argument("--remat", nargs="+", default=[DEFAULT_REMAT], choices=REMAT_POLICIES,
                        help="albert_jax's remat_policy; one row each (the first is the reference)")
    parser.add_argument("--data", choices=("synthetic", "corpus"), default="synthetic",
                        help="full rows of random words, or the built-in corpus's real lengths: "
                             "padded rows for every implementation, plus albert_jax on packed rows")
    parser.add_argument("--corpus-batches", type=int, default=8, help="distinct corpus batches cycled")
    parser.add_argument("--steps-per-execution", type=int, default=1, metavar="N",
                        help="with N > 1, one more albert_jax row (the reference) that runs N train "
                             "steps per execution (train config steps_per_execution); each of its "
                             "timed calls is N steps, reported per step")
    parser.add_argument("--env", nargs="+", type=_variable, metavar="NAME=VALUE",
                        help="one more albert_jax row whose worker starts with these environment "
                             "variables (e.g. GLIBC_TUNABLES=... or XLA_FLAGS=...), to compare them "
                             "within one run")
    parser.add_argument("--memory-only", action="store_true",
                        help="compile and measure peak memory, time no steps")
    parser.add_argument("--skip-torch-memory", action="store_true",
                        help="skip the child process that measures PyTorch's peak memory")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} x{jax.device_count()}, "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    for seq in args.seq:
        benchmark(args, seq)


if __name__ == "__main__":
    main()
