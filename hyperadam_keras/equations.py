"""HyperAdam's equations as pure tensor functions (Wang, Sun & Xu, AAAI 2019, Alg. 2 and Fig. 3).

This module is the only place where the math lives: the Keras optimizer (`optimizer.py`), the
SavedModel `step` signature (`bundle.py`) and the meta-trainer all call these functions, so they
cannot drift apart. Everything is written with `keras.ops`, so the math runs on any Keras backend.

Shapes: every per-coordinate quantity is a matrix with one column per coordinate, `[J, n]` for the J
candidate moments and `[H, n]` for the LSTM task state (coordinates last: the long axis is the one the
CPU's vector units and XLA's loops run along; the paper writes the transpose, one row per coordinate,
and the products below are the paper's, transposed). The two *global* reductions of the paper
(the norm of the whole gradient, and the norm of every column of the previous moment over all
coordinates of all variables) are passed in to `hyperadam_direction`, because a Keras optimizer
updates one variable at a time; see `feature_sq_scales`. `hyperadam_directions` does both halves for
a list of tensors (the unroll, the bundle's `step`).
"""

from __future__ import annotations

from typing import NamedTuple

from keras import ops

# Added under the square roots of the two global normalizations (spec: 1e-16).
NORM_EPSILON = 1e-16


class MetaWeights(NamedTuple):
    """Meta-parameters as tensors, in the order of `MetaParams.NAMES` (see `meta_params.py`)."""

    preprocess_kernel: object  # W_pre [1, H]
    preprocess_bias: object  # b_pre [H]
    state_cell_kernel: object  # [2H, 4H], rows: input then recurrent; gates i, f, g, o
    state_cell_bias: object  # [4H]
    beta_kernel: object  # θ_u [J+H, J]
    beta_bias: object  # b_u [J]
    gamma_kernel: object  # θ_r [J+H, J]
    gamma_bias: object  # b_r [J]
    weight_kernel: object  # θ_q [H, J]
    weight_bias: object  # b_q [J]


class CoordinateState(NamedTuple):
    """Per-coordinate optimizer state: LSTM (h, c) of width H and the J candidate moments."""

    h: object  # [H, n]
    c: object  # [H, n]
    m: object  # [J, n]
    v: object  # [J, n]
    beta_hat: object  # [J, n] running bias correction of m, starts at 0
    gamma_hat: object  # [J, n] running bias correction of v, starts at 0


def gradient_sq_norm(gradients: list) -> object:
    """||g||² over all coordinates of all variables (a scalar)."""
    return sum(ops.sum(ops.square(g)) for g in gradients)


def moment_column_sq_norms(moments: list) -> object:
    """Squared norm of each of the J candidate moments m_{t-1}^j over all coordinates of all variables, [J].

    Each moment is [J, n] or [J, *S] (a slot of a variable of shape S): the candidates on the first axis.
    """
    return sum(ops.sum(ops.reshape(ops.square(m), (ops.shape(m)[0], -1)), axis=1) for m in moments)


FEATURE_NORMALIZATIONS = ("norm", "rms", "rms-clip")
# "rms-clip" bounds each coordinate's ĝ and m' to ±FEATURE_CLIP root mean squares. A coordinate far
# above the RMS (up to √p of them, e.g. ~340 on CNN-2) otherwise drives the decay logits to where
# β, γ are exactly 0 or 1 in float32, outside anything meta-training showed the cells.
FEATURE_CLIP = 10.0


def feature_sq_scales(gradients: list, moments: list, feature_normalization: str = "norm") -> tuple:
    """The two global reductions that scale the features ĝ and m', over all p coordinates:

        "norm" (the paper):  ||g||²,       colnorm_j²         ĝ = g / ||g||         O(1/√p) per coordinate
        "rms":               ||g||² / p,   colnorm_j² / p     ĝ = g / RMS(g) = √p ĝ_norm   O(1) for any p
        "rms-clip":          as "rms"; then ĝ and m' are clipped to ±FEATURE_CLIP (`feature_clip`)

    All are invariant to the scale of the loss; "rms" and "rms-clip" also to the size of the model, so
    the LSTM and the AdamCell see inputs of the same size on every task (documented variants, not the
    paper's; see docs/equations.md). Returns (scalar, [J]) for `normalized_gradient` and `normalized_moment`.
    """
    check_feature_normalization(feature_normalization)
    grad_sq, col_sq = gradient_sq_norm(gradients), moment_column_sq_norms(moments)
    if feature_normalization in ("rms", "rms-clip"):
        count = ops.cast(sum(ops.size(g) for g in gradients), grad_sq.dtype)
        grad_sq, col_sq = grad_sq / count, col_sq / count
    return grad_sq, col_sq


def check_feature_normalization(feature_normalization: str) -> None:
    """Raises ValueError unless `feature_normalization` is one of `FEATURE_NORMALIZATIONS`."""
    if feature_normalization not in FEATURE_NORMALIZATIONS:
        raise ValueError(f"feature_normalization must be one of {FEATURE_NORMALIZATIONS}, "
                         f"got {feature_normalization!r}")


def feature_clip(feature_normalization: str) -> float | None:
    """The bound on every coordinate's |ĝ| and |m'| under `feature_normalization` (None: unbounded)."""
    check_feature_normalization(feature_normalization)
    return FEATURE_CLIP if feature_normalization == "rms-clip" else None


def normalized_features(gradient, m, grad_sq_norm, column_sq_norms, clip: float | None = None) -> tuple:
    """(ĝ, m'_{t-1}) of `normalized_gradient` and `normalized_moment`, each clipped to ±clip when given."""
    g_hat, m_prime = normalized_gradient(gradient, grad_sq_norm), normalized_moment(m, column_sq_norms)
    if clip is None:
        return g_hat, m_prime
    return ops.clip(g_hat, -clip, clip), ops.clip(m_prime, -clip, clip)


def normalized_gradient(gradient, grad_sq_norm):
    """ĝ = g / sqrt(||g||² + 1e-16), with the norm over ALL coordinates (Alg. 2, line 4); with the
    "rms" variant the caller passes ||g||² / p (`feature_sq_scales`)."""
    return gradient / ops.sqrt(grad_sq_norm + NORM_EPSILON)


def preprocess(normalized_grad, kernel, bias):
    """x_t = ELU(ĝ ⊗ W_pre + b_pre): lifts each scalar ĝ to an H-vector. ĝ [n] -> x [H, n]."""
    return ops.elu(ops.transpose(kernel) * ops.expand_dims(normalized_grad, 0) + ops.expand_dims(bias, -1))


def state_cell(x, h, c, kernel, bias):
    """StateCell, a standard LSTM: (h_t, c_t) = LSTM([x_t, h_{t-1}], c_{t-1}); s_t = h_t.

        [i, f, g, o] = [x_t, h_{t-1}] K + b        (K [2H, 4H], gate order i, f, g, o; computed as
                                                     Kᵀ [x_t; h_{t-1}], [4H, n])
        c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)
        h_t = σ(o) ⊙ tanh(c_t)

    No hidden forget-gate offset: any such constant lives in the bias.
    """
    z = ops.matmul(ops.transpose(kernel), ops.concatenate([x, h], axis=0)) + ops.expand_dims(bias, -1)
    i, f, g, o = ops.split(z, 4, axis=0)
    c_new = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
    h_new = ops.sigmoid(o) * ops.tanh(c_new)
    return h_new, c_new


def normalized_moment(m, column_sq_norms):
    """m'_{t-1} = m_{t-1} / sqrt(colnorm² + 1e-16), each candidate j by its norm over ALL coordinates
    (the paper's columns; here the rows of m [J, n])."""
    return m / ops.expand_dims(ops.sqrt(column_sq_norms + NORM_EPSILON), -1)


def adam_cell_decay_logits(normalized_m, task_state, beta_kernel, beta_bias, gamma_kernel, gamma_bias):
    """Logits of the AdamCell decay rates, both from one matrix product over the concatenated kernels:

        [m'_{t-1}, s_t] θ_u + b_u,   [m'_{t-1}, s_t] θ_r + b_r                       -> [J, n] each

    (computed as [θ_u, θ_r]ᵀ [m'_{t-1}; s_t], one [2J, J+H] × [J+H, n] product).
    """
    features = ops.concatenate([normalized_m, task_state], axis=0)
    kernel = ops.concatenate([beta_kernel, gamma_kernel], axis=-1)
    logits = (ops.matmul(ops.transpose(kernel), features)
              + ops.expand_dims(ops.concatenate([beta_bias, gamma_bias], axis=-1), -1))
    beta_logits, gamma_logits = ops.split(logits, 2, axis=0)
    return beta_logits, gamma_logits


def adam_cell_decay_rates(normalized_m, task_state, beta_kernel, beta_bias, gamma_kernel, gamma_bias):
    """AdamCell decay rates:

        β_t = σ([m'_{t-1}, s_t] θ_u + b_u),   γ_t = σ([m'_{t-1}, s_t] θ_r + b_r)     -> [J, n] each
    """
    beta_logits, gamma_logits = adam_cell_decay_logits(normalized_m, task_state, beta_kernel, beta_bias,
                                                       gamma_kernel, gamma_bias)
    return ops.sigmoid(beta_logits), ops.sigmoid(gamma_logits)


def adam_cell_moments(gradient, m, v, beta_hat, gamma_hat, beta, gamma, one_minus_beta=None,
                      one_minus_gamma=None):
    """AdamCell moment and bias-correction updates, g [n] broadcast over the J candidates (rows):

        m_t = β_t ⊙ m_{t-1} + (1 - β_t) ⊙ g         v_t = γ_t ⊙ v_{t-1} + (1 - γ_t) ⊙ g²
        β̂_t = β_t ⊙ β̂_{t-1} + (1 - β_t)              γ̂_t = γ_t ⊙ γ̂_{t-1} + (1 - γ_t)

    `one_minus_beta`/`one_minus_gamma` (default: computed as 1 - β, 1 - γ) let the caller pass
    1 - σ(z) computed as σ(-z): with γ ≈ 0.999 the float32 difference 1 - γ keeps only ~4 digits.
    """
    one_minus_beta = 1.0 - beta if one_minus_beta is None else one_minus_beta
    one_minus_gamma = 1.0 - gamma if one_minus_gamma is None else one_minus_gamma
    g = ops.expand_dims(gradient, 0)
    m_new = beta * m + one_minus_beta * g
    v_new = gamma * v + one_minus_gamma * ops.square(g)
    beta_hat_new = beta * beta_hat + one_minus_beta
    gamma_hat_new = gamma * gamma_hat + one_minus_gamma
    return m_new, v_new, beta_hat_new, gamma_hat_new


def bias_corrected_moments(m, v, beta_hat, gamma_hat):
    """(m_t / β̂_t, sqrt(v_t / γ̂_t)), [J, n] each: the AdamCell's candidate updates are
    m̂_t = (m_t / β̂_t) / (sqrt(v_t / γ̂_t) + ε) (`combine_corrected_moments` forms them).

    A bias correction of exactly 0 (a decay rate that saturated to 1.0 in float32) can only occur
    with a moment that is still exactly 0, so 0/0 is taken as 0 (`divide_no_nan`): the candidate
    stays 0 instead of NaN. Elsewhere this is the paper's formula unchanged.

    The square root is taken only where v̂ > 0 (and is 0 elsewhere, the same value): XLA's gradient
    of sqrt at 0 is 0·∞ = NaN, and coordinates whose gradient is always 0 (MNIST's blank border
    pixels) keep v = 0, which would make every meta-gradient NaN under XLA.
    """
    m_corrected = ops.divide_no_nan(m, beta_hat)
    v_corrected = ops.divide_no_nan(v, gamma_hat)
    positive = v_corrected > 0
    root = ops.where(positive, ops.sqrt(ops.where(positive, v_corrected, 1.0)), 0.0)
    return m_corrected, root


def weight_cell(task_state, kernel, bias):
    """WeightCell: ρ_t = ELU(s_t θ_q + b_q), [J, n] (computed as θ_qᵀ s_t). Not a softmax: weights may
    be negative."""
    return ops.elu(ops.matmul(ops.transpose(kernel), task_state) + ops.expand_dims(bias, -1))


def combine_corrected_moments(weights, m_corrected, root, epsilon, candidate_clip: float | None = None):
    """Update direction d_t = Σ_j ρ_t^j ⊙ m̂_t^j, [n], with the candidates m̂_t = m̃_t / (√ṽ_t + ε)
    (`bias_corrected_moments`; m̃ = m / β̂, ṽ = v / γ̂) not formed apart: each term is computed as one
    quotient (ρ m̃) / (√ṽ + ε), the same value up to rounding and a faster XLA loop on this CPU than
    forming m̂ first (docs/speed.md).

    With `candidate_clip` κ (a documented variant, not the paper's; `HyperAdam(candidate_clip=κ)`) each
    candidate is clipped first, d_t = Σ_j ρ_t^j ⊙ clip(m̂_t^j, −κ, κ). The learned decays may give a
    candidate β_t² > γ_t, and then m̂ is unbounded: on a coordinate whose gradient falls to zero (a
    dead ReLU unit, a blank pixel) m and v decay as β^k and γ^k, so m̂ grows as (β/√γ)^k. Adam's
    β₁² < β₂ keeps its m̂ bounded; the clip bounds HyperAdam's (docs/safety.md).
    """
    if candidate_clip is None:
        return ops.sum(weights * m_corrected / (root + epsilon), axis=0)
    return ops.sum(weights * ops.clip(m_corrected / (root + epsilon), -candidate_clip, candidate_clip), axis=0)


def hyperadam_direction(meta: MetaWeights, gradient, state: CoordinateState, grad_sq_norm,
                        moment_col_sq_norms, epsilon, feature_clip: float | None = None,
                        candidate_clip: float | None = None):
    """One HyperAdam step for n coordinates: returns (d_t [n], new CoordinateState).

    The caller applies w_t = w_{t-1} - α d_t. `grad_sq_norm` (scalar) and `moment_col_sq_norms`
    ([J], of m_{t-1}) must be the global reductions over every coordinate updated in this step
    (`feature_sq_scales`), and `feature_clip` the bound of the same normalization (`feature_clip()`).
    `candidate_clip`: None (the paper) or κ, each candidate clipped to ±κ (`combine_corrected_moments`).
    """
    g_hat, m_prime = normalized_features(gradient, state.m, grad_sq_norm, moment_col_sq_norms, feature_clip)
    x = preprocess(g_hat, meta.preprocess_kernel, meta.preprocess_bias)
    h, c = state_cell(x, state.h, state.c, meta.state_cell_kernel, meta.state_cell_bias)
    beta_logits, gamma_logits = adam_cell_decay_logits(
        m_prime, h, meta.beta_kernel, meta.beta_bias, meta.gamma_kernel, meta.gamma_bias)
    # 1 - σ(z) = σ(-z), computed directly: exact to float32 precision even for γ close to 1.
    m, v, beta_hat, gamma_hat = adam_cell_moments(
        gradient, state.m, state.v, state.beta_hat, state.gamma_hat, ops.sigmoid(beta_logits),
        ops.sigmoid(gamma_logits), ops.sigmoid(-beta_logits), ops.sigmoid(-gamma_logits))
    m_corrected, root = bias_corrected_moments(m, v, beta_hat, gamma_hat)
    rho = weight_cell(h, meta.weight_kernel, meta.weight_bias)
    return (combine_corrected_moments(rho, m_corrected, root, epsilon, candidate_clip),
            CoordinateState(h, c, m, v, beta_hat, gamma_hat))


# The smallest weight scale `cap_relative_step` measures a step against: a tensor that is still all zeros
# (a Keras bias at initialization) may still move, by up to max_relative_step × RELATIVE_STEP_FLOOR per step.
RELATIVE_STEP_FLOOR = 1e-2


def root_mean_square(x):
    """RMS(x) = sqrt(mean(x²)) over all entries (a scalar).

    The root is taken only where mean(x²) > 0 (0 elsewhere, the same value): the derivative of sqrt at 0
    is infinite, and a tensor that is all zeros (a bias at initialization, a step of a tensor whose
    gradient is always 0) would otherwise make a meta-gradient through `cap_relative_step` NaN.
    """
    mean_square = ops.mean(ops.square(x))
    positive = mean_square > 0
    return ops.where(positive, ops.sqrt(ops.where(positive, mean_square, 1.0)), 0.0)


def cap_relative_step(delta, weights, max_relative_step: float):
    """A step of one tensor, shrunk so that it moves the tensor by at most `max_relative_step` (τ) of its
    scale (a documented variant, not the paper's; `HyperAdam(max_relative_step=τ)`):

        Δ' = Δ · min(1, τ · max(RMS(w), RELATIVE_STEP_FLOOR) / RMS(Δ))

    Only a cap: a step already below it is returned unchanged (the same floats). With Keras's default
    initializers RMS(w) ∝ 1/√fan-in, so the cap is smaller on wider layers, where a coherent step of a
    given size changes the layer's output more; it bounds the first steps of a learned optimizer whose
    step is too large for the model, the way LARS and LAMB bound theirs by a trust ratio.
    """
    scale = ops.maximum(root_mean_square(weights), RELATIVE_STEP_FLOOR)
    step = root_mean_square(delta)
    bound = max_relative_step * scale
    factor = ops.where(step > bound, bound / ops.maximum(step, 1e-30), 1.0)
    return delta * factor


def hyperadam_directions(meta: MetaWeights, gradients: list, states: list, epsilon,
                         feature_normalization: str = "norm", candidate_clip: float | None = None
                         ) -> tuple[list, list]:
    """One HyperAdam step for several tensors of one model: ([d_t] per tensor, [new CoordinateState]).

    The step's two global reductions (`feature_sq_scales`) are taken over all of `gradients` and of the
    states' m_{t-1}, then each tensor gets `hyperadam_direction` with them and the normalization's clip.
    The unroll and the bundle's `step` use this; the Keras optimizer runs the same two halves apart
    (reductions once per step, then one update per variable, as `tf.distribute` applies them).
    """
    grad_sq_norm, moment_col_sq_norms = feature_sq_scales(gradients, [s.m for s in states], feature_normalization)
    clip = feature_clip(feature_normalization)
    steps = [hyperadam_direction(meta, g, s, grad_sq_norm, moment_col_sq_norms, epsilon, clip, candidate_clip)
             for g, s in zip(gradients, states)]
    return [direction for direction, _ in steps], [state for _, state in steps]
