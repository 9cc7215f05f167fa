"""Training configs: Python files that define `get_config(arg)`, plus `--config.key=value` overrides.

A config file is a plain Python module (big_vision style). It starts from `default_config()`,
which holds every key the trainer reads, changes what it needs, and documents in its docstring
how to run it. `FILE:arg` passes `arg` to `get_config`, e.g. `configs/pretrain/base.py:v1`.
The configs/ folder ships inside the package as `albert_jax.configs`, so its files are found by
name (`pretrain/base.py:v1`) from any directory, after any kind of install.

The returned `ConfigDict` is locked: an override of a key that does not exist is an error naming
the key and its closest matches, never a silently added field.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import importlib.resources
import importlib.util
import inspect
import math
import os
from collections.abc import Callable, Iterator, Sequence
from importlib.resources.abc import Traversable
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import ml_collections
from ml_collections import config_dict

from albert_jax.data.pretraining import PretrainingDataConfig
from albert_jax.errors import InputError
from albert_jax.model.config import AlbertConfig

if TYPE_CHECKING:  # loading configs needs no JAX
    from albert_jax.train.task import Task

# The checkout's configs/ folder, shipped in wheels and editable installs alike: albert_jax/configs
# is a link to it, so setuptools packages its files and a plain checkout imports them.
CONFIGS_PACKAGE = "albert_jax.configs"
# The config of `albert-jax pretrain` without --config, by its name among the shipped ones.
DEFAULT_PRETRAIN_CONFIG = "pretrain/tiny.py"

# The sharding story in one ordered table: logical axis -> mesh axes. For each dimension the
# first rule whose mesh axes are free and divide the size wins (`model.sharding.logical_to_mesh`);
# when none fits, that dimension is replicated. Parameters shard over fsdp (their hidden/embed
# dimension) and tensor (heads, mlp, vocab); activations shard their batch over data and fsdp.
DEFAULT_RULES = (
    ("batch", ("data", "fsdp")),
    ("batch", "data"),
    ("vocab", "tensor"),
    ("embed", "fsdp"),
    ("hidden", "fsdp"),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("kv", None),
    ("layers", None),
    ("length", None),
    ("act_embed", None),
    ("act_hidden", None),
    ("act_mlp", "tensor"),
    ("act_heads", "tensor"),
    ("act_kv", None),
    ("act_vocab", "tensor"),
)

# Fields of the data config that the trainer sets itself: the sequence length and the seed are
# top-level keys, so one override changes both the model inputs and the examples.
_DATA_FIELDS_FROM_TOP = ("max_seq_length", "seed")


def default_config() -> ml_collections.ConfigDict:
    """Every key the pretraining trainer reads, with the ALBERT paper's recipe as defaults."""
    c = ml_collections.ConfigDict()
    # What is trained: "pretraining" (MLM + SOP), or a fine-tuning task (configs/finetune/).
    c.task = "pretraining"
    c.seed = 0
    # The paper: batch 4096 of length 512, LAMB at 0.00176, 3125 warmup steps, 125k steps.
    c.global_batch_size = 4096
    c.seq_length = 512
    c.num_train_steps = 125_000

    c.optimizer = "lamb"  # or "adamw"
    c.learning_rate = 0.00176
    c.warmup_steps = 3125
    c.weight_decay = 0.01
    c.grad_clip_norm = 1.0
    c.adam_beta1 = 0.9
    c.adam_beta2 = 0.999
    c.adam_epsilon = 1e-6
    # Microbatches per step; the global batch is split and the gradients summed.
    c.grad_accum_steps = 1
    # Train steps per execution of the compiled program (a loop on the devices, with the
    # batches sent together); logs, evaluations and checkpoints still come at their steps. It
    # saves a trip through the host per step, and on a CPU the mapping of the step's working
    # memory (see README, Performance). The results are those of one step per execution.
    c.steps_per_execution = 1
    # A step whose loss, gradient or updated parameters are not finite (NaN or Inf) is never
    # applied. "stop": the run stops at the next log or checkpoint, saving nothing after it,
    # and says which step it was (a rerun resumes from the newest checkpoint); "skip": the run
    # goes on, and the logged `skipped_steps` counts such steps.
    c.nonfinite = "stop"

    c.log_every_steps = 100
    c.eval_every_steps = 1000
    c.eval_steps = 10  # held-out batches per evaluation
    c.checkpoint_every_steps = 1000
    c.keep_checkpoints = 3
    # A pretrained model (ours, Hugging Face or original TF) to start from, for continued
    # pretraining; ignored once the workdir holds a checkpoint.
    c.init_from = ""
    # Resume even when the training config changed in ways that make the resumed run differ
    # from an uninterrupted one (the changes are recorded in WORKDIR/config_changes.jsonl).
    c.accept_changes = False
    # Peak FLOP/s of one device for MFU; None looks the device kind up in `devices.DEVICES`.
    c.peak_flops_per_device = config_dict.placeholder(float)

    # data x fsdp x tensor devices within a slice (-1: the remaining devices), and the number of
    # slices the data axis also spans over the slower network between slices (-1: all).
    c.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1, "tensor": 1, "dcn_data": -1})
    c.rules = DEFAULT_RULES

    # `preset` names an `AlbertConfig.preset`; every other key overrides one of its fields.
    c.model = ml_collections.ConfigDict({"preset": "base-v2"})
    for field in dataclasses.fields(AlbertConfig):
        c.model[field.name] = config_dict.placeholder(type(field.default))
    # The original pretrains the SOP classifier on the pooled output without dropout (the
    # encoder's dropout is the preset's: 0.1 for v1, none for v2 and xxlarge).
    c.model.classifier_dropout_prob = 0.0

    c.data = ml_collections.ConfigDict()
    # "builtin" (Python's documentation; tokenizer trained and data prepared on first use,
    # cached in $ALBERT_JAX_CACHE or ~/.cache/albert_jax), "synthetic" (random tokens, for
    # benchmarks and tests), or the directory of a dataset made by `albert-jax data prepare`.
    c.data.source = "builtin"
    # The SentencePiece .model the prepared dataset was tokenized with ("" for builtin/synthetic).
    c.data.tokenizer = ""
    # The original create_pretraining_data.py options (see `data.pretraining`).
    for field in dataclasses.fields(PretrainingDataConfig):
        if field.name not in _DATA_FIELDS_FROM_TOP:
            c.data[field.name] = field.default
    c.data.num_workers = 0  # example-making processes per host (0: in the trainer's process)
    c.data.shuffle_window = 1024
    return c


def paper_config(size: str, version: str) -> ml_collections.ConfigDict:
    """The paper's recipe for an ALBERT size, what configs/pretrain/<size>.py returns.

    Lan et al. 2019, section 4.1 (the defaults above): global batch 4096, sequence length 512
    (10% of sequences shorter), LAMB at 0.00176 with 3125 warmup steps then linear decay, 125k
    steps, up to 20 masked predictions per sequence with n-gram masking (n <= 3), SOP. v1:
    encoder dropout 0.1 (xxlarge: none); v2: none; never on the SOP classifier. bfloat16
    compute with float32 parameters and optimizer state. The released v2 models also trained far
    longer (10M steps for base, 3M for the others) on more data; this keeps the paper's 125k.
    On a pod, run the same command on every host (scripts/launch_tpu_pod.sh), with the workdir
    and data on storage every host sees.
    """
    if version not in ("v1", "v2"):
        raise InputError(f"{size}.py takes v1 or v2 (e.g. --config configs/pretrain/{size}.py:v2), "
                         f"got {version!r}")
    config = default_config()
    config.model.preset = f"{size}-{version}"
    config.model.dtype = "bfloat16"
    return config


# -- loading ----------------------------------------------------------------------------------


def load_config(spec: str | None, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
    """Loads `FILE[:arg]` (see `find_config_file`; None: the shipped pretrain/tiny.py) and applies
    `--config.k=v` overrides."""
    path, _, arg = (spec or DEFAULT_PRETRAIN_CONFIG).partition(":")
    # The default is always the shipped file, never a pretrain/tiny.py that the cwd happens to hold.
    file = _shipped_default() if spec is None else find_config_file(path)
    with importlib.resources.as_file(file) as local_path:
        config = _run_config_file(local_path, arg or None)
    config.lock()
    apply_overrides(config, overrides)
    return config


def find_config_file(path: str) -> Traversable:
    """The config file `path` names: that file when it exists (relative to the cwd), else the
    shipped config of that name, given as `configs/pretrain/base.py`, `pretrain/base.py` or
    `pretrain/base`. A name that fits neither is an error listing the shipped configs."""
    if os.path.isfile(path):
        return Path(path)
    shipped = _shipped(path)
    if shipped is not None and shipped.is_file():
        return shipped
    if os.path.isdir(path) or shipped is not None:
        raise InputError(f"config {path!r} is a directory, not a config file; name a file in it, "
                         f"or a shipped config: {', '.join(shipped_config_names())}")
    raise InputError(f"config file {path!r} does not exist: not at {os.path.abspath(path)}, nor among the "
                     f"configs shipped with albert_jax: {', '.join(shipped_config_names())}")


def shipped_config_names() -> list[str]:
    """Names of the config files shipped with albert_jax, e.g. ["pretrain/base.py", ...]."""

    def walk(node: Traversable, prefix: str) -> Iterator[str]:
        for child in node.iterdir():
            if child.is_dir() and child.name != "__pycache__":
                yield from walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".py") and not child.name.startswith("_"):
                yield prefix + child.name

    return sorted(walk(_configs_root(), ""))


def _configs_root() -> Traversable:
    try:
        return importlib.resources.files(CONFIGS_PACKAGE)
    except ModuleNotFoundError:
        # Only a checkout whose git did not make albert_jax/configs a link (symlinks off).
        raise InputError(f"this albert_jax has no shipped configs ({CONFIGS_PACKAGE} is missing); "
                         "pass --config with the path of a config file") from None


def _shipped(name: str) -> Traversable | None:
    """The shipped file or folder `name` names, or None; ".py" may be left off a file's name."""
    parts = PurePath(name).parts
    if not parts or PurePath(name).is_absolute() or ".." in parts:
        return None
    if parts[0] == "configs":  # the checkout's path to it, given from another directory
        parts = parts[1:]
    candidates = [parts]
    if parts and not parts[-1].endswith(".py"):
        candidates.append((*parts[:-1], parts[-1] + ".py"))
    for candidate in reversed(candidates):  # a file before a folder of the same name
        node = _configs_root()
        for part in candidate:
            node = node / part
        if node.is_file() or node.is_dir():
            return node
    return None


def _shipped_default() -> Traversable:
    shipped = _shipped(DEFAULT_PRETRAIN_CONFIG)
    if shipped is None or not shipped.is_file():
        raise InputError(f"the default config {DEFAULT_PRETRAIN_CONFIG} is not among the shipped "
                         f"configs ({', '.join(shipped_config_names())}); pass --config FILE")
    return shipped


def _run_config_file(path: Path, arg: str | None) -> ml_collections.ConfigDict:
    """Runs `get_config` of the Python file `path`. What the file cannot be (not Python, not
    parseable, a `get_config` that takes no `arg`) is an InputError; an exception raised by the
    file's own code keeps its traceback, which points into that code."""
    # Python imports by extension only: anything else (JSON, YAML) is not a config file.
    spec = importlib.util.spec_from_file_location(f"albert_jax_config_{path.stem}", path)
    if spec is None:
        raise InputError(f"config file {path} is not a Python file (.py) defining get_config(arg)")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:  # also null bytes and bad encodings, which are not Python either
        where = f"{path}:{error.lineno}" if error.lineno else str(path)
        raise InputError(f"config file {where} is not valid Python: {error.msg}") from None
    if not hasattr(module, "get_config"):
        raise InputError(f"config file {path} defines no get_config(arg)")
    args = () if arg is None else (arg,)
    try:
        inspect.signature(module.get_config).bind(*args)
    except TypeError:
        signature = f"{path}: get_config{inspect.signature(module.get_config)}"
        raise InputError(f"{signature} does not take the argument {arg!r} (given after ':' in --config)"
                         if args else f"{signature} needs an argument: give it after ':' in --config, "
                         f"e.g. {path.name}:ARG") from None
    config = module.get_config(*args)
    if not isinstance(config, ml_collections.ConfigDict):
        raise InputError(f"{path}: get_config returned {type(config).__name__}, not a ConfigDict")
    return config


def apply_overrides(config: ml_collections.ConfigDict, overrides: Sequence[str]) -> None:
    """Applies `--config.a.b=value` arguments; values are parsed as the field's type."""
    for override in overrides:
        if not override.startswith("--config.") or "=" not in override:
            raise InputError(f"unrecognized argument {override!r}; overrides look like "
                             "--config.key=value")
        key, _, text = override[len("--config."):].partition("=")
        parent, name = _lookup_parent(config, key)
        value = _parse(text, parent.get_type(name), parent[name], key)
        try:
            parent[name] = value
        except TypeError as error:
            raise InputError(f"--config.{key}: {error}") from None


def _lookup_parent(config: ml_collections.ConfigDict, key: str):
    """The ConfigDict holding `key` (dotted) and the last name; unknown keys get suggestions."""
    parent = config
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(parent, ml_collections.ConfigDict) or part not in parent:
            known = sorted(flat_keys(config))
            close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise InputError(f"unknown config key {key!r}{hint}")
        if depth < len(parts) - 1:
            parent = parent[part]
    return parent, parts[-1]


def flat_keys(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    """All dotted keys of a nested ConfigDict."""
    keys = []
    for name, value in config.items():
        keys.append(prefix + name)
        if isinstance(value, ml_collections.ConfigDict):
            keys.extend(flat_keys(value, f"{prefix}{name}."))
    return keys


def _parse(text: str, field_type: type, current: Any, key: str) -> Any:
    def fail(what: str):
        # Quoted when it holds line breaks or other controls: the message stays one line.
        shown = text if text.isprintable() else repr(text)
        raise InputError(f"--config.{key}={shown}: expected {what}")

    if isinstance(current, ml_collections.ConfigDict):
        fail("a sub-key (this is a group of settings)")
    if field_type is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        fail("true or false")
    if field_type is int:
        try:
            return int(text)
        except ValueError:
            fail("an integer")
    if field_type is float:
        try:
            return float(text)
        except ValueError:
            fail("a number")
    if field_type is str:
        return text
    # Tuples (the rules table) and untyped fields: a Python literal.
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        fail("a Python literal")
    if field_type in (tuple, list) and not isinstance(value, (tuple, list)):
        fail("a tuple")
    return tuple(value) if field_type is tuple else value


# -- the resolved run ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Run:
    """A config resolved once into the typed pieces the trainer passes around."""

    config: ml_collections.ConfigDict  # the trainer's own settings, as given
    model: AlbertConfig  # `model.*` (or the model it starts from), adapted to the task
    task: Task

    def replace(self, **changes: Any) -> Run:
        return dataclasses.replace(self, **changes)


def resolve(config: ml_collections.ConfigDict, make_task: Callable[[ml_collections.ConfigDict], Task]) -> Run:
    """Checks `config` and resolves it with the task `make_task` builds from it."""
    validate(config)
    task = make_task(config)
    return Run(config, task.model_config(config), task)


def model_config(config: ml_collections.ConfigDict) -> AlbertConfig:
    """The AlbertConfig: `model.preset` with every set `model.*` field applied."""
    overrides = {k: v for k, v in config.model.items() if k != "preset" and v is not None}
    return AlbertConfig.preset(config.model.preset, **overrides)


def validate(config: ml_collections.ConfigDict) -> None:
    """Value checks of the trainer's settings that need no devices; mesh and batch checks come
    with the mesh, the task checks its own."""
    positive = ("global_batch_size", "seq_length", "num_train_steps", "grad_accum_steps",
                "steps_per_execution", "log_every_steps", "eval_every_steps",
                "checkpoint_every_steps", "keep_checkpoints")
    for key in positive:
        if config[key] is not None and config[key] < 1:  # seq_length None: the task's default
            raise InputError(f"{key} must be positive, got {config[key]}")
    for key in ("warmup_steps", "eval_steps"):
        if config[key] < 0:
            raise InputError(f"{key} must not be negative, got {config[key]}")
    if not 0 <= config.seed < 2**32:
        raise InputError(f"seed must be in [0, 2**32), got {config.seed}")
    if config.optimizer not in ("lamb", "adamw"):
        raise InputError(f"unknown optimizer {config.optimizer!r}; choose lamb or adamw")
    if config.nonfinite not in ("stop", "skip"):
        raise InputError(f"unknown nonfinite {config.nonfinite!r}; choose stop or skip")
    if not math.isfinite(config.weight_decay) or config.weight_decay < 0:
        raise InputError(f"weight_decay must be a finite non-negative number, got {config.weight_decay}")
    # Zero would make no update (learning rate, clip norm) or divide zero by zero (epsilon).
    for key in ("learning_rate", "grad_clip_norm", "adam_epsilon"):
        if not math.isfinite(config[key]) or config[key] <= 0:
            raise InputError(f"{key} must be a finite positive number, got {config[key]}")
    for key in ("adam_beta1", "adam_beta2"):
        if not 0 <= config[key] < 1:
            raise InputError(f"{key} must be in [0, 1), got {config[key]}")
    peak = config.peak_flops_per_device
    if peak is not None and (not math.isfinite(peak) or peak <= 0):
        raise InputError(f"peak_flops_per_device must be a finite positive number, got {peak}")
    _check_rules(config.rules, [name for name in config.mesh if name != "dcn_data"])


def _check_rules(rules: Any, mesh_axes: Sequence[str]) -> None:
    """The rules table must be (logical axis, mesh axes) pairs naming the config's mesh axes,
    with a rule for every logical axis the model uses."""
    from albert_jax.model.sharding import LOGICAL_AXES

    if not isinstance(rules, (tuple, list)):
        raise InputError(f"rules must be a tuple of (logical axis, mesh axes) pairs, got {rules!r}")
    for rule in rules:
        if not isinstance(rule, (tuple, list)) or len(rule) != 2 or not isinstance(rule[0], str):
            raise InputError(f"rules: each rule is a (logical axis, mesh axes) pair, got {rule!r}")
        axes = () if rule[1] is None else (rule[1],) if isinstance(rule[1], str) else rule[1]
        if (not isinstance(axes, (tuple, list)) or len(set(axes)) != len(axes)
                or any(axis not in mesh_axes for axis in axes)):
            raise InputError(f"rules: {tuple(rule)!r} maps to {rule[1]!r}; give None, one of the mesh "
                             f"axes {', '.join(mesh_axes)}, or a tuple of distinct ones")
    missing = [name for name in LOGICAL_AXES if name not in {rule[0] for rule in rules}]
    if missing:
        raise InputError(f"rules: no rule for the logical axes {', '.join(missing)} (a rule "
                         "(name, None) keeps an axis whole)")
