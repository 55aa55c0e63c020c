"""``--score auto``: the candidates, the ranking, the stored choice and its reuse, old runs, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from latentlab.anomaly import auto
from latentlab.anomaly.auto import CHOICE_FILE, choose_score, rank_candidates, resolve_auto, stored_choice
from latentlab.errors import LatentlabError
from latentlab.runs import open_run


@pytest.fixture
def run_copy(tiny_run: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny run, as trained before ``auto`` existed (no stored choice)."""
    folder = tmp_path / "run"
    shutil.copytree(tiny_run, folder, ignore=shutil.ignore_patterns(CHOICE_FILE))
    return folder


# ---------------------------------------------------------------- candidates and ranking


def test_candidates_follow_what_the_model_can_give(tiny_run: Path, tiny_vae_run: Path) -> None:
    from latentlab.models import FCNConfig, build

    ae = auto.candidate_specs(open_run(tiny_run).model)
    singles = [parts[0] for parts, _ in ae if len(parts) == 1]
    assert singles == ["mse", "ssim", "|mse|", "|ssim|", "mahalanobis", "gmm", "features"]
    assert not any({"mahalanobis", "gmm"} <= set(parts) for parts, _ in ae)  # one latent density at most
    assert not any({"mse", "|mse|"} <= set(parts) for parts, _ in ae)  # a kind once, one- or two-sided
    assert (("mse", "features"), "max") in ae and (("mse", "features"), "sum") in ae
    assert "elbo" in [parts[0] for parts, _ in auto.candidate_specs(open_run(tiny_vae_run).model)]
    bare = build(FCNConfig(hidden=(), latent_dim=300))  # no hidden layers, a latent too large for a mixture
    kinds = {k for parts, _ in auto.candidate_specs(bare) for k in parts}
    assert "features" not in kinds and "gmm" not in kinds


def test_names_round_trip() -> None:
    for parts, mode in ((("mse",), "sum"), (("mse", "gmm"), "sum"), (("ssim", "features"), "max"),
                        (("|mse|", "transforms"), "sum"), (("|ssim|",), "sum")):
        assert auto.parse_name(auto.spec_name(parts, mode)) == (parts, mode)
    assert auto.spec_name(("ssim", "features"), "max") == "max(ssim,features)"


def test_ranking_prefers_the_score_that_sees_every_family() -> None:
    rng = np.random.default_rng(0)
    held = {"a": rng.lognormal(0, 0.3, 200), "b": rng.lognormal(0, 0.3, 200)}
    pseudo = {"local": {"a": held["a"] * 3.0, "b": held["b"] * 1.0},  # only a sees it
              "simple": {"a": held["a"] * 0.5, "b": held["b"] * 3.0}}  # a ranks it as normal; b sees it
    ranked = rank_candidates([(("a",), "sum"), (("b",), "sum"), (("a", "b"), "sum"), (("a", "b"), "max")],
                             held, pseudo)
    assert ranked[0].parts == ("a", "b") and ranked[0].combine == "max"
    assert ranked[0].auc["local"] > 0.95 and ranked[0].auc["simple"] > 0.95
    a_alone = next(c for c in ranked if c.parts == ("a",))
    assert a_alone.auc["simple"] < 0.1  # the failure a single reconstruction error shows


def test_a_two_sided_part_finds_images_reconstructed_too_well() -> None:
    """|a| is the absolute standardised log-score: an image far *below* the normal ones (a
    blurred face a model reconstructs better than any real one) is as unusual as one far above."""
    rng = np.random.default_rng(1)
    held = {"a": rng.lognormal(0, 0.3, 300)}
    held["|a|"] = held["a"]
    too_well = {"a": held["a"] * 0.2}
    too_well["|a|"] = too_well["a"]
    ranked = rank_candidates([(("a",), "sum"), (("|a|",), "sum")], held, {"simple": too_well})
    assert ranked[0].parts == ("|a|",) and ranked[0].auc["simple"] > 0.99
    assert next(c for c in ranked if c.parts == ("a",)).auc["simple"] < 0.01
    choice = auto.ScoreChoice(parts=("|a|",), combine="sum", components=8, sentence="", candidates=(),
                              n_held_out=300, held_out="", n_fit=0)
    assert choice.kind == "combined"  # a one-part combination: the detector standardises it


def test_near_ties_go_to_fewer_parts() -> None:
    rng = np.random.default_rng(1)
    held = {"a": rng.lognormal(0, 0.3, 200), "b": rng.lognormal(0, 0.3, 200)}
    pseudo = {"f": {"a": held["a"] * 4.0, "b": held["b"] * 4.0}}
    ranked = rank_candidates([(("a", "b"), "sum"), (("a",), "sum")], held, pseudo)
    assert ranked[0].parts == ("a",)


# ---------------------------------------------------------------- the run's own choice


def test_the_choice_is_stored_explained_and_reused(run_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    choice = choose_score(run_copy)
    stored = json.loads((run_copy / CHOICE_FILE).read_text())
    assert choice.path == run_copy / CHOICE_FILE
    assert stored["name"] == choice.name and stored["sentence"] == choice.sentence
    assert choice.sentence.startswith(f"auto chose {choice.name} (") and choice.sentence.endswith(".")
    assert "held-out normal images (the run's validation split" in choice.sentence
    assert stored["held_out"]["images"] == 26 and stored["fit_images"] == 230  # faces:256, val_fraction 0.1
    assert len(stored["candidates"]) == len(auto.candidate_specs(open_run(run_copy).model))
    assert stored["candidates"][0]["score"] == choice.name
    assert set(stored["candidates"][0]["auc"]) == {"cutpaste", "scar", "shuffle", "smooth"}

    def no_second_choice(*args: object, **kw: object) -> None:
        raise AssertionError("the stored choice was not reused")

    monkeypatch.setattr(auto, "choose", no_second_choice)
    again = resolve_auto(run_copy)
    assert (again.parts, again.combine, again.sentence) == (choice.parts, choice.combine, choice.sentence)


def test_the_choice_is_deterministic(run_copy: Path) -> None:
    first = choose_score(run_copy, store=False)
    second = choose_score(run_copy, store=False)
    assert first.candidates == second.candidates
    assert not (run_copy / CHOICE_FILE).exists()


def test_new_weights_or_a_damaged_file_make_a_new_choice(run_copy: Path) -> None:
    choose_score(run_copy)
    assert stored_choice(run_copy) is not None
    text = (run_copy / CHOICE_FILE).read_text()
    (run_copy / CHOICE_FILE).write_text(text[: len(text) // 2])  # cut short
    assert stored_choice(run_copy) is None
    resolve_auto(run_copy)
    assert stored_choice(run_copy) is not None
    import torch

    from latentlab.models.registry import save_weights

    model = open_run(run_copy).model
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    save_weights(model, run_copy / "model.safetensors")  # retrained: the stored hash no longer matches
    assert stored_choice(run_copy) is None


def test_a_run_folder_that_cannot_be_written_still_gets_a_choice(run_copy: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import latentlab.io

    def refuse(path: object, obj: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(latentlab.io, "write_json", refuse)
    choice = resolve_auto(run_copy)
    assert choice.path is None and not (run_copy / CHOICE_FILE).exists()


def test_a_run_whose_data_changed_says_how_to_choose(run_copy: Path) -> None:
    config = json.loads((run_copy / "config.json").read_text())
    config["data"]["spec"] = "faces:100"  # 100 images, but it trained on 256
    (run_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(LatentlabError, match=r"trained on 256 images.*gives 100.*--train-data"):
        choose_score(run_copy)
    choice = choose_score(run_copy, images=open_run(run_copy).data("faces:256"))
    assert choice.n_held_out == 26


def test_a_model_without_a_run_folder_chooses_from_the_images_it_is_fitted_on(tiny_run: Path,
                                                                            faces_images: np.ndarray) -> None:
    from latentlab.anomaly.detector import ReconstructionDetector

    det = ReconstructionDetector(open_run(tiny_run).model).fit(faces_images)
    assert det.choice_ is not None and det.choice_.path is None
    assert det.choice_.n_held_out == 5  # a tenth of 48
    assert det.score_name_ == f"auto: {det.choice_.name}"
    assert det.decision_function(faces_images[:4]).shape == (4,)
