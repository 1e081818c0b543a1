"""``pathwaygrad reproduce``: the paper's experiments end to end, with a report beside its numbers.

``reproduce(preset, ...)`` runs a preset of :data:`pathwaygrad.presets.REPRODUCTION` and writes the
report; ``write_claim_report(run_folder, out)`` writes the ROAR-claim report of a ROAR run.
"""

from pathwaygrad.presets import REPRODUCTION, ReproductionPreset
from pathwaygrad.reproduce.claim import write_claim_report
from pathwaygrad.reproduce.run import reproduce

__all__ = ["REPRODUCTION", "ReproductionPreset", "reproduce", "write_claim_report"]
