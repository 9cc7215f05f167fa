"""One table of accelerator specs, used for MFU (metrics) and memory headroom (`compile`).

Keyed by `device.device_kind` prefix; the longest matching prefix wins, because JAX versions
name some kinds differently (e.g. "TPU v5" or "TPU v5p"). TPU v2/v3 show each TensorCore as a
device; later TPUs show a chip.
"""

from __future__ import annotations

from typing import NamedTuple

GiB = 1024 ** 3


class DeviceSpec(NamedTuple):
    peak_flops: float  # dense bf16 FLOP/s of one JAX device
    hbm_bytes: int | None  # its high-bandwidth memory; None where one kind comes in several sizes


DEVICES = {
    "TPU v2": DeviceSpec(22.5e12, 8 * GiB),
    "TPU v3": DeviceSpec(61.5e12, 16 * GiB),
    "TPU v4": DeviceSpec(275e12, 32 * GiB),
    "TPU v5 lite": DeviceSpec(197e12, 16 * GiB),
    "TPU v5e": DeviceSpec(197e12, 16 * GiB),
    "TPU v5": DeviceSpec(459e12, 95 * GiB),
    "TPU v5p": DeviceSpec(459e12, 95 * GiB),
    "TPU v6 lite": DeviceSpec(918e12, 32 * GiB),
    "TPU v6e": DeviceSpec(918e12, 32 * GiB),
    "NVIDIA A100": DeviceSpec(312e12, None),
    "NVIDIA H100": DeviceSpec(989e12, 80 * 10**9),
    "NVIDIA H100 PCIe": DeviceSpec(756e12, 80 * 10**9),
    "NVIDIA H200": DeviceSpec(989e12, 141 * 10**9),
    "NVIDIA B200": DeviceSpec(2250e12, 180 * 10**9),
    "NVIDIA L4": DeviceSpec(121e12, 24 * 10**9),
}


def spec(device_kind: str) -> DeviceSpec | None:
    """The spec of `device_kind` (longest matching prefix), or None for an unknown kind."""
    matches = [kind for kind in DEVICES if device_kind.startswith(kind)]
    return DEVICES[max(matches, key=len)] if matches else None


def peak_flops(device_kind: str, override: float | None = None) -> float | None:
    """Peak FLOP/s per device: `override`, else the table entry for `device_kind`, else None."""
    if override:
        return override
    found = spec(device_kind)
    return found.peak_flops if found else None


def hbm_bytes(device_kind: str) -> int | None:
    found = spec(device_kind)
    return found.hbm_bytes if found else None
