"""What an ONNX conversion of the ensemble is made of on disk: its sidecar, file hashes and the weights it
came from. Shared by the converter (``ensemble.onnx_export``) and the server (``ensemble.onnx_runtime``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

SIDECAR = "onnx.json"
SHIPPED = "onnx"  # the checked conversion shipped inside the weights folder


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_of(manifest: dict) -> dict[str, str]:
    """The weights an export comes from: member name -> SHA-256 of its weights (or head) file."""
    return {member["name"]: member["weights_sha256"] for member in manifest["members"]}
