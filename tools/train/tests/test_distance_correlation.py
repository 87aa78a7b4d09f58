#!/usr/bin/python3
"""Unit tests of tools/train/distance_correlation.py (plain unittest)."""
import os
import sys
import unittest

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from distance_correlation import dcor_loss, distance_correlation  # noqa: E402


def reference_dcor(x, y, unbiased):
    """Direct float64 formulas (torch.cdist, loops) to check the fast version."""
    def centred(z):
        d = torch.cdist(z.double(), z.double())
        n = d.shape[0]
        if not unbiased:
            return d - d.mean(0, keepdim=True) - d.mean(1, keepdim=True) + d.mean()
        c = torch.zeros_like(d)
        for i in range(n):
            for j in range(n):
                if i != j:
                    c[i, j] = (d[i, j] - d[i].sum() / (n - 2) - d[:, j].sum() / (n - 2)
                               + d.sum() / ((n - 1) * (n - 2)))
        return c
    A, B = centred(x), centred(y)
    return torch.sqrt((A * B).sum() / torch.sqrt((A * A).sum() * (B * B).sum()))


class DistanceCorrelationTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)

    def test_self_is_one(self):
        x = torch.randn(64, 16)
        self.assertAlmostEqual(distance_correlation(x, x).item(), 1.0, places=4)
        self.assertAlmostEqual(dcor_loss(x, x).item(), 0.0, places=4)

    def test_matches_reference(self):
        x, y = torch.randn(50, 7), torch.randn(50, 3)
        y = y + 0.5 * x[:, :3] ** 2
        for unbiased in (True, False):
            self.assertAlmostEqual(distance_correlation(x, y, unbiased).item(),
                                   reference_dcor(x, y, unbiased).item(), places=4)

    def test_independent_near_zero(self):
        x, y = torch.randn(1000, 8), torch.randn(1000, 8)
        self.assertLess(distance_correlation(x, y).item(), 0.1)
        # the classic V-statistic is biased upward (~0.17 here)
        self.assertLess(distance_correlation(x, y, unbiased=False).item(), 0.25)
        # batch 16, 256-d student vs 128-d teacher (the training setting):
        # bias-corrected stays small on average, the V-statistic does not
        u = [distance_correlation(torch.randn(16, 256), torch.randn(16, 128)).item()
             for _ in range(20)]
        v = [distance_correlation(torch.randn(16, 256), torch.randn(16, 128),
                                  unbiased=False).item() for _ in range(20)]
        self.assertLess(sum(u) / 20, 0.3)
        self.assertGreater(sum(v) / 20, 0.7)
        # and it is clearly above for a dependent pair of the same size
        dep = distance_correlation(x, x[:, :4] + 0.5 * torch.randn(1000, 4)).item()
        self.assertGreater(dep, 0.6)

    def test_nonlinear_dependence(self):
        x = torch.linspace(-1, 1, 401)[:, None]
        y = x ** 2  # uncorrelated (Pearson ~0) but dependent
        self.assertLess(abs(torch.corrcoef(torch.cat([x, y], 1).t())[0, 1].item()), 0.2)
        self.assertGreater(distance_correlation(x, y).item(), 0.4)

    def test_invariance_scale_rotation_translation(self):
        x = torch.randn(80, 12)
        y = torch.tanh(x[:, :6]) + 0.3 * torch.randn(80, 6)
        base = distance_correlation(x, y).item()
        q, _ = torch.linalg.qr(torch.randn(12, 12))
        for xt in (3.7 * x, x @ q, x @ q * 0.01 + 5.0):
            self.assertAlmostEqual(distance_correlation(xt, y).item(), base, places=4)
        q6, _ = torch.linalg.qr(torch.randn(6, 6))
        self.assertAlmostEqual(distance_correlation(x, 100.0 * y @ q6 - 2.0).item(), base,
                               places=4)
        # rotation + scale of one side is a perfect match
        self.assertAlmostEqual(distance_correlation(x, 2.5 * x @ q).item(), 1.0, places=4)

    def test_different_dims_and_symmetry(self):
        x, y = torch.randn(30, 20), torch.randn(30, 5)
        self.assertAlmostEqual(distance_correlation(x, y).item(),
                               distance_correlation(y, x).item(), places=5)

    def test_time_axis(self):
        x = torch.randn(32, 4, 10)
        y = torch.stack([3.0 * x[:, t] @ torch.linalg.qr(torch.randn(10, 10))[0]
                         for t in range(4)], dim=1)
        self.assertAlmostEqual(distance_correlation(x, y).item(), 1.0, places=3)
        # [B, T, D] against [B, E]: every time step against the same y
        y2 = x[:, 0]
        per_t = [distance_correlation(x[:, t], y2).item() for t in range(4)]
        self.assertAlmostEqual(distance_correlation(x, y2).item(), sum(per_t) / 4, places=5)

    def test_gradient_finite_and_increases_dcor(self):
        y = torch.randn(48, 8)
        x = torch.randn(48, 8, requires_grad=True)
        opt = torch.optim.Adam([x], lr=0.05)
        before = distance_correlation(x, y).item()
        for _ in range(50):
            loss = dcor_loss(x, y)
            opt.zero_grad()
            loss.backward()
            self.assertTrue(torch.isfinite(x.grad).all())
            opt.step()
        # duplicates (zero distances) keep the gradient finite too
        z = torch.cat([x.detach()[:4], x.detach()[:4]]).requires_grad_(True)
        dcor_loss(z, y[:8]).backward()
        self.assertTrue(torch.isfinite(z.grad).all())
        self.assertGreater(distance_correlation(x, y).item(), before + 0.2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
