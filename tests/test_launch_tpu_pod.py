"""scripts/launch_tpu_pod.sh against a fake `gcloud` whose two "workers" are home folders here:
its ssh runs the command with bash in each, its scp copies into each. On the workers, `python3`
(only asked to install uv) and uv itself are fakes that record what they are asked; the wheel
is built for real, from this checkout, offline."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "launch_tpu_pod.sh"

_GCLOUD = r'''#!PYTHON
"""gcloud compute tpus tpu-vm ssh|scp, for the workers below WORKERS: ssh runs --command with bash
in each worker's home (its fake tools first on PATH), scp copies SOURCE to NAME:DEST in each."""
import json, os, shutil, subprocess, sys
from pathlib import Path
root = Path(os.environ["FAKE_POD"])
args = sys.argv[1:]
with open(root / "gcloud.jsonl", "a") as log:
    log.write(json.dumps(args) + "\n")
assert args[:3] == ["compute", "tpus", "tpu-vm"] and "--worker=all" in args, args
for home in sorted((root / "workers").iterdir()):
    if args[3] == "ssh":
        command = args[args.index("--command") + 1]
        env = dict(os.environ, HOME=str(home), PATH=f"{root / 'worker_bin'}:{os.environ['PATH']}")
        code = subprocess.run(["bash", "-c", command], cwd="/", env=env).returncode
        if code:
            sys.exit(code)
    else:
        source, destination = args[4], args[5].split(":", 1)[1]
        shutil.copy(source, home / destination)
'''

# The worker's python3: only `-m pip install ... uv`, which puts the fake uv in ~/.local/bin.
_PYTHON3 = r'''#!/usr/bin/env bash
[[ "$*" == *"-m pip install"*" uv" ]] || { echo "unexpected python3 $*" >&2; exit 1; }
mkdir -p ~/.local/bin && cp "$FAKE_POD/uv" ~/.local/bin/uv
'''

# uv: `venv DIR` makes DIR/bin/albert-jax, which records its arguments, folder and PATH;
# `pip install` records what it installs.
_UV = r'''#!PYTHON
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
with open(Path(os.environ["HOME"]) / "uv.jsonl", "a") as log:
    log.write(json.dumps(args) + "\n")
if args[0] == "venv":
    bin_dir = Path(args[-1]) / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text("")
    albert_jax = bin_dir / "albert-jax"
    albert_jax.write_text(f"#!{sys.executable}\n" + """import json, os, sys
from pathlib import Path
with open(Path(os.environ["HOME"]) / "albert-jax.jsonl", "a") as log:
    log.write(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "path": os.environ["PATH"]}) + "\\n")
""")
    albert_jax.chmod(0o755)
'''


def _executable(path: Path, text: str) -> None:
    path.write_text(text.replace("#!PYTHON", f"#!{sys.executable}"))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def pod(tmp_path):
    """Two worker homes, the fake tools, and the environment to run the script in."""
    for worker in ("0", "1"):
        (tmp_path / "workers" / worker).mkdir(parents=True)
    (tmp_path / "bin").mkdir()
    (tmp_path / "worker_bin").mkdir()
    _executable(tmp_path / "bin" / "gcloud", _GCLOUD)
    _executable(tmp_path / "worker_bin" / "python3", _PYTHON3)
    _executable(tmp_path / "uv", _UV)
    # python3 here is this environment's: it builds the wheel, offline, with this setuptools.
    _executable(tmp_path / "bin" / "python3", f'#!/usr/bin/env bash\nexec "{sys.executable}" "$@"\n')
    env = dict(os.environ, FAKE_POD=str(tmp_path), PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}",
               PIP_NO_BUILD_ISOLATION="false", PIP_NO_INDEX="1")
    env.pop("SETUP", None)
    env.pop("ALBERT_JAX_SOURCE", None)
    return tmp_path, env


def _launch(env, *args, **variables) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], env=dict(env, **variables), capture_output=True,
                          text=True, timeout=600)


def _lines(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


COMMAND = ["albert-jax", "pretrain", "--config", "pretrain/base.py:v2", "--workdir", "gs://b/runs/it's $HOME"]


def test_the_command_runs_on_every_worker_from_home_with_the_environment_first(pod):
    root, env = pod
    for worker in ("0", "1"):  # as SETUP=1 left them
        home = root / "workers" / worker
        subprocess.run([str(root / "uv"), "venv", str(home / "albert_jax_env")], env=dict(env, HOME=str(home)),
                       check=True)
    result = _launch(env, "my-v5p-128", "us-east5-a", "my-project", "--", *COMMAND)
    assert result.returncode == 0, result.stderr
    for worker in ("0", "1"):
        home = root / "workers" / worker
        (run,) = _lines(home / "albert-jax.jsonl")
        assert run["argv"] == COMMAND[1:], "arguments arrive whole, unexpanded"
        assert run["cwd"] == str(home)
        assert run["path"].startswith(f"{home}/albert_jax_env/bin:")
    (ssh,) = _lines(root / "gcloud.jsonl")
    assert ssh[3:7] == ["ssh", "my-v5p-128", "--zone", "us-east5-a"] and ssh[7:9] == ["--project", "my-project"]


def test_setup_installs_a_wheel_of_this_checkout_with_libtpu_in_a_python_311_environment(pod):
    root, env = pod
    result = _launch(env, "my-v5p-128", "us-east5-a", "--", *COMMAND, SETUP="1")
    assert result.returncode == 0, result.stderr
    for worker in ("0", "1"):
        home = root / "workers" / worker
        (wheel,) = (home / "albert_jax_wheel").iterdir()
        assert wheel.name.startswith("albert_jax-") and wheel.suffix == ".whl"
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
        assert "albert_jax/cli.py" in names and "albert_jax/configs/pretrain/base.py" in names
        venv, install = _lines(home / "uv.jsonl")
        assert venv == ["venv", "-q", "--python", ">=3.11", f"{home}/albert_jax_env"]
        assert install == ["pip", "install", "-q", "--python", f"{home}/albert_jax_env/bin/python",
                           f"albert_jax[tpu] @ file://{home}/albert_jax_wheel/{wheel.name}"]
        (run,) = _lines(home / "albert-jax.jsonl")
        assert run["argv"] == COMMAND[1:]
    assert not list(root.glob("workers/*/albert_jax")), "no checkout is copied"


def test_setup_from_a_requirement_copies_nothing(pod):
    root, env = pod
    source = "git+https://github.com/example/albert_jax.git@v0.1.0"
    result = _launch(env, "my-v5p-128", "us-east5-a", "--", *COMMAND, SETUP="1", ALBERT_JAX_SOURCE=source)
    assert result.returncode == 0, result.stderr
    for worker in ("0", "1"):
        home = root / "workers" / worker
        assert not (home / "albert_jax_wheel").exists()
        _, install = _lines(home / "uv.jsonl")
        assert install[-1] == f"albert_jax[tpu] @ {source}"
    assert all(call[3] == "ssh" for call in _lines(root / "gcloud.jsonl"))


@pytest.mark.parametrize("args", [[], ["my-tpu", "zone"], ["my-tpu", "zone", "albert-jax"],
                                  ["my-tpu", "zone", "project", "--"]])
def test_a_call_without_a_command_after_the_separator_prints_the_usage(pod, args):
    root, env = pod
    result = _launch(env, *args)
    assert result.returncode == 2
    assert result.stderr.startswith("usage:")
    assert not (root / "gcloud.jsonl").exists()
