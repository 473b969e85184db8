from . import _config as _config, sampling as sampling
from ._config import backend_info as backend_info, get_num_threads as get_num_threads
from ._config import set_num_threads as set_num_threads, show_config as show_config
from .functional import binary_cross_entropy_with_logits as binary_cross_entropy_with_logits
from .functional import cross_entropy as cross_entropy, log_softmax as log_softmax
from .functional import log_softmax_backward as log_softmax_backward, logsumexp as logsumexp
from .functional import sigmoid as sigmoid, softmax as softmax, softmax_backward as softmax_backward
from .linear import LinearGrads as LinearGrads, linear_cross_entropy as linear_cross_entropy
from .losses import BCEWithLogitsLoss as BCEWithLogitsLoss, CrossEntropyLoss as CrossEntropyLoss
from .losses import LinearCrossEntropyLoss as LinearCrossEntropyLoss, NCELoss as NCELoss
from .losses import SampledSoftmaxLoss as SampledSoftmaxLoss
from .sampled import SampledGrads as SampledGrads, nce_loss as nce_loss, sampled_softmax_loss as sampled_softmax_loss

__version__: str
__all__: list[str]
