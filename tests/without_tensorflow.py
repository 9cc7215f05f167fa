"""Running a test script as on a machine without TensorFlow: `run_without_tensorflow`."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

# Hides TensorFlow from every import finder: `import tensorflow` fails and `find_spec` says
# "not installed", as on a machine without it. (`sys.modules["tensorflow"] = None` is not that:
# tfds then believes TensorFlow is loaded and calls into it.) As a `sitecustomize` module it
# also runs in grain's worker processes.
WITHOUT_TENSORFLOW = """
import sys


class WithoutTensorFlow:
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            return None
        return self.finder.find_spec(name, path, target)

    def __getattr__(self, attribute):
        return getattr(self.finder, attribute)


sys.meta_path[:] = [WithoutTensorFlow(finder) for finder in sys.meta_path]
"""


def run_without_tensorflow(script: str, folder: Path) -> str:
    """Runs `script` (dedented) in a new Python whose `sitecustomize`, written to `folder`, hides
    TensorFlow; checks that it succeeds and imports no TensorFlow; returns its standard output."""
    (folder / "sitecustomize.py").write_text(WITHOUT_TENSORFLOW)
    checked = textwrap.dedent(script) + textwrap.dedent("""
        import sys
        assert type(sys.meta_path[0]).__name__ == "WithoutTensorFlow"
        assert "tensorflow" not in {m.split(".")[0] for m in sys.modules}
        """)
    pythonpath = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", checked], check=False, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": pythonpath}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
