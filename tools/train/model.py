"""The student network: a compact VGG-style CNN on log-mel segments.

Input  [B, 1, T, F] (LAYOUT_BCTF): T = 97 frames (1 s), F = 64 mel bands,
already normalised by the front-end.
Output dict: "logits" [B, 20] (sigmoid gives per-class probabilities) and
"embedding" [B, 256] (the penultimate layer, after ReLU).
Global pooling over time and frequency makes any T >= 16 valid.

input_norm "tilt" (optional, inside the network, so audiotag's front-end and
config stay as they are): the segment's time-averaged spectrum m [F] is
projected onto the orthonormalised Legendre polynomials P1, P2 over the mel
bands (slope and bow) and that smooth curve is subtracted from every frame:
x - (Q Q^T m) with Q [F, 2]. A stationary tilt/bow of the channel (a bank's
or microphone's colouration, up to second order in the band index) cancels;
level (P0) and finer spectral shape stay.
"""
import numpy as np
from typing import Dict

import torch
import torch.nn as nn
import torch.nn.functional as F

N_CLASSES = 20
EMBED_DIM = 256


class ConvBlock(nn.Module):
    def __init__(self, cin, cout, n_convs, pool):
        super().__init__()
        layers = []
        for i in range(n_convs):
            layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=False),
                       nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.pool = pool

    def forward(self, x):
        x = self.body(x)
        if self.pool:
            x = F.avg_pool2d(x, 2)
        return x


class Student(nn.Module):
    def __init__(self, widths=(24, 48, 96, 192), n_classes=N_CLASSES, embed_dim=EMBED_DIM,
                 input_norm="none", n_mels=64):
        super().__init__()
        if input_norm not in ("none", "tilt"):
            raise ValueError(f"input_norm {input_norm!r}")
        self.tilt = input_norm == "tilt"
        z = np.linspace(-1.0, 1.0, n_mels)
        basis = np.stack([z, 1.5 * z * z - 0.5], axis=1)  # Legendre P1, P2: [F, 2]
        q, _ = np.linalg.qr(basis)
        self.register_buffer("tilt_proj", torch.from_numpy(q @ q.T).float(), persistent=False)
        self.in_bn = nn.BatchNorm2d(1)
        self.blocks = nn.Sequential(
            ConvBlock(1, widths[0], 1, True),          # 97x64 -> 48x32
            ConvBlock(widths[0], widths[1], 1, True),  # -> 24x16
            ConvBlock(widths[1], widths[2], 2, True),  # -> 12x8
            ConvBlock(widths[2], widths[3], 2, False),  # 12x8
        )
        self.fc = nn.Linear(2 * widths[3], embed_dim)
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(embed_dim, n_classes)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        if self.tilt:  # [B, 1, T, F] - smooth part of the mean spectrum [B, 1, 1, F]
            x = x - torch.matmul(x.mean(dim=2, keepdim=True), self.tilt_proj)
        x = self.in_bn(x)
        x = self.blocks(x)
        x = x.mean(dim=3)  # over frequency -> [B, C, T]
        x = torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1)  # mean + max over time
        emb = F.relu(self.fc(x))
        logits = self.head(self.drop(emb))
        return {"logits": logits, "embedding": emb}


def n_params(model):
    return sum(p.numel() for p in model.parameters())
