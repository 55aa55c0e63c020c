"""ImageSet: images kept as uint8 NHWC (memory-mapped where the file allows) plus labels."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from latentlab.errors import LatentlabError


@dataclass
class ImageSet:
    """A set of images as they are stored: uint8, shape (N, H, W, C).

    ``images`` may be a ``np.memmap``; nothing converts it to float as a whole. ``labels`` are
    integer class ids (N,) or None; ``label_names[i]`` names class i. ``factors`` holds known
    continuous generative factors (the ``faces`` source), each an (N,) float array.
    """

    images: np.ndarray
    labels: np.ndarray | None = None
    label_names: list[str] | None = None
    factors: dict[str, np.ndarray] = field(default_factory=dict)
    spec: str = ""

    def __post_init__(self) -> None:
        name = self.spec or "image set"
        if self.images.ndim != 4:
            raise LatentlabError(f"{name}: expected images of shape (N, H, W, C), got {self.images.shape}")
        if self.images.dtype != np.uint8:
            raise LatentlabError(f"{name}: expected uint8 images, got {self.images.dtype}")
        if self.images.shape[-1] not in (1, 3):
            raise LatentlabError(f"{name}: expected 1 or 3 channels, got {self.images.shape[-1]}")
        if len(self.images) == 0:
            raise LatentlabError(f"{name}: contains no images")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise LatentlabError(
                f"{name}: {len(self.labels)} labels for {len(self.images)} images")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W): the shape a model sees."""
        _, h, w, c = self.images.shape
        return (int(c), int(h), int(w))

    def subset(self, index: np.ndarray | list[int]) -> ImageSet:
        """A new set of the same class of the given rows (copies only those rows)."""
        index = np.asarray(index, dtype=np.int64)
        return dataclasses.replace(
            self,
            images=np.ascontiguousarray(self.images[index]),
            labels=None if self.labels is None else self.labels[index],
            factors={k: v[index] for k, v in self.factors.items()},
        )

    def check_index(self, index: list[int]) -> list[int]:
        """Validate user-given image indices; negative ones count from the end."""
        n = len(self)
        out = []
        for i in index:
            if not -n <= i < n:
                raise LatentlabError(f"index {i}: out of range for {self.spec or 'the data'} ({n} images)")
            out.append(i % n)
        return out
