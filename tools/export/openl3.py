"""OpenL3 teacher (mel128 / mel256, music / env, 512 / 6144): network, export.

The network is written here from OpenL3's audio architecture; its state dict
uses the key names and shapes of torchopenl3's PytorchOpenl3 (the
torchopenl3_<repr>_<content>_<size>.pth files, a bare state dict):

  speclayer.dft_real_kernels, speclayer.dft_imag_kernels  (1025, 1, 2048)
  speclayer.mel_basis                                     (n_mels, 1025)
  batch_normalization_{1..8}.*      (eps 1e-3, Keras) 1, 64, 64, 128, 128, 256, 256, 512
  conv2d_{1..7}.{weight,bias}       3x3: 1-64-64-128-128-256-256-512
  audio_embedding_layer.{weight,bias} 3x3 512-512

music/env differ in weights only; 512/6144 only in the final max-pool
((16,24)/(4,8) for mel128, (32,24)/(8,8) for mel256); the flatten is
channels-last as in Keras.

Front-end: audiotag computes the kapre-0.1.4 mel spectrogram and the module
takes (B, 1, n_mels, 199) (LAYOUT_BCFT) for each 1 s window at 48 kHz,
hop 0.1 s. kapre's Melspectrogram(power_melgram=1.0) applies the mel bank to
the *power* STFT and then takes the square root, and its
amplitude_to_decibel is 10*log10(max(x, 1e-10)) minus the per-window max,
clamped at -80 dB. In audiotag terms that is power: 2, LOG_DB,
db_relative_to_max, then /2 (norm_std: 2) with the clamp at -160 before the
halving (top_db: 160) and log_floor 1e-20 (= (1e-10)^2). (docs/front_ends.md's
OpenL3 block says power: 1, i.e. the mel bank on the magnitude, which is not
what kapre computes.) The checkpoint's speclayer tensors are checked against
the standard kernels and mel banks (--frontend-check).

Mel filters (--mel-norm): kapre 0.1.4 builds them with librosa.filters.mel(
sr=48000, n_fft=2048, htk=True, norm=1). librosa < 0.7 read norm=1 as
Slaney's area normalisation; librosa >= 0.8 reads it as unit L1 norm.
OpenL3 was trained in 2018 (librosa 0.6) and openl3 <= 0.3 stored that bank
as the Melspectrogram layer's non-trainable `freq2mel` weight in its .h5
files, so the published weights saw the area-normalised bank: `area` is the
default. torchopenl3 recomputes the bank with whatever librosa is installed
(L1 today): `l1` reproduces that; `checkpoint` takes whichever of the two the
checkpoint's speclayer.mel_basis holds.

Framing (--center/--no-center): openl3's and torchopenl3's
get_audio_embedding default to center=True, which pads half a window of
zeros before the audio so that window k is centred on k * hop (139 windows
for a 14.3 s clip at a 0.1 s hop); the export does the same by default
(segment.center). --no-center gives center=False (windows start at k * hop;
134 windows for that clip). The last partial window is zero-padded either way.
"""

import argparse
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

SAMPLE_RATE = 48000
N_DFT = 2048
N_HOP = 242
FRAMES = 199  # 1 s window with Keras 'same' padding
POOL = {"mel128": {512: (16, 24), 6144: (4, 8)}, "mel256": {512: (32, 24), 6144: (8, 8)}}
N_MELS = {"mel128": 128, "mel256": 256}
SPEC_KEYS = ("speclayer.dft_real_kernels", "speclayer.dft_imag_kernels", "speclayer.mel_basis")


# --mel-norm: the config's MelNorm and what it means.
MEL_NORMS = {
    "area": ("MEL_NORM_SLANEY", "area (Slaney) normalised, as librosa < 0.7 built it for kapre 0.1.4: "
                                "the bank the published weights were trained with"),
    "l1": ("MEL_NORM_L1", "unit L1 norm, as librosa >= 0.8 builds it: what torchopenl3 computes today"),
}


def input_config(input_repr: str, mel_norm: str = "area", frontend: str = "audiotag"):
    """kapre 0.1.4's log-mel as audiotag computes it, or (frontend "network")
    the raw 48 kHz waveform for the kapre layer inside the network."""
    pb = common.config_pb2()
    if frontend == "network":
        return pb.InputConfig(sample_rate=SAMPLE_RATE, waveform=pb.WaveformFrontEnd(), layout=pb.LAYOUT_BT)
    return pb.InputConfig(
        sample_rate=SAMPLE_RATE,
        log_mel=pb.LogMelFrontEnd(
            n_fft=2048, hop_length=242, window=pb.WINDOW_HANN_PERIODIC, center=True, pad_mode=pb.PAD_CONSTANT,
            center_pad=982, n_mels=N_MELS[input_repr], f_min=0, f_max=24000, mel_scale=pb.MEL_HTK,
            mel_norm=pb.MelNorm.Value(MEL_NORMS[mel_norm][0]), power=2, log=pb.LOG_DB, log_floor=1e-20,
            db_relative_to_max=True, top_db=160, norm_std=2),
        layout=pb.LAYOUT_BCFT)


def segment_config(hop_samples: int, center: bool = True):
    """1 s windows every `hop_samples`; the last one zero-padded."""
    pb = common.config_pb2()
    return pb.SegmentConfig(window_samples=SAMPLE_RATE, hop_samples=hop_samples,
                            last_segment=pb.LAST_SEGMENT_PAD, center=center)


class _SpecLayer(nn.Module):
    """Holds torchopenl3's front-end tensors (not used by forward)."""

    def __init__(self, n_mels: int):
        super().__init__()
        self.register_buffer("dft_real_kernels", torch.zeros(N_DFT // 2 + 1, 1, N_DFT))
        self.register_buffer("dft_imag_kernels", torch.zeros(N_DFT // 2 + 1, 1, N_DFT))
        self.register_buffer("mel_basis", torch.zeros(n_mels, N_DFT // 2 + 1))


class KapreMel(nn.Module):
    """kapre 0.1.4 Melspectrogram from the checkpoint's speclayer tensors:
    (B, 48000) -> (B, 1, n_mels, 199) (for --frontend network)."""

    def __init__(self, spec: _SpecLayer):
        super().__init__()
        self.register_buffer("dft_real_kernels", spec.dft_real_kernels.clone())
        self.register_buffer("dft_imag_kernels", spec.dft_imag_kernels.clone())
        self.register_buffer("mel_basis", spec.mel_basis.clone())

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = F.pad(wav.unsqueeze(1), (982, 982))  # Keras 'same' for 48000 samples
        re = F.conv1d(x, self.dft_real_kernels, stride=242)
        im = F.conv1d(x, self.dft_imag_kernels, stride=242)
        mel = torch.sqrt(torch.matmul(self.mel_basis, re * re + im * im))  # (B, n_mels, 199)
        db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
        db = db - db.amax(dim=(1, 2), keepdim=True)
        return torch.clamp(db, min=-80.0).unsqueeze(1)


class WithFrontEnd(nn.Module):
    def __init__(self, front: KapreMel, trunk: nn.Module):
        super().__init__()
        self.front = front
        self.trunk = trunk

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.trunk(self.front(wav))


class OpenL3(nn.Module):
    """(B, 1, n_mels, 199) kapre log-mel -> (B, 512 or 6144)."""

    def __init__(self, input_repr: str = "mel128", embedding_size: int = 512, with_speclayer: bool = True):
        super().__init__()
        if input_repr not in POOL:
            raise common.ExportError(f"input_repr must be one of {sorted(POOL)}")
        if embedding_size not in POOL[input_repr]:
            raise common.ExportError("embedding size must be 512 or 6144")
        if with_speclayer:
            self.speclayer = _SpecLayer(N_MELS[input_repr])
        chans = [1, 64, 64, 128, 128, 256, 256, 512]
        bn = lambda c: nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)  # noqa: E731
        self.batch_normalization_1 = bn(1)
        for i in range(1, 8):
            setattr(self, f"conv2d_{i}", nn.Conv2d(chans[i - 1], chans[i], 3, padding=1))
            setattr(self, f"batch_normalization_{i + 1}", bn(chans[i]))
        self.audio_embedding_layer = nn.Conv2d(512, 512, 3, padding=1)
        self.pool = POOL[input_repr][embedding_size]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.batch_normalization_1(x)
        x = F.relu(self.batch_normalization_2(self.conv2d_1(x)))
        x = F.relu(self.batch_normalization_3(self.conv2d_2(x)))
        x = F.max_pool2d(x, 2, 2)
        x = F.relu(self.batch_normalization_4(self.conv2d_3(x)))
        x = F.relu(self.batch_normalization_5(self.conv2d_4(x)))
        x = F.max_pool2d(x, 2, 2)
        x = F.relu(self.batch_normalization_6(self.conv2d_5(x)))
        x = F.relu(self.batch_normalization_7(self.conv2d_6(x)))
        x = F.max_pool2d(x, 2, 2)
        x = F.relu(self.batch_normalization_8(self.conv2d_7(x)))
        x = self.audio_embedding_layer(x)
        x = F.max_pool2d(x, self.pool, self.pool)
        return x.permute(0, 2, 3, 1).flatten(1)  # channels-last flatten, as Keras


# ---------------------------------------------------------------- standard front-end tensors

def kapre_dft_kernels() -> Tuple[np.ndarray, np.ndarray]:
    k = np.arange(N_DFT // 2 + 1)[:, None]
    n = np.arange(N_DFT)[None, :]
    ang = 2.0 * np.pi * k * n / N_DFT
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_DFT) / N_DFT)  # periodic Hann
    return (np.cos(ang) * w)[:, None, :], (-np.sin(ang) * w)[:, None, :]


def htk_mel(n_mels: int, norm: str = "area") -> np.ndarray:
    """(n_mels, 1025): librosa mel(sr=48000, n_fft=2048, htk=True, norm=1)
    as librosa < 0.7 computed it (norm "area": Slaney unit area) or as
    librosa >= 0.8 does (norm "l1": each band's weights sum to 1)."""
    hz2mel = lambda f: 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)  # noqa: E731
    mel2hz = lambda m: 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)  # noqa: E731
    fft_freqs = np.linspace(0.0, SAMPLE_RATE / 2.0, N_DFT // 2 + 1)
    edges = mel2hz(np.linspace(hz2mel(0.0), hz2mel(SAMPLE_RATE / 2.0), n_mels + 2))
    w = np.zeros((n_mels, fft_freqs.size))
    for i in range(n_mels):
        lo, c, hi = edges[i], edges[i + 1], edges[i + 2]
        w[i] = np.maximum(0.0, np.minimum((fft_freqs - lo) / (c - lo), (hi - fft_freqs) / (hi - c)))
        if norm == "area":
            w[i] *= 2.0 / (hi - lo)
        elif w[i].sum() > 0:
            w[i] /= w[i].sum()
    return w


def standard_speclayer(input_repr: str, norm: str = "area") -> Dict[str, torch.Tensor]:
    re, im = kapre_dft_kernels()
    return {SPEC_KEYS[0]: torch.from_numpy(re).float(), SPEC_KEYS[1]: torch.from_numpy(im).float(),
            SPEC_KEYS[2]: torch.from_numpy(htk_mel(N_MELS[input_repr], norm)).float()}


def identify_mel_norm(mel_basis: torch.Tensor, input_repr: str) -> Tuple[str, float]:
    """Which standard bank a checkpoint's speclayer.mel_basis is: ("area" or
    "l1", relative error), or ("unknown", smallest relative error)."""
    a = mel_basis.double()
    best = ("unknown", float("inf"))
    for norm in MEL_NORMS:
        t = torch.from_numpy(htk_mel(N_MELS[input_repr], norm))
        if tuple(t.shape) != tuple(a.shape):
            continue
        rel = (a - t).abs().max().item() / max(t.abs().max().item(), 1e-30)
        if rel < best[1]:
            best = (norm, rel)
    return best if best[1] <= 1e-4 else ("unknown", best[1])


def random_checkpoint(path: str, input_repr: str, embedding_size: int, seed: int = 0,
                      mel_norm: str = "area") -> None:
    """A state dict shaped like torchopenl3_<repr>_<content>_<size>.pth, standard
    front-end tensors (the mel bank with `mel_norm`), random weights."""
    m = OpenL3(input_repr, embedding_size)
    with torch.no_grad():
        for k, t in standard_speclayer(input_repr, mel_norm).items():
            m.state_dict()[k].copy_(t)
    common.randomize_(m, seed, skip=SPEC_KEYS)
    torch.save(m.state_dict(), path)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="torchopenl3_<mel128|mel256>_<music|env>_<512|6144>.pth")
    p.add_argument("--input-repr", choices=sorted(POOL), default="mel128")
    p.add_argument("--content-type", choices=("music", "env"), default="music",
                   help="recorded in the description only (the weights differ, not the network)")
    p.add_argument("--embedding-size", type=int, choices=(512, 6144), default=512)
    p.add_argument("--hop-seconds", type=float, default=0.1, help="window hop (default 0.1 s, openl3's)")
    p.add_argument("--center", action=argparse.BooleanOptionalAction, default=True,
                   help="centre window k on k * hop by padding half a window before the audio "
                        "(openl3's and torchopenl3's default center=True); --no-center starts "
                        "window k at k * hop (center=False)")
    p.add_argument("--mel-norm", choices=("area", "l1", "checkpoint"), default="area",
                   help="mel filter normalisation: area (the default: librosa < 0.7's norm=1, the bank "
                        "the published weights were trained with), l1 (librosa >= 0.8's norm=1, what "
                        "torchopenl3 computes today) or checkpoint (whichever of the two the "
                        "checkpoint's speclayer.mel_basis holds)")
    p.add_argument("--random-mel-norm", choices=("area", "l1"), default="area",
                   help="with --random-weights: the mel bank written into the random checkpoint")
    p.add_argument("--frontend", choices=("auto", "audiotag", "network"), default="auto",
                   help="audiotag's log-mel, or the kapre front-end inside the network from the checkpoint's "
                        "speclayer tensors (waveform input). auto: audiotag for mel128, network for mel256 "
                        "(audiotag rejects mel banks with empty bands, which 256 HTK bands at n_fft 2048 have)")
    p.add_argument("--frontend-check", choices=("error", "warn", "off"), default="warn",
                   help="when the checkpoint's speclayer tensors differ from the standard kapre ones")
    p.add_argument("--random-weights", action="store_true",
                   help="write a random checkpoint to --checkpoint first (tests only)")
    common.add_serving_arguments(p)


def frontend_of(args) -> str:
    if args.frontend != "auto":
        return args.frontend
    return "audiotag" if args.input_repr == "mel128" else "network"


def resolve_mel_norm(args, sd: Dict[str, torch.Tensor]) -> str:
    """The bank to serve ("area" or "l1"), logging what the checkpoint holds
    and warning (or failing, --frontend-check error) when they differ."""
    held, rel = identify_mel_norm(sd[SPEC_KEYS[2]], args.input_repr)
    held_text = (f"{held} ({MEL_NORMS[held][1]})" if held in MEL_NORMS
                 else f"neither standard bank (relative difference {rel:.3g})")
    common.log(f"checkpoint's speclayer.mel_basis: {held_text}")
    if args.mel_norm == "checkpoint":
        if held not in MEL_NORMS:
            raise common.ExportError(f"--mel-norm checkpoint: the checkpoint's speclayer.mel_basis is {held_text}; "
                                     "pass --mel-norm area or --mel-norm l1")
        chosen = held
    else:
        chosen = args.mel_norm
    common.log(f"mel filters served: {chosen}: {MEL_NORMS[chosen][1]} (--mel-norm {args.mel_norm})")
    if held != chosen and args.frontend_check != "off":
        msg = (f"the checkpoint's speclayer.mel_basis is {held_text}, the export serves {chosen}; "
               "embeddings will follow the served bank (--mel-norm chooses; --mel-norm checkpoint follows the file)")
        if args.frontend_check == "error":
            raise common.ExportError(msg)
        common.log("WARNING: " + msg)
    return chosen


def build(args) -> Tuple[nn.Module, str]:
    """(module, mel norm served)."""
    sd = common.unwrap_state_dict(common.torch_load(args.checkpoint))
    full = OpenL3(args.input_repr, args.embedding_size, with_speclayer=True)
    common.load_state_dict_strict(full, sd, f"OpenL3 {args.input_repr}/{args.embedding_size} checkpoint {args.checkpoint}")
    mel_norm = resolve_mel_norm(args, sd)
    if args.frontend_check != "off":
        std = standard_speclayer(args.input_repr, mel_norm)
        for k in SPEC_KEYS[:2]:
            t = std[k]
            a = sd[k].double()
            d = (a - t.double()).abs().max().item()
            rel = d / max(t.abs().max().item(), 1e-30)
            if rel > 1e-4:
                msg = (f"{k} differs from the kapre-0.1.4 front-end audiotag computes "
                       f"(max abs {d:.3g}, relative {rel:.3g}); served embeddings will not match this checkpoint's speclayer")
                if args.frontend_check == "error":
                    raise common.ExportError(msg)
                common.log("WARNING: " + msg)
    trunk = OpenL3(args.input_repr, args.embedding_size, with_speclayer=False)
    trunk.load_state_dict({k: v for k, v in sd.items() if not k.startswith("speclayer.")}, strict=True)
    if frontend_of(args) == "network":
        # The network front-end serves the chosen bank too.
        with torch.no_grad():
            full.speclayer.mel_basis.copy_(standard_speclayer(args.input_repr, mel_norm)[SPEC_KEYS[2]])
        return WithFrontEnd(KapreMel(full.speclayer), trunk).eval(), mel_norm
    return trunk.eval(), mel_norm


def main(args) -> None:
    if not args.checkpoint:
        raise common.ExportError("--checkpoint is required")
    if args.random_weights:
        random_checkpoint(args.checkpoint, args.input_repr, args.embedding_size, args.seed, args.random_mel_norm)
        common.log(f"wrote random-weight checkpoint {args.checkpoint} ({args.random_mel_norm} mel bank)")
    model, mel_norm = build(args)
    g = torch.Generator().manual_seed(args.seed)
    n_mels = N_MELS[args.input_repr]
    front = frontend_of(args)
    if front == "network":
        checks = [0.3 * torch.randn(args.check_batch, SAMPLE_RATE, generator=g)]
    else:
        checks = [torch.clamp(torch.randn(args.check_batch, 1, n_mels, FRAMES, generator=g) * 20.0 - 40.0, -80.0, 0.0)]
    hop = int(round(args.hop_seconds * SAMPLE_RATE))
    framing = ("centred (center=True: window k centred on k * hop)" if args.center
               else "not centred (center=False: window k starts at k * hop)")
    common.log(f"framing: 1 s windows every {args.hop_seconds:g} s, {framing}")
    config = common.model_config(
        description=(f"OpenL3 {args.input_repr} {args.content_type} {args.embedding_size}-d embedding per 1 s window "
                     f"({'centred' if args.center else 'not centred'}, {mel_norm} mel filters)"),
        input=input_config(args.input_repr, mel_norm, front), segment=segment_config(hop, args.center),
        outputs=[common.output("embedding", "EMBEDDING", args.embedding_size)], args=args)
    header = (f"Written by tools/export/export.py openl3 --input-repr {args.input_repr} --content-type "
              f"{args.content_type} --embedding-size {args.embedding_size} --frontend {front} "
              f"--mel-norm {args.mel_norm} --{'' if args.center else 'no-'}center.\n"
              f"checkpoint: {os.path.basename(args.checkpoint)}\n"
              f"Front-end ({'in the network' if front == 'network' else 'audiotag'}): kapre 0.1.4 (mel bank on the power STFT, sqrt, dB re per-window max, floor -80 dB).\n"
              f"Mel filters: {MEL_NORMS[mel_norm][1]}.\n"
              f"Framing: {framing}.")
    common.export_model_folder(args, eager=model, check_inputs=checks, config=config, header=header, tolerance=1e-3,
                               expected_dims={"": args.embedding_size})
