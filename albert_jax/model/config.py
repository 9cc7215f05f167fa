"""`AlbertConfig`: the model's hyperparameters under Hugging Face's field names.

The config reads and writes both JSON layouts users already have: Hugging Face's `config.json`
and the original google-research `albert_config.json`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from albert_jax.errors import InputError

ACTIVATIONS = ("gelu_new", "gelu", "relu", "silu", "swish", "tanh", "linear")
DTYPES = ("float32", "bfloat16", "float16")
ATTENTION_IMPLEMENTATIONS = ("xla", "cudnn")
REMAT_POLICIES = ("none", "full", "dots", "dots_no_batch")

# The original TF code calls its tanh-approximated GELU "gelu"; Hugging Face calls that "gelu_new".
_ORIGINAL_TO_HF_ACTIVATION = {"gelu": "gelu_new", "relu": "relu", "tanh": "tanh", "linear": "linear"}
_HF_TO_ORIGINAL_ACTIVATION = {v: k for k, v in _ORIGINAL_TO_HF_ACTIVATION.items()}
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
    pad_token_id: int = 0
    bos_token_id: int = 2
    eos_token_id: int = 3
    position_embedding_type: str = "absolute"
    # Computation: activations in `dtype`, parameters stored in `param_dtype`.
    dtype: str = "float32"
    param_dtype: str = "float32"
    # "xla": explicit softmax attention (supports attention dropout; runs everywhere).
    # "cudnn": jax.nn.dot_product_attention's fused cuDNN kernel (NVIDIA GPUs only).
    attention_implementation: str = "xla"
    # What the shared-layer loop body keeps for the backward pass (jax.checkpoint policy).
    remat_policy: str = "none"
    # Run the layer applications as a loop (compile time flat in depth). False unrolls them: a
    # larger program, but one whose cost XLA can analyse (the AOT report uses it for estimates).
    scan_layers: bool = True

    def __post_init__(self):
        def fail(message: str):
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

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def replace(self, **changes: Any) -> AlbertConfig:
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise InputError(f"AlbertConfig has no field {', '.join(unknown)}")
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

    def to_hf_dict(self) -> dict[str, Any]:
        """The Hugging Face `config.json` content (with this project's extra fields kept)."""
        fields = self.to_dict()
        num_labels = fields.pop("num_labels")
        return {
            "architectures": ["AlbertForPreTraining"],
            "model_type": "albert",
            **fields,
            "id2label": {str(i): f"LABEL_{i}" for i in range(num_labels)},
            "label2id": {f"LABEL_{i}": i for i in range(num_labels)},
            "torch_dtype": self.param_dtype,
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
        """From a Hugging Face config dict; keys that are not ALBERT hyperparameters are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names and v is not None}
        if "num_labels" not in kwargs and isinstance(data.get("id2label"), dict):
            kwargs["num_labels"] = len(data["id2label"])
        try:
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
        path = os.fspath(path)
        try:
            with open(path) as f:
                data = json.load(f)
        except FileNotFoundError:
            raise InputError(f"{path}: no such config file") from None
        except json.JSONDecodeError as error:
            raise InputError(f"{path}: not valid JSON ({error})") from None
        if not isinstance(data, dict):
            raise InputError(f"{path}: expected a JSON object")
        if os.path.basename(path) == "albert_config.json" and "model_type" not in data:
            return cls.from_original_dict(data, source=path)
        return cls.from_dict(data, source=path)

    def to_json_file(self, path: str | os.PathLike, *, layout: str = "hf") -> None:
        """Writes `layout` "hf" (Hugging Face config.json) or "original" (albert_config.json)."""
        data = {"hf": self.to_hf_dict, "original": self.to_original_dict}[layout]()
        with open(path, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
