"""The NAO controller: encoder, predictor and decoder; fitting, generation and metrics.

>>> from nao.spaces import get_space
>>> from nao.controller import EncoderPredictorDecoder, for_space
>>> model = EncoderPredictorDecoder(get_space("nb201"), for_space(get_space("nb201")))
>>> model.mask.shape
torch.Size([6, 5])
"""

from nao.controller.config import ControllerConfig, for_space, paper
from nao.controller.fit import fit, normalize_targets
from nao.controller.generate import Candidate, improve_candidates
from nao.controller.metrics import kendall_tau, pairwise_accuracy, reconstruction_accuracy
from nao.controller.model import EncoderPredictorDecoder

__all__ = [
    "Candidate",
    "ControllerConfig",
    "EncoderPredictorDecoder",
    "fit",
    "for_space",
    "improve_candidates",
    "kendall_tau",
    "normalize_targets",
    "pairwise_accuracy",
    "paper",
    "reconstruction_accuracy",
]
