"""A wheel of albert_jax, installed away from the source tree, pretrains with its shipped configs.

This is how TPU pod workers install (`pip install git+URL` builds this wheel), and unlike an
editable install it has no checkout beside it. To stay fast and offline, the test builds the wheel
without build isolation (setuptools comes from the test extra) and gives the new virtual
environment this environment's third-party packages through a path file. That file lists
site-packages as a plain directory, so the editable install's own path file and import finder in
there are never run: albert_jax can only come from the wheel, which the test checks.
"""

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Where albert_jax and the shipped config files are imported from, seen from the new environment.
_WHERE = """
import json, sys
import albert_jax
from albert_jax.train.config import find_config_file, shipped_config_names
print(json.dumps({"package": albert_jax.__file__, "shipped": shipped_config_names(),
                  "found": [str(find_config_file(name)) for name in sys.argv[1:]]}))
"""


def _run(command, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, command))} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
    return result


def _build_wheel(tmp_path: Path) -> Path:
    # From a copy of what the wheel is made of, so the build leaves nothing in the checkout and
    # no stale build/ folder there can leak into the wheel.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for name in ("albert_jax", "configs"):
        shutil.copytree(REPO / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "--disable-pip-version-check", "-q", "-w", dist, source])
    (wheel,) = dist.glob("albert_jax-*.whl")
    return wheel


def _venv_with_our_packages(venv: Path) -> Path:
    """A fresh virtual environment that sees this one's site-packages; returns its python."""
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    purelib = Path(sysconfig.get_path("purelib", "venv", vars={"base": venv, "platbase": venv}))
    (purelib / "test_packages.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return venv / "bin" / "python"


def test_installed_wheel_pretrains_from_any_directory(tmp_path):
    wheel = _build_wheel(tmp_path)
    venv = tmp_path / "venv"
    python = _venv_with_our_packages(venv)
    # pip comes from the shared site-packages; --ignore-installed leaves the editable albert_jax
    # seen there alone and installs the wheel into the new environment.
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed",
          "--disable-pip-version-check", "-q", wheel])

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(JAX_PLATFORMS="cpu", ALBERT_JAX_CACHE=str(tmp_path / "cache"))

    names = ["configs/pretrain/base.py", "pretrain/base.py", "pretrain/base"]
    where = json.loads(_run([python, "-c", _WHERE, *names], cwd=elsewhere, env=env).stdout)
    installed = venv.resolve()
    assert Path(where["package"]).resolve().is_relative_to(installed), where
    # Every file of configs/ ships, without being listed anywhere.
    assert where["shipped"] == sorted(p.relative_to(REPO / "configs").as_posix()
                                      for p in (REPO / "configs").rglob("*.py")), where
    found = {Path(path).resolve() for path in where["found"]}
    assert len(found) == 1 and found.pop().is_relative_to(installed), where

    workdir = tmp_path / "workdir"
    _run([venv / "bin" / "albert-jax", "pretrain", "--config.num_train_steps=2", "--workdir", workdir],
         cwd=elsewhere, env=env)
    assert (workdir / "checkpoints" / "2").is_dir(), sorted(p.name for p in workdir.rglob("*"))
    assert not (elsewhere / "albert_jax_workdirs").exists()
