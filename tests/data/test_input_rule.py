"""The input rule end to end: every command builds, bit for bit, the inputs the trainer built.

A small folder (and a tar of the same files) of 40x52 PNG and JPEG images in two label
sub-folders is trained on under three rules (``--resize``, ``--center-crop + --resize``,
``--crop + --resize``); then every command that reads data runs on the runs (the slower ones on
both sources for one rule, on one source for the others: ``SLOW_ON``), and each input that
reaches the model must be one of the trainer's own batch rows: the same float32 bytes. A conv
model (trained on channels-last batches) and the real CelebA tar (slow) are checked too.

What "reaches the model" means: every model verb (``forward``, ``encode``, ``embed``, a VAE's
``encode``) passes the image batch (N, C, H, W) through ``_encoder_input`` before the encoder,
so the class-level spy on it sees every input, also of the models loaded inside commands. Not
data, so not checked: what the architecture summary and diagram (``viz/architecture.py``, in the
report) feed the model to trace its layers (torchinfo's random input, zeros).
"""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from latentlab.cli.app import app
from latentlab.data.batches import BatchSpec
from latentlab.data.rule import PreparedSet, load_prepared
from latentlab.errors import LatentlabError
from latentlab.models.base import Autoencoder
from latentlab.runs import Run
from latentlab.train.api import prepare_data
from latentlab.train.batches import ImageBatches
from latentlab.train.trainer import memory_format_for

runner = CliRunner()

N_IMAGES, WIDTH, HEIGHT = 24, 40, 52
RULES = {
    "resize": ["--resize", "16"],
    "center-crop": ["--center-crop", "36", "--resize", "16"],
    "crop": ["--crop", "4,2,32,30", "--resize", "16"],
}
# where the slower checks (evaluate, report, compare-ae-vae, the detector, the explorer) run: on both
# sources for the centre crop, on one each for the others (the fast suite's time)
SLOW_ON = {"resize": ("tar",), "center-crop": ("folder", "tar"), "crop": ("folder",)}
TINY = ["--latent-dim", "3", "--epochs", "1", "--batch-size", "8", "--val-fraction", "0",
        "--quiet"]
CELEBA_TAR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "celeba_subset" / \
    "celeba_aligned_6000img_200id.tar"


def invoke(*args: object):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, f"latentlab {' '.join(map(str, args))}:\n{result.output}"
    return result


# ---------------------------------------------------------------------------- the data


def _pixels(k: int) -> np.ndarray:
    """uint8 (HEIGHT, WIDTH, 3): gradients that differ per image plus noise, so every cut shows."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = np.stack([xx * 255 // WIDTH + 9 * k, yy * 255 // HEIGHT + 5 * k, (xx + yy) * 3 + 17 * k], axis=-1)
    noise = np.random.default_rng(k).integers(-40, 40, size=base.shape)
    return np.clip(base % 256 + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def image_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """(folder, tar, the relative file names in row order): 24 images, PNG and JPEG, one grayscale,
    in sub-folders c0 / c1 (labels 0 / 1)."""
    root = tmp_path_factory.mktemp("rule_data")
    folder = root / "images"
    names = []
    for k in range(N_IMAGES):
        name = f"c{k % 2}/img_{k:02d}.{'jpg' if k % 3 == 0 else 'png'}"
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(_pixels(k))
        (image.convert("L") if k == 4 else image).save(path, quality=90)
        names.append(name)
    tar = root / "images.tar"
    with tarfile.open(tar, "w") as tf:
        for name in names:
            tf.add(folder / name, arcname=f"set/{name}")
    return folder, tar, sorted(names)


def _specs(image_files: tuple[Path, Path, list[str]]) -> dict[str, str]:
    folder, tar, _ = image_files
    return {"folder": f"folder:{folder}", "tar": f"tar:{tar}#set"}


# ---------------------------------------------------------------------------- what reaches the model


def _tracing_layers() -> bool:
    """Whether the model is being run by viz/architecture.py to trace its layers (not on data)."""
    frame = sys._getframe(2)
    while frame is not None:
        if Path(frame.f_code.co_filename).match("latentlab/viz/architecture.py"):
            return True
        frame = frame.f_back
    return False


def _model_classes(cls: type = Autoencoder) -> list[type]:
    """Autoencoder and every subclass of it."""
    return [cls, *(c for sub in cls.__subclasses__() for c in _model_classes(sub))]


def _spy(original, inputs: list[torch.Tensor]):  # type: ignore[no-untyped-def]
    """``original`` (a model's ``_encoder_input``) that first keeps a copy of the batch it is given."""
    def spy(self, x):  # type: ignore[no-untyped-def]
        if not _tracing_layers():
            inputs.append(x.detach().to("cpu").contiguous().clone())
        return original(self, x)
    return spy


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    """Every image batch (N, C, H, W) of data that reaches any model, as contiguous CPU copies."""
    inputs: list[torch.Tensor] = []
    for cls in {c for c in _model_classes() if "_encoder_input" in vars(c)}:
        monkeypatch.setattr(cls, "_encoder_input", _spy(vars(cls)["_encoder_input"], inputs))
    return inputs


def trainer_inputs(run: Path, spec: str | None = None) -> torch.Tensor:
    """The trainer's own batches of every image of ``spec`` (default: the run's data), in row
    order: (N, C, H, W), as the trainer makes them (memory format included), then contiguous."""
    opened = Run.open(run)
    prepared = prepare_data(spec or opened.data_spec, opened.rule)  # what train_run and resume_run load
    batches = ImageBatches(prepared.images, np.arange(len(prepared)), len(prepared), prepared.batch, shuffle=False)
    fmt = memory_format_for(opened.model)  # channels-last for a conv model, as Trainer.fit lays out its batches
    [(x, _)] = list(batches.epoch(0, device=torch.device("cpu"), memory_format=fmt))
    return x.contiguous()


def check_rows(seen: list[torch.Tensor], reference: torch.Tensor, what: str) -> int:
    """Every row of every seen batch equals some row of ``reference`` byte for byte; returns the
    number of rows checked."""
    assert seen, f"{what}: no input reached the model"
    known = {row.numpy().tobytes() for row in reference}
    flat = reference.flatten(1)
    count = 0
    for x in seen:
        assert x.dtype == reference.dtype and x.shape[1:] == reference.shape[1:], \
            f"{what}: input {x.dtype} {tuple(x.shape)}, the trainer's {reference.dtype} {tuple(reference.shape)}"
        for row in x:
            if row.numpy().tobytes() not in known:
                gap = (flat - row.flatten()).abs().max(dim=1).values
                nearest = int(gap.argmin())
                raise AssertionError(f"{what}: an input row is none of the trainer's; nearest is row {nearest}, "
                                     f"max |difference| {float(gap[nearest]):.3g}")
            count += 1
    return count


def check_exactly(seen: list[torch.Tensor], reference: torch.Tensor, rows: list[int], what: str) -> None:
    """The seen rows are exactly the trainer's ``rows``: each of them, nothing else (a row may reach
    the model more than once, e.g. for its view and its anomaly score)."""
    assert seen, f"{what}: no input reached the model"
    got = {row.numpy().tobytes() for x in seen for row in x}
    assert got == {reference[i].numpy().tobytes() for i in rows}, f"{what}: not exactly the trainer's rows {rows}"


# ---------------------------------------------------------------------------- tests


def test_geometry_is_cut_while_decoding(image_files) -> None:  # type: ignore[no-untyped-def]
    folder, _, names = image_files
    rule = BatchSpec(center_crop=36, resize=(16, 16))
    prepared = load_prepared(_specs(image_files)["tar"], rule)
    assert isinstance(prepared, PreparedSet)
    assert prepared.images.shape == (N_IMAGES, 16, 16, 3) and prepared.images.dtype == np.uint8
    assert prepared.batch == BatchSpec(value_range=rule.value_range)  # only the value range is left per batch
    assert prepared.labels is not None and prepared.label_names == ["c0", "c1"]
    # a PNG row is PIL's own antialiased bilinear resize of the centred 36x36 box
    row = next(i for i, name in enumerate(names) if name.endswith(".png") and name != "c0/img_04.png")
    left, top = (WIDTH - 36) // 2, (HEIGHT - 36) // 2
    with Image.open(folder / names[row]) as image:
        expected = np.asarray(image.convert("RGB").resize((16, 16), Image.Resampling.BILINEAR,
                                                          box=(left, top, left + 36, top + 36)))
    assert np.array_equal(prepared.images[row], expected)


# center-crop (a crop and a resize) runs in the fast set; the crop-only and resize-only rules go
# through the same code and run with the slow set, to keep the fast set under its 5 minutes
@pytest.mark.parametrize("rule", [r if r == "center-crop" else pytest.param(r, marks=pytest.mark.slow) for r in RULES])
def test_every_command_builds_the_trainers_inputs(rule, image_files, seen, tmp_path) -> None:  # type: ignore[no-untyped-def]
    specs = _specs(image_files)
    runs, references = {}, {}
    for source, spec in specs.items():
        runs[source] = tmp_path / f"{source}_run"
        invoke("train", "--data", spec, "--model", "fcn", "--hidden", "16", *TINY, *RULES[rule], "--out", runs[source])
        references[source] = trainer_inputs(runs[source])
        assert references[source].shape == (N_IMAGES, 3, 16, 16)
        config = json.loads((runs[source] / "config.json").read_text())
        assert config["data"]["spec"] == spec and config["data"]["cut_while_decoding"] is True
        assert check_rows(seen, references[source], f"{source}: train") == N_IMAGES  # one epoch, every image once
        seen.clear()
    assert torch.equal(references["folder"], references["tar"]), "a folder and a tar of the same files differ"
    vae = tmp_path / "vae_run"
    invoke("train", "--data", specs["tar"], "--model", "vae-fcn", "--hidden", "16", *TINY, *RULES[rule], "--out", vae)
    seen.clear()

    for source, spec in specs.items():
        run, ref, out = runs[source], references[source], tmp_path / source
        out.mkdir()
        commands = {
            "train --resume": ["train", "--out", run, "--resume", "--epochs", "2", "--quiet"],
            "reconstruct": ["reconstruct", run, "--index", "0,5", "--out", out / "r.png"],
            "edit": ["edit", run, "--index", "3", "--edit", "z[0]*=3", "--out", out / "e.png"],
            "traverse": ["traverse", run, "--index", "2", "--steps", "3", "--out", out / "t.png"],
            "interpolate": ["interpolate", run, "--from", "1", "--to", "7", "--steps", "3", "--out", out / "i.png"],
            "sample": ["sample", run, "--n", "4", "--out", out / "s.png"],
            "latent-map": ["latent-map", run, "--out", out / "m.png"],
            "attribute": ["attribute", run, "--where", "label==0", "--apply-to", "3", "--strengths", "-1,1",
                          "--out", out / "a.png"],
            "score": ["score", run, "--data", spec, "--score", "combined", "--out", out / "p.csv", "--quiet"],
        }
        if source in SLOW_ON[rule]:
            commands.update({
                "evaluate": ["evaluate", run, "--data", spec, "--labels", "label==1", "--k", "2", "--out-dir", out,
                             "--score", "combined", "--quiet"],
                "report": ["report", run, "--out", out / "report.html"],
                "compare-ae-vae": ["compare-ae-vae", "--ae", run, "--vae", vae, "--out", out / "compare"],
            })
        exact = {"reconstruct": [0, 5], "edit": [3], "interpolate": [1, 7]}  # the rows these commands name
        for name, args in commands.items():
            invoke(*args)
            what = f"{source} {rule}: {name}"
            if name in exact:
                check_exactly(seen, ref, exact[name], what)
            else:
                check_rows(seen, ref, what)
            seen.clear()
        if source in SLOW_ON[rule]:
            _check_python_api(run, ref, image_files, seen, f"{source} {rule}")


def test_conv_model_gets_the_channels_last_trainers_inputs(image_files, seen, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A conv model trains on channels-last batches; the commands build contiguous ones: same values."""
    run, spec = tmp_path / "conv_run", _specs(image_files)["tar"]
    invoke("train", "--data", spec, "--model", "conv", "--channels", "4,8", *TINY, *RULES["center-crop"],
           "--out", run)
    ref = trainer_inputs(run)
    check_rows(seen, ref, "conv: train")
    seen.clear()
    invoke("reconstruct", run, "--index", "2,11", "--out", tmp_path / "r.png")
    check_exactly(seen, ref, [2, 11], "conv: reconstruct")
    seen.clear()
    invoke("score", run, "--data", spec, "--score", "combined", "--out", tmp_path / "p.csv", "--quiet")
    check_rows(seen, ref, "conv: score")


def _check_python_api(run: Path, ref: torch.Tensor, image_files, seen: list[torch.Tensor],  # type: ignore[no-untyped-def]
                      what: str) -> None:
    """The detector, the explorer (a dataset image and an upload of a file) and Run.data/inputs."""
    from latentlab.anomaly.detector import ReconstructionDetector
    from latentlab.web.explorer import Explorer

    opened = Run.open(run)
    assert torch.equal(opened.inputs(opened.data()), ref)
    det = ReconstructionDetector(run, score="combined").fit(opened.data())
    det.decision_function(opened.data())
    det.error_maps(opened.data().subset([1, 2]))
    check_rows(seen, ref, f"{what}: detector")
    seen.clear()

    from latentlab.anomaly.auto import resolve_auto

    resolve_auto(Run.open(run))  # the auto score's choice feeds made-up anomalies to the model: made and
    seen.clear()  # stored first, so that what is checked below are the explorer's own inputs
    explorer = Explorer.load(run)
    check_rows(seen, ref, f"{what}: Explorer.load")
    seen.clear()
    explorer.image_view(6)
    check_exactly(seen, ref, [6], f"{what}: explorer image 6")
    seen.clear()
    folder, _, names = image_files
    for name in ("c0/img_00.jpg", "c0/img_04.png", "c1/img_05.png"):  # a JPEG, the grayscale PNG, a PNG
        explorer.upload_view((folder / name).read_bytes(), name)
        check_exactly(seen, ref, [names.index(name)], f"{what}: upload of {name}")  # cut as the folder's was
        seen.clear()


# ---------------------------------------------------------------------------- the real data


@pytest.mark.slow
@pytest.mark.skipif(not CELEBA_TAR.is_file(), reason=f"real data not available: {CELEBA_TAR} does not exist")
def test_celeba_centre_crop_runs_every_step(seen, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The issue's report: reconstruct on a run trained with --center-crop 140 --resize 64 failed
    with "center_crop 140: larger than the 64x64 image it crops"."""
    run = tmp_path / "celeba"
    rule = ["--center-crop", "140", "--resize", "64"]
    invoke("train", "--data", f"tar:{CELEBA_TAR}#Datasets/validation_dataset", "--preset", "hw8-conv", *rule,
           "--epochs", "1", "--batch-size", "64", "--quiet", "--out", run)
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["rule"]["center_crop"] == 140 and config["data"]["cut_while_decoding"] is True
    assert config["data"]["n_images"] == 600 and config["model"]["in_shape"] == [3, 64, 64]
    seen.clear()
    test = f"tar:{CELEBA_TAR}#Datasets/test_dataset"
    ref = trainer_inputs(run, test)  # (600, 3, 64, 64): the test images as the trainer would prepare them
    result = invoke("reconstruct", run, "--data", test, "--index", "0,1,2", "--out", tmp_path / "r.png")
    assert "reconstruction MSE" in result.output and (tmp_path / "r.png").is_file()
    check_exactly(seen, ref, [0, 1, 2], "celeba: reconstruct")
    seen.clear()
    invoke("score", run, "--data", test, "--score", "combined", "--out", tmp_path / "p.csv", "--quiet")
    assert (tmp_path / "p.csv").read_text().count("\n") == 601  # header + 600 scores
    train_ref = trainer_inputs(run)  # `combined` fits its latent statistics on the run's own training images
    assert check_rows(seen, torch.cat([ref, train_ref]), "celeba: score") >= 1200  # 600 fitted, 600 scored
    invoke("train", "--out", run, "--resume", "--epochs", "2", "--quiet")
    assert (run / "COMPLETE").read_text().startswith("epochs 2")


def test_an_array_already_at_the_models_size_skips_the_rules_crop(tmp_path: Path) -> None:
    """A course-style 64x64 .npy scored by a run trained on JPEGs with --center-crop 140 --resize 64:
    the crop cannot apply, the images are already the model's size, so they are used as they are."""
    rng = np.random.default_rng(0)
    rule = BatchSpec(center_crop=140, resize=(64, 64))
    np.save(tmp_path / "ready.npy", rng.integers(0, 256, (5, 64, 64, 3), dtype=np.uint8))
    with pytest.raises(LatentlabError, match="center_crop 140: larger than the 64x64"):
        load_prepared(f"npy:{tmp_path / 'ready.npy'}", rule)  # training: a crop that does not fit is an error
    with pytest.warns(UserWarning, match="already the model's size"):
        ready = load_prepared(f"npy:{tmp_path / 'ready.npy'}", rule, ready_ok=True)  # a run reading other data
    assert ready.input_shape == (3, 64, 64) and ready.batch == BatchSpec()
    expected = torch.from_numpy(np.load(tmp_path / "ready.npy")).permute(0, 3, 1, 2).float() / 127.5 - 1
    torch.testing.assert_close(ready.inputs([0, 4]), expected[[0, 4]])
    np.save(tmp_path / "other.npy", rng.integers(0, 256, (2, 100, 100, 3), dtype=np.uint8))
    with pytest.raises(LatentlabError, match="center_crop 140: larger than the 100x100"):
        load_prepared(f"npy:{tmp_path / 'other.npy'}", rule, ready_ok=True)  # not the model's size: an error
    banded = BatchSpec(crop=(10, 0, 28, 64), resize=(64, 64))  # fits a 64x64 image: it is applied
    cut = load_prepared(f"npy:{tmp_path / 'ready.npy'}", banded, ready_ok=True)
    assert cut.batch == banded
