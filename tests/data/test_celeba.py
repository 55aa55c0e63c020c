"""``celeba:`` sources: the published layout (folder or zip + list_eval_partition.txt), the
subset's tar layout, the usual 64x64 preparation as default, and one-line errors."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentlab.data.batches import BatchSpec
from latentlab.data.rule import load_prepared
from latentlab.data.sources import load_source
from latentlab.errors import LatentlabError

FILES = [f"{i:06d}.jpg" for i in range(1, 10)]
SPLIT = [0, 0, 0, 0, 1, 1, 2, 2, 2]
PEOPLE = [7, 7, 9, 9, 7, 12, 9, 12, 12]


def face(i: int) -> Image.Image:
    rng = np.random.default_rng(i)
    return Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8))  # CelebA's 178 x 218


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("celeba")
    (root / "img_align_celeba").mkdir()
    (root / "Eval").mkdir()
    for i, name in enumerate(FILES):
        face(i).save(root / "img_align_celeba" / name, quality=95)
    (root / "Eval" / "list_eval_partition.txt").write_text(
        "".join(f"{f} {s}\n" for f, s in zip(FILES, SPLIT, strict=True)))
    (root / "identity_CelebA.txt").write_text("".join(f"{f} {p}\n" for f, p in zip(FILES, PEOPLE, strict=True)))
    with zipfile.ZipFile(root / "img_align_celeba.zip", "w") as zf:
        for name in FILES:
            zf.write(root / "img_align_celeba" / name, f"img_align_celeba/{name}")
    return root


@pytest.fixture(scope="module")
def subset_tar(published, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("subset") / "celeba.tar"
    folders = {0: "train_dataset", 1: "validation_dataset", 2: "test_dataset"}
    with tarfile.open(path, "w") as tf:
        for name, split, person in zip(FILES, SPLIT, PEOPLE, strict=True):
            tf.add(published / "img_align_celeba" / name, f"Datasets/{folders[split]}/celeb_{person}/{name}")
    return path


@pytest.mark.parametrize(("fragment", "n"), [("", 4), ("#train", 4), ("#valid", 2), ("#test", 3)])
def test_published_folder_splits_at_64(published, fragment, n) -> None:
    data = load_source(f"celeba:{published}{fragment}")
    assert data.images.shape == (n, 64, 64, 3)  # the usual 140 -> 64 preparation by default
    assert data.labels is not None and data.label_names is not None


def test_the_zip_gives_the_folder_pixels_and_the_identities_are_labels(published) -> None:
    folder = load_source(f"celeba:{published}#test")
    zipped = load_source(f"celeba:{published / 'img_align_celeba.zip'}#test")
    np.testing.assert_array_equal(folder.images, zipped.images)
    assert [folder.label_names[i] for i in folder.labels] == ["9", "12", "12"]


def test_the_subset_tar_layout(subset_tar, published) -> None:
    data = load_source(f"celeba:{subset_tar}#valid")
    assert data.images.shape == (2, 64, 64, 3) and data.label_names == ["celeb_12", "celeb_7"]
    by_folder = load_source(f"celeba:{published}#valid")
    np.testing.assert_array_equal(np.sort(data.images.reshape(2, -1), 0), np.sort(by_folder.images.reshape(2, -1), 0))


def test_the_default_preparation_is_a_centred_140_crop_resized_to_64(published) -> None:
    from latentlab.data.decode import Geometry

    default = load_source(f"celeba:{published}#test")
    explicit = load_source(f"celeba:{published}#test", geometry=Geometry(center_crop=140, resize=(64, 64)))
    np.testing.assert_array_equal(default.images, explicit.images)
    other = load_prepared(f"celeba:{published}#test", BatchSpec(resize=(32, 32)))
    assert other.images.shape == (3, 32, 32, 3)  # a rule's own geometry replaces the default


def test_training_records_the_default_preparation(published, tmp_path) -> None:
    from typer.testing import CliRunner

    from latentlab.cli.app import app
    from latentlab.runs import Run

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--data", f"celeba:{published}", "--model", "fcn", "--hidden", "4",
                                      "--latent-dim", "2", "--epochs", "1", "--val-fraction", "0", "--quiet",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    run = Run.open(out)
    assert run.rule.center_crop == 140 and run.rule.resize == (64, 64)
    assert run.data("celeba:" + str(published) + "#test").input_shape == (3, 64, 64)


@pytest.mark.parametrize(("make", "expected"), [
    (lambda root: root / "nowhere", "not found; get img_align_celeba"),
    (lambda root: root / "img_align_celeba", "no list_eval_partition.txt"),
])
def test_missing_pieces_are_named(published, tmp_path, make, expected) -> None:
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(published / "img_align_celeba", root / "img_align_celeba")
    with pytest.raises(LatentlabError, match=expected) as info:
        load_source(f"celeba:{make(root)}")
    assert "\n" not in str(info.value)


def test_a_split_that_does_not_exist(published) -> None:
    with pytest.raises(LatentlabError, match="split 'dev' does not exist; expected one of train, valid, test"):
        load_source(f"celeba:{published}#dev")


def test_missing_images_are_named(published, tmp_path) -> None:
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(published, root)
    (root / "img_align_celeba" / FILES[0]).unlink()
    with pytest.raises(LatentlabError, match=f"{FILES[0]} is missing"):
        load_source(f"celeba:{root}#train")


def test_a_folder_holding_the_subset_tar_stands_for_it(subset_tar) -> None:
    """``celeba:../shared/data/celeba_subset``: the folder as shipped, one tar and notes beside it."""
    folder = subset_tar.parent
    (folder / "PROVENANCE.md").write_text("where the subset comes from\n")
    np.testing.assert_array_equal(load_source(f"celeba:{folder}#test").images,
                                  load_source(f"celeba:{subset_tar}#test").images)


@pytest.mark.slow
def test_the_shared_celeba_subset(shared_data) -> None:
    tar = shared_data / "celeba_subset" / "celeba_aligned_6000img_200id.tar"
    test = load_source(f"celeba:{tar}#test")
    assert test.images.shape == (600, 64, 64, 3) and len(test.label_names) == 200
    again = load_source(f"celeba:{tar}#test")  # from the cache
    assert isinstance(again.images, np.memmap)
    np.testing.assert_array_equal(test.images, again.images)
