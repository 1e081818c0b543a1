"""pathwaygrad: neural response interpretation through critical pathways.

Khakzar et al., *Neural Response Interpretation through the Lens of Critical Pathways*, CVPR 2021.

The pipeline, one module (or folder) per step:

1. :mod:`pathwaygrad.sites` finds every activation *call* of a model;
2. :mod:`pathwaygrad.methods` scores the neurons (NeuronMCT, NeuronIntGrad, ...);
3. :mod:`pathwaygrad.selection` selects the critical pathway (global threshold by default);
4. :mod:`pathwaygrad.attribution` computes the pathway gradient (and the baselines);
5. :mod:`pathwaygrad.evaluation` and :mod:`pathwaygrad.analysis` evaluate them.
"""

from pathwaygrad import errors
from pathwaygrad.attribution.baselines import BASELINE_METHODS
from pathwaygrad.attribution.explain import explain
from pathwaygrad.attribution.pathway_gradient import PathwayGradient, pathway_gradient
from pathwaygrad.methods import PATHWAY_METHODS
from pathwaygrad.pathway import Pathway
from pathwaygrad.selection import (
    NeuronScores,
    pathway_logits,
    score_neurons,
    select_pathway,
    select_pathways,
)
from pathwaygrad.sites import ACTIVATION_KINDS, Site, activation_sites
from pathwaygrad.visualization import reduce_channels

__version__ = "0.1.0"

__all__ = [
    "ACTIVATION_KINDS",
    "BASELINE_METHODS",
    "PATHWAY_METHODS",
    "NeuronScores",
    "Pathway",
    "PathwayGradient",
    "Site",
    "activation_sites",
    "errors",
    "explain",
    "pathway_gradient",
    "pathway_logits",
    "reduce_channels",
    "score_neurons",
    "select_pathway",
    "select_pathways",
    "__version__",
]
