"""Pathway analysis (paper sections 3.1-3.3 and 4): do different methods find the same pathway,
does a pathway keep dead neurons, does it keep the response, is it locally linear, and what does
it encode.

==================  ==========================================================================
module              what it measures
==================  ==========================================================================
``overlap``         Jaccard matrix between methods' pathways; dead share |path & dead| / |path|
``fidelity``        masked vs full target logit and probability; prediction kept
``linearity``       L2 radius of the pathway's linear region (pattern radius); linearisation error
``decoding``        feature visualisation through the masked network; top neuron per method
``plots``           the figures
==================  ==========================================================================

Every dataset-level function takes a model, data (a tensor, a dataset or batches), method specs
(``"neuron_mct,dgr:init=random"``) and sparsities, and returns a result object with per-example
arrays, means and standard deviations. ``pathwaygrad analyze`` runs them from the command line.
"""

from pathwaygrad.analysis._specs import (
    PAPER_METHODS,
    MethodSpec,
    PathwaySet,
    compute_pathways,
    parse_method,
    parse_methods,
)
from pathwaygrad.analysis.decoding import DecodeResult, decode, decode_pathways, top_neuron
from pathwaygrad.analysis.fidelity import FidelityResult, fidelity, fidelity_analysis
from pathwaygrad.analysis.linearity import (
    LinearityResult,
    linearity_analysis,
    linearization_error,
    local_linearity,
    pattern_radius,
)
from pathwaygrad.analysis.overlap import (
    OverlapResult,
    dead_share,
    jaccard,
    jaccard_matrix,
    overlap_analysis,
)

__all__ = [
    "PAPER_METHODS",
    "DecodeResult",
    "FidelityResult",
    "LinearityResult",
    "MethodSpec",
    "OverlapResult",
    "PathwaySet",
    "compute_pathways",
    "dead_share",
    "decode",
    "decode_pathways",
    "fidelity",
    "fidelity_analysis",
    "jaccard",
    "jaccard_matrix",
    "linearity_analysis",
    "linearization_error",
    "local_linearity",
    "overlap_analysis",
    "parse_method",
    "parse_methods",
    "pattern_radius",
    "top_neuron",
]
