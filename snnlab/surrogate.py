r"""Surrogate spike functions.

A spiking neuron fires with the Heaviside step :math:`\Theta(x) = [x \ge 0]`
(``x = V - V_threshold``), whose derivative is zero almost everywhere. A
surrogate function keeps :math:`\Theta` in the forward pass and uses the
derivative :math:`g'(x)` of a smooth *primitive* :math:`g(x)` in the backward
pass. With ``spiking=False`` the module computes the primitive itself (an
ordinary differentiable activation).

Each class below documents its :math:`g` and :math:`g'`; the formulas and
default ``alpha`` are SpikingJelly's. Every class exposes:

* ``surrogate_grad(x, alpha)`` -- :math:`g'(x)` as a plain tensor function;
* ``primitive_function(x, alpha)`` -- :math:`g(x)`;
* ``spiking_function(x, alpha)`` -- :math:`\Theta(x)` with :math:`g'` as gradient;
* ``backward(grad_output, x, alpha)`` -- ``grad_output * g'(x)``.

Inputs of any shape; outputs have the input's shape and dtype.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ATan",
    "Erf",
    "PiecewiseExp",
    "PiecewiseQuadratic",
    "Rect",
    "Sigmoid",
    "SoftSign",
    "SuperSpike",
    "SurrogateFunctionBase",
    "heaviside",
    "surrogate_spike",
]


def heaviside(x: torch.Tensor) -> torch.Tensor:
    r""":math:`\Theta(x) = 1` if :math:`x \ge 0` else :math:`0`, in ``x``'s dtype."""
    return (x >= 0).to(x)


class _SurrogateSpike(torch.autograd.Function):
    """Heaviside forward; ``grad_output * surrogate_grad(x, alpha)`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float, surrogate_grad):  # type: ignore[override]
        if x.requires_grad:
            ctx.save_for_backward(x)
            ctx.alpha = alpha
            ctx.surrogate_grad = surrogate_grad
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate_grad(x, ctx.alpha), None, None


def surrogate_spike(x: torch.Tensor, alpha: float, surrogate_grad) -> torch.Tensor:
    r"""Spike :math:`\Theta(x)` whose gradient is ``surrogate_grad(x, alpha)``.

    Build a new surrogate from any derivative function, e.g.
    ``surrogate_spike(x, 1.0, lambda x, a: a * torch.exp(-a * x.abs()))``.
    """
    return _SurrogateSpike.apply(x, alpha, surrogate_grad)


class SurrogateFunctionBase(nn.Module):
    """Base class: ``forward`` is the spike (``spiking=True``) or the primitive.

    Subclasses define ``surrogate_grad`` and ``primitive_function`` as static
    methods. ``alpha`` must be a finite positive number.
    """

    default_alpha: float = 1.0

    def __init__(self, alpha: float | None = None, spiking: bool = True) -> None:
        super().__init__()
        alpha = self.default_alpha if alpha is None else alpha
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
            raise TypeError(f"alpha must be a real number, got {type(alpha).__name__} {alpha!r}")
        if not math.isfinite(alpha) or alpha <= 0:
            raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
        if not isinstance(spiking, bool):
            raise TypeError(f"spiking must be a bool, got {type(spiking).__name__} {spiking!r}")
        self.alpha = float(alpha)
        self.spiking = spiking

    def set_spiking_mode(self, spiking: bool) -> None:
        """``True``: Heaviside forward with surrogate gradient; ``False``: the primitive."""
        if not isinstance(spiking, bool):
            raise TypeError(f"spiking must be a bool, got {type(spiking).__name__} {spiking!r}")
        self.spiking = spiking

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, spiking={self.spiking}"

    @staticmethod
    def surrogate_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def primitive_function(x: torch.Tensor, alpha: float) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def spiking_function(cls, x: torch.Tensor, alpha: float) -> torch.Tensor:
        r""":math:`\Theta(x)` forward, :math:`g'(x)` backward."""
        return _SurrogateSpike.apply(x, alpha, cls.surrogate_grad)

    @classmethod
    def backward(cls, grad_output: torch.Tensor, x: torch.Tensor, alpha: float) -> torch.Tensor:
        r"""``grad_output * g'(x)``."""
        return grad_output * cls.surrogate_grad(x, alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spiking:
            return self.spiking_function(x, self.alpha)
        return self.primitive_function(x, self.alpha)


class Sigmoid(SurrogateFunctionBase):
    r"""Sigmoid surrogate (default ``alpha=4``).

    .. math::
        g(x) = \mathrm{sigmoid}(\alpha x), \qquad
        g'(x) = \alpha\,\mathrm{sigmoid}(\alpha x)\,(1 - \mathrm{sigmoid}(\alpha x))
    """

    default_alpha = 4.0

    def __init__(self, alpha: float = 4.0, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    @staticmethod
    def surrogate_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        sg = torch.sigmoid(alpha * x)
        return alpha * sg * (1.0 - sg)

    @staticmethod
    def primitive_function(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return torch.sigmoid(alpha * x)


class ATan(SurrogateFunctionBase):
    r"""Arc-tangent surrogate (default ``alpha=2``).

    .. math::
        g(x) = \frac{1}{\pi}\arctan\!\left(\frac{\pi}{2}\alpha x\right) + \frac{1}{2}, \qquad
        g'(x) = \frac{\alpha}{2\,(1 + (\frac{\pi}{2}\alpha x)^2)}
    """

    default_alpha = 2.0

    def __init__(self, alpha: float = 2.0, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    @staticmethod
    def surrogate_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return alpha / 2.0 / (1.0 + (math.pi / 2.0 * alpha * x).square())

    @staticmethod
    def primitive_function(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return torch.atan(math.pi / 2.0 * alpha * x) / math.pi + 0.5


class PiecewiseQuadratic(SurrogateFunctionBase):
    r"""Piecewise quadratic (triangle-gradient) surrogate (default ``alpha=1``).

    .. math::
        g(x) = \begin{cases} 0, & x < -1/\alpha \\
        -\tfrac{1}{2}\alpha^2 |x| x + \alpha x + \tfrac{1}{2}, & |x| \le 1/\alpha \\
        1, & x > 1/\alpha \end{cases}, \qquad
        g'(x) = \begin{cases} -\alpha^2 |x| + \alpha, & |x| \le 1/\alpha \\ 0, & |x| > 1/\alpha \end{cases}
    """

    default_alpha = 1.0

    def __init__(self, alpha: float = 1.0, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    @staticmethod
    def surrogate_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        x_abs = x.abs()
        return (alpha - alpha**2 * x_abs).masked_fill(x_abs > 1.0 / alpha, 0.0)

    @staticmethod
    def primitive_function(x: torch.Tensor, alpha: float) -> torch.Tensor:
        above = (x > 1.0 / alpha).to(x)
        inside = (x.abs() <= 1.0 / alpha).to(x)
        return above + inside * (-(alpha**2) / 2.0 * x.abs() * x + alpha * x + 0.5)


class PiecewiseExp(SurrogateFunctionBase):
    r"""Piecewise exponential surrogate (default ``alpha=1``).

    .. math::
        g(x) = \begin{cases} \tfrac{1}{2} e^{\alpha x}, & x < 0 \\ 1 - \tfrac{1}{2} e^{-\alpha x}, & x \ge 0
        \end{cases}, \qquad g'(x) = \frac{\alpha}{2} e^{-\alpha |x|}
    """

    default_alpha = 1.0

    def __init__(self, alpha: float = 1.0, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    @staticmethod
    def surrogate_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return alpha / 2.0 * torch.exp(-alpha * x.abs())

    @staticmethod
    def primitive_function(x: torch.Tensor, alpha: float) -> torch.Tensor:
        nonnegative = heaviside(x)
        sign = nonnegative * 2.0 - 1.0
        return nonnegative - sign * torch.exp(-alpha * sign * x) / 2.0


class SoftSign(SurrogateFunctionBase):
    r"""Soft-sign surrogate (default ``alpha=2``).

    .. math::
        g(x) = \frac{1}{2}\left(\frac{\alpha x}{1 + |\alpha x|} + 1\right), \qquad
        g'(x) = \frac{\alpha}{2 (1 + |\alpha x|)^2}
    """

    default_alpha = 2.0

    def __init__(self, alpha: float = 2.0, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    @staticmethod
    def surrogate_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return 1.0 / (2.0 * alpha * (1.0 / alpha + x.abs()).square())

    @staticmethod
    def primitive_function(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return (F.softsign(alpha * x) + 1.0) / 2.0


class SuperSpike(SurrogateFunctionBase):
    r"""SuperSpike surrogate (Zenke & Ganguli, 2018; default ``alpha=1``).

    .. math::
        g'(x) = \frac{\alpha}{(1 + |x|)^2}, \qquad g(x) = \alpha \frac{x}{1 + |x|} + \frac{1}{2}

    The gradient is SpikingJelly's ``super_spike_backward``. snnlab's spike
    function really uses it (SpikingJelly's ``SuperSpike.spiking_function``
    calls the ATan function by mistake), and ``spiking=False`` gives the
    primitive above (SpikingJelly raises ``NotImplementedError``).
    """

    default_alpha = 1.0

    def __init__(self, alpha: float = 1.0, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    @staticmethod
    def surrogate_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return alpha / (x.abs() + 1.0).square()

    @staticmethod
    def primitive_function(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return alpha * x / (1.0 + x.abs()) + 0.5


class Erf(SurrogateFunctionBase):
    r"""Gaussian error-function surrogate (default ``alpha=2``).

    .. math::
        g(x) = \tfrac{1}{2}\,\mathrm{erfc}(-\alpha x), \qquad
        g'(x) = \frac{\alpha}{\sqrt{\pi}} e^{-\alpha^2 x^2}
    """

    default_alpha = 2.0

    def __init__(self, alpha: float = 2.0, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    @staticmethod
    def surrogate_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return alpha / math.sqrt(math.pi) * torch.exp(-(alpha * x).square())

    @staticmethod
    def primitive_function(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return torch.erfc(-alpha * x) / 2.0


class Rect(SurrogateFunctionBase):
    r"""Rectangular (boxcar) surrogate (default ``alpha=1``).

    .. math::
        g(x) = \mathrm{clamp}(\alpha x + \tfrac{1}{2}, 0, 1), \qquad
        g'(x) = \alpha\,[\,|x| < \tfrac{1}{2\alpha}\,]
    """

    default_alpha = 1.0

    def __init__(self, alpha: float = 1.0, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    @staticmethod
    def surrogate_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return alpha * (x.abs() < 0.5 / alpha).to(x)

    @staticmethod
    def primitive_function(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return torch.clamp(alpha * x + 0.5, 0.0, 1.0)


#: Surrogates by name, as the fused kernels and ``snnlab.kernels`` nodes accept them.
SURROGATES: dict[str, type[SurrogateFunctionBase]] = {
    cls.__name__: cls
    for cls in (ATan, Sigmoid, PiecewiseQuadratic, PiecewiseExp, SoftSign, SuperSpike, Erf, Rect)
}


class STCARect(SurrogateFunctionBase):
    r"""SPAIC's STCA surrogate: an unscaled rectangular window (default ``alpha=0.5``).

    .. math::
        g(x) = \mathrm{clamp}(x + \alpha, 0, 2\alpha), \qquad
        g'(x) = [\,|x| < \alpha\,]

    The gradient is SPAIC's ``STCA_Learner.ActFun.backward`` (Gu et al., IJCAI
    2019), with ``x = V - V_threshold``; ``alpha`` is the half-width of the
    window and the height is 1 whatever ``alpha`` (unlike :class:`Rect`). The
    forward spike is snnlab's :math:`\Theta(x) = [x \ge 0]`; SPAIC fires on
    ``x > 0``, which differs only at ``x == 0`` exactly.
    """

    default_alpha = 0.5

    def __init__(self, alpha: float = 0.5, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    @staticmethod
    def surrogate_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return (x.abs() < alpha).to(x)

    @staticmethod
    def primitive_function(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return torch.clamp(x + alpha, 0.0, 2.0 * alpha)


class STBPGaussian(SurrogateFunctionBase):
    r"""SPAIC's STBP surrogate: a Gaussian bump (default ``alpha=0.5``).

    .. math::
        g'(x) = \frac{1}{2\pi\alpha}\, e^{-x^2 / (2\alpha)}, \qquad
        g(x) = \frac{1}{2\sqrt{2\pi\alpha}}\,\mathrm{erfc}\!\left(-\frac{x}{\sqrt{2\alpha}}\right)

    The gradient is SPAIC's ``STBP_Learner.ActFun.backward`` (Wu et al., 2018)
    with ``x = V - V_threshold``: ``alpha`` plays the role of the variance, and
    the prefactor is SPAIC's :math:`1/(2\pi\alpha)` (not the normalising
    :math:`1/\sqrt{2\pi\alpha}`), so :math:`g(+\infty) = 1/\sqrt{2\pi\alpha}`.
    The forward spike is snnlab's :math:`\Theta(x) = [x \ge 0]`; SPAIC fires on
    ``x > 0``, which differs only at ``x == 0`` exactly.
    """

    default_alpha = 0.5

    def __init__(self, alpha: float = 0.5, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    @staticmethod
    def surrogate_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return torch.exp(-x.square() / (2.0 * alpha)) / (2.0 * math.pi * alpha)

    @staticmethod
    def primitive_function(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return torch.erfc(-x / math.sqrt(2.0 * alpha)) / (2.0 * math.sqrt(2.0 * math.pi * alpha))

__all__ += ["STBPGaussian", "STCARect"]
