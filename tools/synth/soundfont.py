"""Preset lists of SoundFont 2 / 3 files (read from the PHDR chunk).

SoundFont 2.04 spec, 7.2: the 'pdta' list holds a 'phdr' sub-chunk of
38-byte records: preset name (20 bytes), preset number (uint16), bank
(uint16), bag index, library, genre, morphology; the last record is the
terminal 'EOP'. sf3 files (MuseScore's Ogg-compressed sf2) share the layout.
"""
import functools
import struct


@functools.lru_cache(maxsize=8)
def presets(path):
    """frozenset of (bank, program) of the presets in a .sf2 / .sf3 file."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
            raise ValueError(f"{path}: not a SoundFont (RIFF sfbk)")
        out = set()
        while True:
            h = f.read(8)
            if len(h) < 8:
                break
            cid, size = h[:4], struct.unpack("<I", h[4:])[0]
            if cid == b"LIST":
                kind = f.read(4)
                if kind != b"pdta":
                    f.seek(size - 4 + (size & 1), 1)
                continue
            if cid == b"phdr":
                data = f.read(size)
                for k in range(size // 38 - 1):  # last record: EOP
                    prog, bank = struct.unpack("<HH", data[38 * k + 20:38 * k + 24])
                    out.add((bank, prog))
                break
            f.seek(size + (size & 1), 1)
    return frozenset(out)
