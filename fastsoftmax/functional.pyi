from typing import Literal, overload

from numpy.typing import ArrayLike

from ._typing import Axis, FloatArray, Floating, Reduced, Reduction

__all__ = ["softmax", "log_softmax", "logsumexp", "cross_entropy", "sigmoid", "binary_cross_entropy_with_logits",
           "softmax_backward", "log_softmax_backward"]

_Axes = Axis | tuple[Axis, ...] | None

def softmax(x: ArrayLike, axis: _Axes = -1, *, out: FloatArray | None = None) -> FloatArray: ...
def log_softmax(x: ArrayLike, axis: _Axes = -1, *, out: FloatArray | None = None) -> FloatArray: ...
@overload
def logsumexp(x: ArrayLike, axis: _Axes = -1, *, keepdims: bool = False, b: ArrayLike | None = None,
              return_sign: Literal[False] = False) -> FloatArray: ...
@overload
def logsumexp(x: ArrayLike, axis: _Axes = -1, *, keepdims: bool = False, b: ArrayLike | None = None,
              return_sign: Literal[True]) -> tuple[FloatArray, FloatArray]: ...
def sigmoid(x: ArrayLike, *, out: FloatArray | None = None) -> FloatArray: ...
def softmax_backward(probs: ArrayLike, grad_output: ArrayLike, axis: Axis = -1, *,
                     out: FloatArray | None = None) -> FloatArray: ...
def log_softmax_backward(log_probs: ArrayLike, grad_output: ArrayLike, axis: Axis = -1, *,
                         out: FloatArray | None = None) -> FloatArray: ...

@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, *, axis: Axis = -1, weight: ArrayLike | None = None,
                  ignore_index: int = -100, reduction: Reduced = "mean", label_smoothing: float = 0.0,
                  z_loss: float = 0.0, return_grad: Literal[False] = False, out: None = None) -> Floating: ...
@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, *, axis: Axis = -1, weight: ArrayLike | None = None,
                  ignore_index: int = -100, reduction: Literal["none"], label_smoothing: float = 0.0,
                  z_loss: float = 0.0, return_grad: Literal[False] = False, out: None = None) -> FloatArray: ...
@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, *, axis: Axis = -1, weight: ArrayLike | None = None,
                  ignore_index: int = -100, reduction: Reduced = "mean", label_smoothing: float = 0.0,
                  z_loss: float = 0.0, return_grad: Literal[True],
                  out: FloatArray | None = None) -> tuple[Floating, FloatArray]: ...
@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, *, axis: Axis = -1, weight: ArrayLike | None = None,
                  ignore_index: int = -100, reduction: Literal["none"], label_smoothing: float = 0.0,
                  z_loss: float = 0.0, return_grad: Literal[True],
                  out: FloatArray | None = None) -> tuple[FloatArray, FloatArray]: ...
@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, *, axis: Axis = -1, weight: ArrayLike | None = None,
                  ignore_index: int = -100, reduction: Reduction = "mean", label_smoothing: float = 0.0,
                  z_loss: float = 0.0, return_grad: bool = False, out: FloatArray | None = None
                  ) -> Floating | FloatArray | tuple[Floating | FloatArray, FloatArray]: ...

@overload
def binary_cross_entropy_with_logits(logits: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None,
                                     pos_weight: ArrayLike | None = None, reduction: Reduced = "mean",
                                     return_grad: Literal[False] = False, out: None = None) -> Floating: ...
@overload
def binary_cross_entropy_with_logits(logits: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None,
                                     pos_weight: ArrayLike | None = None, reduction: Literal["none"],
                                     return_grad: Literal[False] = False, out: None = None) -> FloatArray: ...
@overload
def binary_cross_entropy_with_logits(logits: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None,
                                     pos_weight: ArrayLike | None = None, reduction: Reduced = "mean",
                                     return_grad: Literal[True], out: FloatArray | None = None
                                     ) -> tuple[Floating, FloatArray]: ...
@overload
def binary_cross_entropy_with_logits(logits: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None,
                                     pos_weight: ArrayLike | None = None, reduction: Literal["none"],
                                     return_grad: Literal[True], out: FloatArray | None = None
                                     ) -> tuple[FloatArray, FloatArray]: ...
@overload
def binary_cross_entropy_with_logits(logits: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None,
                                     pos_weight: ArrayLike | None = None, reduction: Reduction = "mean",
                                     return_grad: bool = False, out: FloatArray | None = None
                                     ) -> Floating | FloatArray | tuple[Floating | FloatArray, FloatArray]: ...
