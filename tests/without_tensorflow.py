"""What test subprocesses that must run as on a machine without TensorFlow use as `sitecustomize`."""

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
