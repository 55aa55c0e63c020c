"""The one-class protocol on real MNIST digits with a reduced budget (slow; needs ../shared/data)."""

from __future__ import annotations

import pytest

from latentlab.anomaly.oneclass import load_config, run_oneclass


@pytest.mark.slow
def test_oneclass_protocol_on_two_mnist_classes(shared_data, tmp_path):
    config = load_config()
    results = run_oneclass(f"idx:{shared_data / 'mnist'}", "1,8", config, tmp_path, epochs=2, workers=2)
    assert [r.normal for r in results] == [1, 8]
    for r in results:
        assert r.n_train > 5000  # the training images of that digit only
        assert r.roc_auc > 0.85, r  # chance is 0.5; the full budget reaches about 0.95 and more
        assert set(config.report) <= set(r.part_auc)  # the reconstruction errors alone, for comparison
    assert (tmp_path / "class_8" / "COMPLETE").is_file()
