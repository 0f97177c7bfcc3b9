"""Single-image patch diffusion (Phase 1): schedule, network, prior."""

from .pdnet import PDNet, timestep_embedding
from .prior import PatchPrior, PriorConfig, from_model, image_hash, receptive_field, to_model
from .schedule import DDPMSchedule

__all__ = [
    "DDPMSchedule",
    "PDNet",
    "PatchPrior",
    "PriorConfig",
    "from_model",
    "image_hash",
    "receptive_field",
    "timestep_embedding",
    "to_model",
]
