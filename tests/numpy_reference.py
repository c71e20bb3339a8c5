"""An independent float64 NumPy implementation of one HyperAdam step (the spec's equations).

Written from `../shared/hyperadam-spec.md` (Alg. 2 of Wang, Sun & Xu, AAAI 2019, with the StateCell
of Fig. 3), deliberately NOT importing `hyperadam_keras.equations`, so the tests compare two
implementations. It works on ONE flat vector holding ALL p coordinates of a model (every variable
flattened in row-major order and concatenated), so both global norms are plain NumPy norms here.

    ĝ        = g / sqrt(||g||² + 1e-16)
    x_t      = ELU(ĝ ⊗ W_pre + b_pre)
    (h_t, c_t) = LSTM([x_t, h_{t-1}], c_{t-1})        kernel rows: input then recurrent; gates i, f, g, o
    m'_{t-1} = m_{t-1} / sqrt(colnorm² + 1e-16)
    β_t      = σ([m'_{t-1}, h_t] θ_u + b_u),  γ_t = σ([m'_{t-1}, h_t] θ_r + b_r)
    m_t      = β_t m_{t-1} + (1-β_t) g,       v_t = γ_t v_{t-1} + (1-γ_t) g²
    β̂_t      = β_t β̂_{t-1} + (1-β_t),         γ̂_t = γ_t γ̂_{t-1} + (1-γ_t)
    m̂_t      = (m_t / β̂_t) / (sqrt(v_t / γ̂_t) + ε)      (a bias correction of exactly 0 gives 0, not 0/0)
    ρ_t      = ELU(h_t θ_q + b_q)
    d_t      = Σ_j ρ_t^j m̂_t^j
    w_t      = w_{t-1} - α (d_t + λ w_{t-1})              (λ: decoupled weight decay, 0 in the paper)
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

STATE_NAMES = ("h", "c", "m", "v", "beta_hat", "gamma_hat")
NORM_EPS = 1e-16


def _elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # numerically safe for large |x|


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b, with 0 where b == 0 (only reachable while the moment a is still 0)."""
    out = np.zeros(np.broadcast(a, b).shape)
    nonzero = b != 0
    np.divide(a, b, out=out, where=nonzero)
    return out


def zero_state(p: int, num_candidates: int, hidden: int) -> dict[str, np.ndarray]:
    """The initial state of p coordinates: all six arrays zero (h, c: [p, H]; m, v, β̂, γ̂: [p, J])."""
    return {name: np.zeros((p, hidden if name in ("h", "c") else num_candidates)) for name in STATE_NAMES}


def reference_step(arrays: Mapping[str, np.ndarray], weights: np.ndarray, gradient: np.ndarray,
                   state: Mapping[str, np.ndarray], learning_rate: float, epsilon: float = 1e-24,
                   weight_decay: float = 0.0, gates: dict | None = None, feature_normalization: str = "norm",
                   candidate_clip: float | None = None) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """One HyperAdam step in float64 for a flat vector of ALL p coordinates.

    `arrays` are the meta-parameters keyed by the bundle names (`preprocess/kernel`, ...).
    Returns (new weights [p], new state dict, direction d_t [p]); a `gates` dict receives this step's
    β, γ and ρ ([p, J] each). `feature_normalization` "rms" divides g and every column of m_{t-1} by
    their root mean square over the p coordinates instead of their norm; "rms-clip" then clips both
    to ±10. `candidate_clip` κ clips each candidate m̂_j to [−κ, κ] before the weights combine them.
    """
    a = {name: np.asarray(value, np.float64) for name, value in arrays.items()}
    g = np.asarray(gradient, np.float64).reshape(-1)
    w = np.asarray(weights, np.float64).reshape(-1)
    h_prev, c_prev = (np.asarray(state[k], np.float64) for k in ("h", "c"))
    m_prev, v_prev, bh_prev, gh_prev = (np.asarray(state[k], np.float64)
                                        for k in ("m", "v", "beta_hat", "gamma_hat"))
    H = a["preprocess/bias"].shape[0]

    # Preprocessing: each scalar ĝ_i becomes an H-vector.
    per = g.size if feature_normalization in ("rms", "rms-clip") else 1  # mean square, not sum of squares
    bound = 10.0 if feature_normalization == "rms-clip" else np.inf  # |ĝ|, |m'| ≤ 10 RMS
    g_hat = np.clip(g / np.sqrt(np.dot(g, g) / per + NORM_EPS), -bound, bound)
    x = _elu(g_hat[:, None] * a["preprocess/kernel"][0][None, :] + a["preprocess/bias"][None, :])

    # StateCell: a standard LSTM. Kernel rows 0..H-1 act on x, rows H..2H-1 on h_{t-1}.
    kernel = a["state_cell/kernel"]
    z = x @ kernel[:H] + h_prev @ kernel[H:] + a["state_cell/bias"]
    gate_i, gate_f, gate_g, gate_o = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
    c = _sigmoid(gate_f) * c_prev + _sigmoid(gate_i) * np.tanh(gate_g)
    h = _sigmoid(gate_o) * np.tanh(c)

    # AdamCell: decay rates from the column-normalized previous moment and the task state.
    col_norm = np.sqrt(np.sum(m_prev ** 2, axis=0) / per + NORM_EPS)  # [J], over all p coordinates
    m_norm = np.clip(m_prev / col_norm[None, :], -bound, bound)
    J = m_prev.shape[1]
    beta = _sigmoid(m_norm @ a["adam_cell/beta_kernel"][:J] + h @ a["adam_cell/beta_kernel"][J:]
                    + a["adam_cell/beta_bias"])
    gamma = _sigmoid(m_norm @ a["adam_cell/gamma_kernel"][:J] + h @ a["adam_cell/gamma_kernel"][J:]
                     + a["adam_cell/gamma_bias"])
    m = beta * m_prev + (1.0 - beta) * g[:, None]
    v = gamma * v_prev + (1.0 - gamma) * (g ** 2)[:, None]
    beta_hat = beta * bh_prev + (1.0 - beta)
    gamma_hat = gamma * gh_prev + (1.0 - gamma)
    candidates = _safe_div(m, beta_hat) / (np.sqrt(_safe_div(v, gamma_hat)) + epsilon)
    if candidate_clip is not None:
        candidates = np.clip(candidates, -candidate_clip, candidate_clip)

    # WeightCell (ELU, not a softmax) and the combined direction.
    rho = _elu(h @ a["weight_cell/kernel"] + a["weight_cell/bias"])
    direction = np.sum(rho * candidates, axis=1)
    if gates is not None:
        gates.update(beta=beta, gamma=gamma, rho=rho)
    new_w = w - learning_rate * (direction + weight_decay * w)
    new_state = {"h": h, "c": c, "m": m, "v": v, "beta_hat": beta_hat, "gamma_hat": gamma_hat}
    return new_w, new_state, direction


def flatten(arrays) -> np.ndarray:
    """Concatenate arrays (e.g. per-variable gradients) into one float64 flat vector, row-major."""
    return np.concatenate([np.asarray(x, np.float64).reshape(-1) for x in arrays])


def flatten_state(per_variable: list[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-variable slots of shape (K,) + var.shape (the optimizer's layout, coordinates last) -> one
    [p, K] array per state name (this reference's layout, one row per coordinate as in the paper)."""
    return {name: np.concatenate([np.asarray(s[name], np.float64).reshape(np.shape(s[name])[0], -1).T
                                  for s in per_variable]) for name in STATE_NAMES}


def rel_err(actual, expected) -> float:
    """Global relative error ||actual - expected|| / ||expected|| (0 when both are 0)."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    denom = np.linalg.norm(expected)
    num = np.linalg.norm(actual - expected)
    return float(num / denom) if denom > 0 else float(num)
