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
"""

import argparse
import os
import sys
import time

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


def tf_postprocess(emb: np.ndarray, ev: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """vggish_postprocess.Postprocessor: PCA, clip [-2, 2], uint8 (truncating)."""
    p = (ev @ (emb.T - mu.reshape(-1, 1))).T
    p = np.clip(p, -2.0, 2.0)
    return ((p + 2.0) * (255.0 / 4.0)).astype(np.uint8).astype(np.float64)


def test_vggish(wd: str, server_bin, report: H.Report) -> None:
    import vggish
    ckpt, pca = os.path.join(wd, "vggish-10086976.pth"), os.path.join(wd, "vggish_pca_params.npz")
    repo = os.path.join(wd, "models")
    H.export(["vggish", "--random-weights", "--checkpoint", ckpt, "--pca", pca, "--out",
              os.path.join(repo, "vggish"), "--max-batch-size", "4"])
    audio = os.path.join(wd, "test.flac")
    H.make_test_audio(audio, 5.3)

    wav = H.decode_mono(audio, 16000)
    ex = vggish_reference_examples(wav)
    net = vggish.VGGish(final_relu=False)
    net.load_state_dict(torch.load(ckpt), strict=True)
    net.eval()
    with torch.no_grad():
        emb = net(torch.from_numpy(ex).float().unsqueeze(1)).double().numpy()
    with np.load(pca) as z:
        q = tf_postprocess(emb, z["pca_eigen_vectors"].astype(np.float64), z["pca_means"].astype(np.float64))

    srv = H.Server(server_bin, repo, wd)
    try:
        srv.wait_ready(["vggish"])
        res = srv.analyze(audio, "vggish")
    finally:
        srv.stop()
    served = H.segment_embeddings(res, "embedding")
    starts = H.segment_starts(res, "embedding")
    report.require("vggish segment count", served.shape[0] == ex.shape[0],
                   f"served {served.shape[0]} 0.96 s patches, reference {ex.shape[0]}")
    report.require("vggish segment starts", np.allclose(starts, 0.96 * np.arange(len(starts)), atol=1e-6),
                   f"starts {starts}")
    report.check("vggish embedding (per patch)", served, emb, atol=1e-4, rtol=2e-4)
    report.check("vggish embedding (pooled mean)", H.pooled_embedding(res, "embedding"), emb.mean(0),
                 atol=1e-4, rtol=2e-4)
    sq = H.segment_embeddings(res, "embedding_pca")
    if sq.shape == q.shape:
        exact = float((sq == q).mean())
        report.check("vggish embedding_pca (8-bit levels)", sq, q, atol=1.0)
        report.require("vggish embedding_pca exact levels", exact >= 0.98, f"{100 * exact:.2f}% identical (>= 98%)")
        inner = float(((q > 0) & (q < 255)).mean())
        report.require("vggish embedding_pca not saturated", inner >= 0.5,
                       f"{100 * inner:.1f}% of reference levels strictly inside 0..255 (>= 50%)")
    else:
        report.require("vggish embedding_pca shape", False, f"{sq.shape} vs {q.shape}")


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


def test_panns(wd: str, server_bin, report: H.Report) -> None:
    import panns
    repo = os.path.join(wd, "models")
    cases = [("cnn14", "network", "panns_cnn14"), ("cnn14_16k", "audiotag", "panns_cnn14_16k")]
    for variant, frontend, name in cases:
        ckpt = os.path.join(wd, f"{variant}.pth")
        H.export(["panns", "--random-weights", "--checkpoint", ckpt, "--variant", variant, "--frontend", frontend,
                  "--hop-seconds", "10", "--out", os.path.join(repo, name), "--max-batch-size", "1"])
    audio = os.path.join(wd, "test.flac")
    H.make_test_audio(audio, 4.0)

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
        seg = np.zeros(10 * sr, dtype=np.float32)  # one 10 s window, zero-padded (PAD)
        seg[:wav.size] = wav
        net = panns.make_model(variant, waveform_input=False)
        net.load_state_dict(torch.load(os.path.join(wd, f"{variant}.pth"))["model"], strict=True)
        net.eval()
        with torch.no_grad():
            out = net.trunk(panns_reference_logmel(seg, v))
        probs = torch.sigmoid(out["logits"]).double().numpy()
        emb = out["embedding"].double().numpy()
        res = results[name]
        report.require(f"{name} segment count", res["num_segments"] == 1, f"served {res['num_segments']}, reference 1")
        report.check(f"{name} ({frontend} front-end) tags (527 sigmoid)", H.tag_scores(res, "tags", 527), probs[0],
                     atol=2e-4)
        inner = float(((probs[0] > 0.01) & (probs[0] < 0.99)).mean())
        report.require(f"{name} tags not saturated", inner >= 0.5,
                       f"{100 * inner:.1f}% of reference scores inside (0.01, 0.99) (>= 50%)")
        report.check(f"{name} ({frontend} front-end) embedding (2048)", H.segment_embeddings(res, "embedding"), emb,
                     atol=1e-3, rtol=1e-5)
        report.check(f"{name} ({frontend} front-end) embedding (pooled)", H.pooled_embedding(res, "embedding"),
                     emb.mean(0), atol=1e-3, rtol=1e-5)


# ------------------------------------------------------------------ OpenL3

def openl3_reference_logmel(windows: np.ndarray, n_mels: int) -> torch.Tensor:
    """kapre 0.1.4 Melspectrogram(n_dft=2048, n_hop=242, power_melgram=1,
    htk=True, norm=1, return_decibel_melgram=True, padding='same') on 1 s
    windows at 48 kHz, from torch/torchaudio: 982 zeros each side, periodic
    Hann STFT power, HTK mel bank with Slaney area norm on the power, sqrt,
    10*log10(max(x, 1e-10)), minus the per-window max, floor -80 dB."""
    x = torch.from_numpy(windows).double()
    x = torch.nn.functional.pad(x, (982, 982))
    spec = torch.stft(x, n_fft=2048, hop_length=242, window=torch.hann_window(2048, dtype=torch.float64),
                      center=False, return_complex=True).abs() ** 2  # (B, 1025, 199)
    fb = torchaudio.functional.melscale_fbanks(1025, 0.0, 24000.0, n_mels, 48000, norm="slaney", mel_scale="htk")
    mel = torch.sqrt(torch.matmul(fb.double().T, spec))
    db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
    db = db - db.amax(dim=(1, 2), keepdim=True)
    return torch.clamp(db, min=-80.0).unsqueeze(1).float()


def test_openl3(wd: str, server_bin, report: H.Report) -> None:
    import openl3
    repo = os.path.join(wd, "models")
    cases = [("mel128", 512, "openl3_mel128_music_512"), ("mel256", 6144, "openl3_mel256_env_6144")]
    for rep, size, name in cases:
        H.export(["openl3", "--random-weights", "--checkpoint", os.path.join(wd, f"{name}.pth"), "--input-repr", rep,
                  "--content-type", name.split("_")[2], "--embedding-size", str(size),
                  "--out", os.path.join(repo, name), "--max-batch-size", "4", "--frontend-check", "error",
                  "--frontend", "audiotag" if rep == "mel128" else "network"])
    audio = os.path.join(wd, "test.flac")
    H.make_test_audio(audio, 1.5)

    srv = H.Server(server_bin, repo, wd)
    try:
        srv.wait_ready([c[2] for c in cases])
        results = {c[2]: srv.analyze(audio, c[2]) for c in cases}
    finally:
        srv.stop()

    wav = H.decode_mono(audio, 48000)
    # openl3 center=False framing: windows at k * 4800, the last partial one zero-padded.
    starts = list(range(0, max(wav.size - 48000, 0) + 1, 4800))
    if starts[-1] + 48000 < wav.size:
        starts.append(starts[-1] + 4800)
    windows = np.zeros((len(starts), 48000), dtype=np.float32)
    for i, s in enumerate(starts):
        chunk = wav[s:s + 48000]
        windows[i, :chunk.size] = chunk
    for rep, size, name in cases:
        net = openl3.OpenL3(rep, size)
        net.load_state_dict(torch.load(os.path.join(wd, f"{name}.pth")), strict=True)
        net.eval()
        with torch.no_grad():
            emb = net(openl3_reference_logmel(windows, openl3.N_MELS[rep])).double().numpy()
        res = results[name]
        served = H.segment_embeddings(res, "embedding")
        got_starts = H.segment_starts(res, "embedding")
        report.require(f"{name} windows", served.shape[0] == len(starts) and
                       np.allclose(got_starts, np.array(starts) / 48000.0, atol=1e-6),
                       f"served starts {got_starts}, reference {[s / 48000 for s in starts]}")
        report.check(f"{name} embedding ({size}, per window)", served, emb, atol=1e-3, rtol=2e-5)
        report.check(f"{name} embedding (pooled mean)", H.pooled_embedding(res, "embedding"), emb.mean(0),
                     atol=1e-3, rtol=2e-5)


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
