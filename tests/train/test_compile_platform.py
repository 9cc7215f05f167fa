"""`albert-jax compile` runs on the CPU even where JAX would otherwise start an accelerator."""

import json
import os
import subprocess
import sys

import pytest

from tests.train.helpers import TINY_CONFIG

pytest.importorskip("libtpu")

# Runs the command in-process up to the compilation itself (test_aot compiles for real), then
# reports which backends JAX started or tried to start.
_PROBE = """
import json, sys
import jax
from jax._src import xla_bridge
from albert_jax.cli import main
from albert_jax.errors import InputError
from albert_jax.train import aot

def stop_before_compiling(config, topology):
    aot.topology_devices(topology)
    jax.devices()  # starts the backends, as lowering the train step would
    raise InputError("stopped before compiling")

aot.compile_for_topology = stop_before_compiling
code = main(["compile", "--config", sys.argv[1], "--topology", "v5e:2x2"])
print(json.dumps({"code": code, "started": sorted(xla_bridge._backends),
                  "failed": sorted(xla_bridge._backend_errors)}))
"""


def test_compile_starts_only_the_cpu_backend():
    # Without JAX_PLATFORMS, JAX tries every platform it has a plugin for; libtpu is installed
    # here, so a TPU backend started by mistake shows as started or, with no TPU, as failed.
    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
    result = subprocess.run([sys.executable, "-c", _PROBE, TINY_CONFIG], env=env, capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"code": 2, "started": ["cpu"], "failed": []}, result.stderr[-3000:]
    assert "stopped before compiling" in result.stderr
