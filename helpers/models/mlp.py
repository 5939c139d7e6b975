"""The MLP of the MC-dropout UCI experiments, alone and as a batch of independent networks trained together.

Taught in chapter 1. :class:`DropoutMLP` is the network of Gal & Ghahramani (2016): dropout on the input and on
each hidden layer, ReLU, one linear output. :class:`BatchedDropoutMLP` holds K such networks (one per split, or
per split and grid point) as stacked weight tensors, so K trainings run as one batched computation
(``torch.baddbmm``) instead of K Python loops; each member has its own data, dropout rate, weight decay and
dropout masks, and because the loss is a sum over members, every member gets exactly the gradient (and the Adam
update, which is element-wise) it would get alone.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from helpers.errors import BookError


class Dropout16(nn.Dropout):
    """``nn.Dropout`` with the masks of :func:`dropout_mask` (``p`` rounded to a multiple of 1/65,536): the same
    layer, 2-3x faster on a CPU for large batches such as the T stacked copies of MC dropout. Being an
    ``nn.Dropout``, it is switched on and off by :func:`helpers.uncertainty.mc_dropout` like any other."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        threshold, scale = keep_threshold(torch.tensor([self.p], device=x.device))
        return x * scale.view(()) * dropout_mask(x.shape, threshold.view(())).view(torch.uint8)


class DropoutMLP(nn.Module):
    """``Dropout(p) → Linear → ReLU → (Dropout(p) → Linear → ReLU)* → Dropout(p) → Linear``.

    ``hidden=50`` and ``p=0.05`` are the settings of Gal & Ghahramani (2016) on UCI; ``n_hidden_layers`` adds
    hidden layers. Weights start Glorot-uniform with zero biases, as in the original Keras code.
    """

    def __init__(self, in_features: int, hidden: int = 50, p: float = 0.05, out_features: int = 1,
                 n_hidden_layers: int = 1) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise BookError(f"p={p}: the dropout rate must be in [0, 1)")
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(n_hidden_layers):
            layers += [Dropout16(p), nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers += [Dropout16(p), nn.Linear(width, out_features)]
        self.net = nn.Sequential(*layers)
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def weight_l2(self) -> torch.Tensor:
        """Σ w² over the weight matrices (biases excluded), the term the weight decay multiplies."""
        return sum((m.weight ** 2).sum() for m in self.net if isinstance(m, nn.Linear))


def _random_int16(shape: Sequence[int], device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """Uniform int16 values of ``shape``, four from each 64-bit random word (3-4x faster on a CPU than
    ``torch.rand``: drawing dropout masks is what dominates the training of these small networks)."""
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device)
    words.random_(-(1 << 63), (1 << 63) - 1, generator=generator)
    return words.view(torch.int16)[:n].view(*shape)


def keep_threshold(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For dropout rates ``p [K]``: the int16 thresholds of :func:`dropout_mask` and the matching 1 / P(keep),
    each ``[K, 1, 1]``.

    A unit is kept when a uniform 16-bit integer is at most the threshold, so P(keep) is (1 − p) rounded to a
    multiple of 1/65,536 (p = 0.005 becomes 0.004990; p = 0 keeps every unit); the scale uses that exact
    probability, so the dropped-out activations stay unbiased.
    """
    counts = torch.round((1.0 - p.float()) * 65536).clamp(1, 65536)
    return (counts - 32769).to(torch.int16).view(-1, 1, 1), (65536.0 / counts).view(-1, 1, 1)


def dropout_mask(shape: Sequence[int], threshold: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Boolean keep-mask of ``shape``: uniform 16-bit integers ``<= threshold`` (int16, broadcastable; see
    :func:`keep_threshold`)."""
    return _random_int16(shape, threshold.device, generator) <= threshold


class BatchedDropoutMLP(nn.Module):
    """K independent one-hidden-layer :class:`DropoutMLP` s in stacked tensors; input ``[K, B, d]``.

    ``p`` is one rate or one per member. Dropout is active in training mode, or when ``forward`` is called with
    ``stochastic=True`` (MC dropout).
    """

    def __init__(self, members: int, in_features: int, hidden: int = 50, p: float | Sequence[float] = 0.05,
                 out_features: int = 1) -> None:
        super().__init__()
        p_t = torch.as_tensor(p, dtype=torch.float32).reshape(-1).expand(members).clone()
        if (p_t < 0).any() or (p_t >= 1).any():
            raise BookError(f"p={p}: dropout rates must be in [0, 1)")
        self.register_buffer("p", p_t)

        def glorot(fan_in: int, fan_out: int) -> nn.Parameter:
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            return nn.Parameter(torch.empty(members, fan_in, fan_out).uniform_(-limit, limit))

        self.w1, self.w2 = glorot(in_features, hidden), glorot(hidden, out_features)
        self.b1 = nn.Parameter(torch.zeros(members, 1, hidden))
        self.b2 = nn.Parameter(torch.zeros(members, 1, out_features))

    @property
    def members(self) -> int:
        return self.w1.shape[0]

    def keep_threshold(self) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`keep_threshold` of every member's dropout rate, each ``[K, 1, 1]``."""
        return keep_threshold(self.p)

    def forward(self, x: torch.Tensor, stochastic: bool | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        on = self.training if stochastic is None else stochastic
        if not on:
            return torch.baddbmm(self.b2, torch.relu(torch.baddbmm(self.b1, x, self.w1)), self.w2)
        # Dropout, with the 1/P(keep) scale applied to the small weight matrices rather than the activations;
        # multiplying by a boolean viewed as uint8 is ~10x faster on a CPU than by the boolean.
        threshold, scale = self.keep_threshold()
        xk = x * dropout_mask(x.shape, threshold, generator).view(torch.uint8)
        hk = torch.baddbmm(self.b1, xk, self.w1 * scale).relu_()
        keep = dropout_mask(hk.shape, threshold, generator).view(torch.uint8)
        hk = hk * keep if torch.is_grad_enabled() else hk.mul_(keep)  # autograd needs the ReLU output
        return torch.baddbmm(self.b2, hk, self.w2 * scale)

    def weight_l2(self) -> torch.Tensor:
        """Σ w² per member (biases excluded), shape ``[K]``."""
        return (self.w1 ** 2).sum((1, 2)) + (self.w2 ** 2).sum((1, 2))

    def member(self, k: int) -> DropoutMLP:
        """Member ``k`` as a stand-alone :class:`DropoutMLP` (same weights), e.g. for :func:`mc_samples`."""
        d, h = self.w1.shape[1:]
        net = DropoutMLP(d, h, float(self.p[k]), self.w2.shape[2])
        with torch.no_grad():
            net.net[1].weight.copy_(self.w1[k].T)
            net.net[1].bias.copy_(self.b1[k, 0])
            net.net[4].weight.copy_(self.w2[k].T)
            net.net[4].bias.copy_(self.b2[k, 0])
        return net


@contextmanager
def _threads_for(work: int, device: torch.device) -> Iterator[None]:
    """Run small CPU workloads on one thread: for ops this size, extra threads cost more than they bring
    (on a busy 2-core machine, 2 threads made a yacht training 6x slower; from about 100,000 activations per
    step, e.g. 20 kin8nm networks, 2 threads are 1.5x faster)."""
    saved = torch.get_num_threads()
    if device.type == "cpu" and work < (1 << 16):
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def weight_decay_from_tau(length_scale: float, p, n_train: int, tau):
    """Gal & Ghahramani's L2 coefficient λ = l² (1 − p) / (2 N τ) (works on floats or tensors).

    It multiplies Σ w² in the loss (Keras ``l2(λ)``); ``torch.optim`` ``weight_decay`` would be 2λ.
    """
    return length_scale ** 2 * (1 - p) / (2 * n_train * tau)


def fit_batched(model: BatchedDropoutMLP, X: torch.Tensor, y: torch.Tensor, reg: torch.Tensor, epochs: int, *,
                batch_size: int = 128, lr: float = 1e-3, generator: torch.Generator | None = None,
                progress: bool | str = False) -> torch.Tensor:
    """Train every member ``k`` on its own ``X[k] [N, d]``, ``y[k] [N, out]`` for ``epochs`` epochs.

    Loss of member k: mean squared error + ``reg[k]`` Σ w² (the Keras model of the original code), Adam with
    Keras defaults, mini-batches of ``batch_size`` drawn from a fresh permutation each epoch (the last batch is
    smaller). Gradients are written out by hand (:func:`batched_mse_grads`, checked against autograd in the
    tests): for networks this small, autograd's bookkeeping costs more than the arithmetic. Returns the last
    epoch's mean training loss per member. Taught in chapter 1.
    """
    K, N, d = X.shape
    if y.dim() == 2:
        y = y.unsqueeze(-1)
    dev = model.w1.device
    X, y, reg = X.to(dev), y.to(dev), torch.as_tensor(reg, dtype=X.dtype, device=dev).expand(K)
    opt = torch.optim.Adam(model.parameters(), lr=lr, eps=1e-8, fused=dev.type in ("cpu", "cuda"))
    model.train()
    epoch_loss = torch.zeros(K, device=dev)
    it = range(epochs)
    if progress:
        it = tqdm(it, desc=progress if isinstance(progress, str) else "training", leave=False)
    with _threads_for(K * min(batch_size, N) * model.w1.shape[2], dev):
        _epochs(model, opt, X, y, reg, it, batch_size, generator, epoch_loss)
    model.eval()
    return epoch_loss.cpu()


def _epochs(model, opt, X, y, reg, it, batch_size, generator, epoch_loss) -> None:
    K, N, d = X.shape
    dev = X.device
    XY = torch.cat([X, y], 2).reshape(K * N, -1)           # one row per (member, example): one gather per step
    offsets = (torch.arange(K) * N)[:, None]
    seed = int(torch.randint(1 << 62, (1,), generator=generator,
                             device=generator.device if generator is not None else "cpu"))
    rng = np.random.default_rng(seed)                        # per-row shuffles: 3x faster than argsort
    order = np.broadcast_to(np.arange(N), (K, N))
    for _ in it:
        perm = (torch.from_numpy(rng.permuted(order, axis=1)) + offsets).to(dev)
        epoch_loss.zero_()
        for start in range(0, N, batch_size):
            idx = perm[:, start:start + batch_size]
            xyb = XY.index_select(0, idx.reshape(-1)).view(K, idx.shape[1], -1)
            with torch.no_grad():
                mse = batched_mse_grads(model, xyb[..., :d], xyb[..., d:], reg, generator)
            opt.step()
            epoch_loss += mse * idx.shape[1] / N


def batched_mse_grads(model: BatchedDropoutMLP, xb: torch.Tensor, yb: torch.Tensor, reg: torch.Tensor,
                      generator: torch.Generator | None = None,
                      masks: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """One training step's forward and backward pass, by hand: sets ``.grad`` of ``w1, b1, w2, b2`` to the
    gradient of Σ_k [MSE_k + reg_k Σ w²_k] and returns the per-member MSE ``[K]``.

    Dropout keep-masks (input, hidden) are drawn unless given as booleans ``masks`` (the tests compare with
    autograd). The 1/P(keep) scale is applied to the small weight matrices rather than the large activations.
    """
    K, B, _ = xb.shape
    threshold, scale = model.keep_threshold()
    if masks is None:
        keep_x = _random_int16(xb.shape, xb.device, generator) <= threshold
        keep_h = _random_int16((K, B, model.w1.shape[2]), xb.device, generator) <= threshold
    else:
        keep_x, keep_h = masks
    # Multiplying by a boolean viewed as uint8 is ~10x faster on a CPU than by the boolean (or masked_fill_).
    w1s, w2s, r2 = model.w1 * scale, model.w2 * scale, (2 * reg).view(K, 1, 1)
    xk = xb * keep_x.view(torch.uint8)                                              # kept inputs, unscaled
    hk = torch.baddbmm(model.b1, xk, w1s).relu_().mul_(keep_h.view(torch.uint8))   # kept hidden units
    err = torch.baddbmm(model.b2, hk, w2s).sub_(yb)                                 # prediction − target
    mse = err.square().mean((1, 2))
    g_out = err.mul_(2.0 / err[0].numel())
    model.b2.grad = g_out.sum(1, keepdim=True)
    model.w2.grad = torch.baddbmm(model.w2 * r2, hk.transpose(1, 2), g_out * scale)
    g_h = g_out * w2s.transpose(1, 2) if g_out.shape[2] == 1 else torch.bmm(g_out, w2s.transpose(1, 2))
    g_h.mul_((hk > 0).view(torch.uint8))                                         # through dropout and ReLU
    model.b1.grad = g_h.sum(1, keepdim=True)
    model.w1.grad = torch.baddbmm(model.w1 * r2, (xk * scale).transpose(1, 2), g_h)
    return mse


@torch.no_grad()
def mc_summary_batched(model: BatchedDropoutMLP, X: torch.Tensor, T: int, *, y_mean=0.0, y_std=1.0,
                       y: torch.Tensor | None = None, tau=None, chunk_rows: int | None = None
                       ) -> dict[str, torch.Tensor]:
    """Streaming MC-dropout summaries of every member on its own inputs ``X[k] [n, d]``, without storing samples.

    Outputs are mapped to original units (``ŷ·y_std + y_mean``, per member). Returns ``mean`` and
    ``var`` (of the T samples, ``[K, n]``), the deterministic prediction ``standard`` (dropout off, weights
    scaled: the "standard dropout" baseline) and, given targets ``y [K, n]`` and ``tau`` (scalar or ``[K]``),
    the per-point Gaussian mixture log-likelihood ``ll`` of :func:`helpers.metrics.regression.gaussian_log_likelihood`.
    T samples are drawn in batched passes of at most ``chunk_rows`` rows in all (default: 32,768 on a CPU, where
    a pass that fits in the cache is several times faster than one large pass; 4 million on a GPU).
    """
    K, n, _ = X.shape
    dev = model.w1.device
    if chunk_rows is None:
        chunk_rows = 1 << 15 if dev.type == "cpu" else 1 << 22
    X = X.to(dev)
    y_mean = torch.as_tensor(y_mean, dtype=X.dtype, device=dev).reshape(-1, 1).expand(K, 1)
    y_std = torch.as_tensor(y_std, dtype=X.dtype, device=dev).reshape(-1, 1).expand(K, 1)
    model.eval()
    standard = model(X, stochastic=False)[..., 0] * y_std + y_mean
    total = torch.zeros(K, n, dtype=torch.float64, device=dev)
    total_sq = torch.zeros_like(total)
    lse = torch.full((K, n), -math.inf, dtype=torch.float64, device=dev) if y is not None else None
    if y is not None:
        y = torch.as_tensor(y, dtype=torch.float64, device=dev).reshape(K, 1, n)
        tau_t = torch.as_tensor(tau, dtype=torch.float64, device=dev).reshape(-1, 1, 1).expand(K, 1, 1)
    rows = max(1, chunk_rows // K)  # rows of each member in one pass
    with _threads_for(min(rows, n * T) * K * model.w1.shape[2], dev):
        for j in range(0, n, rows):  # blocks of points; as many samples per pass as fit
            block = slice(j, min(n, j + rows))
            _accumulate(model, X[:, block], T, max(1, rows // (block.stop - j)), y_mean, y_std,
                        None if y is None else y[:, :, block], tau_t if y is not None else None,
                        total[:, block], total_sq[:, block], None if lse is None else lse[:, block])
    mean = total / T
    result = {"mean": mean, "var": (total_sq / T - mean ** 2).clamp_min(0.0), "standard": standard.double()}
    if y is not None:
        t = tau_t[:, :, 0]
        result["ll"] = lse - math.log(T) - 0.5 * math.log(2 * math.pi) + 0.5 * torch.log(t)
    return result


def _accumulate(model, X, T, per_pass, y_mean, y_std, y, tau_t, total, total_sq, lse) -> None:
    K, n, _ = X.shape
    done = 0
    while done < T:
        k = min(per_pass, T - done)
        out = model(X.repeat(1, k, 1), stochastic=True)[..., 0].reshape(K, k, n)
        s = (out * y_std[:, :, None] + y_mean[:, :, None]).double()
        total += s.sum(1)
        total_sq += (s ** 2).sum(1)
        if y is not None:
            lse.copy_(torch.logaddexp(lse, torch.logsumexp(-0.5 * tau_t * (y - s) ** 2, dim=1)))
        done += k


def train_members(datasets: Sequence[tuple], p: Sequence[float], tau: Sequence[float], epochs: int, *,
                  hidden: int = 50, length_scale: float = 1e-2, batch_size: int = 128, T: int = 10_000,
                  device: torch.device | str = "cpu", seed: int = 0, progress: bool | str = False,
                  chunk_rows: int | None = None, on_trained: Callable | None = None) -> dict[str, torch.Tensor]:
    """Train and evaluate K networks together: member k trains on ``datasets[k] = (X_tr, y_tr, X_te, y_te)``
    (NumPy arrays, same shapes for every member) with dropout ``p[k]`` and precision ``tau[k]``.

    Seeds torch with ``seed``, standardises with training statistics, sets the weight decay from (l, p, N, τ),
    trains with :func:`fit_batched`, and evaluates on the held-out part with T MC samples. Returns per-member
    tensors ``rmse`` (of the MC mean), ``rmse_standard`` (dropout off), ``ll`` (test log-likelihood), the test
    predictive ``mean`` and ``var``, and the batched ``model``.
    Taught in chapter 1.
    """
    from helpers.data.uci import standardise

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    Xtr, Ytr, Xte, Yte, means, stds = [], [], [], [], [], []
    for X_tr, y_tr, X_te, y_te in datasets:
        (x_tr, x_te), _, _ = standardise(X_tr, X_te)
        (yn,), ym, ys = standardise(y_tr)
        Xtr.append(x_tr), Ytr.append(yn), Xte.append(x_te), Yte.append(y_te), means.append(ym), stds.append(ys)
    f32 = dict(dtype=torch.float32)
    Xtr_t, Ytr_t = torch.tensor(np.stack(Xtr), **f32), torch.tensor(np.stack(Ytr), **f32)
    Xte_t, Yte_t = torch.tensor(np.stack(Xte), **f32), torch.tensor(np.stack(Yte), dtype=torch.float64)
    K, N, d = Xtr_t.shape
    p_t, tau_t = torch.as_tensor(p, **f32).expand(K), torch.as_tensor(tau, dtype=torch.float64).expand(K)
    model = BatchedDropoutMLP(K, d, hidden, p_t).to(device)
    reg = weight_decay_from_tau(length_scale, p_t.double(), N, tau_t).float()
    gen = torch.Generator(device=device).manual_seed(seed) if str(device) != "cpu" else g
    fit_batched(model, Xtr_t.to(device), Ytr_t.to(device), reg.to(device), epochs, batch_size=batch_size,
                generator=gen, progress=progress)
    if on_trained is not None:
        on_trained(model)
    s = mc_summary_batched(model, Xte_t, T, y_mean=torch.tensor(np.array(means, dtype=np.float32)),
                           y_std=torch.tensor(np.array(stds, dtype=np.float32)),
                           y=Yte_t, tau=tau_t, chunk_rows=chunk_rows)
    y_dev = Yte_t.to(s["mean"].device)
    return {"rmse": ((s["mean"] - y_dev) ** 2).mean(1).sqrt().cpu(),
            "rmse_standard": ((s["standard"] - y_dev) ** 2).mean(1).sqrt().cpu(),
            "ll": s["ll"].mean(1).cpu(), "mean": s["mean"].cpu(), "var": s["var"].cpu(), "model": model}


__all__ = ["BatchedDropoutMLP", "Dropout16", "DropoutMLP", "batched_mse_grads", "dropout_mask", "fit_batched",
           "keep_threshold", "mc_summary_batched", "train_members", "weight_decay_from_tau"]


# --- The UCI protocols of Gal & Ghahramani -------------------------------------------------------------------

#: Settings of the authors' per-dataset 2016 scripts that produced the paper's table (``<name>/net/net/net.py`` in
#: github.com/yaringal/DropoutUncertaintyExps, the versions written for the Keras of 2016: yacht at commit
#: 3e9e154, energy at 8454256, concrete at 928e719): dropout rate, batch size and prior length scale. The paper's
#: text says p = 0.05 for every dataset and gives no batch size. All three scripts use batches of 32; yacht and
#: concrete p = 0.01, energy p = 0.05. The scripts write the weight decay as (1 − p) / (2 N L² τ) with L = 100,
#: i.e. l = 1 / L = 0.01 in :func:`weight_decay_from_tau`, except yacht's, whose L = 10 gives l = 0.1 (a weight
#: decay 100 times larger, still tiny). Nothing here was tuned on test data.
SETTINGS_2016 = {"yacht": {"p": 0.01, "batch_size": 32, "length_scale": 0.1},
                 "concrete": {"p": 0.01, "batch_size": 32, "length_scale": 0.01},
                 "energy": {"p": 0.05, "batch_size": 32, "length_scale": 0.01}}
DEFAULT_2016 = {"p": 0.05, "batch_size": 32, "length_scale": 0.01}


def _summary(values: torch.Tensor) -> tuple[float, float]:
    v = values.double()
    se = float(v.std(unbiased=False) / math.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(v.mean()), se


def protocol_2016(ds, *, splits: Sequence[int] | None = None, tau: float | None = None, p: float | None = None,
                  epochs: int | None = None, batch_size: int | None = None, length_scale: float | None = None,
                  T: int = 10_000, device: torch.device | str = "cpu", seed: int = 0,
                  progress: bool | str = False) -> dict:
    """The 2016 protocol on a :class:`~helpers.data.uci.UCIDataset`: one τ per dataset (the published one),
    train on each split's 90 %, report the test RMSE of the MC mean and the test log-likelihood (T samples).

    Defaults: the published τ, ``p``, ``batch_size`` and ``length_scale`` of :data:`SETTINGS_2016` (the authors'
    scripts), ``epochs`` = 10 × n_epochs (400). All splits train together as one batched computation. Returns
    per-split tensors ``rmse``, ``rmse_standard``, ``ll``, the test predictive ``mean`` and ``var`` (MC, without
    1/τ), the trained batched ``model`` and ``(mean, standard error)`` pairs ``rmse_mean_se`` and ``ll_mean_se``.
    Taught in chapter 1.
    """
    from helpers.data.uci import TAU_2016

    cfg = {**DEFAULT_2016, **SETTINGS_2016.get(ds.name, {})}
    if tau is None:
        if ds.name not in TAU_2016:
            raise BookError(f"dataset {ds.name!r} has no published 2016 τ (known: {', '.join(sorted(TAU_2016))}); "
                            f"pass tau=... (--tau) or use the 2018 protocol, which selects τ on validation data")
        tau = TAU_2016[ds.name]
    p = cfg["p"] if p is None else p
    batch_size = cfg["batch_size"] if batch_size is None else batch_size
    length_scale = cfg["length_scale"] if length_scale is None else length_scale
    epochs = 10 * int(ds.settings.get("n_epochs", 40)) if epochs is None else epochs
    splits = list(range(len(ds.splits))) if splits is None else list(splits)
    out = train_members([ds.split(k) for k in splits], [p] * len(splits), [tau] * len(splits), epochs,
                        batch_size=batch_size, length_scale=length_scale, T=T, device=device, seed=seed,
                        progress=progress)
    return {"protocol": "2016", "splits": splits, "tau": tau, "p": p, "epochs": epochs, "batch_size": batch_size,
            "length_scale": length_scale, "T": T, "rmse": out["rmse"], "rmse_standard": out["rmse_standard"],
            "ll": out["ll"], "rmse_mean_se": _summary(out["rmse"]), "ll_mean_se": _summary(out["ll"]),
            "mean": out["mean"], "var": out["var"], "model": out["model"]}


def protocol_2018(ds, *, splits: Sequence[int] | None = None, p_grid: Sequence[float] | None = None,
                  tau_grid: Sequence[float] | None = None, epochs: int | None = None, batch_size: int = 128,
                  T: int = 10_000, T_validation: int | None = None, device: torch.device | str = "cpu",
                  seed: int = 0, progress: bool | str = False) -> dict:
    """The 2018 update: per split, hold out the last 20 % of the training rows, train one network per (p, τ) of the
    grid, keep the pair with the best validation log-likelihood, retrain it on the whole training split and test.

    Defaults: ``p_grid`` and ``tau_grid`` from the dataset folder (``dropout_rates.txt``, ``tau_values.txt``;
    else :data:`~helpers.data.uci.DROPOUT_GRID_2018` and τ ∈ {0.25, 0.5, 0.75}), ``epochs`` = 100 × n_epochs
    (4,000), batches of 128. The whole grid of every split trains as one batched computation. Taught in chapter 1.
    """
    from helpers.data.uci import DROPOUT_GRID_2018

    splits = list(range(len(ds.splits))) if splits is None else list(splits)
    p_grid = list(p_grid or ds.settings.get("dropout_rates") or DROPOUT_GRID_2018)
    tau_grid = list(tau_grid or ds.settings.get("tau_values") or (0.25, 0.5, 0.75))
    epochs = 100 * int(ds.settings.get("n_epochs", 40)) if epochs is None else epochs
    grid = [(p, t) for p in p_grid for t in tau_grid]
    members, ps, taus = [], [], []
    for k in splits:
        X_tr, y_tr, _, _ = ds.split(k)
        n_fit = int(0.8 * len(y_tr))
        for p, t in grid:
            members.append((X_tr[:n_fit], y_tr[:n_fit], X_tr[n_fit:], y_tr[n_fit:]))
            ps.append(p), taus.append(t)
    val = train_members(members, ps, taus, epochs, batch_size=batch_size, T=T_validation or T, device=device,
                        seed=seed, progress=f"{progress} (grid)" if isinstance(progress, str) else progress)
    val_ll = val["ll"].reshape(len(splits), len(grid))
    best = val_ll.argmax(1)
    best_p = [grid[int(b)][0] for b in best]
    best_tau = [grid[int(b)][1] for b in best]
    out = train_members([ds.split(k) for k in splits], best_p, best_tau, epochs, batch_size=batch_size, T=T,
                        device=device, seed=seed + 1,
                        progress=f"{progress} (retrain)" if isinstance(progress, str) else progress)
    return {"protocol": "2018", "splits": splits, "grid": grid, "epochs": epochs, "batch_size": batch_size, "T": T,
            "validation_ll": val_ll, "p": best_p, "tau": best_tau, "rmse": out["rmse"],
            "rmse_standard": out["rmse_standard"], "ll": out["ll"], "rmse_mean_se": _summary(out["rmse"]),
            "ll_mean_se": _summary(out["ll"]), "mean": out["mean"], "var": out["var"], "model": out["model"]}


__all__ += ["DEFAULT_2016", "SETTINGS_2016", "protocol_2016", "protocol_2018"]
