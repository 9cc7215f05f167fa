"""How `albert-jax` starts JAX: on a machine with no accelerator in sight, the CPU directly, so
that libtpu (the [tpu] extra, for compiling pod configs anywhere) prints none of its errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from albert_jax import cli

_TPU_VARIABLES = cli._TPU_VARIABLES


def _touch(root: Path, relative: str, text: str = "") -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A file system root with an ordinary PCI device, and no TPU variables set."""
    for name in _TPU_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    _touch(tmp_path, "sys/bus/pci/devices/0000:00:01.0/vendor", "0x8086\n")
    return tmp_path


def test_a_machine_with_only_a_cpu_shows_no_accelerator(machine):
    assert cli._no_accelerator_in_sight(str(machine))


@pytest.mark.parametrize("relative, text", [
    ("sys/bus/pci/devices/0000:00:04.0/vendor", "0x1ae0\n"),  # a TPU chip (or Google's NIC)
    ("dev/accel0", ""),
    ("dev/vfio/0", ""),
    ("dev/nvidia0", ""),
    ("dev/nvidiactl", ""),
    ("dev/kfd", ""),
])
def test_any_sign_of_an_accelerator_leaves_jax_to_choose(machine, relative, text):
    _touch(machine, relative, text)
    assert not cli._no_accelerator_in_sight(str(machine))


def test_a_tpu_vm_variable_leaves_jax_to_choose(machine, monkeypatch):
    monkeypatch.setenv("TPU_ACCELERATOR_TYPE", "v5p-8")
    assert not cli._no_accelerator_in_sight(str(machine))


def _start_jax(skip_the_probe: bool) -> subprocess.CompletedProcess:
    """A new process that starts JAX as a user's shell would (no JAX_PLATFORMS, no TPU variables:
    `albert-jax compile` sets some in the process that ran it)."""
    code = ("import albert_jax.cli as cli; cli._skip_the_tpu_probe(); " if skip_the_probe else "") + \
        "import jax; print(jax.default_backend())"
    environment = {name: value for name, value in os.environ.items()
                   if name != "JAX_PLATFORMS" and name not in _TPU_VARIABLES}
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True,
                          timeout=300)


def test_without_an_accelerator_jax_starts_on_the_cpu_without_libtpu_errors(monkeypatch):
    pytest.importorskip("libtpu", reason="the errors come from libtpu")
    for name in _TPU_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    if not cli._no_accelerator_in_sight():
        pytest.skip("this machine has an accelerator")
    probed = _start_jax(skip_the_probe=False)
    assert probed.stdout.strip() == "cpu"
    assert "TPU" in probed.stderr  # what the command would print without the check
    started = _start_jax(skip_the_probe=True)
    assert started.stdout.strip() == "cpu"
    assert started.stderr == ""


def test_jax_platforms_set_by_the_user_is_kept(monkeypatch):
    monkeypatch.setenv("JAX_PLATFORMS", "tpu,cpu")
    monkeypatch.delitem(sys.modules, "jax", raising=False)
    cli._skip_the_tpu_probe()
    assert os.environ["JAX_PLATFORMS"] == "tpu,cpu"
