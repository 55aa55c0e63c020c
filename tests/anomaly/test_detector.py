"""ReconstructionDetector keeps the scikit-learn / PyOD contract."""

from __future__ import annotations

import numpy as np
import pytest

from latentlab.anomaly.detector import ReconstructionDetector
from latentlab.anomaly.metrics import roc_auc
from latentlab.errors import LatentlabError
from latentlab.runs import open_run


@pytest.fixture(scope="module")
def run(tiny_run, tmp_path_factory):
    """The tiny run, copied: ``score="auto"`` (the default) stores the run's choice in its folder."""
    import shutil

    folder = tmp_path_factory.mktemp("detector") / "run"
    shutil.copytree(tiny_run, folder)
    return open_run(folder)


def test_init_only_stores_parameters(run):
    det = ReconstructionDetector(run, score="nonsense", contamination=7)  # checked at fit, as sklearn does
    assert det.score == "nonsense" and det.contamination == 7
    assert not hasattr(det, "threshold_")
    with pytest.raises(LatentlabError, match="expected one of"):
        det.fit(np.zeros((4, 64, 64, 3), np.uint8))


def test_fit_returns_self_and_sets_fitted_attributes(run, faces_images):
    det = ReconstructionDetector(run, contamination=0.1)
    assert det.fit(faces_images) is det
    assert det.decision_scores_.shape == (len(faces_images),)
    assert np.array_equal(det.labels_, (det.decision_scores_ > det.threshold_).astype(int))
    # contamination quantile: about 10% of the training images lie above the threshold
    assert det.labels_.sum() == pytest.approx(0.1 * len(faces_images), abs=1)
    np.testing.assert_allclose(det.decision_function(faces_images), det.decision_scores_, rtol=1e-5)


def test_signs_and_predict(run, faces_images, mixed_set):
    images, labels = mixed_set
    det = ReconstructionDetector(run, score="combined").fit(faces_images)
    scores = det.decision_function(images)
    np.testing.assert_array_equal(det.score_samples(images), -scores)
    pred = det.predict(images)
    assert set(np.unique(pred)) <= {0, 1}
    np.testing.assert_array_equal(pred, (scores > det.threshold_).astype(int))
    assert pred[labels == 1].mean() == 1.0  # noise is an anomaly: 1
    assert pred[labels == 0].mean() < 0.5
    assert roc_auc(scores, labels) > 0.95


def test_threshold_falls_back_to_the_contamination_quantile_without_anomalies(run, faces_images):
    det = ReconstructionDetector(run, contamination=0.05).fit(faces_images, y=np.zeros(len(faces_images)))
    assert det.threshold_ == pytest.approx(np.quantile(det.decision_scores_, 0.95))
    assert det.threshold_ > det.decision_scores_.min()  # not "flag everything"
    assert det.labels_.mean() < 0.1


def test_labelled_anomalies_set_an_f1_threshold_and_are_left_out_of_the_fit(run, mixed_set):
    from latentlab.anomaly.metrics import best_f1_threshold

    images, labels = mixed_set
    det = ReconstructionDetector(run, score="combined").fit(images, y=labels)
    assert det.threshold_ == best_f1_threshold(det.decision_scores_, labels)
    assert det.labels_[labels == 1].all()  # the noise images are above the cut
    fitted_on_all = ReconstructionDetector(run, score="combined").fit(images)
    assert not np.allclose(det.stats_.density.mean, fitted_on_all.stats_.density.mean)
    assert det.stats_.center["mse"] < fitted_on_all.stats_.center["mse"]  # noise left out: lower errors


def test_accepts_a_bare_model_and_an_imageset(run, faces_images):
    from latentlab.data import ImageSet

    det = ReconstructionDetector(run.model, score="ssim").fit(ImageSet(images=faces_images))
    assert det.decision_scores_.shape == (len(faces_images),)
    assert det.error_maps(faces_images[:3]).shape == (3, 64, 64)


def test_bad_uses_are_one_line_errors(run, faces_images):
    det = ReconstructionDetector(run)
    with pytest.raises(LatentlabError, match="not fitted"):
        det.decision_function(faces_images)
    with pytest.raises(LatentlabError, match="uint8"):
        det.fit(faces_images.astype(np.float32))
    with pytest.raises(LatentlabError, match="contamination"):
        ReconstructionDetector(run, contamination=0.0).fit(faces_images)
    with pytest.raises(LatentlabError, match="labels for"):
        det.fit(faces_images, y=np.zeros(3))
    with pytest.raises(LatentlabError, match="variational"):
        ReconstructionDetector(run, score="elbo").fit(faces_images)


def test_elbo_detector_on_a_vae(tiny_vae_run, faces_images, mixed_set):
    images, labels = mixed_set
    det = ReconstructionDetector(open_run(tiny_vae_run), score="elbo").fit(faces_images)
    assert roc_auc(det.decision_function(images), labels) > 0.9


def test_held_out_normals_set_the_threshold_and_standardise_a_combination(run, faces_images):
    fit, held = faces_images[:36], faces_images[36:]
    det = ReconstructionDetector(run, score="combined", parts=("mse", "ssim"), combine="max",
                                 contamination=0.1).fit(fit, held_out=held)
    assert det.held_out_scores_.shape == (12,)
    assert det.threshold_ == pytest.approx(np.quantile(det.held_out_scores_, 0.9))
    np.testing.assert_allclose(det.decision_function(held), det.held_out_scores_, rtol=1e-5)
    assert det.stats_.combine == "max" and det.score_name_ == "max(mse,ssim)"
    # standardised on the held-out images: their parts have mean 0 there, so their maximum is about 0 or more
    assert abs(np.median(det.held_out_scores_)) < 1.5
    plain = ReconstructionDetector(run, score="mse").fit(fit)
    assert plain.held_out_scores_ is None
    assert plain.threshold_ == pytest.approx(np.quantile(plain.decision_scores_, 0.95))


def test_auto_resolves_to_a_concrete_score(run, faces_images):
    det = ReconstructionDetector(run).fit(faces_images)
    assert det.score == "auto" and det.choice_ is not None
    assert det.score_ == det.choice_.kind and det.parts_ == det.choice_.parts
    assert det.score_name_ == f"auto: {det.choice_.name}"
    same = ReconstructionDetector(run, score=det.score_, parts=det.parts_, combine=det.combine_).fit(faces_images)
    np.testing.assert_allclose(same.decision_scores_, det.decision_scores_, rtol=1e-5)
