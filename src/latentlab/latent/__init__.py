"""Latent tools: edit expressions, row filters, traversals, interpolation, sampling, element ranking,
attribute vectors, measured change descriptions and the faces factor regressor (free functions
over the model verbs)."""

from .describe import ChangeDescription, describe_change  # noqa: F401
from .edits import Edit, apply_edits, parse_edit, parse_edits  # noqa: F401
from .explore import (  # noqa: F401
    ElementScore,
    attribute_vector,
    encode_dataset,
    fit_gaussian,
    interpolate,
    latent_ranges,
    rank_elements,
    sample,
    traversal_values,
    traverse,
)
from .factors import FactorRegressor  # noqa: F401
from .where import Where, parse_where, select  # noqa: F401
