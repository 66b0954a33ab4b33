"""The data pipeline: scanning, skipping, augmentation determinism, and (L, ab) items via the Lab contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from labcolor.core import color
from tests.cifar_fixture import NUM_TEST, NUM_TRAIN, write_fixture_folder
from labcolor.trainer.data import (
    ArrayDataset,
    DataError,
    EpochSampler,
    FolderDataset,
    build_data,
    decode_bgr,
    random_resized_crop,
    scan_images,
)


def test_scan_is_recursive_and_counts_skipped_files(photo_dir: Path) -> None:
    scan = scan_images(photo_dir)
    assert len(scan.usable) == 12
    assert any("sub0" in p.parts for p in scan.usable)
    assert {p.name for p in scan.skipped["unreadable"]} == {"broken.jpg", "empty.png"}
    assert [p.name for p in scan.skipped["grayscale"]] == ["gray.png"]
    assert scan.summary() == "12 usable, 1 grayscale, 2 unreadable"


def test_folder_items_are_l_and_ab_through_the_lab_contract(photo_dir: Path) -> None:
    files = scan_images(photo_dir).usable
    # 48 px: the 96 px short side of the fixtures is within 2*size, so no pre-downscale happens.
    ds = FolderDataset(files, 48, train=False)
    l_n, ab_n = ds[0]
    assert l_n.shape == (1, 48, 48) and ab_n.shape == (2, 48, 48)
    assert l_n.dtype == ab_n.dtype == torch.float32
    # The validation transform is a resize + centre crop of the decoded picture; the item must
    # be exactly that picture in network units, computed by runtime.color.
    from labcolor.trainer.data import center_crop

    expected_l, expected_ab = color.rgb_to_network(center_crop(decode_bgr(files[0]), 48), bgr=True)
    np.testing.assert_array_equal(l_n.numpy(), expected_l.transpose(2, 0, 1))
    np.testing.assert_array_equal(ab_n.numpy(), expected_ab.transpose(2, 0, 1))


def test_augmentation_is_a_function_of_seed_epoch_and_index(photo_dir: Path) -> None:
    files = scan_images(photo_dir).usable
    a = FolderDataset(files, 32, train=True, seed=3)
    b = FolderDataset(files, 32, train=True, seed=3)
    assert torch.equal(a[(2, 5)][1], b[(2, 5)][1])  # same key, same crop, in any process
    assert not torch.equal(a[(2, 5)][1], a[(2, 6)][1])  # another epoch, another crop
    assert not torch.equal(a[(2, 5)][1], FolderDataset(files, 32, train=True, seed=4)[(2, 5)][1])


def test_small_sets_are_cached_after_first_read(photo_dir: Path) -> None:
    files = scan_images(photo_dir).usable
    ds = FolderDataset(files, 32, train=True)
    assert ds.cache == {}
    ds[(0, 0)]
    assert list(ds.cache) == [0]
    # Cached pictures are stored at most 2*size on the short side.
    assert min(ds.cache[0].shape[:2]) <= 64
    assert FolderDataset(files, 32, train=True, cache_mb=0).cache is None


def test_random_resized_crop_respects_size_and_scale() -> None:
    img = np.random.default_rng(0).integers(0, 256, (100, 150, 3), dtype=np.uint8)
    rng = np.random.default_rng(1)
    for _ in range(20):
        assert random_resized_crop(img, 24, 0.25, rng).shape == (24, 24, 3)


def test_epoch_sampler_permutes_per_epoch_deterministically() -> None:
    s = EpochSampler(10, seed=1, shuffle=True)
    first = list(s)
    assert sorted(i for i, _ in first) == list(range(10)) and {e for _, e in first} == {0}
    s.set_epoch(1)
    second = list(s)
    assert [i for i, _ in second] != [i for i, _ in first]
    s.set_epoch(0)
    assert list(s) == first


def test_build_data_folder_holds_out_validation_when_none_given(photo_dir: Path) -> None:
    bundle = build_data(photo_dir, None, dataset="auto", size=32, seed=0, crop_scale=0.5, flip=True,
                        val_fraction=0.25, cache_mb=64, download=False)
    assert bundle.kind == "folder"
    assert len(bundle.train) + len(bundle.val) == 12 and len(bundle.val) == 3
    assert set(bundle.train.files).isdisjoint(bundle.val.files)
    assert "1 grayscale" in bundle.description and "2 unreadable" in bundle.description


def test_build_data_cifar_folder(tmp_path: Path) -> None:
    folder = write_fixture_folder(tmp_path)
    bundle = build_data(folder, None, dataset="auto", size=32, seed=0, crop_scale=0.5, flip=True,
                        val_fraction=0.1, cache_mb=64, download=False)
    assert bundle.kind == "cifar10"
    assert (len(bundle.train), len(bundle.val)) == (NUM_TRAIN, NUM_TEST)
    l_n, ab_n = bundle.val[0]
    assert l_n.shape == (1, 32, 32) and ab_n.shape == (2, 32, 32)
    with pytest.raises(DataError, match="--size 32"):
        build_data(folder, None, dataset="cifar10", size=64, seed=0, crop_scale=0.5, flip=True,
                   val_fraction=0.1, cache_mb=64, download=False)


def test_array_dataset_flips_deterministically() -> None:
    imgs = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    ds = ArrayDataset(imgs, train=True, seed=0)
    flipped = [not torch.equal(ds[(i, e)][0], ArrayDataset(imgs, train=False)[i][0]) for i in range(4) for e in range(4)]
    assert any(flipped) and not all(flipped)
    assert torch.equal(ds[(1, 2)][1], ArrayDataset(imgs, train=True, seed=0)[(1, 2)][1])


def test_empty_or_missing_folders_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        build_data(tmp_path / "nope", None, dataset="folder", size=32, seed=0, crop_scale=0.5, flip=True,
                   val_fraction=0.1, cache_mb=64, download=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no usable colour pictures"):
        build_data(tmp_path / "empty", None, dataset="folder", size=32, seed=0, crop_scale=0.5, flip=True,
                   val_fraction=0.1, cache_mb=64, download=False)
