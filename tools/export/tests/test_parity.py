#!/usr/bin/env python3
"""Parity of exported teachers served by the real audiotag-server.

  /usr/bin/python3 tools/export/tests/test_parity.py {vggish,panns,openl3} --build-dir BUILD [--keep]

For the family: write a random-weight checkpoint shaped like the published
one, export it with tools/export/export.py, serve the folder with the real
audiotag-server, analyse a deterministic FLAC (44.1 kHz stereo: sines, a
chirp, noise) with the real `audiotag` CLI, and compare every served output
with an independent Python computation of the reference pipeline: ffmpeg CLI
decode + channel mean, the reference front-end re-done with numpy/torchaudio
from the reference's parameters (no audiotag code), the eager network, the
reference framing. Exits non-zero on any failure; prints each output's max
error and its tolerance.

vggish exports TF's files and torchvggish's files, each of which the
exporter must recognise (no final ReLU + floor vs final ReLU + round), and
checks that contradicting files are refused. openl3 serves the area (trained)
and the L1 (torchopenl3 today) mel banks, centred (upstream's default) and
not, and checks every window's reported times against openl3's framing.
"""

import argparse
import os
import sys
import time
from typing import List

import numpy as np
import torch
import torchaudio

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import parity_harness as H  # noqa: E402

torch.set_num_threads(1)


# ------------------------------------------------------------------ VGGish

def vggish_reference_examples(wav: np.ndarray) -> np.ndarray:
    """vggish_input.waveform_to_examples re-done in float64 numpy, from
    vggish_params / mel_features: 25 ms periodic-Hann frames every 10 ms, no
    padding, |rfft(512)|, 64 HTK-mel bands 125-7500 Hz (DC row zeroed),
    ln(mel + 0.01), 96-frame examples hopping 96 frames, partial dropped."""
    x = wav.astype(np.float64)
    win, hop, nfft, sr = 400, 160, 512, 16000
    n_frames = 1 + (x.size - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(n_frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    spec = np.abs(np.fft.rfft(x[idx] * window, nfft))  # (T, 257)
    mel = lambda f: 1127.0 * np.log(1.0 + np.asarray(f) / 700.0)  # noqa: E731
    bins_mel = mel(np.linspace(0.0, sr / 2, nfft // 2 + 1))
    edges = np.linspace(mel(125.0), mel(7500.0), 64 + 2)
    w = np.empty((nfft // 2 + 1, 64))
    for i in range(64):
        lo, c, hi = edges[i:i + 3]
        w[:, i] = np.maximum(0.0, np.minimum((bins_mel - lo) / (c - lo), (hi - bins_mel) / (hi - c)))
    w[0, :] = 0.0
    logmel = np.log(spec @ w + 0.01)
    n_ex = 1 + (logmel.shape[0] - 96) // 96
    return np.stack([logmel[i * 96:(i + 1) * 96] for i in range(n_ex)])  # (N, 96, 64)


def postprocess(emb: np.ndarray, ev: np.ndarray, mu: np.ndarray, rounding: str) -> np.ndarray:
    """PCA, clip [-2, 2], 8-bit levels: TF's vggish_postprocess truncates
    (astype(uint8)), torchvggish's Postprocessor rounds (torch.round)."""
    p = (ev @ (emb.T - mu.reshape(-1, 1))).T
    p = np.clip(p, -2.0, 2.0)
    q = (p + 2.0) * (255.0 / 4.0)
    return (np.round(q) if rounding == "round" else q.astype(np.uint8)).astype(np.float64)


# (model name, checkpoint file, PCA file, style the exporter must pick from
# the files, final ReLU, rounding): TF's release files and torchvggish's.
VGGISH_CASES = [
    ("vggish_tf", "vggish_converted.pth", "vggish_pca_params.npz", "tf", False, "floor"),
    ("vggish_torch", "vggish-10086976.pth", "vggish_pca_params-970ea276.pth", "torchvggish", True, "round"),
]


def export_must_fail(args: List[str], wanted: str, report: H.Report, what: str) -> None:
    r = H.run_tool("export.py", args)
    text = r.stdout + r.stderr
    report.require(what, r.returncode != 0 and wanted in text,
                   f"exit {r.returncode}; output: {text.strip()[-400:]}")


def test_vggish(wd: str, server_bin, report: H.Report) -> None:
    import vggish
    repo = os.path.join(wd, "models")
    for name, ckpt, pca, style, _, _ in VGGISH_CASES:
        H.export(["vggish", "--random-weights", "--checkpoint", os.path.join(wd, ckpt), "--pca",
                  os.path.join(wd, pca), "--out", os.path.join(repo, name), "--max-batch-size", "4"])
        with open(os.path.join(repo, name, "config.pbtxt")) as f:
            text = f.read()
        report.require(f"{name} style from the files", f"VGGish style: {style} " in text,
                       f"config header should say 'VGGish style: {style}'")
    # torchvggish's weights with TF's PCA file: the files disagree, so the
    # exporter must ask for --style rather than guess.
    export_must_fail(["vggish", "--checkpoint", os.path.join(wd, "vggish-10086976.pth"), "--pca",
                      os.path.join(wd, "vggish_pca_params.npz"), "--out", os.path.join(wd, "unused", "vggish")],
                     "--style", report, "vggish contradicting files need --style")
    audio = os.path.join(wd, "test.flac")
    H.make_test_audio(audio, 5.3)

    srv = H.Server(server_bin, repo, wd)
    try:
        srv.wait_ready([c[0] for c in VGGISH_CASES])
        results = {c[0]: srv.analyze(audio, c[0]) for c in VGGISH_CASES}
    finally:
        srv.stop()

    wav = H.decode_mono(audio, 16000)
    ex = vggish_reference_examples(wav)
    for name, ckpt, pca, style, final_relu, rounding in VGGISH_CASES:
        net = vggish.VGGish(final_relu=final_relu)
        net.load_state_dict(torch.load(os.path.join(wd, ckpt)), strict=True)
        net.eval()
        with torch.no_grad():
            emb = net(torch.from_numpy(ex).float().unsqueeze(1)).double().numpy()
        ev, mu = vggish.load_pca(os.path.join(wd, pca))
        q = postprocess(emb, ev.numpy(), mu.numpy(), rounding)
        res = results[name]
        served = H.segment_embeddings(res, "embedding")
        starts = H.segment_starts(res, "embedding")
        report.require(f"{name} segment count", served.shape[0] == ex.shape[0],
                       f"served {served.shape[0]} 0.96 s patches, reference {ex.shape[0]}")
        report.require(f"{name} segment starts", np.allclose(starts, 0.96 * np.arange(len(starts)), atol=1e-6),
                       f"starts {starts}")
        report.check(f"{name} embedding (per patch)", served, emb, atol=1e-4, rtol=2e-4)
        report.check(f"{name} embedding (pooled mean)", H.pooled_embedding(res, "embedding"), emb.mean(0),
                     atol=1e-4, rtol=2e-4)
        if final_relu:
            report.require(f"{name} final ReLU", bool((served >= 0).all()) and bool((emb == 0).any()),
                           "torchvggish embeddings are >= 0 with some exact zeros")
        sq = H.segment_embeddings(res, "embedding_pca")
        if sq.shape == q.shape:
            exact = float((sq == q).mean())
            report.check(f"{name} embedding_pca (8-bit levels, {rounding})", sq, q, atol=1.0)
            report.require(f"{name} embedding_pca exact levels", exact >= 0.98,
                           f"{100 * exact:.2f}% identical (>= 98%)")
            inner = float(((q > 0) & (q < 255)).mean())
            report.require(f"{name} embedding_pca not saturated", inner >= 0.5,
                           f"{100 * inner:.1f}% of reference levels strictly inside 0..255 (>= 50%)")
        else:
            report.require(f"{name} embedding_pca shape", False, f"{sq.shape} vs {q.shape}")


# ------------------------------------------------------------------ PANNs

def panns_reference_logmel(seg: np.ndarray, v: dict) -> torch.Tensor:
    """torchlibrosa's Spectrogram + LogmelFilterBank (Cnn14 arguments) from
    torchaudio: centred reflect-padded periodic-Hann STFT power, librosa
    mel (Slaney scale and norm), 10*log10(max(x, 1e-10))."""
    ms = torchaudio.transforms.MelSpectrogram(
        sample_rate=v["sample_rate"], n_fft=v["n_fft"], win_length=v["n_fft"], hop_length=v["hop"],
        f_min=v["fmin"], f_max=v["fmax"], n_mels=v["n_mels"], window_fn=torch.hann_window, power=2.0,
        center=True, pad_mode="reflect", norm="slaney", mel_scale="slaney")
    m = ms(torch.from_numpy(seg).double().unsqueeze(0).float())  # (1, mels, T)
    return (10.0 * torch.log10(torch.clamp(m, min=1e-10))).transpose(1, 2).unsqueeze(1)  # (1, 1, T, mels)


# Cnn14 is fully convolutional in time, so the test serves 2 s windows
# (--window-seconds; the exporter's default is the published 10 s, checked by
# test_export_stack.py) over 3 s of audio: two windows, the second one
# zero-padded, pooled by their share of real audio, at a fifth of the cost.
PANNS_WINDOW_SECONDS = 2
PANNS_AUDIO_SECONDS = 3.0


def test_panns(wd: str, server_bin, report: H.Report) -> None:
    import panns
    repo = os.path.join(wd, "models")
    cases = [("cnn14", "network", "panns_cnn14"), ("cnn14_16k", "audiotag", "panns_cnn14_16k")]
    for variant, frontend, name in cases:
        ckpt = os.path.join(wd, f"{variant}.pth")
        H.export(["panns", "--random-weights", "--checkpoint", ckpt, "--variant", variant, "--frontend", frontend,
                  "--window-seconds", str(PANNS_WINDOW_SECONDS), "--out", os.path.join(repo, name),
                  "--max-batch-size", "2"])
    audio = os.path.join(wd, "test.flac")
    H.make_test_audio(audio, PANNS_AUDIO_SECONDS)

    srv = H.Server(server_bin, repo, wd)
    try:
        srv.wait_ready([c[2] for c in cases])
        results = {c[2]: srv.analyze(audio, c[2]) for c in cases}
    finally:
        srv.stop()

    for variant, frontend, name in cases:
        v = panns.VARIANTS[variant]
        sr = v["sample_rate"]
        wav = H.decode_mono(audio, sr)
        window = PANNS_WINDOW_SECONDS * sr  # windows hop by their length (PAD)
        n = -(-wav.size // window)
        valid = np.array([min(window, wav.size - i * window) for i in range(n)], dtype=np.float64)
        net = panns.make_model(variant, waveform_input=False)
        net.load_state_dict(torch.load(os.path.join(wd, f"{variant}.pth"))["model"], strict=True)
        net.eval()
        probs, emb = [], []
        for i in range(n):
            seg = np.zeros(window, dtype=np.float32)  # the last window zero-padded
            seg[:int(valid[i])] = wav[i * window:(i + 1) * window]
            with torch.no_grad():
                out = net.trunk(panns_reference_logmel(seg, v))
            probs.append(torch.sigmoid(out["logits"])[0].double().numpy())
            emb.append(out["embedding"][0].double().numpy())
        probs, emb = np.stack(probs), np.stack(emb)
        share = valid / window  # audiotag pools each window by its share of real audio
        res = results[name]
        report.require(f"{name} segment count", res["num_segments"] == n == 2,
                       f"served {res['num_segments']}, reference {n} (want 2)")
        report.check(f"{name} ({frontend} front-end) tags (527 sigmoid, pooled)", H.tag_scores(res, "tags", 527),
                     np.average(probs, axis=0, weights=share), atol=2e-4)
        inner = float(((probs > 0.01) & (probs < 0.99)).mean())
        report.require(f"{name} tags not saturated", inner >= 0.5,
                       f"{100 * inner:.1f}% of reference scores inside (0.01, 0.99) (>= 50%)")
        report.require(f"{name} tags depend on the window", float(np.abs(probs[0] - probs[1]).max()) > 1e-3,
                       f"max difference between the windows' reference scores "
                       f"{float(np.abs(probs[0] - probs[1]).max()):.3g} (> 1e-3)")
        report.check(f"{name} ({frontend} front-end) embedding (2048, per window)",
                     H.segment_embeddings(res, "embedding"), emb, atol=1e-3, rtol=1e-5)
        report.check(f"{name} ({frontend} front-end) embedding (pooled)", H.pooled_embedding(res, "embedding"),
                     np.average(emb, axis=0, weights=share), atol=1e-3, rtol=1e-5)


# ------------------------------------------------------------------ OpenL3

def openl3_reference_logmel(windows: np.ndarray, n_mels: int, mel_norm: str) -> torch.Tensor:
    """kapre 0.1.4 Melspectrogram(n_dft=2048, n_hop=242, power_melgram=1,
    htk=True, norm=1, return_decibel_melgram=True, padding='same') on 1 s
    windows at 48 kHz, from torch/torchaudio: 982 zeros each side, periodic
    Hann STFT power, HTK mel bank on the power, sqrt, 10*log10(max(x, 1e-10)),
    minus the per-window max, floor -80 dB. The bank's norm=1 as librosa < 0.7
    read it ("area": Slaney) or as librosa >= 0.8 does ("l1": each band's
    weights sum to 1)."""
    x = torch.from_numpy(windows).double()
    x = torch.nn.functional.pad(x, (982, 982))
    spec = torch.stft(x, n_fft=2048, hop_length=242, window=torch.hann_window(2048, dtype=torch.float64),
                      center=False, return_complex=True).abs() ** 2  # (B, 1025, 199)
    if mel_norm == "area":
        fb = torchaudio.functional.melscale_fbanks(1025, 0.0, 24000.0, n_mels, 48000, norm="slaney",
                                                   mel_scale="htk").double()
    else:
        fb = torchaudio.functional.melscale_fbanks(1025, 0.0, 24000.0, n_mels, 48000, norm=None,
                                                   mel_scale="htk").double()
        sums = fb.sum(0, keepdim=True)
        fb = fb / torch.where(sums > 0, sums, torch.ones_like(sums))
    mel = torch.sqrt(torch.matmul(fb.T, spec))
    db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
    db = db - db.amax(dim=(1, 2), keepdim=True)
    return torch.clamp(db, min=-80.0).unsqueeze(1).float()


def openl3_windows(wav: np.ndarray, center: bool, hop: int = 4800, window: int = 48000):
    """openl3's _preprocess_audio_batch framing: center=True prepends half a
    window of zeros; windows every hop, the last partial one zero-padded.
    Returns (windows, reported (start, end) seconds of the audio each covers)."""
    lead = window // 2 if center else 0
    x = np.concatenate([np.zeros(lead, dtype=np.float32), wav])
    n = 1 if x.size <= window else 1 + int(np.ceil((x.size - window) / hop))
    out = np.zeros((n, window), dtype=np.float32)
    times = []
    for i in range(n):
        chunk = x[i * hop:i * hop + window]
        out[i, :chunk.size] = chunk
        a = i * hop - lead
        times.append((max(a, 0) / 48000.0, min(a + window, wav.size) / 48000.0))
    return out, times


# (representation, size, model name, export flags, front-end, mel norm, centred,
# hop in samples). Every window costs the served, the reference and nothing
# else, so the two centred cases use a 0.35 s hop (4 windows of 1.5 s, two of
# them starting before the audio, the last one partial) instead of openl3's
# 0.1 s (11 windows); the uncentred case keeps the exporter's default hop.
OPENL3_CASES = [
    ("mel128", 512, "openl3_mel128_music_512", ["--hop-seconds", "0.35"], "audiotag", "area", True, 16800),
    # A checkpoint whose speclayer holds the L1 bank (torchopenl3 converted with
    # librosa >= 0.8), served with the bank it holds and center=False.
    ("mel128", 512, "openl3_mel128_l1_uncentred", ["--random-mel-norm", "l1", "--mel-norm", "checkpoint",
                                                   "--no-center"], "audiotag", "l1", False, 4800),
    ("mel256", 6144, "openl3_mel256_env_6144", ["--hop-seconds", "0.35"], "network", "area", True, 16800),
]


def test_openl3(wd: str, server_bin, report: H.Report) -> None:
    import openl3
    repo = os.path.join(wd, "models")
    for rep, size, name, flags, front, _, _, _ in OPENL3_CASES:
        H.export(["openl3", "--random-weights", "--checkpoint", os.path.join(wd, f"{name}.pth"), "--input-repr", rep,
                  "--content-type", "env" if "env" in name else "music", "--embedding-size", str(size),
                  "--out", os.path.join(repo, name), "--max-batch-size", "2", "--frontend-check", "error",
                  "--frontend", front, *flags])
    audio = os.path.join(wd, "test.flac")
    H.make_test_audio(audio, 1.5)

    srv = H.Server(server_bin, repo, wd)
    try:
        srv.wait_ready([c[2] for c in OPENL3_CASES])
        results = {c[2]: srv.analyze(audio, c[2]) for c in OPENL3_CASES}
    finally:
        srv.stop()

    wav = H.decode_mono(audio, 48000)
    for rep, size, name, _, _, mel_norm, center, hop in OPENL3_CASES:
        windows, times = openl3_windows(wav, center, hop)
        net = openl3.OpenL3(rep, size)
        net.load_state_dict(torch.load(os.path.join(wd, f"{name}.pth")), strict=True)
        net.eval()
        with torch.no_grad():
            emb = net(openl3_reference_logmel(windows, openl3.N_MELS[rep], mel_norm)).double().numpy()
        res = results[name]
        served = H.segment_embeddings(res, "embedding")
        got = [(float(s.get("start_seconds", 0.0)), float(s["end_seconds"]))
               for s in H.output(res, "embedding")["segments"]]
        report.require(f"{name} windows ({'centred' if center else 'not centred'})",
                       served.shape[0] == len(times) and np.allclose(got, times, atol=1e-6),
                       f"served {len(got)} windows {got}, reference {len(times)} {times}")
        report.check(f"{name} embedding ({size}, {mel_norm} mel filters, per window)", served, emb,
                     atol=1e-3, rtol=2e-5)
        report.check(f"{name} embedding (pooled mean)", H.pooled_embedding(res, "embedding"),
                     np.average(emb, axis=0, weights=[b - a for a, b in times]), atol=1e-3, rtol=2e-5)


TESTS = {"vggish": test_vggish, "panns": test_panns, "openl3": test_openl3}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("family", choices=sorted(TESTS))
    ap.add_argument("--build-dir", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    a = ap.parse_args()
    t0 = time.time()
    report = H.Report()
    try:
        binaries = H.find_binaries(a.build_dir)
        with H.Workdir(a.keep) as wd:
            TESTS[a.family](wd, binaries, report)
    except H.ParityFailure as e:
        print(f"FAIL: {e}", flush=True)
        report.finish()
        return 1
    rc = report.finish()
    print(f"{a.family} parity: {'PASS' if rc == 0 else 'FAIL'} in {time.time() - t0:.1f} s", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
