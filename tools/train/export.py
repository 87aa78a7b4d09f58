#!/usr/bin/python3
"""Export a trained student as an audiotag model folder, plus parity data.

    /usr/bin/python3 tools/train/export.py --model build-default-model/student.pt \
        --out models/openmic_student --parity tests/data/openmic_student_parity.json

Writes <out>/config.pbtxt, <out>/labels.txt, <out>/1/model.pt (TorchScript,
torch.jit.script). Classes without any positive training example (the
checkpoint's class_frames == 0; older checkpoints: music_labels.UNSUPPORTED)
get a zero weight row and a bias of -12 in the last layer, so their
probability is a constant ~6e-6: documented as unsupported, in the config
comment and description too.

--calibration calibration.json (calibrate.py) writes
`calibration { bias: [...] }` (and scale when the file has one) into the
`tags` and `activations` outputs: audiotag computes
sigmoid(scale[c] * logit[c] + bias[c]), so each class's chosen threshold
sits at 0.5. Unsupported classes get bias 0 there (their -12 is in the
network).

Parity data: a deterministic 2.75 s test waveform (formula in the JSON; also
written as 16-bit PCM WAV next to the JSON), its log-mel for segment 0, and
per-segment logits (the network's, before calibration), probabilities (as
served: sigmoid of the calibrated logits) and embeddings. Segments follow the config:
1 s windows, 0.5 s hop; full segments start at 0, 8000, 16000, 24000 samples;
the last partial segment (start 32000, 12000 real samples) is zero-padded in
the waveform before the front-end and is marked "padded".
"""
import argparse
import json
import os
import wave

import numpy as np
import torch

import frontend
import music_labels
from evaluate import load_model
from model import EMBED_DIM, N_CLASSES, n_params

CONFIG = """\
# audiotag default instrument recognition model: a compact CNN student
# (tools/train/model.py) trained only on synthesized music rendered with
# General MIDI soundfonts and our own synthesisers (tools/synth,
# tools/train/build_default_model.sh).
# Supported classes: {supported}.
# {unsupported_comment}
name: "{name}"
description: "Instrument recognition (20 OpenMIC-2018 classes{unsupported_desc}), {params} parameter CNN trained on synthesized music. 1 s segments, 0.5 s hop.{calibrated_desc}"
platform: "torchscript"
input {{
  sample_rate: {sr}
  log_mel {{
    n_fft: {n_fft}
    win_length: {win}
    hop_length: {hop}
    window: WINDOW_HANN_PERIODIC
    center: false
    pre_emphasis: 0
    remove_dc: false
    subtract_mean: false
    n_mels: {n_mels}
    f_min: {f_min:g}
    f_max: {f_max:g}
    mel_scale: MEL_HTK
    mel_norm: MEL_NORM_NONE
    power: 2
    log: LOG_NATURAL
    log_offset: {log_offset:g}
    log_floor: 0
    norm_mean: {norm_mean:g}
    norm_std: {norm_std:g}
  }}
  layout: LAYOUT_BCTF
}}
segment {{
  window_samples: {seg}
  hop_samples: {seg_hop}
  last_segment: LAST_SEGMENT_PAD
}}
output {{
  name: "tags"
  kind: TAGS
  source: "logits"
  activation: ACTIVATION_SIGMOID
  dim: {n_classes}{calibration}
}}
output {{
  name: "activations"
  kind: ACTIVATIONS
  source: "logits"
  activation: ACTIVATION_SIGMOID
  dim: {n_classes}{calibration}
}}
output {{
  name: "embedding"
  kind: EMBEDDING
  source: "embedding"
  dim: {embed}
}}
batching {{
  max_batch_size: 16
}}
"""

PARITY_SECONDS = 2.75


def parity_waveform(sr):
    """The parity test signal, quantised to int16 (what the WAV holds)."""
    n = np.arange(int(PARITY_SECONDS * sr), dtype=np.float64)
    t = n / sr
    x = (0.3 * np.sin(2 * np.pi * 440.0 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 2.0 * t))
         + 0.2 * np.sin(2 * np.pi * 110.0 * t)
         + 0.1 * np.sin(2 * np.pi * 3000.0 * t) * (t < 1.25))
    pcm = np.round(x * 32767).astype(np.int16)
    return pcm


PARITY_FORMULA = ("pcm[n] = round(32767 * x(t)), t = n / 16000, n = 0..43999, x(t) = "
                  "0.3*sin(2*pi*440*t)*(0.5 + 0.5*sin(2*pi*2*t)) + 0.2*sin(2*pi*110*t) "
                  "+ 0.1*sin(2*pi*3000*t)*(t < 1.25); waveform = pcm / 32768")


def unsupported_classes(ck):
    """Indices of classes without positive training examples (data-driven
    from the checkpoint's class_frames; fallback music_labels.UNSUPPORTED)."""
    if ck.get("class_frames") is not None:
        return [k for k, n in enumerate(ck["class_frames"]) if n <= 0]
    return [k for k, n in enumerate(music_labels.LABELS) if n in music_labels.UNSUPPORTED]


def read_calibration(path, unsupported):
    """calibration.json -> (scale, bias) as the float32 values the config
    holds (lists, each empty or N_CLASSES long); unsupported classes bias 0."""
    if not path:
        return [], []
    c = json.load(open(path))
    if c.get("labels", music_labels.LABELS) != music_labels.LABELS:
        raise SystemExit(f"{path}: labels differ from music_labels.LABELS")
    scale = [float(np.float32(v)) for v in (c.get("scale") or [])]
    bias = [float(np.float32(v)) for v in (c.get("bias") or [])]
    for name, v in (("scale", scale), ("bias", bias)):
        if v and len(v) != N_CLASSES:
            raise SystemExit(f"{path}: {name} has {len(v)} values, want {N_CLASSES}")
        if not np.all(np.isfinite(v)):
            raise SystemExit(f"{path}: {name} not finite")
    if scale and min(scale) <= 0:
        raise SystemExit(f"{path}: scale must be > 0")
    for k in unsupported:
        if bias:
            bias[k] = 0.0
        if scale:
            scale[k] = 1.0
    return scale, bias


def calibration_block(scale, bias):
    """The pbtxt text of an OutputConfig.calibration (empty when identity)."""
    if not scale and not bias:
        return ""
    fmt = lambda v: "[" + ", ".join(f"{x:.7g}" for x in v) + "]"  # noqa: E731
    lines = ["\n  calibration {"]
    if scale:
        lines.append(f"\n    scale: {fmt(scale)}")
    if bias:
        lines.append(f"\n    bias: {fmt(bias)}")
    lines.append("\n  }")
    return "".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--parity", required=True, help="parity JSON path (WAV written alongside)")
    ap.add_argument("--calibration", default="",
                    help="calibration.json (calibrate.py): written into the config")
    a = ap.parse_args()
    torch.set_num_threads(1)
    model, ck = load_model(a.model)
    unsupported = unsupported_classes(ck)
    with torch.no_grad():
        for k in unsupported:
            model.head.weight[k].zero_()
            model.head.bias[k] = -12.0
    scale, bias = read_calibration(a.calibration, unsupported)
    scripted = torch.jit.script(model)
    os.makedirs(os.path.join(a.out, "1"), exist_ok=True)
    path = os.path.join(a.out, "1", "model.pt")
    scripted.save(path)
    with open(os.path.join(a.out, "labels.txt"), "w") as f:
        f.write("\n".join(music_labels.LABELS) + "\n")
    params = n_params(model)
    names = music_labels.LABELS
    unsup = [names[k] for k in unsupported]
    with open(os.path.join(a.out, "config.pbtxt"), "w") as f:
        f.write(CONFIG.format(
            name=os.path.basename(os.path.normpath(a.out)),
            supported=", ".join(n for n in names if n not in unsup),
            unsupported_comment=(f"Unsupported (no training example; always score ~0): "
                                 f"{', '.join(unsup)}." if unsup else
                                 "Every class has training examples."),
            unsupported_desc=(f"; {' and '.join(unsup) if len(unsup) <= 2 else ', '.join(unsup)}"
                              f" unsupported, always ~0" if unsup else ""),
            calibrated_desc=(" Scores calibrated per class: 0.5 = present." if bias or scale
                             else ""),
            calibration=calibration_block(scale, bias),
            params=f"{params / 1e6:.2f} M", sr=frontend.SAMPLE_RATE, n_fft=frontend.N_FFT,
            win=frontend.WIN_LENGTH, hop=frontend.HOP_LENGTH, n_mels=frontend.N_MELS,
            f_min=frontend.F_MIN, f_max=frontend.F_MAX, log_offset=frontend.LOG_OFFSET,
            norm_mean=frontend.NORM_MEAN, norm_std=frontend.NORM_STD,
            seg=frontend.SEGMENT_SAMPLES, seg_hop=frontend.SEGMENT_HOP,
            n_classes=N_CLASSES, embed=EMBED_DIM))
    print(f"exported {path}: {params} parameters, {os.path.getsize(path) / 1e6:.2f} MB; "
          f"unsupported: {', '.join(unsup) or 'none'}; calibration: "
          f"{a.calibration or 'none'}")

    # ---- parity data, computed with the saved TorchScript module ----
    loaded = torch.jit.load(path)
    sr = frontend.SAMPLE_RATE
    pcm = parity_waveform(sr)
    wav = pcm.astype(np.float64) / 32768.0
    W, H = frontend.SEGMENT_SAMPLES, frontend.SEGMENT_HOP
    segs = []
    s = 0
    while True:
        chunk = wav[s:s + W]
        padded = len(chunk) < W
        if padded:
            chunk = np.concatenate([chunk, np.zeros(W - len(chunk))])
        segs.append((s, padded, chunk))
        if s + W >= len(wav):
            break
        s += H
    x = np.stack([c for _, _, c in segs])
    mel = frontend.logmel(torch.from_numpy(x))  # [S, 97, 64] float32
    with torch.no_grad():
        out = loaded(mel[:, None])
    logits = out["logits"].numpy().astype(np.float64)
    emb = out["embedding"].numpy().astype(np.float64)
    cal = logits * (np.asarray(scale) if scale else 1.0) + (np.asarray(bias) if bias else 0.0)
    probs = 1 / (1 + np.exp(-cal))
    os.makedirs(os.path.dirname(os.path.abspath(a.parity)), exist_ok=True)
    wav_path = os.path.splitext(a.parity)[0] + ".wav"
    with wave.open(wav_path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.astype("<i2").tobytes())

    def r(v):
        return [float(f"{z:.7g}") for z in np.asarray(v).ravel()]

    full = [i for i, (_, p, _) in enumerate(segs) if not p]
    parity = {
        "model": os.path.basename(os.path.normpath(a.out)),
        "model_file": os.path.relpath(path),
        "wav": os.path.basename(wav_path),
        "waveform": PARITY_FORMULA,
        "sample_rate": sr,
        "num_samples": int(len(pcm)),
        "labels": music_labels.LABELS,
        "calibration": {"scale": scale, "bias": bias, "file": a.calibration or None,
                        "applies_to": ["tags", "activations"]},
        "supported": [n for n in names if n not in unsup],
        "unsupported": unsup,
        "segments": [{
            "start_sample": int(s), "padded": bool(p),
            "logits": r(logits[i]), "probabilities": r(probs[i]), "embedding": r(emb[i]),
        } for i, (s, p, _) in enumerate(segs)],
        "pooled_mean_probabilities_full_segments": r(probs[full].mean(0)),
        "logmel_segment0_shape": list(mel[0].shape),
        "logmel_segment0": r(mel[0].numpy()),
        "tolerances": {"logmel_abs": 1e-3, "logits_abs": 1e-3, "probabilities_abs": 1e-4,
                       "embedding_abs": 1e-3},
        "notes": ("Front-end in float64 (tools/train/frontend.py), network in float32. "
                  "logmel is the network input [frames, mels] of segment 0 after "
                  "normalisation, row-major. The padded segment is zero-padded in the "
                  "waveform before the front-end. logits are the network's; probabilities "
                  "are as served: sigmoid(scale * logits + bias) with the config's "
                  "calibration (identity when empty)."),
    }
    with open(a.parity, "w") as f:
        json.dump(parity, f, indent=1)
    print(f"wrote {a.parity} and {wav_path} ({len(segs)} segments)")


if __name__ == "__main__":
    main()
