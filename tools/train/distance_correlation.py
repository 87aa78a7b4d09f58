"""Distance correlation (Szekely, Rizzo and Bakirov 2007) in torch, as the
regulariser of "Embeddings as teachers" (Ding and Lerch, ISMIR 2023):

    loss = (1 - lambda) * BCE + lambda * (1 - dCor(student features, teacher embeddings))

For a batch x [B, D] and y [B, E] (D and E may differ): pairwise Euclidean
distance matrices a = |x_i - x_j|, b = |y_i - y_j|, double-centred, and

    dCor = sqrt(dCov^2(x, y) / sqrt(dVar^2(x) * dVar^2(y)))   (clamped to [0, 1])

unbiased=True (the default): U-centred matrices (Szekely and Rizzo 2014,
A_ij = a_ij - a_i./(B-2) - a_.j/(B-2) + a../((B-1)(B-2)), A_ii = 0,
dCov^2 = sum_{i != j} A_ij B_ij / (B(B-3))): ~0 for independent data even
at batch 16 with hundreds of dimensions, where the classic estimator sits
near 0.8 and so barely constrains the student. Needs B >= 4.
unbiased=False: the classic V-statistic (A = a - row mean - column mean +
grand mean, dCov^2 = mean(A * B)), biased upward for independent data.

dCor is 1 when y is a rotation, scaling or translation of x, and is
invariant to those transforms of either side. With a time axis, x [B, T, D]
and y [B, T, E] are compared per time step and the dCor values averaged;
y [B, E] without a time axis is compared with every time step of x.
"""
import torch

EPS = 1e-12


def _centred_distances(x, unbiased):
    """x [B, D] -> double-centred (or U-centred) Euclidean distances [B, B]."""
    x = x.reshape(x.shape[0], -1).to(torch.float32)
    x = x - x.mean(dim=0, keepdim=True)  # exact translation invariance in float32
    sq = (x * x).sum(dim=1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * x @ x.t()).clamp(min=0.0)
    eye = torch.eye(x.shape[0], dtype=x.dtype, device=x.device)
    # sqrt has an infinite slope at 0: keep the diagonal exactly 0 with a
    # finite gradient.
    d = torch.sqrt(d2 + EPS) * (1.0 - eye)
    if not unbiased:
        return d - d.mean(dim=0, keepdim=True) - d.mean(dim=1, keepdim=True) + d.mean()
    n = d.shape[0]
    c = (d - d.sum(dim=0, keepdim=True) / (n - 2) - d.sum(dim=1, keepdim=True) / (n - 2)
         + d.sum() / ((n - 1) * (n - 2)))
    return c * (1.0 - eye)


def _dcor_2d(x, y, unbiased, clamp):
    A = _centred_distances(x, unbiased)
    B = _centred_distances(y, unbiased)
    # the common normalisation (1/B^2 or 1/(B(B-3))) cancels in the ratio
    dcov2 = (A * B).sum()
    dvar2 = (A * A).sum() * (B * B).sum()
    r2 = dcov2 / torch.sqrt(dvar2 + EPS).clamp(min=EPS)  # in [-1, 1] (Cauchy-Schwarz)
    if clamp:
        return torch.sqrt(r2.clamp(min=0.0) + EPS)
    # The bias-corrected dCov^2 can be slightly negative; for the loss keep a
    # gradient there: sign(r2) * sqrt(|r2|), smoothed at 0.
    return r2 / torch.sqrt(r2.abs() + 1e-6)


def distance_correlation(x, y, unbiased=True, clamp=True):
    """dCor of x [B, D] or [B, T, D] and y [B, E] or [B, T, E] (see above).
    clamp=False: a negative bias-corrected dCov^2 gives a negative value
    (what the loss uses, so that it still has a gradient)."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"batch sizes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.shape[0] < (4 if unbiased else 2):
        raise ValueError("distance correlation needs a batch of at least 4 (2 biased)")
    if x.dim() == 2 and y.dim() == 2:
        return _dcor_2d(x, y, unbiased, clamp)
    if x.dim() == 2:
        x, y = y, x
    if y.dim() == 2:
        return torch.stack([_dcor_2d(x[:, t], y, unbiased, clamp) for t in range(x.shape[1])]).mean()
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"time axes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    return torch.stack([_dcor_2d(x[:, t], y[:, t], unbiased, clamp)
                        for t in range(x.shape[1])]).mean()


def dcor_loss(x, y, unbiased=True):
    """1 - dCor: the regulariser (0 when the features are a similarity
    transform of the teacher embeddings)."""
    return 1.0 - distance_correlation(x, y, unbiased, clamp=False)
