"""Label set of the student (OpenMIC-2018 order), shared with tools/synth."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "synth"))

from music import LABELS, UNSUPPORTED  # noqa: E402,F401
