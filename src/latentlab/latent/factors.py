"""Estimate known generative factors from images: ridge regression on downsampled pixels.

The generated ``faces`` data (:mod:`latentlab.data.faces`) knows each image's factors (hue, face
width, eye size, mouth, head turn, background). A decoded image does not, so to say "this edit
opened the mouth by 0.3" we estimate the factors of decoded images with a regressor fitted on
generated faces and report the change of the estimate. Ridge regression (Hoerl & Kennard, 1970;
scikit-learn's ``Ridge``) on 16x16 box-filtered thumbnails is enough for these smooth factors
(held-out R^2 near 1) and fits in well under a second; part of the training images are
Gaussian-blurred so that the estimate also holds for the blurrier output of an autoencoder.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import Ridge

from latentlab.errors import LatentlabError

__all__ = ["FactorRegressor"]


def _thumbnails(images: np.ndarray, size: int, blur: float = 0.0) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float64 features (N, C * size * size) in [0, 1].

    ``blur`` > 0 applies a Gaussian blur of that sigma (in pixels of the stored image) first; it is
    done at half resolution, where it costs a quarter as much.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise LatentlabError(f"factor regressor: expected uint8 images (N, H, W, C), got "
                             f"{images.dtype} {images.shape}")
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0  # (N, C, H, W)
    if blur > 0:
        h, w = x.shape[-2:]
        x = _gaussian_blur(F.adaptive_avg_pool2d(x, (max(h // 2, size), max(w // 2, size))), blur / 2)
    x = F.adaptive_avg_pool2d(x, (size, size))  # box-filter thumbnail
    return x.flatten(1).double()  # (N, C * size * size)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of float (N, C, H, W), edges replicated."""
    radius = max(1, round(3 * sigma))
    k = torch.exp(-torch.arange(-radius, radius + 1, dtype=x.dtype) ** 2 / (2 * sigma * sigma))
    k = k / k.sum()
    c = x.shape[1]
    across, down = k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), across, groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), down, groups=c)


class FactorRegressor:
    """Linear estimate of named factors from a thumbnail of the image.

    ``fit`` returns ``self``; fitted attributes end in ``_``. Images of any size with the
    channel count seen in ``fit`` are accepted (they are resized to ``size`` x ``size``).
    """

    def __init__(self, size: int = 16, alpha: float = 0.3) -> None:
        self.size = size
        self.alpha = alpha

    # ---------------------------------------------------------------- fit / predict

    def fit(self, images: np.ndarray, factors: dict[str, np.ndarray],
            blur: tuple[float, ...] = ()) -> FactorRegressor:
        """Fit on uint8 (N, H, W, C) images and their factors (name -> (N,) floats).

        ``blur``: sigmas (pixels); the images are split into ``len(blur) + 1`` equal parts, the
        first kept sharp and each other one blurred with its sigma (augmentation).
        """
        if not factors:
            raise LatentlabError("factor regressor: no factors to fit")
        parts = np.array_split(np.arange(len(images)), len(blur) + 1)
        x = torch.cat([_thumbnails(images[rows], self.size, sigma)
                       for rows, sigma in zip(parts, (0.0, *blur), strict=True)])  # (N, F)
        y = np.stack([np.asarray(v, dtype=np.float64) for v in factors.values()], 1)  # (N, K)
        if y.shape[0] != x.shape[0]:
            raise LatentlabError(f"factor regressor: {y.shape[0]} factor rows for {x.shape[0]} images")
        self.names_ = list(factors)
        self.channels_ = int(np.asarray(images).shape[-1])
        self.ridge_ = Ridge(alpha=self.alpha).fit(x.numpy(), y)  # the intercept is fitted, not penalised
        return self

    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Estimated factors of uint8 (N, H, W, C) images: name -> (N,) float array."""
        if not hasattr(self, "ridge_"):
            raise LatentlabError("factor regressor: call fit() before predict()")
        if np.asarray(images).shape[-1] != self.channels_:
            raise LatentlabError(f"factor regressor: fitted on {self.channels_}-channel images, got "
                                 f"{np.asarray(images).shape[-1]} channels")
        y = np.asarray(self.ridge_.predict(_thumbnails(images, self.size).numpy()), dtype=np.float64)
        y = y.reshape(len(y), -1)  # (N, K); Ridge gives (N,) for one factor
        return {name: y[:, k].copy() for k, name in enumerate(self.names_)}

    def r2(self, images: np.ndarray, factors: dict[str, np.ndarray]) -> dict[str, float]:
        """Coefficient of determination per factor on (held-out) images."""
        pred = self.predict(images)
        out = {}
        for name in self.names_:
            y = np.asarray(factors[name], dtype=np.float64)
            out[name] = float(1.0 - ((pred[name] - y) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-12))
        return out

    # ---------------------------------------------------------------- the faces regressor

    @classmethod
    def for_faces(cls, n: int = 2000, seed: int = 1234) -> FactorRegressor:
        """Fitted on ``n`` generated faces (seed ``seed``); cached per process.

        A third of the training faces stay sharp, a third are blurred with sigma 1 px and a
        third with sigma 2 px (an autoencoder's output is blurry).
        """
        return _faces_regressor(int(n), int(seed))


@functools.lru_cache(maxsize=4)
def _faces_regressor(n: int, seed: int) -> FactorRegressor:
    from latentlab.data.faces import make_faces

    faces = make_faces(n, seed=seed)
    return FactorRegressor().fit(faces.images, faces.factors, blur=(1.0, 2.0))
