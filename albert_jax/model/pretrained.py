"""Weights in and out: `from_pretrained` and `save_pretrained` for every model class.

Three checkpoint layouts load:
  - Hugging Face: config.json + model.safetensors (or pytorch_model.bin, which needs torch);
  - the original google-research TF release: albert_config.json + model.ckpt-* (no TF needed);
  - this project's own: config.json + params/ (an orbax checkpoint of the parameters), which is
    also what a pretraining workdir holds (config.json + checkpoints/<step>/params/).
Everything is translated to Hugging Face's parameter names first, so one mapping serves all,
and any model class loads from any of them. Heads the checkpoint lacks are initialised and
named in a warning; a missing embedding or encoder weight is an error, since a model that
silently starts from random there is not the pretrained model the user asked for.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterator

import ml_dtypes
import numpy as np
from etils import epath
from flax import nnx

from albert_jax import storage
from albert_jax import workdir as workdir_layout
from albert_jax.errors import InputError
from albert_jax.model.config import AlbertConfig

log = logging.getLogger("albert_jax")

HF_CONFIG = "config.json"
ORIGINAL_CONFIG = "albert_config.json"
SAFETENSORS = "model.safetensors"
TORCH_BIN = "pytorch_model.bin"
NATIVE_PARAMS = workdir_layout.PARAMS

# Our leaf names and Hugging Face's: kernels are [in..., out...] here and [out, in] there.
_LEAF_TO_HF = {"kernel": "weight", "embedding": "weight", "scale": "weight", "bias": "bias"}
# Parts of the base model a checkpoint must have; everything else is a head (the pooler too:
# Hugging Face's masked-LM and token models have none), which may be initialised afresh.
_ENCODER_PARTS = ("embeddings.", "encoder.")
# Heads of some ALBERT model class: left over, without a warning, when loading another class.
_HEAD_PARTS = ("pooler.", "predictions.", "sop_classifier.", "classifier.", "qa_outputs.")
# In checkpoints but not weights: the MLM decoder tied to the word embeddings and the head's
# bias, and buffers that older transformers versions saved.
_NOT_WEIGHTS = frozenset({"predictions.decoder.weight", "predictions.decoder.bias",
                          "embeddings.position_ids", "embeddings.token_type_ids"})
_SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16,
                       "BF16": ml_dtypes.bfloat16, "I64": np.int64, "I32": np.int32}


# -- names ----------------------------------------------------------------------------------------


def hf_names(path: tuple[str, ...], config: AlbertConfig) -> Iterator[tuple[str, int | None]]:
    """Hugging Face names for one of our parameters, with the index into its stacked layer axis.

    Our stacked `albert_layers` (index g·inner_group_num + j) become
    `albert_layer_groups.{g}.albert_layers.{j}`; all other names are the same modulo the leaf.
    """
    *modules, leaf = path
    name = ".".join(modules + [_LEAF_TO_HF[leaf]])
    if "albert_layers" not in modules:
        yield name, None
        return
    for index in range(config.num_hidden_groups * config.inner_group_num):
        group, inner = divmod(index, config.inner_group_num)
        yield name.replace("albert_layers", f"albert_layer_groups.{group}.albert_layers.{inner}"), index


def _to_hf(array: np.ndarray, leaf: str, out_ndim: int) -> np.ndarray:
    if leaf == "kernel":
        out = math.prod(array.shape[array.ndim - out_ndim:])
        return np.ascontiguousarray(array.reshape(-1, out).T)
    return array.reshape(-1) if leaf == "bias" else array


def _from_hf(array: np.ndarray, leaf: str, shape: tuple[int, ...]) -> np.ndarray:
    if leaf == "kernel":
        array = array.T
    if math.prod(array.shape) != math.prod(shape):
        raise ValueError
    return array.reshape(shape)


def _param_items(model: nnx.Module):
    return list(nnx.to_flat_state(nnx.state(model, nnx.Param)))


def params_to_hf(params: dict[tuple[str, ...], np.ndarray], config: AlbertConfig) -> dict[str, np.ndarray]:
    """Our parameters (flat, keyed by state path) as a Hugging Face (PyTorch-layout) state dict."""
    out = {}
    for path, value in params.items():
        leaf = path[-1]
        # A kernel's output rank is its bias's rank (less the stacked layer axis, if any).
        out_ndim = params[path[:-1] + ("bias",)].ndim - ("albert_layers" in path) if leaf == "kernel" else 0
        for name, index in hf_names(path, config):
            out[name] = _to_hf(value if index is None else value[index], leaf, out_ndim)
    # The MLM decoder is tied to the word embeddings and shares the head's bias; Hugging Face's
    # model has both names in its state dict, so both are written.
    if "predictions.bias" in out:
        prefix = "albert." if "albert.embeddings.word_embeddings.weight" in out else ""
        out["predictions.decoder.weight"] = out[f"{prefix}embeddings.word_embeddings.weight"]
        out["predictions.decoder.bias"] = out["predictions.bias"]
    return out


def to_hf_state_dict(model: nnx.Module) -> dict[str, np.ndarray]:
    """The model's parameters as a Hugging Face state dict of float32 numpy arrays."""
    params = {path: np.asarray(v.get_value(), dtype=np.float32) for path, v in _param_items(model)}
    return params_to_hf(params, model.config)


def load_hf_state_dict(model: nnx.Module, weights: dict[str, np.ndarray], *, source: str) -> None:
    """Copies Hugging Face-named weights into `model`.

    Raises InputError if an embedding or encoder weight is missing. Missing heads keep their
    fresh initialisation and are named in a warning; checkpoint tensors that no ALBERT class
    has are named in a warning, the heads of other classes only in the log's info.
    """
    config: AlbertConfig = model.config
    items = _param_items(model)
    has_base_prefix = any(p[0] == "albert" for p, _ in items)
    weights = _align_prefix(weights, has_base_prefix)
    used, missing = set(), []
    for path, variable in items:
        current = np.asarray(variable.get_value())
        names = list(hf_names(path, config))
        if any(name not in weights for name, _ in names):
            missing.extend(name for name, _ in names)
            continue
        target = current.shape[1:] if names[0][1] is not None else current.shape
        arrays = []
        for name, _ in names:
            try:
                arrays.append(_from_hf(np.asarray(weights[name]), path[-1], target))
            except ValueError:
                raise InputError(f"{source}: parameter {name} has shape {tuple(weights[name].shape)}, "
                                 f"but the config needs {_expected_hf_shape(path[-1], target)}") from None
            used.add(name)
        value = np.stack(arrays) if names[0][1] is not None else arrays[0]
        variable.set_value(value.astype(current.dtype))
    missing_encoder = [name for name in missing if _base_name(name).startswith(_ENCODER_PARTS)]
    if missing_encoder:
        raise InputError(f"{source}: the checkpoint lacks embedding/encoder weights "
                         f"{_summarise(missing_encoder)}; it is not a checkpoint of this config's model")
    nnx.update(model, nnx.from_flat_state(items))
    unused = [name for name in set(weights) - used if _base_name(name) not in _NOT_WEIGHTS]
    other_heads = [name for name in unused if _base_name(name).startswith(_HEAD_PARTS)]
    unknown = [name for name in unused if name not in other_heads]
    if missing:
        log.warning("%s: not in the checkpoint, initialised at random: %s", source, _summarise(missing))
    if unknown:
        log.warning("%s: ignored checkpoint tensors that are not ALBERT weights: %s", source,
                    _summarise(unknown))
    if other_heads:
        log.info("%s: checkpoint heads this model does not have: %s", source, _summarise(other_heads))


def _base_name(name: str) -> str:
    """A weight's name without the base model's "albert." prefix."""
    return name.removeprefix("albert.")


def _expected_hf_shape(leaf: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    return (math.prod(shape[1:]), shape[0]) if leaf == "kernel" and len(shape) == 2 else shape


def _align_prefix(weights: dict[str, np.ndarray], has_base_prefix: bool) -> dict[str, np.ndarray]:
    """A base-model checkpoint has no "albert." prefix, a head model's has; accept either."""
    base_parts = ("embeddings.", "encoder.", "pooler.")
    if has_base_prefix:
        return {("albert." + k if k.startswith(base_parts) else k): v for k, v in weights.items()}
    return {k.removeprefix("albert."): v for k, v in weights.items()}


def _summarise(names: list[str]) -> str:
    """Collapses per-layer names so a log line stays readable."""
    collapsed = sorted({re.sub(r"\.\d+\.", ".N.", n) for n in names})
    return ", ".join(collapsed)


# -- the original TF checkpoints ----------------------------------------------------------------


def tf_name_to_hf(name: str) -> str | None:
    """Maps an original ALBERT TF variable name to Hugging Face's, or None if it is not a weight."""
    name = name.removeprefix("module/")
    if name == "global_step" or re.search(r"(adam_[mv]|/Momentum|/lamb_[mv]|_power)$", name) \
            or "Optimizer" in name:
        return None
    rules = [
        (r"^bert/embeddings/(word|position|token_type)_embeddings$", r"albert.embeddings.\1_embeddings.weight"),
        (r"^bert/embeddings/LayerNorm/(gamma|beta)$", r"albert.embeddings.LayerNorm.\1"),
        (r"^bert/encoder/embedding_hidden_mapping_in/(kernel|bias)$",
         r"albert.encoder.embedding_hidden_mapping_in.\1"),
        (r"^bert/encoder/transformer/group_(\d+)/inner_group_(\d+)/(.+)$",
         r"albert.encoder.albert_layer_groups.\1.albert_layers.\2.\3"),
        (r"^bert/pooler/dense/(kernel|bias)$", r"albert.pooler.\1"),
        (r"^cls/predictions/transform/dense/(kernel|bias)$", r"predictions.dense.\1"),
        (r"^cls/predictions/transform/LayerNorm/(gamma|beta)$", r"predictions.LayerNorm.\1"),
        (r"^cls/predictions/output_bias$", r"predictions.bias"),
        (r"^cls/seq_relationship/output_weights$", r"sop_classifier.classifier.weight"),
        (r"^cls/seq_relationship/output_bias$", r"sop_classifier.classifier.bias"),
    ]
    layer_rules = [
        ("attention_1/self/(query|key|value)/", r"attention.\1."),
        ("attention_1/output/dense/", "attention.dense."),
        ("LayerNorm/", "attention.LayerNorm."),
        ("ffn_1/intermediate/dense/", "ffn."),
        ("ffn_1/intermediate/output/dense/", "ffn_output."),
        ("LayerNorm_1/", "full_layer_layer_norm."),
    ]
    for pattern, replacement in rules:
        if re.match(pattern, name):
            hf = re.sub(pattern, replacement, name)
            break
    else:
        return None
    if ".albert_layers." in hf:
        prefix, rest = hf.rsplit(".albert_layers.", 1)
        index, inner_path = rest.split(".", 1)
        for pattern, replacement in layer_rules:
            if re.match(pattern, inner_path):
                inner_path = re.sub(pattern, replacement, inner_path, count=1)
                break
        else:
            return None
        hf = f"{prefix}.albert_layers.{index}.{inner_path}"
    return hf.replace(".gamma", ".weight").replace(".beta", ".bias").replace(".kernel", ".weight")


def tf_to_hf_state_dict(variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for name, array in variables.items():
        hf = tf_name_to_hf(name)
        if hf is None:
            continue
        # TF dense kernels are [in, out]; Hugging Face's (like torch) are [out, in].
        out[hf] = array.T if name.endswith("/kernel") else array
    return out


# -- loading and saving -------------------------------------------------------------------------


def _read_weights(path: epath.Path) -> tuple[str, AlbertConfig, dict[str, np.ndarray] | None]:
    """(layout name, config, weights under Hugging Face's names and layout)."""
    if not path.is_dir():
        raise InputError(f"{path}: no such checkpoint directory")
    has = lambda name: (path / name).exists()  # noqa: E731
    native = _native_params_dir(path)
    if has(HF_CONFIG) and native:
        config = AlbertConfig.from_json_file(path / HF_CONFIG)
        return "albert_jax", config, params_to_hf(_read_orbax_params(native), config)
    if has(HF_CONFIG) and has(SAFETENSORS):
        return "hf", AlbertConfig.from_json_file(path / HF_CONFIG), _read_safetensors(path / SAFETENSORS)
    if has(HF_CONFIG) and has(TORCH_BIN):
        return "hf", AlbertConfig.from_json_file(path / HF_CONFIG), _read_torch_bin(path / TORCH_BIN)
    if has(ORIGINAL_CONFIG) and any(path.glob("*.index")):
        from albert_jax.model import tf_checkpoint

        prefix = tf_checkpoint.find_checkpoint(os.fspath(path))
        config = AlbertConfig.from_json_file(path / ORIGINAL_CONFIG)
        return "tf", config, tf_to_hf_state_dict(tf_checkpoint.load_variables(prefix))
    raise InputError(
        f"{path}: not a checkpoint albert_jax can read; expected {HF_CONFIG} with {SAFETENSORS} or "
        f"{TORCH_BIN} (Hugging Face), {ORIGINAL_CONFIG} with model.ckpt-* (original TF), or "
        f"{HF_CONFIG} with {NATIVE_PARAMS}/ or {workdir_layout.CHECKPOINTS}/ (albert_jax)")


def _read_safetensors(file: epath.Path) -> dict[str, np.ndarray]:
    """A safetensors file as numpy arrays; bfloat16 included (safetensors.numpy refuses it)."""
    from safetensors import SafetensorError, deserialize

    try:
        tensors = deserialize(file.read_bytes())
    except SafetensorError as error:
        raise InputError(f"{file}: not a readable safetensors file (truncated or corrupt? {error})") from None
    out = {}
    for name, view in tensors:
        if view["dtype"] not in _SAFETENSORS_DTYPES:
            raise InputError(f"{file}: tensor {name} has dtype {view['dtype']}, which albert_jax does "
                             f"not read (it reads {', '.join(_SAFETENSORS_DTYPES)})")
        out[name] = np.frombuffer(view["data"], _SAFETENSORS_DTYPES[view["dtype"]]).reshape(view["shape"])
    return out


def _read_torch_bin(file: epath.Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise InputError(f"{file} is a PyTorch pickle and reading it needs torch (pip install torch), "
                         "or convert it to model.safetensors") from None
    try:
        with file.open("rb") as f:
            state = torch.load(f, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError) as error:  # what torch raises for a cut or damaged file
        # torch's message runs on for several sentences; its first says what failed.
        message = str(error).split(". ")[0] or type(error).__name__
        raise InputError(f"{file}: not a readable PyTorch checkpoint (truncated or corrupt? {message})") from None
    return {k: v.float().numpy() for k, v in state.items()}


class PretrainedMixin:
    """`from_pretrained` / `save_pretrained` for any model class whose constructor is
    `cls(config, *, rngs)` and whose parameters follow Hugging Face's names."""

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, rngs: nnx.Rngs | None = None, **config_overrides):
        """Builds the model from a checkpoint directory (any of the three layouts).

        `config_overrides` change fields that do not affect the encoder's shapes, as
        `AlbertConfig.replace` takes them: `num_labels` or `id2label`/`label2id` (as in
        transformers) for a new head, or our compute `dtype="bfloat16"`. Heads the checkpoint
        lacks are initialised at random and named in a warning; a missing embedding or encoder
        weight raises InputError.
        """
        path = epath.Path(path)
        layout, config, weights = _read_weights(path)
        config = config.replace(**config_overrides)
        model = cls(config, rngs=rngs or nnx.Rngs(0))
        load_hf_state_dict(model, weights, source=path)
        log.info("loaded %s from %s (%s layout)", cls.__name__, path, layout)
        return model

    def save_pretrained(self, path: str | os.PathLike, *, layout: str = "hf") -> None:
        """Writes `layout` "hf" (config.json + float32 model.safetensors, loadable by
        transformers) or "native" (config.json + an orbax checkpoint of the parameters in
        `param_dtype`, as the trainer writes). config.json names this class as the architecture
        and the weights' dtype as transformers' `dtype`."""
        path = epath.Path(path)
        storage.make_dirs(path)
        if layout == "hf":
            from safetensors.numpy import save

            storage.write_atomically(path / SAFETENSORS, save(to_hf_state_dict(self), metadata={"format": "pt"}))
            weights_dtype = "float32"  # to_hf_state_dict's
        elif layout == "native":
            import orbax.checkpoint as ocp

            target = storage.absolute(path) / NATIVE_PARAMS
            with ocp.StandardCheckpointer() as checkpointer:
                checkpointer.save(target, nnx.to_pure_dict(nnx.state(self, nnx.Param)), force=True)
            weights_dtype = self.config.param_dtype
        else:
            raise InputError(f"unknown checkpoint layout {layout!r}; choose hf or native")
        self.config.to_json_file(path / HF_CONFIG, layout="hf", architecture=type(self).__name__,
                                 weights_dtype=weights_dtype)


def _native_params_dir(path: epath.Path) -> epath.Path | None:
    """Our parameters in `path`: `params/` (save_pretrained), or those of the newest complete
    checkpoint of a training workdir (its layout: `albert_jax.workdir`)."""
    if (path / NATIVE_PARAMS).is_dir():
        return path / NATIVE_PARAMS
    for step in reversed(workdir_layout.checkpoint_steps_on_disk(path)):
        candidate = workdir_layout.checkpoint_params(path, step)
        if workdir_layout.is_complete(candidate):
            return candidate
    return None


def _read_orbax_params(directory: epath.Path) -> dict[tuple[str, ...], np.ndarray]:
    """An orbax checkpoint of `nnx.state(model, nnx.Param)` as host arrays keyed by state path."""
    import jax
    import orbax.checkpoint as ocp

    directory = storage.absolute(directory)
    # The tree's metadata from the handler: the checkpointer's would also look for the metadata
    # file of a whole step, which an item directory such as a workdir's `<step>/params` lacks,
    # and warn that it is missing.
    handler = ocp.PyTreeCheckpointHandler()
    try:
        metadata = handler.metadata(directory).tree
    finally:
        handler.close()
    with ocp.PyTreeCheckpointer() as checkpointer:
        as_numpy = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), metadata)
        tree = checkpointer.restore(directory, restore_args=as_numpy)
    return {tuple(str(k.key) for k in keys): np.asarray(value, dtype=np.float32)
            for keys, value in jax.tree_util.tree_leaves_with_path(tree)}

