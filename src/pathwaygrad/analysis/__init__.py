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

Every dataset-level function takes a model, data (a tensor, a dataset or batches), pathway
methods in the grammar of :mod:`pathwaygrad.specs` (``"neuron_mct;dgr:init=random"``) and
sparsities, and returns a result object with per-example arrays, means and standard deviations.
:func:`run_analysis` does what ``pathwaygrad analyze`` does (tables, figures, a resumable run
folder); :func:`compute_pathways` selects one batch's pathways through the core.
"""

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
from pathwaygrad.analysis.pathways import (
    PathwaySet,
    compute_pathways,
    full_pathway,
    pathway_specs,
    subset,
)
from pathwaygrad.analysis.run import (
    ANALYSES,
    AnalysisConfig,
    analysis_config,
    load_data,
    run_analysis,
    run_config,
)

__all__ = [
    "ANALYSES",
    "AnalysisConfig",
    "DecodeResult",
    "FidelityResult",
    "LinearityResult",
    "OverlapResult",
    "PathwaySet",
    "analysis_config",
    "compute_pathways",
    "dead_share",
    "decode",
    "decode_pathways",
    "fidelity",
    "fidelity_analysis",
    "full_pathway",
    "jaccard",
    "jaccard_matrix",
    "linearity_analysis",
    "load_data",
    "linearization_error",
    "local_linearity",
    "overlap_analysis",
    "pathway_specs",
    "pattern_radius",
    "run_analysis",
    "run_config",
    "subset",
    "top_neuron",
]
