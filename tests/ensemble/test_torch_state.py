"""The numpy-only reader of PyTorch legacy checkpoints, on files written inside the tests."""

import collections
import io
import os
import pickle
import struct
import sys
import types

import numpy as np
import pytest

from ensemble.torch_state import UnsafeCheckpointError, load_legacy_state_dict

MAGIC = 0x1950A86A20F9469CFC6C


@pytest.fixture
def fake_torch(monkeypatch):
    """Just enough of a `torch` module for pickle to name its classes, as torch.save does."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    class LongStorage:
        pass

    FloatStorage.__module__ = LongStorage.__module__ = "torch"
    FloatStorage.__qualname__, LongStorage.__qualname__ = "FloatStorage", "LongStorage"

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    torch.FloatStorage, torch.LongStorage, torch._utils = FloatStorage, LongStorage, utils
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


class _Storage:
    def __init__(self, key, storage_type, array):
        self.key, self.storage_type, self.array = key, storage_type, array


class _Tensor:
    def __init__(self, storage, offset, shape, stride):
        self.args = (storage, offset, shape, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return sys.modules["torch._utils"]._rebuild_tensor_v2, self.args


class _LegacyPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", obj.storage_type, obj.key, "cpu", obj.array.size, None)
        return None


def write_legacy(path, tensors, torch, extra_object=None):
    """Write a state dict in torch's legacy layout: pickles, then raw storages."""
    storages, state = [], collections.OrderedDict()
    for index, (name, array) in enumerate(tensors.items()):
        storage_type = torch.LongStorage if array.dtype == np.int64 else torch.FloatStorage
        storage = _Storage(str(index), storage_type, np.ascontiguousarray(array).reshape(-1))
        storages.append(storage)
        stride = tuple(s // array.itemsize for s in np.ascontiguousarray(array).strides)
        state[name] = _Tensor(storage, 0, tuple(array.shape), stride)
    if extra_object is not None:
        state["extra"] = extra_object
    buffer = io.BytesIO()
    for header in (MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, buffer, protocol=2)
    _LegacyPickler(buffer, protocol=2).dump(state)
    pickle.dump([s.key for s in storages], buffer, protocol=2)
    for storage in storages:
        buffer.write(struct.pack("<q", storage.array.size))
        buffer.write(storage.array.tobytes())
    path.write_bytes(buffer.getvalue())


def test_reads_tensors_with_their_shapes_and_values(tmp_path, fake_torch):
    tensors = {
        "conv.weight": np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3),
        "bn.num_batches_tracked": np.array(7, dtype=np.int64),
        "fc.bias": np.array([0.5, -1.5], dtype=np.float32),
    }
    path = tmp_path / "model.pth"
    write_legacy(path, tensors, fake_torch)
    loaded = load_legacy_state_dict(path)
    assert list(loaded) == list(tensors)
    for name, array in tensors.items():
        np.testing.assert_array_equal(loaded[name], array)
        assert loaded[name].dtype == array.dtype


def test_refuses_code_hidden_in_the_pickle(tmp_path, fake_torch):
    class Exploit:
        def __reduce__(self):
            return os.system, ("echo owned",)

    path = tmp_path / "evil.pth"
    write_legacy(path, {"w": np.zeros(2, np.float32)}, fake_torch, extra_object=Exploit())
    with pytest.raises(UnsafeCheckpointError, match="posix.system|os.system|system"):
        load_legacy_state_dict(path)


def test_truncated_checkpoint_is_a_clear_error(tmp_path, fake_torch):
    path = tmp_path / "cut.pth"
    write_legacy(path, {"w": np.ones((4, 4), np.float32)}, fake_torch)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        load_legacy_state_dict(path)


def test_zip_format_is_rejected(tmp_path):
    path = tmp_path / "new.pth"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    with pytest.raises(ValueError, match="not a legacy"):
        load_legacy_state_dict(path)
