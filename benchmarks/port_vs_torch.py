"""Check the Keras EfficientNet-Lite port against the PyTorch reference (optional, needs torch elsewhere).

torch is not a dependency of this project, so the reference runs in another
Python that has ``torch`` and ``efficientnet_lite_pytorch`` installed, e.g.

    python -m venv /tmp/torchref && /tmp/torchref/bin/pip install torch efficientnet_lite_pytorch numpy
    python -m benchmarks.port_vs_torch --torch-python /tmp/torchref/bin/python

It feeds both the same inputs (scikit-image's coffee photo and two noise
pictures at each variant's native size) and prints the largest differences.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

REFERENCE = """
import sys, numpy as np, torch
from efficientnet_lite_pytorch import EfficientNet
variant, checkpoint, inputs, output = sys.argv[1:5]
model = EfficientNet.from_name("efficientnet-" + variant)
model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True), strict=True)
model.eval()
with torch.no_grad():
    logits = model(torch.from_numpy(np.load(inputs).transpose(0, 3, 1, 2).copy())).double().numpy()
np.save(output, logits)
"""


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", required=True, help="a Python with torch and efficientnet_lite_pytorch")
    args = parser.parse_args()

    from skimage import data

    from ensemble.backbone import VARIANTS, build_lite, checkpoint_path, load_imagenet_weights
    from ensemble.preprocess import model_inputs, normalise

    coffee = Image.fromarray(data.coffee())
    rng = np.random.default_rng(0)
    print("| variant | max abs diff, probability | max abs diff, logit | top-1 keras / torch (coffee) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name, variant in VARIANTS.items():
            size = variant.native_size
            noise = [normalise(rng.integers(0, 256, (size, size, 3))) for _ in range(2)]
            inputs = np.concatenate([model_inputs(coffee, size, "crop"), np.stack(noise)])
            model = build_lite(name, classifier_activation=None)
            load_imagenet_weights(model, name)
            keras_logits = np.asarray(model(inputs, training=False), dtype=np.float64)
            inputs_path, output_path = Path(folder) / "in.npy", Path(folder) / "out.npy"
            np.save(inputs_path, inputs)
            subprocess.run(
                [args.torch_python, "-c", REFERENCE, name, str(checkpoint_path(name)), inputs_path, output_path],
                check=True,
            )
            torch_logits = np.load(output_path)
            probability_gap = np.abs(_softmax(keras_logits) - _softmax(torch_logits)).max()
            logit_gap = np.abs(keras_logits - torch_logits).max()
            tops = f"{keras_logits[0].argmax()} / {torch_logits[0].argmax()}"
            print(f"| {name} | {probability_gap:.1e} | {logit_gap:.1e} | {tops} |")


if __name__ == "__main__":
    main()
