"""PANNs Cnn14 / Cnn14_16k teacher: network, checkpoint loading, export.

The network is written here from the published Cnn14 architecture; its
state dict uses the key names and shapes of the released checkpoints
(Zenodo 3987831: Cnn14_mAP=0.431.pth, Cnn14_16k_mAP=0.438.pth; the state
dict is the checkpoint's 'model' entry):

  spectrogram_extractor.stft.conv_{real,imag}.weight  (n_fft/2+1, 1, n_fft)
      Hann-windowed DFT kernels (torchlibrosa's STFT as a Conv1d)
  logmel_extractor.melW                               (n_fft/2+1, 64)
      librosa.filters.mel (Slaney scale, Slaney norm), fmin 50, fmax 14000/8000
  bn0.*                                               BatchNorm over the 64 mel bins
  conv_block{1..6}.{conv1,conv2}.weight, .{bn1,bn2}.*  64..2048 channels, no conv bias
  fc1.{weight,bias} (2048, 2048), fc_audioset.{weight,bias} (527, 2048)

Variants: cnn14 (32 kHz: n_fft 1024, hop 320, fmax 14000) and cnn14_16k
(16 kHz: n_fft 512, hop 160, fmax 8000); both 64 mel bands from 50 Hz.

Front-end choice (--frontend):
  network (default)  the served module takes the waveform (B, samples) and
                     computes the log-mel inside, from the checkpoint's own
                     STFT kernels and melW, as the reference does. The served
                     model is then exactly the published network, whatever
                     its front-end tensors hold.
  audiotag           audiotag computes the log-mel (docs/front_ends.md, PANNs
                     block; sample rate, n_fft, hop, fmax per variant) and the
                     module takes (B, 1, T, 64). The export first checks that
                     the checkpoint's STFT kernels and melW equal the standard
                     ones (max abs diff <= 1e-4), since audiotag's front-end
                     cannot use the checkpoint's.

Outputs: "tags" (527 AudioSet classes, logits with ACTIVATION_SIGMOID, i.e.
the reference's clipwise_output) and "embedding" (2048-d relu(fc1), the
reference's 'embedding'). Segments: 10 s windows, hop --hop-seconds
(default 10), last partial window zero-padded.
"""

import argparse
import math
import os
from typing import Dict, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    from . import common
except ImportError:
    import common

NUM_CLASSES = 527
EMBEDDING_SIZE = 2048

VARIANTS = {
    "cnn14": dict(sample_rate=32000, n_fft=1024, hop=320, n_mels=64, fmin=50.0, fmax=14000.0),
    "cnn14_16k": dict(sample_rate=16000, n_fft=512, hop=160, n_mels=64, fmin=50.0, fmax=8000.0),
}


# ---------------------------------------------------------------- front-end tensors

def hann_periodic(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def dft_kernels(n_fft: int) -> Tuple[np.ndarray, np.ndarray]:
    """(n_fft/2+1, 1, n_fft) real and imaginary Hann-windowed DFT kernels."""
    k = np.arange(n_fft // 2 + 1)[:, None]
    n = np.arange(n_fft)[None, :]
    ang = 2.0 * np.pi * k * n / n_fft
    w = hann_periodic(n_fft)[None, :]
    return (np.cos(ang) * w)[:, None, :], (-np.sin(ang) * w)[:, None, :]


def _hz_to_mel_slaney(f):
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def _mel_to_hz_slaney(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def slaney_mel_matrix(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_fft/2+1, n_mels): triangles in Hz between Slaney-mel-spaced edges,
    each scaled to unit area (librosa.filters.mel defaults), transposed."""
    fft_freqs = np.linspace(0.0, sr / 2.0, n_fft // 2 + 1)
    edges = _mel_to_hz_slaney(np.linspace(_hz_to_mel_slaney(fmin), _hz_to_mel_slaney(fmax), n_mels + 2))
    w = np.zeros((n_mels, fft_freqs.size))
    for i in range(n_mels):
        lo, c, hi = edges[i], edges[i + 1], edges[i + 2]
        up = (fft_freqs - lo) / (c - lo)
        down = (hi - fft_freqs) / (hi - c)
        w[i] = np.maximum(0.0, np.minimum(up, down)) * (2.0 / (hi - lo))
    return w.T


# ---------------------------------------------------------------- network

class _Stft(nn.Module):
    def __init__(self, n_fft: int):
        super().__init__()
        self.conv_real = nn.Conv1d(1, n_fft // 2 + 1, n_fft, bias=False)
        self.conv_imag = nn.Conv1d(1, n_fft // 2 + 1, n_fft, bias=False)


class _Spectrogram(nn.Module):
    def __init__(self, n_fft: int):
        super().__init__()
        self.stft = _Stft(n_fft)


class _Logmel(nn.Module):
    def __init__(self, n_fft: int, n_mels: int):
        super().__init__()
        self.melW = nn.Parameter(torch.zeros(n_fft // 2 + 1, n_mels), requires_grad=False)


class ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor, pool: int) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        if pool > 1:
            x = F.avg_pool2d(x, pool)
        return x


class Cnn14(nn.Module):
    """Cnn14 in eval mode. forward(x) takes the waveform (B, samples) when
    waveform_input, else the log-mel (B, 1, T, 64); returns a dict with
    'logits' (B, 527) and 'embedding' (B, 2048)."""

    def __init__(self, n_fft: int, hop: int, n_mels: int = 64, classes: int = NUM_CLASSES,
                 waveform_input: bool = True):
        super().__init__()
        self.n_fft = n_fft
        self.hop = hop
        self.waveform_input = waveform_input
        self.spectrogram_extractor = _Spectrogram(n_fft)
        self.logmel_extractor = _Logmel(n_fft, n_mels)
        self.bn0 = nn.BatchNorm2d(n_mels)
        chans = [1, 64, 128, 256, 512, 1024, 2048]
        for i in range(6):
            setattr(self, f"conv_block{i + 1}", ConvBlock(chans[i], chans[i + 1]))
        self.fc1 = nn.Linear(2048, 2048)
        self.fc_audioset = nn.Linear(2048, classes)

    def logmel(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, samples) -> (B, 1, T, mels): centred reflect-padded STFT power,
        mel, 10*log10(max(x, 1e-10))."""
        x = F.pad(wav.unsqueeze(1), (self.n_fft // 2, self.n_fft // 2), mode="reflect")
        re = F.conv1d(x, self.spectrogram_extractor.stft.conv_real.weight, stride=self.hop)
        im = F.conv1d(x, self.spectrogram_extractor.stft.conv_imag.weight, stride=self.hop)
        power = (re * re + im * im).transpose(1, 2)  # (B, T, bins)
        mel = torch.matmul(power, self.logmel_extractor.melW)
        return (10.0 * torch.log10(torch.clamp(mel, min=1e-10))).unsqueeze(1)

    def trunk(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        x = self.conv_block1(x, 2)
        x = self.conv_block2(x, 2)
        x = self.conv_block3(x, 2)
        x = self.conv_block4(x, 2)
        x = self.conv_block5(x, 2)
        x = self.conv_block6(x, 1)
        x = x.mean(dim=3)
        x = x.amax(dim=2) + x.mean(dim=2)
        emb = F.relu(self.fc1(x))
        return {"logits": self.fc_audioset(emb), "embedding": emb}

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        if self.waveform_input:
            x = self.logmel(x)
        return self.trunk(x)


FRONTEND_KEYS = ("spectrogram_extractor.stft.conv_real.weight",
                 "spectrogram_extractor.stft.conv_imag.weight",
                 "logmel_extractor.melW")


def standard_frontend(variant: str) -> Dict[str, torch.Tensor]:
    v = VARIANTS[variant]
    re, im = dft_kernels(v["n_fft"])
    mel = slaney_mel_matrix(v["sample_rate"], v["n_fft"], v["n_mels"], v["fmin"], v["fmax"])
    return {FRONTEND_KEYS[0]: torch.from_numpy(re).float(), FRONTEND_KEYS[1]: torch.from_numpy(im).float(),
            FRONTEND_KEYS[2]: torch.from_numpy(mel).float()}


def make_model(variant: str, waveform_input: bool = True) -> Cnn14:
    v = VARIANTS[variant]
    return Cnn14(v["n_fft"], v["hop"], v["n_mels"], waveform_input=waveform_input)


def random_checkpoint(path: str, variant: str, seed: int = 0) -> None:
    """A checkpoint shaped like the Zenodo release: {'model': state_dict,
    'iteration': 0}, the front-end tensors standard, the rest random."""
    m = make_model(variant)
    with torch.no_grad():
        for k, t in standard_frontend(variant).items():
            m.state_dict()[k].copy_(t)
    common.randomize_(m, seed, skip=FRONTEND_KEYS)
    with torch.no_grad():  # keep random logits O(1) so sigmoid scores are not saturated
        m.fc_audioset.weight.mul_(0.01)
    torch.save({"model": m.state_dict(), "iteration": 0}, path)


def input_config(variant: str, frontend: str):
    """The waveform (frontend "network": the log-mel runs inside the served
    network, from the checkpoint's tensors) or audiotag's PANNs log-mel."""
    pb = common.config_pb2()
    v = VARIANTS[variant]
    if frontend == "network":
        return pb.InputConfig(sample_rate=v["sample_rate"], waveform=pb.WaveformFrontEnd(), layout=pb.LAYOUT_BT)
    return pb.InputConfig(
        sample_rate=v["sample_rate"],
        log_mel=pb.LogMelFrontEnd(
            n_fft=v["n_fft"], win_length=v["n_fft"], hop_length=v["hop"], window=pb.WINDOW_HANN_PERIODIC,
            center=True, pad_mode=pb.PAD_REFLECT, n_mels=v["n_mels"], f_min=v["fmin"], f_max=v["fmax"],
            mel_scale=pb.MEL_SLANEY, mel_norm=pb.MEL_NORM_SLANEY, power=2, log=pb.LOG_DB, log_floor=1e-10),
        layout=pb.LAYOUT_BCTF)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="Cnn14_mAP=0.431.pth or Cnn14_16k_mAP=0.438.pth")
    p.add_argument("--variant", choices=sorted(VARIANTS), default="cnn14")
    p.add_argument("--frontend", choices=("network", "audiotag"), default="network",
                   help="log-mel inside the served network (default, as the reference) or audiotag's")
    p.add_argument("--labels", help="AudioSet class_labels_indices.csv (default: placeholders audioset_N)")
    p.add_argument("--window-seconds", type=float, default=10.0)
    p.add_argument("--hop-seconds", type=float, default=None, help="segment hop (default: the window)")
    p.add_argument("--random-weights", action="store_true",
                   help="write a random checkpoint to --checkpoint first (tests only)")
    common.add_serving_arguments(p)


def build(args) -> Cnn14:
    sd = common.unwrap_state_dict(common.torch_load(args.checkpoint), keys=("model",))
    m = make_model(args.variant, waveform_input=args.frontend == "network")
    common.load_state_dict_strict(m, sd, f"PANNs {args.variant} checkpoint {args.checkpoint}")
    if args.frontend == "audiotag":
        for k, t in standard_frontend(args.variant).items():
            d = (sd[k].double() - t.double()).abs().max().item()
            if not d <= 1e-4:
                raise common.ExportError(
                    f"{k} differs from the standard {args.variant} front-end by {d:.3g}; "
                    "use --frontend network to serve the checkpoint's own front-end")
    return m.eval()


def main(args) -> None:
    if not args.checkpoint:
        raise common.ExportError("--checkpoint is required")
    if args.random_weights:
        random_checkpoint(args.checkpoint, args.variant, args.seed)
        common.log(f"wrote random-weight checkpoint {args.checkpoint}")
    v = VARIANTS[args.variant]
    model = build(args)
    labels_note = ""
    if args.labels:
        labels = common.read_labels_csv(args.labels, NUM_CLASSES)
    else:
        labels = common.placeholder_labels("audioset", NUM_CLASSES)
        labels_note = ("NOTE: labels.txt holds placeholders audioset_0..audioset_526; re-export with "
                       "--labels class_labels_indices.csv (AudioSet ontology) for the class names.")
        common.log(labels_note)
    sr = v["sample_rate"]
    window = int(round(args.window_seconds * sr))
    hop = int(round((args.hop_seconds or args.window_seconds) * sr))
    # Check input: 1 s of random audio (any length works; the network is
    # fully convolutional in time), or its log-mel shape for --frontend audiotag.
    g = torch.Generator().manual_seed(args.seed)
    if args.frontend == "network":
        checks = [0.3 * torch.randn(args.check_batch, sr, generator=g), 0.3 * torch.randn(1, sr // 2 + 123, generator=g)]
    else:
        frames = 1 + sr // v["hop"]
        checks = [torch.randn(args.check_batch, 1, frames, v["n_mels"], generator=g) * 10.0 - 30.0]
    pb = common.config_pb2()
    outputs = [common.output("tags", "TAGS", NUM_CLASSES, source="logits", activation="ACTIVATION_SIGMOID"),
               common.output("embedding", "EMBEDDING", EMBEDDING_SIZE, source="embedding")]
    config = common.model_config(
        description=f"PANNs {'Cnn14' if args.variant == 'cnn14' else 'Cnn14_16k'}: 527 AudioSet tags and 2048-d embedding "
                    f"per {args.window_seconds:g} s window ({args.frontend} front-end)",
        input=input_config(args.variant, args.frontend),
        segment=pb.SegmentConfig(window_samples=window, hop_samples=hop, last_segment=pb.LAST_SEGMENT_PAD),
        outputs=outputs, args=args)
    header = (f"Written by tools/export/export.py panns --variant {args.variant} --frontend {args.frontend}.\n"
              f"checkpoint: {os.path.basename(args.checkpoint)}\n" + labels_note)
    common.export_model_folder(args, eager=model, check_inputs=checks, config=config, header=header,
                               tolerance={"logits": 1e-3, "embedding": 1e-3}, labels=labels,
                               expected_dims={"logits": NUM_CLASSES, "embedding": EMBEDDING_SIZE})
