"""Writes the golden workdir of this folder. Run it once per checkpoint format, never to make a
failing test pass (that test is the promise that older runs keep resuming):

    PYTHONPATH=. JAX_PLATFORMS=cpu python tests/data/golden_checkpoint/make.py

workdir/ is a run of config.py stopped after its step-2 checkpoint (the files a resume needs);
expected.json holds the losses of steps 3-10 of the uninterrupted run, which a resume must give.
"""

import json
import shutil
import tempfile
from pathlib import Path

from albert_jax.tasks.registry import resolve
from albert_jax.train import checkpoint, loop
from albert_jax.train import config as config_lib

HERE = Path(__file__).parent
KEPT = ("config.json", "train_config.json", "checkpoints/2")


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        run = Path(scratch) / "run"
        loop.train(resolve(config_lib.load_config(str(HERE / "config.py"))), str(run))
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        shutil.rmtree(HERE / "workdir", ignore_errors=True)
        for name in KEPT:
            copy = shutil.copytree if (run / name).is_dir() else shutil.copyfile
            (HERE / "workdir" / name).parent.mkdir(parents=True, exist_ok=True)
            copy(run / name, HERE / "workdir" / name)
    expected = {"format": checkpoint.FORMAT,
                "losses": {r["step"]: r["loss"] for r in records if r["step"] > 2}}
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")


if __name__ == "__main__":
    main()
