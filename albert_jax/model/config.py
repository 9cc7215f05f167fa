"""`AlbertConfig`: the model's hyperparameters under Hugging Face's field names.

The config reads and writes both JSON layouts users already have: Hugging Face's `config.json`
and the original google-research `albert_config.json`.

Two fields are spelled differently in `config.json`, where transformers gives the names another
meaning: our compute `dtype` is stored as `albert_jax_compute_dtype` (transformers reads `dtype`
and `torch_dtype` as the dtype of the stored weights, which is what we write there), and
`label_names` as Hugging Face's `id2label` / `label2id`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable
from typing import Any, NoReturn

from etils import epath

from albert_jax import storage
from albert_jax.errors import InputError

ACTIVATIONS = ("gelu_new", "gelu", "relu", "silu", "swish", "tanh", "linear")
DTYPES = ("float32", "bfloat16", "float16")
ATTENTION_IMPLEMENTATIONS = ("auto", "xla", "cudnn", "splash")
REMAT_POLICIES = ("none", "cheap", "full", "dots", "dots_no_batch", "matmuls")

# The original TF code calls its tanh-approximated GELU "gelu"; Hugging Face calls that "gelu_new".
_ORIGINAL_TO_HF_ACTIVATION = {"gelu": "gelu_new", "relu": "relu", "tanh": "tanh", "linear": "linear"}
_HF_TO_ORIGINAL_ACTIVATION = {v: k for k, v in _ORIGINAL_TO_HF_ACTIVATION.items()}
# config.json key of our compute dtype. transformers owns `dtype` and `torch_dtype` (the stored
# weights' dtype); the prefix keeps this key clear of any name transformers may take later.
COMPUTE_DTYPE_KEY = "albert_jax_compute_dtype"
# Fields with another name or meaning in config.json; `from_dict` never reads them by field name.
_NOT_JSON_FIELDS = frozenset({"dtype", "label_names"})
_ORIGINAL_FIELDS = (
    "vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_hidden_groups",
    "inner_group_num", "num_attention_heads", "intermediate_size", "hidden_act",
    "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
    "type_vocab_size", "initializer_range",
)

# Sizes from the paper (Table 1) and the released checkpoints; every size has E = 128.
_SIZES = {
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
    "xlarge": dict(hidden_size=2048, num_hidden_layers=24, num_attention_heads=16, intermediate_size=8192),
    "xxlarge": dict(hidden_size=4096, num_hidden_layers=12, num_attention_heads=64, intermediate_size=16384),
}


@dataclasses.dataclass(frozen=True)
class AlbertConfig:
    """ALBERT hyperparameters. Defaults are Hugging Face's (the xxlarge shape)."""

    vocab_size: int = 30000
    embedding_size: int = 128
    hidden_size: int = 4096
    num_hidden_layers: int = 12
    num_hidden_groups: int = 1
    num_attention_heads: int = 64
    intermediate_size: int = 16384
    inner_group_num: int = 1
    hidden_act: str = "gelu_new"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    classifier_dropout_prob: float = 0.1
    num_labels: int = 2
    # One name per label (config.json: id2label / label2id); () means Hugging Face's LABEL_<i>.
    # A tuple, not a dict, so the config stays hashable (it is part of every module's graphdef).
    label_names: tuple[str, ...] = ()
    pad_token_id: int = 0
    bos_token_id: int = 2
    eos_token_id: int = 3
    position_embedding_type: str = "absolute"
    # Computation: activations in `dtype`, parameters stored in `param_dtype`.
    dtype: str = "float32"
    param_dtype: str = "float32"
    # "auto": the fused kernel of the device where it applies (cuDNN on GPUs, splash on TPUs),
    # else "xla", explicit softmax attention (the only one with attention dropout). "cudnn" and
    # "splash" force a kernel. See `model.attention`.
    attention_implementation: str = "auto"
    # What the backward pass recomputes instead of keeping. "cheap" (default): the XLA path's
    # B x N x S x S attention probabilities (the fused kernels never keep them) and the
    # feed-forward activation, elementwise work and one matmul; it is faster than keeping them
    # on a CPU at sequence 512 (README, Performance). The others are jax.checkpoint policies of
    # the shared-layer loop body ("none": keep everything).
    remat_policy: str = "cheap"
    # Run the layer applications as a loop (compile time flat in depth). False unrolls them: a
    # larger program, but one whose cost XLA can analyse (the AOT report uses it for estimates).
    scan_layers: bool = True

    def __post_init__(self):
        def fail(message: str) -> NoReturn:
            raise InputError(f"AlbertConfig: {message}")

        for name in ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers",
                     "num_hidden_groups", "num_attention_heads", "intermediate_size",
                     "inner_group_num", "max_position_embeddings", "type_vocab_size", "num_labels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fail(f"{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            fail(f"num_attention_heads={self.num_attention_heads} must divide "
                 f"hidden_size={self.hidden_size}")
        if self.num_hidden_layers % self.num_hidden_groups:
            fail(f"num_hidden_groups={self.num_hidden_groups} must divide "
                 f"num_hidden_layers={self.num_hidden_layers}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                fail(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        # A zero or negative epsilon lets layer norm divide by zero (or root a negative): NaNs.
        if not math.isfinite(self.layer_norm_eps) or self.layer_norm_eps <= 0:
            fail(f"layer_norm_eps must be a finite positive number, got {self.layer_norm_eps!r}")
        if not math.isfinite(self.initializer_range) or self.initializer_range < 0:
            fail(f"initializer_range must be a finite non-negative number, got {self.initializer_range!r}")
        choices = {
            "hidden_act": ACTIVATIONS, "dtype": DTYPES, "param_dtype": DTYPES,
            "attention_implementation": ATTENTION_IMPLEMENTATIONS, "remat_policy": REMAT_POLICIES,
            "position_embedding_type": ("absolute",),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                fail(f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(allowed)}")
        if not 0 <= self.pad_token_id < self.vocab_size:
            fail(f"pad_token_id={self.pad_token_id} is outside the vocabulary of {self.vocab_size}")
        self._check_label_names(fail)

    def _check_label_names(self, fail: Callable[[str], NoReturn]) -> None:
        names = self.label_names
        if isinstance(names, str) or not isinstance(names, (tuple, list)) \
                or not all(isinstance(n, str) for n in names):
            fail(f"label_names must be a tuple of strings, got {names!r}")
        if names and len(names) != self.num_labels:
            fail(f"label_names (id2label) has {len(names)} names, but "
                 f"num_labels={self.num_labels}; give one name per label")
        if len(set(names)) != len(names):
            fail(f"label_names has duplicates: {names!r}")
        # Normalised so equal configs compare (and hash) equal however the names were given.
        names = tuple(names)
        if names == _default_label_names(len(names)):
            names = ()
        object.__setattr__(self, "label_names", names)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def id2label(self) -> dict[int, str]:
        """Label names by id, as transformers' `config.id2label`."""
        return dict(enumerate(self.label_names or _default_label_names(self.num_labels)))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in self.id2label.items()}

    def replace(self, **changes: Any) -> AlbertConfig:
        """A copy with `changes`: fields by name, and labels as transformers takes them.

        `id2label` or `label2id` (dicts, as in transformers) set `label_names` and `num_labels`;
        `label_names` alone sets `num_labels` too; a new `num_labels` alone drops the label names
        (back to LABEL_<i>), as transformers' `num_labels` setter does.
        """
        changes = dict(changes)
        hf_labels = {key: changes.pop(key) for key in ("id2label", "label2id") if key in changes}
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise InputError(f"AlbertConfig has no field {', '.join(unknown)}")
        if hf_labels:
            if "label_names" in changes:
                raise InputError("give label_names or id2label/label2id, not both")
            changes["label_names"] = _label_names_from_hf(**hf_labels)
        if changes.get("label_names"):
            changes.setdefault("num_labels", len(changes["label_names"]))
        elif changes.get("num_labels", self.num_labels) != self.num_labels:
            changes.setdefault("label_names", ())
        return dataclasses.replace(self, **changes)

    # -- presets ------------------------------------------------------------------------------

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> AlbertConfig:
        """A released ALBERT shape: base/large/xlarge/xxlarge with -v1 or -v2, or "tiny".

        v1 trained with dropout 0.1 and v2 without; xxlarge used none in either version.
        """
        if name == "tiny":
            base = dict(vocab_size=256, embedding_size=16, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
        else:
            size, _, version = name.partition("-")
            if size not in _SIZES or version not in ("v1", "v2"):
                choices = ", ".join(f"{s}-{v}" for s in _SIZES for v in ("v1", "v2"))
                raise InputError(f"unknown ALBERT preset {name!r}; choose tiny, {choices}")
            dropout = 0.1 if version == "v1" and size != "xxlarge" else 0.0
            base = dict(_SIZES[size], hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
        return cls(**base).replace(**overrides)

    # -- JSON ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_hf_dict(self, *, architecture: str | None = None,
                   weights_dtype: str | None = None) -> dict[str, Any]:
        """The Hugging Face `config.json` content (with this project's extra fields kept).

        `architecture` is the model class whose weights sit beside the file (transformers lists
        it under "architectures"); `weights_dtype` is the dtype those weights are stored in,
        written as transformers' `dtype` / `torch_dtype` (default: `param_dtype`).
        """
        fields = {k: v for k, v in self.to_dict().items() if k not in _NOT_JSON_FIELDS | {"num_labels"}}
        weights_dtype = weights_dtype or self.param_dtype
        return {
            **({"architectures": [architecture]} if architecture else {}),
            "model_type": "albert",
            **fields,
            COMPUTE_DTYPE_KEY: self.dtype,
            # transformers derives num_labels from id2label (and JSON keys are strings).
            "id2label": {str(i): name for i, name in self.id2label.items()},
            "label2id": self.label2id,
            "dtype": weights_dtype,
            "torch_dtype": weights_dtype,  # what transformers before 4.56 reads
        }

    def to_original_dict(self) -> dict[str, Any]:
        """The original google-research `albert_config.json` content."""
        if self.hidden_act not in _HF_TO_ORIGINAL_ACTIVATION:
            raise InputError(f"hidden_act {self.hidden_act!r} has no equivalent in the original "
                             f"ALBERT code (it knows {', '.join(_ORIGINAL_TO_HF_ACTIVATION)})")
        fields = {name: getattr(self, name) for name in _ORIGINAL_FIELDS}
        fields["hidden_act"] = _HF_TO_ORIGINAL_ACTIVATION[self.hidden_act]
        return fields

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> AlbertConfig:
        """From a Hugging Face config dict; keys that are not ALBERT hyperparameters are ignored.

        The compute dtype comes from `albert_jax_compute_dtype` only (float32 when absent):
        `dtype` / `torch_dtype` there describe the stored weights, never how to compute.
        """
        names = {f.name for f in dataclasses.fields(cls)} - _NOT_JSON_FIELDS
        kwargs = {k: v for k, v in data.items() if k in names and v is not None}
        if data.get(COMPUTE_DTYPE_KEY) is not None:
            kwargs["dtype"] = data[COMPUTE_DTYPE_KEY]
        try:
            hf_labels = {k: data[k] for k in ("id2label", "label2id") if data.get(k) is not None}
            if hf_labels:
                kwargs["label_names"] = _label_names_from_hf(**hf_labels)
                kwargs.setdefault("num_labels", len(kwargs["label_names"]))
            return cls(**kwargs)
        except InputError as error:
            raise InputError(f"{source}: {error}") from None

    @classmethod
    def from_original_dict(cls, data: dict[str, Any], *, source: str = "albert_config") -> AlbertConfig:
        """From the original `albert_config.json` content (its "gelu" is the tanh form)."""
        kwargs = {k: data[k] for k in _ORIGINAL_FIELDS if k in data}
        act = kwargs.get("hidden_act", "gelu")
        if act not in _ORIGINAL_TO_HF_ACTIVATION:
            raise InputError(f"{source}: unknown hidden_act {act!r}")
        kwargs["hidden_act"] = _ORIGINAL_TO_HF_ACTIVATION[act]
        # The original code has no separate LayerNorm epsilon; TF's layer_norm uses 1e-12.
        return cls.from_dict(kwargs, source=source)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> AlbertConfig:
        """Reads `albert_config.json` (original layout) or any other name (Hugging Face layout)."""
        path = epath.Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise InputError(f"{path}: no such config file") from None
        except json.JSONDecodeError as error:
            raise InputError(f"{path}: not valid JSON ({error})") from None
        if not isinstance(data, dict):
            raise InputError(f"{path}: expected a JSON object")
        if path.name == "albert_config.json" and "model_type" not in data:
            return cls.from_original_dict(data, source=str(path))
        return cls.from_dict(data, source=str(path))

    def to_json_file(self, path: str | os.PathLike, *, layout: str = "hf", **hf_options: Any) -> None:
        """Writes `layout` "hf" (Hugging Face config.json; `hf_options` go to `to_hf_dict`) or
        "original" (albert_config.json)."""
        if layout not in ("hf", "original"):
            raise InputError(f"unknown config layout {layout!r}; choose hf or original")
        data = self.to_hf_dict(**hf_options) if layout == "hf" else self.to_original_dict()
        storage.write_atomically(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _default_label_names(num_labels: int) -> tuple[str, ...]:
    return tuple(f"LABEL_{i}" for i in range(num_labels))


def _label_names_from_hf(id2label: dict | None = None, label2id: dict | None = None) -> tuple[str, ...]:
    """Label names in id order from transformers' `id2label` (preferred, as transformers does)
    or `label2id`; ids may be ints or strings of ints (JSON keys), and must be 0..n-1."""
    key, mapping = ("id2label", id2label) if id2label is not None else ("label2id", label2id)
    if not isinstance(mapping, dict):
        raise InputError(f"{key} must be a dict, got {mapping!r}")
    pairs = mapping.items() if key == "id2label" else ((i, name) for name, i in mapping.items())
    try:
        by_id = {int(i): name for i, name in pairs}
    except (TypeError, ValueError):
        raise InputError(f"{key} ids must be integers, got {mapping!r}") from None
    if sorted(by_id) != list(range(len(mapping))):
        raise InputError(f"{key} ids must be 0..{len(mapping) - 1}, got {mapping!r}")
    return tuple(by_id[i] for i in range(len(by_id)))
