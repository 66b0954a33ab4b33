"""A tiny CIFAR-10 fixture written independently of trainer.cifar and of the photo script's writer.

Nothing here imports the code under test: the batch layout (R plane, then G, then B, each
32x32 row-major) is spelled out with explicit index arithmetic, so a wrong reshape in the
loader or the writer cannot be mirrored by the same mistake in the fixture.
"""

from __future__ import annotations

import importlib.util
import pickle
import struct
import tarfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
NUM_BATCHES = 5
PER_BATCH = 4
NUM_TRAIN = NUM_BATCHES * PER_BATCH
NUM_TEST = 3
TEST_ID_OFFSET = 100  # test images get ids 100.. so they can never be confused with train ones
PHOTO_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_cifar_from_photos.py"


def pixel_value(image_id: int, channel: int, y: int, x: int) -> int:
    """The known value of channel ``channel`` at row ``y``, column ``x`` of image ``image_id``.

    Each channel has its own formula (R varies with x, G with y, B with both), so swapped
    planes, swapped H/W or a plane-interleaving mistake all change some checked value; the
    image id term makes every image (and thus batch order) distinguishable.
    """
    if channel == 0:
        return (image_id * 11 + x * 7) % 256
    if channel == 1:
        return (image_id * 13 + y * 5 + 100) % 256
    return (image_id * 17 + x * 3 + y * 2 + 200) % 256


def train_label(index: int) -> int:
    return (index * 3) % 10


def testset_label(index: int) -> int:
    return (index * 7 + 1) % 10


def planar_row(image_id: int) -> np.ndarray:
    """One CIFAR data row (3072 uint8), built element by element: index = c*1024 + y*32 + x."""
    row = bytearray(3072)
    for c in range(3):
        for y in range(32):
            for x in range(32):
                row[c * 1024 + y * 32 + x] = pixel_value(image_id, c, y, x)
    return np.frombuffer(bytes(row), dtype=np.uint8)


def expected_image(image_id: int) -> np.ndarray:
    """The same image as (32, 32, 3) RGB, again element by element."""
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    for y in range(32):
        for x in range(32):
            for c in range(3):
                image[y, x, c] = pixel_value(image_id, c, y, x)
    return image


def expected_train() -> tuple[np.ndarray, np.ndarray]:
    images = np.stack([expected_image(i) for i in range(NUM_TRAIN)])
    labels = np.array([train_label(i) for i in range(NUM_TRAIN)], dtype=np.int64)
    return images, labels


def expected_test() -> tuple[np.ndarray, np.ndarray]:
    images = np.stack([expected_image(TEST_ID_OFFSET + i) for i in range(NUM_TEST)])
    labels = np.array([testset_label(i) for i in range(NUM_TEST)], dtype=np.int64)
    return images, labels


def train_batch_dict(batch: int) -> dict[bytes, Any]:
    """data_batch_<batch> (1-based) as the official files hold it: bytes keys, list labels."""
    ids = range((batch - 1) * PER_BATCH, batch * PER_BATCH)
    return {
        b"batch_label": f"training batch {batch} of {NUM_BATCHES}".encode(),
        b"labels": [train_label(i) for i in ids],
        b"data": np.stack([planar_row(i) for i in ids]),
        b"filenames": [f"train_{i}.png".encode() for i in ids],
    }


def testset_batch_dict() -> dict[bytes, Any]:
    return {
        b"batch_label": b"testing batch 1 of 1",
        b"labels": [testset_label(i) for i in range(NUM_TEST)],
        b"data": np.stack([planar_row(TEST_ID_OFFSET + i) for i in range(NUM_TEST)]),
        b"filenames": [f"test_{i}.png".encode() for i in range(NUM_TEST)],
    }


def meta_dict() -> dict[bytes, Any]:
    return {
        b"num_cases_per_batch": PER_BATCH,
        b"label_names": [name.encode() for name in LABEL_NAMES],
        b"num_vis": 3072,
    }


def dump_protocol2(obj: Any, path: Path) -> None:
    with path.open("wb") as f:
        pickle.dump(obj, f, protocol=2)


class _Py2StylePickler(pickle._Pickler):  # type: ignore[name-defined]  # pure-Python pickler
    """Writes str and bytes the way Python 2 wrote its ``str``: as (SHORT_)BINSTRING opcodes."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_py2_str(self, obj: str | bytes) -> None:
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str


def dump_py2_style(obj: Any, path: Path) -> None:
    """Imitate a batch pickled by Python 2 + numpy 1.x, like the official files.

    No ``_codecs.encode`` calls (strings are raw BINSTRINGs, which ``encoding="bytes"`` turns
    into bytes, including numpy's dtype arguments) and the numpy 1.x module path
    ``numpy.core.multiarray`` for ``_reconstruct``.
    """
    import io

    buffer = io.BytesIO()
    _Py2StylePickler(buffer, protocol=2).dump(obj)
    # Protocol 2 names globals as text lines ("c<module>\n<name>\n"), so renaming the module
    # needs no length bookkeeping.
    data = buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    path.write_bytes(data)


def write_fixture_folder(parent: Path, dump: Callable[[Any, Path], None] = dump_protocol2) -> Path:
    """Write parent/cifar-10-batches-py with 5 train batches of 4 images and a test batch of 3."""
    folder = parent / FOLDER
    folder.mkdir(parents=True)
    for batch in range(1, NUM_BATCHES + 1):
        dump(train_batch_dict(batch), folder / f"data_batch_{batch}")
    dump(testset_batch_dict(), folder / "test_batch")
    dump(meta_dict(), folder / "batches.meta")
    return folder


def write_fixture_archive(archive: Path, staging: Path) -> Path:
    """tar.gz the fixture folder (built under ``staging``) with the real top-level name."""
    folder = write_fixture_folder(staging)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=FOLDER)
    return archive


def load_photo_script() -> ModuleType:
    """scripts/make_cifar_from_photos.py as a module: it holds the CIFAR-10 writer, ``write_cifar10``.

    Loaded from its path because scripts/ is not a package (nothing installs it).
    """
    spec = importlib.util.spec_from_file_location("make_cifar_from_photos", PHOTO_SCRIPT)
    assert spec is not None and spec.loader is not None, PHOTO_SCRIPT
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
