"""Minimal Standard MIDI File (format 0) writer.

Times are given in seconds. The file uses a fixed tempo of 120 bpm and
1000 ticks per quarter note, so one tick is 0.5 ms; musical tempo is handled
by the generator, which places events in seconds.
"""
import struct

TICKS_PER_QUARTER = 1000
US_PER_QUARTER = 500000  # 120 bpm
TICKS_PER_SECOND = TICKS_PER_QUARTER * 1_000_000 / US_PER_QUARTER  # 2000


def _varlen(value):
    value = int(value)
    if value < 0:
        raise ValueError("negative delta time")
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


class MidiFile:
    """Collects channel events (in seconds) and writes a format-0 file."""

    def __init__(self):
        self._events = []  # (tick, order, bytes)
        self._seq = 0

    def _add(self, t, data, priority):
        tick = int(round(max(0.0, t) * TICKS_PER_SECOND))
        # priority: controllers/program changes (0) before note-offs (1)
        # before note-ons (2) at the same tick, then insertion order.
        self._events.append((tick, priority, self._seq, bytes(data)))
        self._seq += 1

    def program_change(self, t, channel, program):
        self._add(t, [0xC0 | channel, program & 0x7F], 0)

    def control_change(self, t, channel, controller, value):
        self._add(t, [0xB0 | channel, controller & 0x7F, int(value) & 0x7F], 0)

    def bank_select(self, t, channel, bank):
        """Bank select for fluidsynth's default bank-select style 'gs': the
        bank number (0-127) goes in CC0 (MSB), CC32 (LSB) is ignored and sent
        as 0. Takes effect at the next program change."""
        self.control_change(t, channel, 0, bank & 0x7F)
        self.control_change(t, channel, 32, 0)

    def nrpn(self, t, channel, msb, lsb, value):
        """Non-registered parameter (msb, lsb) set to a 14-bit value (0-16383):
        CC99, CC98, then data entry LSB (CC38) before MSB (CC6), since
        fluidsynth applies the parameter when the MSB arrives."""
        v = min(max(int(value), 0), 16383)
        self.control_change(t, channel, 99, msb)
        self.control_change(t, channel, 98, lsb)
        self.control_change(t, channel, 38, v & 0x7F)
        self.control_change(t, channel, 6, (v >> 7) & 0x7F)

    def sf2_generator_offset(self, t, channel, generator, offset):
        """SoundFont 2.01 NRPN (MSB 120, LSB = generator number < 100): adds
        offset (in the generator's NRPN units, e.g. 2 cents for
        initialFilterFc, 1 cB for initialFilterQ; range +-8192) to the
        generator of every voice on the channel."""
        self.nrpn(t, channel, 120, generator, int(offset) + 8192)

    def pitch_bend(self, t, channel, value):
        """value in [-8192, 8191]."""
        v = int(value) + 8192
        v = min(max(v, 0), 16383)
        self._add(t, [0xE0 | channel, v & 0x7F, (v >> 7) & 0x7F], 0)

    def note(self, t_on, t_off, channel, pitch, velocity):
        pitch = int(pitch)
        velocity = int(min(max(velocity, 1), 127))
        if not 0 <= pitch <= 127:
            return
        t_off = max(t_off, t_on + 0.01)
        self._add(t_on, [0x90 | channel, pitch, velocity], 2)
        self._add(t_off, [0x80 | channel, pitch, 0], 1)

    def all_off(self, t, channel):
        self.control_change(t, channel, 123, 0)  # all notes off
        self.control_change(t, channel, 120, 0)  # all sound off
        self.control_change(t, channel, 121, 0)  # reset controllers

    def to_bytes(self):
        track = bytearray()
        # tempo meta event
        track += _varlen(0) + bytes([0xFF, 0x51, 0x03]) + US_PER_QUARTER.to_bytes(3, "big")
        last = 0
        for tick, _, _, data in sorted(self._events):
            track += _varlen(tick - last) + data
            last = tick
        track += _varlen(0) + bytes([0xFF, 0x2F, 0x00])
        header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_QUARTER)
        return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)

    def write(self, path):
        with open(path, "wb") as f:
            f.write(self.to_bytes())
