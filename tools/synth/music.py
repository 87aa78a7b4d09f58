"""Seeded generator of musical material for the OpenMIC-2018 instrument classes.

Everything here is pure Python + numpy and deterministic given a
numpy.random.Generator. A *clip* is a short piece (a few seconds) with one to
four *parts*; each part is one instrument class playing one role (melody,
chords, bass line, arpeggio, drum pattern, cymbal pattern, piano piece) in a
shared key, tempo and chord progression. Notes carry their class index, so
per-time labels follow directly from the notes.
"""
import numpy as np

# OpenMIC-2018 classes, index order (must match labels.txt).
LABELS = [
    "accordion", "banjo", "bass", "cello", "clarinet", "cymbals", "drums",
    "flute", "guitar", "mallet_percussion", "mandolin", "organ", "piano",
    "saxophone", "synthesizer", "trombone", "trumpet", "ukulele", "violin",
    "voice",
]
IDX = {name: i for i, name in enumerate(LABELS)}
# General MIDI has no mandolin or ukulele program: never generated from the
# soundfonts; only the synth source (physical.py) renders them (SYNTH_PROGRAMS).
UNSUPPORTED = ["mandolin", "ukulele"]

# class -> list of (GM program, weight, (low, high) MIDI pitch range), bank 0
# (General MIDI). Every GM program that is an instance of the class is listed
# (tools/synth/README.md, "Classes and General MIDI programs", gives the
# choices and what is left out and why). Programs held out for the few-shot
# evaluation (tools/train/fewshot_eval.py: 46, 79, 104, 106-109, 114) are
# never used here.
PROGRAMS = {
    "accordion": [(21, 3, (53, 84)), (23, 1, (53, 84))],
    "banjo": [(105, 1, (48, 81))],
    "bass": [(32, 3, (28, 55)), (33, 3, (28, 55)), (34, 2, (28, 55)), (35, 1, (28, 55)),
             (36, 1, (28, 55)), (37, 1, (28, 55)), (38, 1, (28, 55)), (39, 1, (28, 55))],
    # 43 contrabass (bowed) is labelled cello: OpenMIC-2018 has no double-bass
    # class and its "bass" is the bass guitar / pizzicato bass of popular
    # music; a bowed contrabass is acoustically closest to a low cello. Its
    # notes are kept inside the cello's range (C2-C4).
    "cello": [(42, 4, (36, 74)), (43, 1, (36, 60))],
    "clarinet": [(71, 1, (50, 89))],
    # 72 piccolo, 74 recorder, 75 pan flute, 77 shakuhachi (end-blown bamboo
    # flute) are flutes; 76 blown bottle, 78 whistle and 79 ocarina are not.
    "flute": [(73, 4, (60, 94)), (72, 1, (74, 102)), (74, 1, (65, 96)), (75, 1, (60, 91)),
              (77, 0.5, (55, 84))],
    "guitar": [(24, 3, (40, 81)), (25, 3, (40, 81)), (26, 1, (40, 81)), (27, 1, (40, 81)),
               (28, 1, (40, 76)), (29, 1, (40, 76)), (30, 1, (40, 76)), (31, 1, (40, 76))],
    # 14 tubular bells and 112 tinkle bell are bells, not mallet percussion
    # (AudioSet, from which OpenMIC's classes come, files them under "Bell");
    # 114 steel drums (steelpan) would fit but is held out for fewshot_eval.
    "mallet_percussion": [(8, 1, (60, 96)), (9, 1, (72, 103)), (10, 1, (60, 96)),
                          (11, 2, (53, 89)), (12, 2, (45, 84)), (13, 2, (65, 100))],
    "organ": [(16, 2, (36, 84)), (17, 2, (36, 84)), (18, 1, (36, 84)), (19, 2, (36, 84)),
              (20, 1, (36, 84))],
    "piano": [(0, 6, (28, 100)), (1, 3, (28, 100)), (2, 1, (28, 96)), (3, 1, (28, 96)),
              (4, 1, (28, 96)), (5, 1, (28, 96)), (6, 1, (36, 89)), (7, 1, (36, 89))],
    "saxophone": [(64, 1, (56, 87)), (65, 2, (49, 80)), (66, 2, (44, 75)), (67, 1, (36, 68))],
    # leads and pads 80-95 (85 "voice" lead and 91 "choir" pad are synthetic
    # timbres: synthesizer), synth strings 50/51 and synth brass 62/63 (weight
    # 0.5 each: analogue-synth string and brass patches, not the instruments).
    "synthesizer": [(p, 1, (36, 86)) for p in range(80, 96)]
                   + [(50, 0.5, (36, 86)), (51, 0.5, (36, 86)), (62, 0.5, (36, 84)),
                      (63, 0.5, (36, 84))],
    "trombone": [(57, 1, (40, 72))],
    "trumpet": [(56, 3, (55, 82)), (59, 1, (55, 82))],
    # 41 viola is labelled violin (OpenMIC has no viola class); 110 fiddle.
    "violin": [(40, 4, (55, 98)), (41, 1, (48, 86)), (110, 1, (55, 93))],
    # 85 voice lead stays synthesizer (above).
    "voice": [(52, 3, (48, 79)), (53, 2, (48, 79)), (54, 1, (48, 79))],
}
# String-section patches whose label follows the register (violin from G3 =
# MIDI 55 up, cello below): 48/49 string ensembles, 44 tremolo strings and
# 45 pizzicato strings (plucked: labels end at most PIZZ_DECAY s after the
# onset). (program, weight)
STRING_ENSEMBLE = [(48, 3), (49, 2), (44, 1), (45, 1)]
PIZZICATO = {45}
PIZZ_DECAY = 0.8

# Variation banks (GS-style bank select, CC0) present in the permitted fonts
# (FluidR3_GM and MuseScore_General; TimGM6mb has none). A preset is only
# used with a font that has it (fluidsynth would silently substitute bank 0,
# so build_dataset passes each font's preset list, read from the font's PHDR
# chunk). class -> list of (bank, program, weight, (low, high), label) with
# label None (the class), "register" (violin from G3 up, cello below) or a
# class name. MuseScore_General's "Expr." banks (17, 18, 21, ...) are left
# out: the same samples, silent unless CC2 (breath) is sent.
VARIATIONS = {
    "accordion": [(8, 21, 2, (53, 84), None)],                   # Italian accordion
    "bass": [(8, 38, 0.5, (28, 55), None), (8, 39, 0.5, (28, 55), None),  # synth bass 3/4
             (50, 45, 1, (28, 55), None)],                       # MuseScore basses pizzicato
    "cello": [(40, 44, 1, (36, 72), None), (40, 45, 1, (36, 69), None),  # MuseScore celli
              (40, 48, 1, (36, 72), None), (40, 49, 1, (36, 72), None),
              (50, 48, 0.3, (36, 60), None), (50, 49, 0.3, (36, 60), None)],  # basses, bowed
    "guitar": [(8, 25, 1, (40, 81), None), (8, 26, 1, (40, 81), None),  # 12-string, Hawaiian
               (8, 28, 1, (40, 76), None)],                      # funk
    "organ": [(8, 16, 1, (36, 84), None), (8, 17, 1, (36, 84), None),  # detuned organs
              (8, 19, 1, (36, 84), None)],                       # church organ 2
    "piano": [(8, 0, 2, (28, 100), None), (8, 4, 1, (28, 96), None),  # mellow grand, detuned EPs
              (8, 5, 1, (28, 96), None), (8, 6, 1, (36, 89), None)],  # coupled harpsichord
    "synthesizer": [(8, 50, 0.5, (36, 86), None), (8, 62, 0.5, (36, 84), None),
                    (8, 63, 0.5, (36, 84), None), (8, 80, 1, (36, 86), None),  # sine wave
                    (20, 81, 1, (36, 86), None)],                # MuseScore detuned saw
    "violin": [(8, 40, 1, (55, 98), None),                       # slow violin
               (20, 44, 0.5, (55, 96), None), (20, 45, 0.5, (55, 96), None),  # MuseScore violins
               (20, 48, 0.5, (55, 96), None), (20, 49, 0.5, (55, 96), None),
               (25, 44, 0.5, (55, 96), None), (25, 45, 0.5, (55, 96), None),  # violins 2
               (25, 48, 0.5, (55, 96), None), (25, 49, 0.5, (55, 96), None),
               (30, 44, 0.2, (48, 86), None), (30, 45, 0.2, (48, 86), None),  # violas
               (30, 48, 0.2, (48, 86), None), (30, 49, 0.2, (48, 86), None)],
    # FluidR3_GM's and MuseScore_General's "Mandolin" (bank 16, 25) and
    # "Ukulele" (bank 8, 24) are not used: they play the steel and nylon
    # guitar samples (waveform correlation 0.97-0.99 with programs 25 / 24 at
    # the same note), so as mandolin / ukulele they would teach guitar =
    # mandolin. Those classes come from our own synthesisers (physical.py).
}
# pizzicato presets in the variation banks (bank, program)
PIZZICATO_BANKS = {(20, 45), (25, 45), (30, 45), (40, 45), (50, 45)}


def program_options(cls, presets=None):
    """Instrument options of a class for a font.

    presets: set of (bank, program) the font has, or None (General MIDI bank
    0 only). Returns a list of (bank, program, weight, (low, high), label).
    """
    opts = [(0, prog, w, rng_, None) for prog, w, rng_ in PROGRAMS.get(cls, [])]
    if presets is not None:
        opts += [o for o in VARIATIONS.get(cls, []) if (o[0], o[1]) in presets]
    return opts


# roles each class can play (with weights)
ROLES = {
    "accordion": [("chords", 2), ("melody", 2)],
    "banjo": [("arpeggio", 3), ("melody", 1), ("chords", 1)],
    "bass": [("bass", 1)],
    "cello": [("melody", 3), ("bass", 1), ("arpeggio", 1)],
    "clarinet": [("melody", 1)],
    "flute": [("melody", 4), ("arpeggio", 1)],
    "guitar": [("chords", 3), ("arpeggio", 2), ("melody", 1)],
    "mallet_percussion": [("melody", 2), ("arpeggio", 2), ("chords", 1)],
    "organ": [("chords", 3), ("melody", 1)],
    "piano": [("piece", 4), ("chords", 2), ("arpeggio", 2), ("melody", 1)],
    "saxophone": [("melody", 1)],
    "synthesizer": [("melody", 2), ("chords", 2), ("arpeggio", 1)],
    "trombone": [("melody", 2), ("bass", 1)],
    "trumpet": [("melody", 1)],
    "violin": [("melody", 4), ("arpeggio", 1), ("chords", 1)],
    "voice": [("melody", 2), ("chords", 1)],
}
# sustained instruments hold longer notes; plucked/struck decay
SUSTAINED = {"accordion", "cello", "clarinet", "flute", "organ", "saxophone",
             "synthesizer", "trombone", "trumpet", "violin", "voice"}
DECAY = {"banjo": 1.2, "guitar": 2.0, "mallet_percussion": 1.5, "piano": 2.5,
         "bass": 2.0}

# class sampling weights (piano, drums and strings get extra weight: the
# default model must get them right)
CLASS_WEIGHTS = {name: 1.0 for name in LABELS}
CLASS_WEIGHTS.update({"piano": 2.0, "drums": 2.0, "violin": 1.6, "cello": 1.4,
                      "cymbals": 0.8, "mandolin": 0.0, "ukulele": 0.0})

# --- synthesiser-only classes (physical.py; CLASS_WEIGHTS 0, so never in soundfont clips)
# (program None, weight, (low, high) MIDI range). Mandolin: violin tuning
# G3 D4 A4 E5 up to the 17th fret of the E string (~ MIDI 88); ukulele:
# re-entrant GCEA (G4 C4 E4 A4) up to the 12th fret of the A string (MIDI 81).
SYNTH_PROGRAMS = {"mandolin": [(None, 1, (55, 88))], "ukulele": [(None, 1, (60, 81))]}
UKULELE_STRINGS = [67, 60, 64, 69]  # G4 C4 E4 A4, in strumming order
ROLES.update({"mandolin": [("tremolo", 2), ("melody", 1), ("arpeggio", 2), ("chords", 1)],
              "ukulele": [("chords", 3), ("arpeggio", 1)]})
DECAY.update({"mandolin": 1.0, "ukulele": 0.9})
# class weights of the synth source: the soundfont ones plus the two synth-only classes
SYNTH_CLASS_WEIGHTS = dict(CLASS_WEIGHTS, mandolin=1.0, ukulele=1.0)

DRUM_KITS = [(0, 4), (8, 2), (16, 2), (24, 1), (25, 1), (32, 2), (40, 1), (48, 1)]
# variation kits of FluidR3_GM and MuseScore_General (bank 128): standard 1-7,
# room 1-7, power 1-3, jazz 1-4, brush 1-2. (kit, weight)
DRUM_KIT_VARIATIONS = ([(k, 0.4) for k in range(1, 8)] + [(k, 0.25) for k in range(9, 16)]
                       + [(k, 0.4) for k in range(17, 20)] + [(k, 0.3) for k in range(33, 37)]
                       + [(41, 0.3), (42, 0.3)])


def drum_kit_options(presets=None):
    """Drum kits (program numbers in bank 128) with weights for a font.

    presets: set of (bank, program) the font has, or None (the GM/GS kits of
    DRUM_KITS only). Returns (kits, weights)."""
    opts = list(DRUM_KITS)
    if presets is not None:
        opts += [(k, w) for k, w in DRUM_KIT_VARIATIONS if (128, k) in presets]
    return [k for k, _ in opts], [w for _, w in opts]
KICKS, SNARES = [35, 36], [38, 40, 37, 39]
HATS = {"closed": 42, "pedal": 44, "open": 46}
TOMS = [41, 43, 45, 47, 48, 50]
CYMBALS = [49, 51, 52, 55, 57, 59]  # crash 1, ride 1, china, splash, crash 2, ride 2
OTHER_PERC = [54, 56, 69, 70, 75]  # tambourine, cowbell, cabasa, maracas, claves

SCALES = {"major": [0, 2, 4, 5, 7, 9, 11], "minor": [0, 2, 3, 5, 7, 8, 10],
          "dorian": [0, 2, 3, 5, 7, 9, 10], "mixolydian": [0, 2, 4, 5, 7, 9, 10]}
PROGRESSIONS = [[0, 4, 5, 3], [0, 3, 4, 0], [0, 5, 3, 4], [5, 3, 0, 4], [0, 3, 0, 4],
                [1, 4, 0, 0], [0, 6, 5, 4], [0, 0, 3, 4], [0, 4, 3, 4], [3, 4, 0, 5]]


def choose(rng, items, weights=None):
    if weights is None:
        return items[int(rng.integers(len(items)))]
    w = np.asarray(weights, dtype=float)
    return items[int(rng.choice(len(items), p=w / w.sum()))]


class Note:
    __slots__ = ("on", "off", "pitch", "vel", "label", "sound_end")

    def __init__(self, on, off, pitch, vel, label, sound_end):
        self.on, self.off, self.pitch, self.vel = on, off, pitch, vel
        self.label, self.sound_end = label, sound_end


class Part:
    """One instrument playing one role on one MIDI channel."""

    def __init__(self, cls, program, drum, role, volume, detune, bank=0):
        self.cls, self.program, self.drum, self.role = cls, program, drum, role
        self.volume, self.detune, self.bank = volume, detune, bank
        self.notes = []
        # performance controllers (add_performance): list of (t seconds, kind,
        # args...) with kind "cc" (controller, value), "bend" (value in
        # [-8192, 8191]) or "nrpn" (SF2 generator, offset in NRPN units), and
        # a dict of what was applied (for the data set's meta)
        self.controls = []
        self.perf = {}


class Context:
    """Shared musical context of a clip."""

    def __init__(self, rng, duration):
        self.duration = duration
        self.bpm = float(rng.uniform(60, 180))
        self.beat = 60.0 / self.bpm
        self.beats_per_bar = choose(rng, [4, 3, 4, 2], [6, 2, 6, 1])
        self.swing = float(rng.uniform(0.0, 0.25)) if rng.random() < 0.25 else 0.0
        self.root = int(rng.integers(12))
        self.scale = SCALES[choose(rng, list(SCALES), [4, 3, 1, 1])]
        prog = choose(rng, PROGRESSIONS)
        self.chord_beats = choose(rng, [self.beats_per_bar, 2 * self.beats_per_bar, 2],
                                  [5, 2, 1])
        n_chords = int(np.ceil(duration / (self.chord_beats * self.beat))) + 1
        self.chords = [prog[i % len(prog)] for i in range(n_chords)]
        self.jitter = float(rng.uniform(0.0, 0.012))
        self.full_span = False

    def t(self, beat_pos):
        """Beat position -> seconds, with swing on off-beat eighths."""
        whole = np.floor(beat_pos)
        frac = beat_pos - whole
        if self.swing and abs(frac - 0.5) < 1e-6:
            frac += self.swing * 0.5
        return (whole + frac) * self.beat

    def degree_pitch(self, degree):
        """Scale degree (any integer) -> pitch class offset + octave."""
        octave, d = divmod(degree, 7)
        return self.root + self.scale[d] + 12 * octave

    def chord_at(self, beat_pos):
        return self.chords[min(int(beat_pos // self.chord_beats), len(self.chords) - 1)]

    def chord_pitches(self, degree, low, high, n=3, seventh=False):
        """Chord tones (triad on scale degree) voiced inside [low, high]."""
        tones = [self.degree_pitch(degree + k) % 12 for k in ((0, 2, 4, 6) if seventh else (0, 2, 4))]
        center = (low + high) // 2 - 4
        out = []
        for i in range(n):
            pc = tones[i % len(tones)]
            p = center + ((pc - center) % 12) + 12 * (i // len(tones))
            while p > high:
                p -= 12
            while p < low:
                p += 12
            out.append(p)
        return sorted(set(out))


def scale_pitches(ctx, low, high):
    pcs = {(ctx.root + s) % 12 for s in ctx.scale}
    return [p for p in range(low, high + 1) if p % 12 in pcs]


def _sound_end(cls, on, off, rng):
    if cls in DECAY:
        return min(off, on + DECAY[cls]) + 0.1
    return off + 0.08


def _add(part, ctx, rng, on, off, pitch, vel, label=None):
    on = max(0.0, on + rng.normal(0, ctx.jitter))
    off = min(off, ctx.duration)
    if on >= ctx.duration - 0.05 or off <= on + 0.02:
        return
    cls = part.cls if label is None else label
    part.notes.append(Note(on, off, int(pitch), int(np.clip(vel, 1, 127)),
                           IDX[cls], _sound_end(cls, on, off, rng)))


def _span(rng, ctx):
    """Active time span of a part, in beats: whole clip or a sub-range."""
    total = ctx.duration / ctx.beat
    if rng.random() < 0.55 or ctx.full_span:
        return 0.0, total
    min_len = min(total, 2.0 / ctx.beat)
    length = float(rng.uniform(min_len, total))
    start = float(rng.uniform(0, total - length))
    start = np.floor(start)  # start on a beat
    return start, min(total, start + length)


def _dynamics(rng):
    base = float(rng.uniform(45, 118))
    slope = float(rng.uniform(-25, 25)) if rng.random() < 0.4 else 0.0
    return base, slope


def gen_melody(part, ctx, rng, low, high, span):
    pitches = scale_pitches(ctx, low, high)
    sustained = part.cls in SUSTAINED
    durs = [0.25, 0.5, 1.0, 1.5, 2.0, 3.0]
    w = [1, 4, 4, 1, 2, 1] if sustained else [3, 5, 3, 1, 1, 0.3]
    if rng.random() < 0.3:  # busy passage
        w = [5, 5, 1, 0.5, 0.2, 0]
    legato = float(rng.uniform(0.35, 0.6)) if rng.random() < 0.25 else float(rng.uniform(0.8, 1.0))
    base, slope = _dynamics(rng)
    # start near a comfortable center of the range
    lo_i, hi_i = int(len(pitches) * 0.2), max(int(len(pitches) * 0.8), int(len(pitches) * 0.2) + 1)
    idx = int(rng.integers(lo_i, hi_i))
    pos, (start, end) = span[0], span
    total = ctx.duration / ctx.beat
    while pos < end:
        d = choose(rng, durs, w)
        if rng.random() < 0.1:
            pos += d
            continue
        step = choose(rng, [-3, -2, -1, 0, 1, 2, 3, 4, -4, 7, -7], [1, 3, 5, 1, 5, 3, 1, 0.5, 0.5, 0.3, 0.3])
        idx = int(np.clip(idx + step, 0, len(pitches) - 1))
        vel = base + slope * (pos - start) / max(total, 1) + rng.normal(0, 6)
        on, off = ctx.t(pos), ctx.t(pos + d * legato)
        _add(part, ctx, rng, on, off, pitches[idx], vel)
        if part.cls == "violin" and rng.random() < 0.05:  # occasional double stop
            _add(part, ctx, rng, on, off, pitches[max(idx - 2, 0)], vel - 5)
        pos += d


def gen_chords(part, ctx, rng, low, high, span):
    pattern = choose(rng, ["hold", "beats", "eighths", "offbeat", "strum"],
                     [3, 2, 1, 1, 2 if part.cls in ("guitar", "banjo", "mandolin", "ukulele") else 0.3])
    n = int(rng.integers(3, 5))
    seventh = rng.random() < 0.3
    base, slope = _dynamics(rng)
    legato = float(rng.uniform(0.5, 1.0))
    start, end = span
    pos = start
    clow = max(low, (low + high) // 2 - 14)
    chigh = min(high, (low + high) // 2 + 12)
    while pos < end:
        chord = ctx.chord_at(pos)
        notes = ctx.chord_pitches(chord, clow, chigh, n=n, seventh=seventh)
        if part.cls == "ukulele":
            notes = ukulele_voicing(ctx, chord, seventh)
        if pattern == "hold":
            step, hits = ctx.chord_beats, [0.0]
        elif pattern == "beats":
            step, hits = 1.0, [0.0]
        elif pattern == "eighths":
            step, hits = 0.5, [0.0]
        elif pattern == "offbeat":
            step, hits = 1.0, [0.5]
        else:
            step, hits = 1.0, [0.0, 0.5] if rng.random() < 0.5 else [0.0]
        for h in hits:
            vel = base + slope * pos / max(end, 1) + rng.normal(0, 5)
            on = ctx.t(pos + h)
            off = ctx.t(pos + h + step * legato / len(hits))
            spread = 0.015 if pattern == "strum" else 0.0
            order = notes if rng.random() < 0.6 else notes[::-1]
            for k, p in enumerate(order):
                _add(part, ctx, rng, on + k * spread, off, p, vel - 3 * k)
        pos += step


def ukulele_voicing(ctx, degree, seventh=False):
    """Re-entrant ukulele chord: on each string G4 C4 E4 A4 the lowest fret (0-7)
    giving a chord tone; returned in string (strumming) order, not pitch order."""
    tones = {ctx.degree_pitch(degree + k) % 12 for k in ((0, 2, 4, 6) if seventh else (0, 2, 4))}
    return [next(s + f for f in range(12) if (s + f) % 12 in tones) for s in UKULELE_STRINGS]


def gen_tremolo(part, ctx, rng, low, high, span):
    """Mandolin melody with tremolo picking: notes longer than 0.25 s become
    rapid repeated plucks (alternate down/up strokes, 8-16 per second)."""
    gen_melody(part, ctx, rng, low, high, span)
    rate = float(rng.uniform(8.0, 16.0))
    out = []
    for n in part.notes:
        if n.off - n.on < 0.25:
            out.append(n)
            continue
        k, t = 0, n.on
        while t < n.off - 0.03:
            off = min(n.off, t + 1.0 / rate)
            vel = int(np.clip(n.vel - (8 if k % 2 else 0) + rng.normal(0, 4), 1, 127))
            out.append(Note(t, off, n.pitch, vel, n.label, _sound_end(part.cls, t, off, rng)))
            t += (1.0 / rate) * float(rng.uniform(0.9, 1.1))
            k += 1
    part.notes = out


def gen_arpeggio(part, ctx, rng, low, high, span):
    step = choose(rng, [0.25, 0.5, 1.0 / 3.0], [2, 3, 1])
    shape = choose(rng, ["up", "down", "updown", "random"])
    base, slope = _dynamics(rng)
    legato = float(rng.uniform(0.6, 1.3))
    start, end = span
    pos, k = start, 0
    clow = max(low, (low + high) // 2 - 12)
    while pos < end:
        chord = ctx.chord_at(pos)
        tones = ctx.chord_pitches(chord, clow, min(high, clow + 24), n=6)
        if part.cls == "ukulele":  # re-entrant (campanella) patterns over G4 C4 E4 A4
            tones = ukulele_voicing(ctx, chord)
        if shape == "up":
            p = tones[k % len(tones)]
        elif shape == "down":
            p = tones[::-1][k % len(tones)]
        elif shape == "updown":
            cyc = tones + tones[-2:0:-1]
            p = cyc[k % len(cyc)]
        else:
            p = choose(rng, tones)
        vel = base + slope * pos / max(end, 1) + rng.normal(0, 6) + (6 if k % 4 == 0 else 0)
        _add(part, ctx, rng, ctx.t(pos), ctx.t(pos + step * legato), p, vel)
        pos += step
        k += 1


def gen_bass(part, ctx, rng, low, high, span):
    pattern = choose(rng, ["roots", "root5", "walking", "eighths", "half"])
    base, slope = _dynamics(rng)
    legato = float(rng.uniform(0.5, 0.95))
    start, end = span
    pos = start
    blow, bhigh = low, min(high, low + 19)
    while pos < end:
        chord = ctx.chord_at(pos)
        root = ctx.chord_pitches(chord, blow, bhigh, n=1)[0]
        beat_in_chord = (pos % ctx.chord_beats)
        if pattern == "roots":
            step, p = 1.0, root
        elif pattern == "half":
            step, p = 2.0, root
        elif pattern == "eighths":
            step, p = 0.5, root + (12 if (rng.random() < 0.2 and root + 12 <= high) else 0)
        elif pattern == "root5":
            step = 1.0
            p = root if int(beat_in_chord) % 2 == 0 else root + 7
        else:
            step = 1.0
            p = root + choose(rng, [0, 2, 4, 5, 7, -1, -3]) if beat_in_chord else root
        p = int(np.clip(p, low, high))
        vel = base + slope * pos / max(end, 1) + rng.normal(0, 5)
        _add(part, ctx, rng, ctx.t(pos), ctx.t(pos + step * legato), p, vel)
        pos += step


def gen_piece(part, ctx, rng, low, high, span):
    """Piano piece: left hand (bass + chords or arpeggio) + right-hand melody."""
    left = choose(rng, ["alberti", "chords", "bass"])
    lo, hi = max(low, 36), min(high, 96)
    if left == "alberti":
        gen_arpeggio(part, ctx, rng, lo, lo + 20, span)
    elif left == "chords":
        gen_chords(part, ctx, rng, lo + 6, lo + 28, span)
    else:
        gen_bass(part, ctx, rng, lo, lo + 18, span)
    gen_melody(part, ctx, rng, 60, hi, span)


def gen_drums(part, ctx, rng, span, with_cymbals):
    style = choose(rng, ["rock", "disco", "halftime", "shuffle", "break", "jazz", "latin"],
                   [4, 2, 1, 1, 2, 1, 1])
    hat = choose(rng, ["closed", "closed", "open", "pedal"])
    base = float(rng.uniform(70, 120))
    sub = 4  # 16th steps per beat
    start, end = span
    pos_steps = int(np.ceil(start * sub))
    end_steps = int(end * sub)
    bar_steps = ctx.beats_per_bar * sub
    ride = with_cymbals and rng.random() < 0.5
    extra_perc = rng.random() < 0.2
    perc_note = choose(rng, OTHER_PERC)
    fill_bar = int(rng.integers(2, 5))
    for s in range(pos_steps, end_steps):
        b = s % bar_steps
        beat_i, st = divmod(b, sub)
        bar = s // bar_steps
        pos = s / sub
        hits = []
        in_fill = (bar % fill_bar == fill_bar - 1) and beat_i == ctx.beats_per_bar - 1
        if in_fill and rng.random() < 0.7:
            hits.append((choose(rng, TOMS + SNARES[:1]), 0.9, "drums"))
        else:
            if style in ("rock", "halftime", "break", "latin"):
                if (st == 0 and beat_i % 2 == 0) or (style == "break" and b in (10, 7)):
                    hits.append((choose(rng, KICKS) if rng.random() < 0.1 else 36, 1.0, "drums"))
                snare_beats = (2,) if style == "halftime" else (1, 3)
                if st == 0 and beat_i in snare_beats:
                    hits.append((38, 0.95, "drums"))
            elif style == "disco":
                if st == 0:
                    hits.append((36, 1.0, "drums"))
                if st == 0 and beat_i % 2 == 1:
                    hits.append((choose(rng, [38, 39]), 0.9, "drums"))
            elif style == "shuffle":
                if st == 0 and beat_i % 2 == 0:
                    hits.append((36, 1.0, "drums"))
                if st == 0 and beat_i % 2 == 1:
                    hits.append((38, 0.9, "drums"))
            elif style == "jazz":
                if st == 0 and rng.random() < 0.25:
                    hits.append((36, 0.6, "drums"))
                if st == 2 and rng.random() < 0.2:
                    hits.append((38, 0.5, "drums"))
                if st == 0 and beat_i % 2 == 1:
                    hits.append((44, 0.6, "drums"))
            if style == "jazz" and with_cymbals:
                if st == 0 or (st == 3 and beat_i % 2 == 1):
                    hits.append((51, 0.7, "cymbals"))
            elif ride:
                if st % 2 == 0:
                    hits.append((choose(rng, [51, 59]) if st == 0 else 51, 0.7, "cymbals"))
            else:
                hat_step = 2 if style != "break" else 1
                if style == "shuffle":
                    if st in (0, 3):
                        hits.append((HATS[hat], 0.7, "drums"))
                elif style != "jazz" and st % hat_step == 0:
                    hits.append((HATS[hat] if st else HATS["closed"], 0.75 if st else 0.85, "drums"))
            if with_cymbals and b == 0 and (bar == 0 or rng.random() < 0.4):
                hits.append((choose(rng, [49, 57, 55, 52], [4, 2, 1, 1]), 0.9, "cymbals"))
            if extra_perc and st % 2 == 0:
                hits.append((perc_note, 0.6, "drums"))
        if style == "latin" and st in (0, 3) and rng.random() < 0.5:
            hits.append((choose(rng, [62, 63, 64, 60, 61]), 0.7, "drums"))
        for note, accent, label in hits:
            vel = base * accent + rng.normal(0, 7)
            on = ctx.t(pos)
            ring = 1.0 if label == "cymbals" else 0.3
            part.notes.append(Note(max(0.0, on + rng.normal(0, ctx.jitter)), on + 0.1, note,
                                   int(np.clip(vel, 1, 127)), IDX[label],
                                   min(on + ring, ctx.duration)))
    part.notes = [n for n in part.notes if n.on < ctx.duration - 0.05]


def gen_cymbals_only(part, ctx, rng, span):
    """Cymbals without the rest of the kit: ride patterns, crashes, swells."""
    style = choose(rng, ["ride", "crashes", "roll"])
    base = float(rng.uniform(60, 115))
    start, end = span
    pos = start
    while pos < end:
        if style == "ride":
            note, step = choose(rng, [51, 59, 51]), choose(rng, [0.5, 1.0])
        elif style == "crashes":
            note, step = choose(rng, [49, 57, 55, 52]), choose(rng, [1.0, 2.0, 4.0])
        else:
            note, step = choose(rng, [49, 51, 57]), 0.125
        vel = base + rng.normal(0, 8)
        if style == "roll":
            vel = base * (0.4 + 0.6 * ((pos - start) % 4) / 4)
        on = ctx.t(pos)
        part.notes.append(Note(on, on + 0.1, note, int(np.clip(vel, 1, 127)), IDX["cymbals"],
                               min(on + 1.2, ctx.duration)))
        pos += step


def make_part(cls, ctx, rng, role=None, presets=None, performance=True):
    """One part of class cls: program (and bank), role, notes, controllers.

    presets: the font's set of (bank, program) (variation banks are used
    only when present), or None for General MIDI bank 0 only.
    performance: add per-note/per-part controller variation (add_performance).
    """
    if cls in ("drums", "cymbals"):
        part = Part(cls, None, True, "drums", int(rng.integers(85, 128)), 0)
        span = _span(rng, ctx)
        if cls == "drums":
            gen_drums(part, ctx, rng, span, with_cymbals=rng.random() < 0.45)
        else:
            gen_cymbals_only(part, ctx, rng, span)
        if performance:
            add_performance(part, ctx, rng)
        return part
    string_ens = cls in ("violin", "cello") and rng.random() < 0.12
    if string_ens:
        bank, label_rule = 0, "register"
        program = choose(rng, [p for p, _ in STRING_ENSEMBLE], [w for _, w in STRING_ENSEMBLE])
        low, high = 36, 96
    else:
        opts = program_options(cls, presets) or [(0, p, w, r, None)
                                                  for p, w, r in SYNTH_PROGRAMS.get(cls, [])]
        bank, program, _, (low, high), label_rule = choose(rng, opts, [o[2] for o in opts])
    if role is None:
        roles = ROLES[cls]
        role = choose(rng, [r for r, _ in roles], [w for _, w in roles])
    # volume and detune drawn as before add_performance existed (same notes
    # for performance=False); add_performance redraws both
    part = Part(cls, program, False, role, int(rng.integers(85, 128)),
                int(rng.normal(0, 150)) if rng.random() < 0.3 else 0, bank=bank)
    span = _span(rng, ctx)
    if string_ens:
        # register decides the label: violin part high, cello part low
        if cls == "violin":
            low, high = 55, 96
        else:
            low, high = 36, 62
    {"melody": gen_melody, "chords": gen_chords, "arpeggio": gen_arpeggio,
     "bass": gen_bass, "piece": gen_piece, "tremolo": gen_tremolo}[role](part, ctx, rng, low, high, span)
    if string_ens or label_rule == "register":
        for n in part.notes:
            n.label = IDX["violin"] if n.pitch >= 55 else IDX["cello"]
    elif label_rule is not None:
        for n in part.notes:
            n.label = IDX[label_rule]
    if (bank == 0 and program in PIZZICATO) or (bank, program) in PIZZICATO_BANKS:
        # plucked strings: the sound decays whatever the note length
        for n in part.notes:
            n.sound_end = min(n.sound_end, n.on + PIZZ_DECAY)
        part.perf["pizzicato"] = True
    if performance:
        add_performance(part, ctx, rng)
    return part


def make_clip(rng, duration, n_parts=None, force_class=None, full_span=False,
              presets=None, performance=True, source="soundfont", classes=None):
    """A clip: context + 1..4 parts of distinct classes.

    presets / performance: see make_part. source "synth" samples with
    SYNTH_CLASS_WEIGHTS (mandolin, ukulele possible, SYNTH_PROGRAMS ranges);
    classes, if given, restricts the choice (the synthesisers' supported set)."""
    ctx = Context(rng, duration)
    ctx.full_span = full_span
    if n_parts is None:
        n_parts = int(choose(rng, [1, 2, 3, 4], [3, 3, 2.5, 1.5]))
    weights = SYNTH_CLASS_WEIGHTS if source == "synth" else CLASS_WEIGHTS
    names = [n for n in LABELS if weights[n] > 0 and (classes is None or n in classes)
             and (n in ("drums", "cymbals") or program_options(n, presets)
                  or (source == "synth" and n in SYNTH_PROGRAMS))]
    w = np.array([weights[n] for n in names])
    chosen = [force_class] if force_class else []
    while len(chosen) < n_parts:
        c = choose(rng, names, w)
        if c in chosen or (c in ("drums", "cymbals") and ("drums" in chosen or "cymbals" in chosen)):
            continue
        chosen.append(c)
    parts = [make_part(c, ctx, rng, presets=presets, performance=performance) for c in chosen]
    parts = [p for p in parts if p.notes]
    return ctx, parts


# --- performance: per-note and per-part controller variation ---------------
#
# What fluidsynth honours with SoundFont 2 default modulators (SF2.04 spec,
# 8.4): note-on velocity -> attenuation and filter cutoff (and the fonts'
# velocity layers), CC1 -> vibrato LFO pitch depth (50 cents at 127), CC7 and
# CC11 -> attenuation, CC91 / CC93 -> reverb / chorus send (heard only when
# the render turns fluidsynth's reverb / chorus engine on), pitch wheel ->
# pitch (range 2 semitones). fluidsynth has no default modulator for CC74
# (brightness) or CC71 (resonance), and none of the three fonts defines one
# (their PMOD/IMOD chunks only use velocity, key number, CC1, CC2, CC10,
# CC91, CC93), so filter cutoff and resonance are set
# through SoundFont 2.01 NRPNs (NRPN MSB 120, LSB = generator number), which
# fluidsynth applies as offsets to a channel's generators, also to sounding
# voices: generator 8 initialFilterFc (2 cents per unit) and 9 initialFilterQ
# (1 centibel per unit).
GEN_FILTER_FC, GEN_FILTER_Q = 8, 9
CONTROL_STEP = 0.04  # seconds between controller updates of ramps and sweeps
BEND_PER_CENT = 8192 / 200.0  # pitch-wheel units per cent (range +-2 semitones)


def _ramp(t0, t1, v0, v1, step=CONTROL_STEP):
    """Times and linearly interpolated values from (t0, v0) to (t1, v1)."""
    n = max(int((t1 - t0) / step), 1)
    ts = t0 + (t1 - t0) * np.arange(n + 1) / n
    return ts, v0 + (v1 - v0) * np.arange(n + 1) / n


def add_performance(part, ctx, rng):
    """Seeded per-note and per-part variation through MIDI controllers.

    Applied to part.notes (velocities) and appended to part.controls; what was
    applied goes into part.perf. Probabilities (per part):
      velocity curve (always): v' = 127 (v/127)^gamma, gamma 0.7-1.4, plus
        per-note noise with sd 2-14, clipped to 36-127 (no inaudible notes);
      brightness (0.5): filter-cutoff offset -2400..+1200 cents (NRPN gen 8);
        a third of them sweep linearly to a second value over the clip;
      resonance (0.3 of those with brightness): filter Q offset 0-9 dB;
      reverb / chorus send (0.5 each): CC91 / CC93 10-100;
      melodic parts only:
      detune (0.4): pitch bend of N(0, 8) cents for the whole part;
      modulation (0.35 sustained, 0.1 other classes): CC1 ramps from 0 to
        30-110 over each note longer than 0.6 s (delayed vibrato);
      expression (0.4 sustained, 0.1 other): CC11 swells over notes longer
        than 0.5 s (64-100 -> 127 -> 80-120), else phrase-level ramps (72-127);
      slides (0.15 sustained / guitar / bass, melody and bass roles: the
        bend moves the whole channel): 25 % of the notes start
        50-175 cents flat or sharp and bend to pitch in 40-150 ms;
      bend vibrato (0.1 sustained): 4.5-6.5 Hz, 10-35 cents, on notes
        longer than 0.5 s, after 0.2 s.
      volume (always): CC7 80-127.
    Levels (fluidsynth, FluidR3_GM, relative to velocity 100 / CC 127):
    velocity 36 about -18 dB, CC7 80 -8 dB, CC11 64 -12 dB; the floors keep a
    part audible next to others (the labels say it sounds).
    The label roll does not change: class activity follows the notes.
    """
    perf = part.perf
    sustained = part.cls in SUSTAINED
    part.volume = int(rng.integers(80, 128))
    part.detune = 0
    # velocity layers: spread per note, per-part curve
    gamma = float(rng.uniform(0.7, 1.4))
    sd = float(rng.uniform(2, 14))
    for n in part.notes:
        v = 127.0 * (n.vel / 127.0) ** gamma + rng.normal(0, sd)
        n.vel = int(np.clip(round(v), 36, 127))
    perf["velocity"] = [round(gamma, 2), round(sd, 1)]
    c = part.controls
    end = ctx.duration
    if rng.random() < 0.5:
        f0 = float(rng.uniform(-2400, 1200))
        if rng.random() < 1 / 3:
            f1 = float(rng.uniform(-2400, 1200))
            for t, v in zip(*_ramp(0.0, end, f0, f1, 0.1)):
                c.append((t, "nrpn", GEN_FILTER_FC, int(round(v / 2))))
            perf["cutoff"] = [round(f0), round(f1)]
        else:
            c.append((0.0, "nrpn", GEN_FILTER_FC, int(round(f0 / 2))))
            perf["cutoff"] = round(f0)
        if rng.random() < 0.3:
            q = float(rng.uniform(0, 90))
            c.append((0.0, "nrpn", GEN_FILTER_Q, int(round(q))))
            perf["resonance_cb"] = round(q)
    for cc, name in ((91, "reverb_send"), (93, "chorus_send")):
        if rng.random() < 0.5:
            v = int(rng.integers(10, 101))
            c.append((0.0, "cc", cc, v))
            perf[name] = v
    if part.drum:
        return
    detune = 0.0
    if rng.random() < 0.4:
        detune = float(np.clip(rng.normal(0, 8), -25, 25))
        part.detune = int(round(detune * BEND_PER_CENT))
        perf["detune_cents"] = round(detune, 1)
    notes = sorted(part.notes, key=lambda n: n.on)
    if rng.random() < (0.35 if sustained else 0.1):
        depth = float(rng.uniform(30, 110))
        for n in notes:
            if n.off - n.on > 0.6:
                c.append((n.on, "cc", 1, 0))
                for t, v in zip(*_ramp(n.on + 0.15, n.off, 0, depth)):
                    c.append((t, "cc", 1, int(v)))
        c.append((end, "cc", 1, 0))
        perf["modulation"] = round(depth)
    if rng.random() < (0.4 if sustained else 0.1):
        long_notes = [n for n in notes if n.off - n.on > 0.5]
        if long_notes and rng.random() < 0.6:
            for n in long_notes:
                e0, e1 = float(rng.uniform(64, 100)), float(rng.uniform(80, 120))
                peak = n.on + (n.off - n.on) * float(rng.uniform(0.3, 0.7))
                for t, v in zip(*_ramp(n.on, peak, e0, 127)):
                    c.append((t, "cc", 11, int(v)))
                for t, v in zip(*_ramp(peak, n.off, 127, e1)):
                    c.append((t, "cc", 11, int(v)))
            perf["expression"] = "swells"
        else:
            t, e = 0.0, float(rng.uniform(72, 127))
            while t < end:
                d = float(rng.uniform(1.0, 4.0))
                e_next = float(rng.uniform(72, 127))
                for tt, v in zip(*_ramp(t, min(t + d, end), e, e_next)):
                    c.append((tt, "cc", 11, int(v)))
                t, e = t + d, e_next
            perf["expression"] = "ramps"
        c.append((end, "cc", 11, 127))
    bend_events = []
    if part.role in ("melody", "bass") and \
            rng.random() < (0.15 if (sustained or part.cls in ("guitar", "bass")) else 0.0):
        n_sl = 0
        for n in notes:
            if rng.random() < 0.25:
                depth = float(rng.uniform(50, 175)) * (1 if rng.random() < 0.3 else -1)
                dur = float(rng.uniform(0.04, 0.15))
                for t, v in zip(*_ramp(n.on, n.on + dur, depth, 0.0, 0.01)):
                    bend_events.append((t, v))
                n_sl += 1
        perf["slides"] = n_sl
    if sustained and rng.random() < 0.1:
        rate, depth = float(rng.uniform(4.5, 6.5)), float(rng.uniform(10, 35))
        for n in notes:
            if n.off - n.on > 0.5:
                ts = np.arange(n.on + 0.2, n.off, 0.02)
                for t in ts:
                    bend_events.append((t, depth * np.sin(2 * np.pi * rate * (t - n.on - 0.2))))
                bend_events.append((n.off, 0.0))
        perf["bend_vibrato"] = [round(rate, 1), round(depth)]
    for t, cents in bend_events:
        c.append((t, "bend", int(np.clip(round((detune + cents) * BEND_PER_CENT), -8192, 8191))))


def label_roll(parts, duration, frame_times, tail=0.0):
    """Per-frame activity [frames, 20] (bool) from the parts' notes."""
    roll = np.zeros((len(frame_times), len(LABELS)), dtype=bool)
    for p in parts:
        for n in p.notes:
            a = np.searchsorted(frame_times, n.on)
            b = np.searchsorted(frame_times, n.sound_end + tail)
            roll[a:b, n.label] = True
    return roll
