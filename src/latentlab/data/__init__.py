"""Data: specs -> ImageSet (uint8 NHWC), generated faces, and batch transforms."""

from latentlab.data.batches import BatchSpec, to_model_input, to_uint8
from latentlab.data.faces import make_faces
from latentlab.data.imageset import ImageSet
from latentlab.data.sources import load_source

__all__ = ["BatchSpec", "ImageSet", "load_source", "make_faces", "to_model_input", "to_uint8"]
