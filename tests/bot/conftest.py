"""Fixtures shared by the bot tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def analyst_parts():
    """An untrained two-member ensemble at 64 px and its explainer, built once per test session."""
    from ensemble.classifier import build_classifier
    from ensemble.detector import Detector
    from explain.explainer import Explainer

    models = [build_classifier("lite0", 64, imagenet=False, name=f"tiny{i}") for i in range(2)]
    manifest = {
        "members": [{"name": f"tiny{i}", "input_size": 64, "held_out_fold": i} for i in range(2)],
        "calibration": {"scale": 1.0, "shift": 0.0},
        "unsure": {"half_width": 0.1},
        "preprocess": {"policy": "crop"},
    }
    detector = Detector(manifest, models)
    return detector, Explainer(detector, image_format="jpeg")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real redis-server on a free loopback port for the session (skipped, with the reason, when absent)."""
    import shutil
    import socket
    import subprocess
    import time

    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (scripts/setup.sh installs it where apt is available)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)
