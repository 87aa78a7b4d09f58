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
# General MIDI has no mandolin or ukulele program: never generated.
UNSUPPORTED = ["mandolin", "ukulele"]

# class -> list of (GM program, weight, (low, high) MIDI pitch range)
PROGRAMS = {
    "accordion": [(21, 3, (53, 84)), (23, 1, (53, 84))],
    "banjo": [(105, 1, (48, 81))],
    "bass": [(32, 3, (28, 55)), (33, 3, (28, 55)), (34, 2, (28, 55)), (35, 1, (28, 55)),
             (36, 1, (28, 55)), (37, 1, (28, 55)), (38, 1, (28, 55)), (39, 1, (28, 55))],
    "cello": [(42, 1, (36, 74))],
    "clarinet": [(71, 1, (50, 89))],
    "flute": [(73, 1, (60, 94))],
    "guitar": [(24, 3, (40, 81)), (25, 3, (40, 81)), (26, 1, (40, 81)), (27, 1, (40, 81)),
               (28, 1, (40, 76)), (29, 1, (40, 76)), (30, 1, (40, 76)), (31, 1, (40, 76))],
    "mallet_percussion": [(8, 1, (60, 96)), (9, 1, (72, 103)), (10, 1, (60, 96)),
                          (11, 2, (53, 89)), (12, 2, (45, 84)), (13, 2, (65, 100))],
    "organ": [(16, 2, (36, 84)), (17, 2, (36, 84)), (18, 1, (36, 84)), (19, 2, (36, 84)),
              (20, 1, (36, 84))],
    "piano": [(0, 6, (28, 100)), (1, 3, (28, 100)), (2, 1, (28, 96)), (3, 1, (28, 96)),
              (4, 1, (28, 96)), (5, 1, (28, 96)), (6, 1, (36, 89)), (7, 1, (36, 89))],
    "saxophone": [(64, 1, (56, 87)), (65, 2, (49, 80)), (66, 2, (44, 75)), (67, 1, (36, 68))],
    "synthesizer": [(p, 1, (36, 86)) for p in range(80, 96)],
    "trombone": [(57, 1, (40, 72))],
    "trumpet": [(56, 1, (55, 82))],
    "violin": [(40, 4, (55, 98)), (41, 1, (48, 86))],
    "voice": [(52, 3, (48, 79)), (53, 2, (48, 79)), (54, 1, (48, 79))],
}
# String ensemble patches (48, 49): labelled violin above G3, cello below.
STRING_ENSEMBLE = [48, 49]

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

DRUM_KITS = [(0, 4), (8, 2), (16, 2), (24, 1), (25, 1), (32, 2), (40, 1), (48, 1)]
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

    def __init__(self, cls, program, drum, role, volume, detune):
        self.cls, self.program, self.drum, self.role = cls, program, drum, role
        self.volume, self.detune = volume, detune
        self.notes = []


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
                     [3, 2, 1, 1, 2 if part.cls in ("guitar", "banjo") else 0.3])
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


def make_part(cls, ctx, rng, role=None):
    if cls in ("drums", "cymbals"):
        part = Part(cls, None, True, "drums", int(rng.integers(85, 128)), 0)
        span = _span(rng, ctx)
        if cls == "drums":
            gen_drums(part, ctx, rng, span, with_cymbals=rng.random() < 0.45)
        else:
            gen_cymbals_only(part, ctx, rng, span)
        return part
    string_ens = cls in ("violin", "cello") and rng.random() < 0.12
    if string_ens:
        program, low, high = choose(rng, STRING_ENSEMBLE), 36, 96
    else:
        opts = PROGRAMS[cls]
        program, _, (low, high) = choose(rng, opts, [o[1] for o in opts])
    if role is None:
        roles = ROLES[cls]
        role = choose(rng, [r for r, _ in roles], [w for _, w in roles])
    part = Part(cls, program, False, role, int(rng.integers(85, 128)),
                int(rng.normal(0, 150)) if rng.random() < 0.3 else 0)
    span = _span(rng, ctx)
    if string_ens:
        # register decides the label: violin part high, cello part low
        if cls == "violin":
            low, high = 55, 96
        else:
            low, high = 36, 62
    {"melody": gen_melody, "chords": gen_chords, "arpeggio": gen_arpeggio,
     "bass": gen_bass, "piece": gen_piece}[role](part, ctx, rng, low, high, span)
    if string_ens:
        for n in part.notes:
            n.label = IDX["violin"] if n.pitch >= 55 else IDX["cello"]
    return part


def make_clip(rng, duration, n_parts=None, force_class=None, full_span=False):
    """A clip: context + 1..4 parts of distinct classes."""
    ctx = Context(rng, duration)
    ctx.full_span = full_span
    if n_parts is None:
        n_parts = int(choose(rng, [1, 2, 3, 4], [3, 3, 2.5, 1.5]))
    names = [n for n in LABELS if CLASS_WEIGHTS[n] > 0]
    w = np.array([CLASS_WEIGHTS[n] for n in names])
    chosen = [force_class] if force_class else []
    while len(chosen) < n_parts:
        c = choose(rng, names, w)
        if c in chosen or (c in ("drums", "cymbals") and ("drums" in chosen or "cymbals" in chosen)):
            continue
        chosen.append(c)
    parts = [make_part(c, ctx, rng) for c in chosen]
    parts = [p for p in parts if p.notes]
    return ctx, parts


def label_roll(parts, duration, frame_times, tail=0.0):
    """Per-frame activity [frames, 20] (bool) from the parts' notes."""
    roll = np.zeros((len(frame_times), len(LABELS)), dtype=bool)
    for p in parts:
        for n in p.notes:
            a = np.searchsorted(frame_times, n.on)
            b = np.searchsorted(frame_times, n.sound_end + tail)
            roll[a:b, n.label] = True
    return roll
