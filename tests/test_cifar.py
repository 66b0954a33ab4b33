"""Tests for trainer.cifar (and its cifar_batches / cifar_archive parts): loading, safe
unpickling, safe extraction, download; and for the CIFAR writer of scripts/make_cifar_from_photos.py.

All data is generated in tmp_path (see cifar_fixture.py); the download tests use a loopback
HTTP server, so nothing touches the network.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import pickle
import pickletools
import shlex
import socket
import tarfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from labcolor.trainer import cifar, cifar_archive, cifar_batches
from labcolor.trainer.cifar import (
    ARCHIVE_NAME,
    FOLDER_NAME,
    CifarError,
    download_cifar10,
    is_cifar10,
    load_cifar10,
    read_batch,
    safe_extract,
)
from tests import cifar_fixture as fx

# The writer's signature, for the fixture below (the script is loaded from its path).
WriteCifar10 = Callable[..., Path]


def _tree(root: Path) -> set[str]:
    """Every path under root (relative, as posix strings), to prove nothing else got written."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return fx.write_fixture_folder(tmp_path / "data")


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    return fx.write_fixture_archive(tmp_path / "dl" / ARCHIVE_NAME, tmp_path / "staging")


@pytest.fixture(scope="module")
def write_cifar10() -> WriteCifar10:
    return fx.load_photo_script().write_cifar10


# --------------------------------------------------------------------------- loading the fixture


def _check_train(split: cifar.CifarSplit) -> None:
    assert split.images.shape == (fx.NUM_TRAIN, 32, 32, 3)
    assert split.images.dtype == np.uint8
    assert split.images.flags.c_contiguous
    assert split.labels.shape == (fx.NUM_TRAIN,)
    assert split.labels.dtype == np.int64
    assert split.label_names == fx.LABEL_NAMES
    assert len(split) == fx.NUM_TRAIN
    # Spot checks spelled out by hand: image id, (y, x), channel -> value from the formulas.
    # Image 0 (batch 1): R = 7x, G = 5y + 100, B = 3x + 2y + 200 (mod 256).
    assert split.images[0, 0, 0].tolist() == [0, 100, 200]
    assert split.images[0, 0, 31].tolist() == [217, 100, 37]  # x=31: R=217, B=(93+200)%256
    assert split.images[0, 31, 0].tolist() == [0, 255, 6]  # y=31: G=255, B=(62+200)%256
    # Image 13 (batch 4, position 1) at y=2, x=5: R=(143+35)%256, G=(169+10+100)%256, B=(221+15+4+200)%256.
    assert split.images[13, 2, 5].tolist() == [178, 23, 184]
    # Batch order: image k of the concatenation is fixture image k, labels likewise.
    expected_images, expected_labels = fx.expected_train()
    np.testing.assert_array_equal(split.images, expected_images)
    np.testing.assert_array_equal(split.labels, expected_labels)


def _check_test(split: cifar.CifarSplit) -> None:
    expected_images, expected_labels = fx.expected_test()
    assert split.images.shape == (fx.NUM_TEST, 32, 32, 3)
    assert split.images.dtype == np.uint8
    assert split.labels.dtype == np.int64
    assert split.label_names == fx.LABEL_NAMES
    # Test image 0 has id 100: R=(1100)%256 at x=0.
    assert int(split.images[0, 0, 0, 0]) == 1100 % 256
    np.testing.assert_array_equal(split.images, expected_images)
    np.testing.assert_array_equal(split.labels, expected_labels)


def test_load_from_extracted_folder(folder: Path) -> None:
    _check_train(load_cifar10(folder))
    _check_train(load_cifar10(folder, "train"))
    _check_test(load_cifar10(folder, "test"))


def test_load_from_parent_folder(folder: Path) -> None:
    _check_train(load_cifar10(folder.parent))
    _check_test(load_cifar10(folder.parent, split="test"))


def test_load_from_archive_extracts_once_next_to_it(archive: Path) -> None:
    _check_train(load_cifar10(archive))
    extracted = archive.parent / FOLDER_NAME
    assert extracted.is_dir()
    # Nothing but the archive and the folder: no staging directory was left behind.
    assert sorted(p.name for p in archive.parent.iterdir()) == sorted([ARCHIVE_NAME, FOLDER_NAME])

    # A second load must reuse the folder, not re-extract over it.
    marker = extracted / "marker"
    marker.write_text("kept")
    _check_test(load_cifar10(archive, "test"))
    assert marker.read_text() == "kept"


def test_load_from_folder_containing_only_the_archive(archive: Path) -> None:
    _check_test(load_cifar10(archive.parent, "test"))
    assert (archive.parent / FOLDER_NAME / "test_batch").is_file()


def test_load_python2_style_pickles(tmp_path: Path) -> None:
    """Batches shaped like the official ones: raw BINSTRINGs and numpy.core globals."""
    folder = fx.write_fixture_folder(tmp_path, dump=fx.dump_py2_style)
    raw = (folder / "data_batch_1").read_bytes()
    globals_used = {arg for op, arg, _ in pickletools.genops(raw) if op.name == "GLOBAL"}
    assert globals_used == {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
    _check_train(load_cifar10(folder))
    _check_test(load_cifar10(folder, "test"))


def test_read_batch_normalizes_keys(folder: Path) -> None:
    batch = read_batch(folder / "data_batch_2")
    assert set(batch) == {"batch_label", "labels", "data", "filenames"}
    assert all(isinstance(k, str) for k in batch)
    assert batch["batch_label"] == b"training batch 2 of 5"
    assert batch["labels"] == [fx.train_label(i) for i in range(4, 8)]
    assert batch["filenames"] == [f"train_{i}.png".encode() for i in range(4, 8)]
    data = batch["data"]
    assert isinstance(data, np.ndarray) and data.shape == (4, 3072)
    np.testing.assert_array_equal(data[0], fx.planar_row(4))


def test_read_batch_accepts_str_keys(tmp_path: Path) -> None:
    batch = {k.decode(): v for k, v in fx.train_batch_dict(1).items()}
    path = tmp_path / "batch"
    fx.dump_protocol2(batch, path)
    assert read_batch(path)["labels"] == batch["labels"]


def test_split_argument_is_checked(folder: Path) -> None:
    with pytest.raises(ValueError, match="split"):
        load_cifar10(folder, "validation")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- is_cifar10


def test_is_cifar10_accepts_all_layouts(folder: Path, archive: Path) -> None:
    assert is_cifar10(folder)
    assert is_cifar10(folder.parent)
    assert is_cifar10(archive)
    assert is_cifar10(archive.parent)  # contains only the archive


def test_is_cifar10_rejects_other_things(tmp_path: Path) -> None:
    assert not is_cifar10(tmp_path / "does-not-exist")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not is_cifar10(empty)
    junk = tmp_path / ARCHIVE_NAME
    junk.write_bytes(b"not a tar file at all")
    assert not is_cifar10(junk)
    assert not is_cifar10(tmp_path)  # contains a junk file under the archive name
    other = tmp_path / "other.tar.gz"
    with tarfile.open(other, "w:gz") as tar:
        info = tarfile.TarInfo("something-else/readme.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    assert not is_cifar10(other)
    partial = tmp_path / "partial" / FOLDER_NAME
    partial.mkdir(parents=True)
    (partial / "data_batch_1").write_bytes(b"")
    assert not is_cifar10(partial)


# --------------------------------------------------------------------------- write_cifar10 (scripts/make_cifar_from_photos.py)


def _random_dataset(n_train: int, n_test: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train),
        "test_images": rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test),
        "label_names": [f"class{i}" for i in range(10)],
    }


@pytest.mark.parametrize("num_batches", [5, 3, 1])
def test_write_then_load_round_trip(tmp_path: Path, num_batches: int, write_cifar10: WriteCifar10) -> None:
    ds = _random_dataset(23, 7)
    out = write_cifar10(tmp_path, **ds, num_train_batches=num_batches)
    assert out == tmp_path / FOLDER_NAME
    assert {p.name for p in out.iterdir()} == {
        *(f"data_batch_{i}" for i in range(1, num_batches + 1)),
        "test_batch",
        "batches.meta",
    }
    assert [p.name for p in tmp_path.iterdir()] == [FOLDER_NAME]  # no staging leftovers
    train = load_cifar10(out)
    np.testing.assert_array_equal(train.images, ds["train_images"])
    np.testing.assert_array_equal(train.labels, ds["train_labels"])
    assert train.label_names == ds["label_names"]
    test = load_cifar10(tmp_path, "test")
    np.testing.assert_array_equal(test.images, ds["test_images"])
    np.testing.assert_array_equal(test.labels, ds["test_labels"])


def test_written_files_have_the_official_format(tmp_path: Path, write_cifar10: WriteCifar10) -> None:
    ds = _random_dataset(10, 4, seed=1)
    out = write_cifar10(tmp_path, **ds, num_train_batches=3, train_filenames=[f"p{i}.jpg" for i in range(10)])
    sizes = []
    labels: list[int] = []
    for i in range(1, 4):
        raw = (out / f"data_batch_{i}").read_bytes()
        assert raw[:2] == b"\x80\x02"  # protocol 2
        batch = pickle.loads(raw, encoding="bytes")  # our own file: plain pickle is fine here
        assert set(batch) == {b"batch_label", b"labels", b"data", b"filenames"}
        assert batch[b"batch_label"] == f"training batch {i} of 3".encode()
        assert type(batch[b"labels"]) is list and all(type(v) is int for v in batch[b"labels"])
        data = batch[b"data"]
        assert data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072 and data.flags.c_contiguous
        assert all(isinstance(n, bytes) for n in batch[b"filenames"])
        sizes.append(data.shape[0])
        labels += batch[b"labels"]
    assert sum(sizes) == 10 and min(sizes) >= 3
    assert labels == ds["train_labels"].tolist()  # batches in order

    first = pickle.loads((out / "data_batch_1").read_bytes(), encoding="bytes")
    row = first[b"data"][0]
    image = ds["train_images"][0]
    # Plane layout: R plane, G plane, B plane, each 32x32 row-major.
    np.testing.assert_array_equal(row[:1024], image[:, :, 0].ravel())
    np.testing.assert_array_equal(row[1024:2048], image[:, :, 1].ravel())
    np.testing.assert_array_equal(row[2048:], image[:, :, 2].ravel())
    assert row[1 * 32 + 2] == image[1, 2, 0]  # y=1, x=2 of the red plane
    assert first[b"filenames"][0] == b"p0.jpg"

    test = pickle.loads((out / "test_batch").read_bytes(), encoding="bytes")
    assert test[b"batch_label"] == b"testing batch 1 of 1"
    assert test[b"data"].shape == (4, 3072)

    meta = pickle.loads((out / "batches.meta").read_bytes(), encoding="bytes")
    assert set(meta) == {b"num_cases_per_batch", b"label_names", b"num_vis"}
    assert meta[b"label_names"] == [f"class{i}".encode() for i in range(10)]
    assert meta[b"num_vis"] == 3072
    assert meta[b"num_cases_per_batch"] == max(sizes)


def test_writer_matches_independent_fixture_layout(tmp_path: Path, write_cifar10: WriteCifar10) -> None:
    """write_cifar10 of the fixture images produces byte-identical data rows to the fixture."""
    images, labels = fx.expected_train()
    test_images, test_labels = fx.expected_test()
    out = write_cifar10(tmp_path, images, labels, test_images, test_labels, fx.LABEL_NAMES)
    for batch in range(1, 6):
        written = pickle.loads((out / f"data_batch_{batch}").read_bytes(), encoding="bytes")
        reference = fx.train_batch_dict(batch)
        np.testing.assert_array_equal(written[b"data"], reference[b"data"])
        assert written[b"labels"] == reference[b"labels"]


def test_write_refuses_to_overwrite_unless_asked(tmp_path: Path, write_cifar10: WriteCifar10) -> None:
    write_cifar10(tmp_path, **_random_dataset(10, 2, seed=2), num_train_batches=5)
    replacement = _random_dataset(6, 2, seed=3)
    with pytest.raises(FileExistsError):
        write_cifar10(tmp_path, **replacement, num_train_batches=2)
    out = write_cifar10(tmp_path, **replacement, num_train_batches=2, overwrite=True)
    # Stale data_batch_3..5 from the first write must be gone, or they would be loaded.
    assert sorted(p.name for p in out.iterdir()) == ["batches.meta", "data_batch_1", "data_batch_2", "test_batch"]
    np.testing.assert_array_equal(load_cifar10(out).images, replacement["train_images"])
    assert [p.name for p in tmp_path.iterdir()] == [FOLDER_NAME]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"train_images": np.zeros((4, 32, 32, 3), dtype=np.float32)}, ValueError),
        ({"train_images": np.zeros((4, 3, 32, 32), dtype=np.uint8)}, ValueError),
        ({"train_images": [[0]]}, TypeError),
        ({"test_images": np.zeros((0, 32, 32, 3), dtype=np.uint8), "test_labels": np.zeros(0, int)}, ValueError),
        ({"train_labels": np.array([0, 1, 2, 10, 4, 5, 6, 7, 8, 9])}, ValueError),
        ({"train_labels": np.array([0, 1, 2, -1, 4, 5, 6, 7, 8, 9])}, ValueError),
        ({"train_labels": np.zeros(9, int)}, ValueError),
        ({"train_labels": np.zeros(10, float)}, ValueError),
        ({"label_names": ["a"] * 9}, ValueError),
        ({"label_names": ["a"] * 9 + [""]}, ValueError),
        ({"num_train_batches": 0}, ValueError),
        ({"num_train_batches": 11}, ValueError),
    ],
)
def test_write_rejects_bad_arguments(
    tmp_path: Path, change: dict[str, Any], error: type[Exception], write_cifar10: WriteCifar10
) -> None:
    args = {**_random_dataset(10, 2), "num_train_batches": 5, **change}
    with pytest.raises(error):
        write_cifar10(tmp_path, **args)
    assert not (tmp_path / FOLDER_NAME).exists()


# --------------------------------------------------------------------------- malicious pickles


class _Payload:
    """Pickles as a call of ``func(*args)``: what an attacker would put in a batch file."""

    def __init__(self, func: Callable[..., Any], *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.func, self.args


def _payloads(marker: Path) -> dict[str, _Payload]:
    code = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": _Payload(os.system, f"touch {shlex.quote(str(marker))}"),
        "builtins.eval": _Payload(eval, code),
        "builtins.exec": _Payload(exec, code),
        # A numpy global that is not on the allow-list: the check is by exact name, not module.
        "numpy.save": _Payload(np.save, str(marker), np.zeros(1)),
    }


def _malicious_batch(payload: _Payload) -> bytes:
    batch = fx.train_batch_dict(1)
    batch[b"batch_label"] = payload  # hidden inside an otherwise valid batch
    return pickle.dumps(batch, protocol=2)


@pytest.mark.parametrize("kind", ["builtins.eval", "numpy.save"])
def test_payloads_are_live_under_plain_pickle(tmp_path: Path, kind: str) -> None:
    """Control: the payloads really run code when loaded with pickle.load, so the next test means something."""
    marker = tmp_path / "marker.npy"
    pickle.loads(_malicious_batch(_payloads(marker)[kind]), encoding="bytes")
    assert marker.exists()


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval", "builtins.exec", "numpy.save"])
def test_malicious_pickle_is_refused_without_running_code(folder: Path, tmp_path: Path, kind: str) -> None:
    if kind == "os.system" and os.name != "posix":
        pytest.skip("the os.system payload uses a POSIX shell command")
    marker = tmp_path / "marker.npy"
    (folder / "data_batch_1").write_bytes(_malicious_batch(_payloads(marker)[kind]))

    with pytest.raises(CifarError, match="refuses to load global") as excinfo:
        load_cifar10(folder)
    message = str(excinfo.value)
    assert "data_batch_1" in message
    assert kind.split(".")[-1] in message  # names the refused global (os.system pickles as posix.system)
    with pytest.raises(CifarError, match="refuses to load global"):
        read_batch(folder / "data_batch_1")
    assert not marker.exists()


def test_codecs_encode_only_for_latin1(tmp_path: Path) -> None:
    """_codecs.encode is allowed for protocol-2 bytes, but not with other codecs."""
    import codecs

    path = tmp_path / "data_batch_1"
    batch = fx.train_batch_dict(1)
    batch[b"batch_label"] = _Payload(codecs.encode, "eJzLSM3JyQcABiwCFQ==", "base64")
    path.write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(CifarError, match="data_batch_1"):
        read_batch(path)


def test_allowed_callables_cannot_be_modified_by_a_pickle(tmp_path: Path) -> None:
    """BUILD on an allowed global must not plant state that later loads would see."""
    path = tmp_path / "data_batch_1"
    # GLOBAL _codecs.encode, then BUILD with (None, {"x": 1}) -> setattr(encode, "x", 1).
    path.write_bytes(b"\x80\x02c_codecs\nencode\nN}X\x01\x00\x00\x00xK\x01s\x86b.")
    with pytest.raises(CifarError, match="data_batch_1"):
        read_batch(path)
    assert not hasattr(cifar_batches._allowed_globals()[("_codecs", "encode")], "x")


# --------------------------------------------------------------------------- malformed batches


def _with(**changes: Any) -> Callable[[], Any]:
    def make() -> dict[bytes, Any]:
        batch = fx.train_batch_dict(2)
        for key, value in changes.items():
            if value is _DELETE:
                del batch[key.encode()]
            else:
                batch[key.encode()] = value
        return batch

    return make


_DELETE = object()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: [1, 2, 3], "expected a pickled dict"),
        (_with(data=_DELETE), "missing required key"),
        (_with(labels=_DELETE), "missing required key"),
        (_with(data=np.zeros((4, 3071), np.uint8)), r"shape \(N, 3072\)"),
        (_with(data=np.zeros((4, 32, 32, 3), np.uint8)), r"shape \(N, 3072\)"),
        (_with(data=np.zeros(4 * 3072, np.uint8)), r"shape \(N, 3072\)"),
        (_with(data=np.zeros((4, 3072), np.float32)), "must be uint8"),
        (_with(data=b"\x00" * (4 * 3072)), "must be a numpy array"),
        (_with(labels=[0, 1, 2]), "3 labels for 4 images"),
        (_with(labels=[0, 1, 10, 3]), "label 10 at index 2 is out of range"),
        (_with(labels=[0, -1, 2, 3]), "label -1 at index 1 is out of range"),
        (_with(labels=[0, "1", 2, 3]), "expected an int"),
        (_with(labels=[0, True, 2, 3]), "expected an int"),
        (_with(labels=b"\x00\x01\x02\x03"), "must be a list of int"),
    ],
)
def test_malformed_batch_is_rejected(folder: Path, make: Callable[[], Any], reason: str) -> None:
    fx.dump_protocol2(make(), folder / "data_batch_2")
    with pytest.raises(CifarError, match=reason) as excinfo:
        load_cifar10(folder)
    assert "data_batch_2" in str(excinfo.value)


@pytest.mark.parametrize(
    "content",
    [b"", b"this is not a pickle", pickle.dumps(fx.train_batch_dict(2), protocol=2)[:5000]],
    ids=["empty", "garbage", "truncated"],
)
def test_unreadable_batch_is_rejected(folder: Path, content: bytes) -> None:
    (folder / "data_batch_2").write_bytes(content)
    with pytest.raises(CifarError, match="data_batch_2.*not a readable CIFAR-10 pickle"):
        load_cifar10(folder)


@pytest.mark.parametrize(
    ("meta", "reason"),
    [
        ({b"label_names": [b"a"] * 9, b"num_vis": 3072}, "expected 10 label names, got 9"),
        ({b"num_vis": 3072}, "label_names"),
        ({b"label_names": [b"a"] * 10, b"num_vis": 1024}, "num_vis"),
        ({b"label_names": [b"a"] * 9 + [b""], b"num_vis": 3072}, "label name"),
    ],
)
def test_malformed_meta_is_rejected(folder: Path, meta: dict[bytes, Any], reason: str) -> None:
    fx.dump_protocol2(meta, folder / "batches.meta")
    with pytest.raises(CifarError, match=reason) as excinfo:
        load_cifar10(folder, "test")
    assert "batches.meta" in str(excinfo.value)


@pytest.mark.parametrize(
    ("remove", "split"),
    [
        (["data_batch_3"], "train"),
        (["data_batch_1", "data_batch_4"], "train"),
        (["test_batch"], "test"),
        (["batches.meta"], "test"),
    ],
)
def test_missing_files_are_named(folder: Path, remove: list[str], split: str) -> None:
    for name in remove:
        (folder / name).unlink()
    with pytest.raises(CifarError, match="missing CIFAR-10 file") as excinfo:
        load_cifar10(folder, split)  # type: ignore[arg-type]
    message = str(excinfo.value)
    assert all(name in message for name in remove)
    assert "data_batch_2" not in message


def test_missing_test_batch_does_not_block_train(folder: Path) -> None:
    (folder / "test_batch").unlink()
    _check_train(load_cifar10(folder))


def test_no_train_batches_names_the_official_ones(folder: Path) -> None:
    for i in range(1, 6):
        (folder / f"data_batch_{i}").unlink()
    with pytest.raises(CifarError, match="data_batch_1, data_batch_2, data_batch_3, data_batch_4, data_batch_5"):
        load_cifar10(folder)


def test_no_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_cifar10(tmp_path / "nope")
    with pytest.raises(CifarError, match="no CIFAR-10 data found"):
        load_cifar10(tmp_path)


# --------------------------------------------------------------------------- archives
#
# Extraction is tarfile's "data" filter plus one policy of ours: links (symbolic and hard) are
# refused, because CIFAR-10 archives have none and a symlink the filter checks against the
# staging folder could point outside the batches folder once that is renamed into place.
# Where the filter does not refuse but contains (a leading "/" is stripped; on POSIX a
# backslash is an ordinary name character), the member lands inside the destination.


def _file(name: str, data: bytes = b"evil", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    return info, data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def _special(name: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    return info, None


def _make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _attacks(base: Path) -> dict[str, list[tuple[tarfile.TarInfo, bytes | None]]]:
    """Archives that try to write to base/outside or base/evil.txt when extracted into base/dest."""
    outside = base / "outside"
    return {
        "dotdot": [_file(f"{FOLDER_NAME}/ok.txt", b"ok"), _file("../evil.txt")],
        "nested-dotdot": [_file(f"{FOLDER_NAME}/../../evil.txt")],
        "absolute-dotdot": [_file("/../evil.txt")],  # still outside once the "/" is stripped
        "symlink-relative-then-write": [_link("link", "../outside"), _file("link/evil.txt")],
        "symlink-absolute-then-write": [_link("link", str(outside)), _file("link/evil.txt")],
        "symlink-inside": [_file(f"{FOLDER_NAME}/a", b"a"), _link(f"{FOLDER_NAME}/b", "a")],
        # Inside the staging folder, so the data filter alone accepts it; outside the batches folder.
        "symlink-leaving-the-folder": [_file("secret", b"s"), _link(f"{FOLDER_NAME}/data_batch_1", "../secret")],
        "hardlink-outside": [_link("hard", str(outside / "secret"), tarfile.LNKTYPE)],
        "hardlink-inside": [_file("a", b"a"), _link("b", "a", tarfile.LNKTYPE)],
        "char-device": [_special("null", tarfile.CHRTYPE)],
        "block-device": [_special("disk", tarfile.BLKTYPE)],
        "fifo": [_special("pipe", tarfile.FIFOTYPE)],
    }


_ATTACK_NAMES = list(_attacks(Path("/x")))
# The member each archive is refused for (the first unsafe one), and which tarfile.FilterError
# the data filter raised for it (None: refused by our links policy before the filter ran).
_REFUSED: dict[str, tuple[str, str | None]] = {
    "dotdot": ("../evil.txt", "OutsideDestinationError"),
    "nested-dotdot": (f"{FOLDER_NAME}/../../evil.txt", "OutsideDestinationError"),
    "absolute-dotdot": ("/../evil.txt", "OutsideDestinationError"),
    "symlink-relative-then-write": ("link", None),
    "symlink-absolute-then-write": ("link", None),
    "symlink-inside": (f"{FOLDER_NAME}/b", None),
    "symlink-leaving-the-folder": (f"{FOLDER_NAME}/data_batch_1", None),
    "hardlink-outside": ("hard", None),
    "hardlink-inside": ("b", None),
    "char-device": ("null", "SpecialFileError"),
    "block-device": ("disk", "SpecialFileError"),
    "fifo": ("pipe", "SpecialFileError"),
}


@pytest.mark.parametrize("attack", _ATTACK_NAMES)
def test_safe_extract_refuses_escapes(tmp_path: Path, attack: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    archive = _make_tar(tmp_path / "bad.tar.gz", _attacks(tmp_path)[attack])
    dest = tmp_path / "dest"
    before = _tree(tmp_path)

    with pytest.raises(CifarError, match="refusing to extract member") as excinfo:
        safe_extract(archive, dest)

    refused, filter_error = _REFUSED[attack]
    assert repr(refused) in str(excinfo.value)
    assert str(archive) in str(excinfo.value)
    cause = excinfo.value.__cause__
    assert (type(cause).__name__ if cause is not None else None) == filter_error
    if filter_error is not None:
        assert isinstance(cause, tarfile.FilterError)
    # The filter runs over every member before extraction: not even the harmless ones were written.
    assert _tree(tmp_path) == before | {"dest"}
    assert not (tmp_path / "evil.txt").exists()
    assert not (outside / "evil.txt").exists()
    assert (outside / "secret").read_text() == "secret"


def test_the_data_filter_alone_would_accept_the_link_we_refuse(tmp_path: Path) -> None:
    """Why links are refused: checked against the staging folder, this symlink is "inside"."""
    info, _ = _link(f"{FOLDER_NAME}/data_batch_1", "../secret")
    assert tarfile.data_filter(info, str(tmp_path)) is not None


@pytest.mark.skipif(os.sep != "/", reason="POSIX path rules: '/' is the only separator")
@pytest.mark.parametrize("attack", ["absolute", "backslash-dotdot"])
def test_safe_extract_keeps_what_the_data_filter_contains_inside_dest(tmp_path: Path, attack: str) -> None:
    """The data filter strips a leading "/" (like GNU tar), and on POSIX "..\\evil.txt" is one file name."""
    evil = tmp_path / "evil.txt"
    name = {"absolute": str(evil), "backslash-dotdot": "..\\evil.txt"}[attack]
    archive = _make_tar(tmp_path / "odd.tar.gz", [_file(name)])
    dest = tmp_path / "dest"
    before = _tree(tmp_path)

    safe_extract(archive, dest)

    landed = dest / name.lstrip("/")
    assert landed.read_bytes() == b"evil"
    assert not evil.exists()
    assert {p for p in _tree(tmp_path) - before if not p.startswith("dest")} == set()


def test_load_discards_members_outside_the_batches_folder(tmp_path: Path) -> None:
    """Only the batches folder is moved out of the staging folder; strays go with the staging folder."""
    folder = fx.write_fixture_folder(tmp_path / "staging")
    members = [_file(f"{FOLDER_NAME}/{p.name}", p.read_bytes()) for p in sorted(folder.iterdir())]
    root = tmp_path / "root"
    root.mkdir()
    archive = _make_tar(root / ARCHIVE_NAME, [*members, _file(str(tmp_path / "evil.txt")), _file("stray.txt")])
    _check_test(load_cifar10(archive, "test"))
    assert sorted(p.name for p in root.iterdir()) == sorted([ARCHIVE_NAME, FOLDER_NAME])
    assert {p.name for p in (root / FOLDER_NAME).iterdir()} == {p.name for p in folder.iterdir()}
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name != "posix", reason="needs POSIX symlinks")
def test_safe_extract_does_not_follow_existing_symlink_in_dest(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(outside, target_is_directory=True)
    archive = _make_tar(tmp_path / "bad.tar.gz", [_file("sub/evil.txt")])
    with pytest.raises(CifarError, match="'sub/evil.txt'.*outside") as excinfo:
        safe_extract(archive, dest)
    assert isinstance(excinfo.value.__cause__, tarfile.OutsideDestinationError)
    assert list(outside.iterdir()) == []


def test_safe_extract_extracts_a_good_archive(archive: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    assert safe_extract(archive, dest) == dest
    names = {p.name for p in (dest / FOLDER_NAME).iterdir()}
    assert names == {"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch", "batches.meta"}
    assert (dest / FOLDER_NAME / "test_batch").read_bytes() == pickle.dumps(fx.testset_batch_dict(), protocol=2)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_safe_extract_applies_the_data_filter_to_modes(tmp_path: Path) -> None:
    """setuid/setgid/sticky and group/other write bits are dropped, as the data filter does."""
    archive = _make_tar(tmp_path / "modes.tar.gz", [_file(f"{FOLDER_NAME}/x", b"x", mode=0o7777),
                                                    _file(f"{FOLDER_NAME}/y", b"y", mode=0o444)])
    safe_extract(archive, tmp_path / "dest")
    assert (tmp_path / "dest" / FOLDER_NAME / "x").stat().st_mode & 0o7777 == 0o755
    assert (tmp_path / "dest" / FOLDER_NAME / "y").stat().st_mode & 0o7777 == 0o644  # owner can always write


def test_extraction_is_refused_without_the_data_filter(
    tmp_path: Path, archive: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Python whose tarfile has no extraction filters gets a clear error, not a weaker extraction."""
    monkeypatch.delattr(tarfile, "data_filter")
    with pytest.raises(CifarError, match="upgrade Python, or extract the archive yourself") as excinfo:
        safe_extract(archive, tmp_path / "dest")
    assert str(archive) in str(excinfo.value)
    assert not (tmp_path / "dest").exists()
    with pytest.raises(CifarError, match="upgrade Python"):
        load_cifar10(archive)
    assert [p.name for p in archive.parent.iterdir()] == [ARCHIVE_NAME]  # no folder, no staging leftovers
    _check_train(load_cifar10(folder))  # an extracted folder needs no tarfile at all


def test_safe_extract_rejects_corrupt_archive(tmp_path: Path, archive: Path) -> None:
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[:2000])
    with pytest.raises(CifarError, match="truncated.tar.gz.*not a readable"):
        safe_extract(truncated, tmp_path / "dest")
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"\x1f\x8b" + b"garbage" * 50)
    with pytest.raises(CifarError, match="garbage.tar.gz.*not a readable"):
        safe_extract(garbage, tmp_path / "dest2")


def test_load_refuses_malicious_archive(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    members = [_file(f"{FOLDER_NAME}/data_batch_1", b"x"), _file(f"{FOLDER_NAME}/../../evil.txt")]
    archive = _make_tar(root / ARCHIVE_NAME, members)
    with pytest.raises(CifarError, match="refusing to extract member"):
        load_cifar10(archive)
    with pytest.raises(CifarError, match="refusing to extract member"):
        load_cifar10(root)
    assert [p.name for p in root.iterdir()] == [ARCHIVE_NAME]  # no folder, no staging leftovers
    assert not (tmp_path / "evil.txt").exists()


def test_load_archive_without_the_cifar_folder(tmp_path: Path) -> None:
    archive = _make_tar(tmp_path / ARCHIVE_NAME, [_file("other/data_batch_1", b"x")])
    with pytest.raises(CifarError, match=f"no top-level {FOLDER_NAME}"):
        load_cifar10(archive)
    assert [p.name for p in tmp_path.iterdir()] == [ARCHIVE_NAME]


# --------------------------------------------------------------------------- download


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # http.server naming
        self.server.hits[self.path] += 1
        body = self.server.body
        if self.path == "/cifar.tar.gz":
            self._send(body, len(body))
        elif self.path == "/nolength.tar.gz":
            self._send(body, None)  # HTTP/1.0: the body ends when the connection closes
        elif self.path == "/truncated.tar.gz":
            self._send(body[: len(body) // 2], len(body))
        else:
            self.send_error(404, "Not Found")

    def _send(self, data: bytes, length: int | None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


class _Server(http.server.ThreadingHTTPServer):
    body: bytes
    hits: Counter[str]


@pytest.fixture
def server(archive: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, _Server]]:
    # A proxy from the environment would swallow loopback requests.
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    # Small chunks so the tiny fixture arrives in several reads (progress is per chunk).
    monkeypatch.setattr(cifar_archive, "_CHUNK_SIZE", 512)
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.body = archive.read_bytes()
    httpd.hits = Counter()
    # A short poll interval keeps shutdown() (which waits for the next poll) fast.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_download_verifies_reports_progress_and_caches(server: tuple[str, _Server], tmp_path: Path) -> None:
    base, httpd = server
    root = tmp_path / "downloads" / "nested"  # created on demand
    calls: list[tuple[int, int | None]] = []
    md5 = _md5(httpd.body)

    path = download_cifar10(root, url=f"{base}/cifar.tar.gz", md5=md5, progress=lambda d, t: calls.append((d, t)), timeout=5)

    assert path == root / ARCHIVE_NAME
    assert path.read_bytes() == httpd.body
    assert [p.name for p in root.iterdir()] == [ARCHIVE_NAME]  # no temporary file left
    assert httpd.hits["/cifar.tar.gz"] == 1
    size = len(httpd.body)
    assert calls[0] == (0, size) and calls[-1] == (size, size)
    assert len(calls) >= size // 512  # called per chunk
    done = [d for d, _ in calls]
    assert done == sorted(done) and all(t == size for _, t in calls)

    # Already there with the right MD5: no second request, no progress.
    calls.clear()
    assert download_cifar10(root, url=f"{base}/cifar.tar.gz", md5=md5.upper(), progress=lambda d, t: calls.append((d, t))) == path
    assert httpd.hits["/cifar.tar.gz"] == 1
    assert calls == []

    # And the downloaded archive loads end to end from its folder.
    _check_test(load_cifar10(root, "test"))


def test_download_replaces_corrupt_existing_archive(server: tuple[str, _Server], tmp_path: Path) -> None:
    base, httpd = server
    root = tmp_path / "root"  # tmp_path also holds the served fixture
    root.mkdir()
    (root / ARCHIVE_NAME).write_bytes(b"half a download")
    path = download_cifar10(root, url=f"{base}/cifar.tar.gz", md5=_md5(httpd.body), timeout=5)
    assert path.read_bytes() == httpd.body
    assert httpd.hits["/cifar.tar.gz"] == 1


def test_download_without_content_length(server: tuple[str, _Server], tmp_path: Path) -> None:
    base, httpd = server
    root = tmp_path / "root"  # tmp_path also holds the served fixture
    calls: list[tuple[int, int | None]] = []
    path = download_cifar10(
        root, url=f"{base}/nolength.tar.gz", md5=_md5(httpd.body), progress=lambda d, t: calls.append((d, t)), timeout=5
    )
    assert path.read_bytes() == httpd.body
    assert calls[-1] == (len(httpd.body), None)
    assert all(t is None for _, t in calls)


def test_download_md5_mismatch_leaves_nothing(server: tuple[str, _Server], tmp_path: Path) -> None:
    base, httpd = server
    root = tmp_path / "root"  # tmp_path also holds the served fixture
    with pytest.raises(CifarError, match="MD5 mismatch") as excinfo:
        download_cifar10(root, url=f"{base}/cifar.tar.gz", md5="0" * 32, timeout=5)
    assert f"{base}/cifar.tar.gz" in str(excinfo.value)
    assert _md5(httpd.body) in str(excinfo.value)
    assert httpd.hits["/cifar.tar.gz"] == 1
    assert list(root.iterdir()) == []  # neither the final file nor a temporary one


def test_download_404_is_a_clear_error(server: tuple[str, _Server], tmp_path: Path) -> None:
    base, _ = server
    root = tmp_path / "root"
    url = f"{base}/missing.tar.gz"
    with pytest.raises(CifarError, match="404") as excinfo:
        download_cifar10(root, url=url, md5="0" * 32, timeout=5)
    assert url in str(excinfo.value)
    assert list(root.iterdir()) == []


def test_download_truncated_body(server: tuple[str, _Server], tmp_path: Path) -> None:
    base, httpd = server
    root = tmp_path / "root"  # tmp_path also holds the served fixture
    with pytest.raises(CifarError, match="truncated|failed after"):
        download_cifar10(root, url=f"{base}/truncated.tar.gz", md5=_md5(httpd.body), timeout=5)
    assert list(root.iterdir()) == []


def test_download_connection_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/cifar.tar.gz"
    with pytest.raises(CifarError, match="cannot download") as excinfo:
        download_cifar10(tmp_path, url=url, md5="0" * 32, timeout=5)
    assert url in str(excinfo.value)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_leaves_nothing(server: tuple[str, _Server], tmp_path: Path) -> None:
    base, httpd = server
    root = tmp_path / "root"

    def interrupt(done: int, total: int | None) -> None:
        if done > 1000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download_cifar10(root, url=f"{base}/cifar.tar.gz", md5=_md5(httpd.body), progress=interrupt, timeout=5)
    assert list(root.iterdir()) == []


def test_download_rejects_malformed_md5(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="md5"):
        download_cifar10(tmp_path, url="http://127.0.0.1:9/x", md5="abc")
    assert list(tmp_path.iterdir()) == []

