"""The anomaly recipe and ``--score auto`` on the real CelebA subset, with a reduced budget
(slow; needs ../shared/data). The full budget and seven anomaly kinds: benchmarks/faces_anomaly.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.mark.slow
def test_recipe_and_auto_on_real_faces(shared_data: Path, tmp_path: Path) -> None:
    from latentlab.anomaly.evaluate import evaluate_run
    from latentlab.anomaly.recipe import finish_run, load_recipe
    from latentlab.data import BatchSpec, load_source
    from latentlab.data.batches import resize_uint8
    from latentlab.data.rule import PreparedSet
    from latentlab.runs import open_run
    from latentlab.train.api import train_run
    from latentlab.train.trainer import TrainConfig

    tar = shared_data / "celeba_subset" / "celeba_aligned_6000img_200id.tar"
    found = load_recipe("anomaly")
    train = TrainConfig(**{**found.train_overrides(), "epochs": 3})  # the recipe trains 12
    classifier = {**found.transforms, "epochs": 2}  # the recipe trains 6
    train_run(found.model_config((3, 64, 64), (-1.0, 1.0)), f"celeba:{tar}#train", BatchSpec(**found.rule), train,
              tmp_path / "run", progress=False, extra={"recipe": {"name": "anomaly", "transforms": classifier}})
    assert finish_run(tmp_path / "run") is not None and (tmp_path / "run" / "transforms.safetensors").is_file()

    faces = np.asarray(open_run(tmp_path / "run").data(f"celeba:{tar}#test").images[:200])  # never trained on
    digits = np.asarray(load_source(f"idx:{shared_data / 'mnist'}#test").images[:100])
    digits = np.repeat(resize_uint8(digits, (64, 64)), 3, axis=-1)  # simpler than a face
    flipped = np.ascontiguousarray(faces[:100, ::-1])  # a face, upside down
    images = np.concatenate([faces, digits, flipped])
    labels = np.r_[np.zeros(200), np.ones(200)].astype(np.int64)
    result = evaluate_run(tmp_path / "run", PreparedSet(images=images, batch=BatchSpec()), labels,
                          tmp_path / "eval", k=2)
    assert result.choice is not None and result.choice.path is not None and result.choice.path.is_file()
    assert result.choice.n_held_out == 480  # the recipe's validation split of the 4,800 training faces
    kinds = {k for c in result.choice.candidates for k in c.parts}
    assert {"transforms", "transform-features", "|mse|"} <= kinds  # the classifier's scores, two-sided parts
    assert result.evaluation.roc_auc > 0.85, (result.score, result.evaluation)
    assert result.evaluation.best is not None and 0 < result.evaluation.recall <= 1
