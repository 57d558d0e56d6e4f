"""The largest inputs the tools accept, stated once (command-line arguments and sweep fields).

Beyond these the work grows past what a single run should take (graphs, traces and memory grow
linearly with audio length and with beam width), so an input above a limit is rejected up front
with a message naming the argument or field and the limit, instead of running for hours.
"""

from __future__ import annotations

#: Longest utterance, in seconds: an hour. A paper-scale (swb300, beam 16) analytic graph of an
#: hour has 23M ops and takes about 8 s of CPU and 1.45 GiB to build and simulate
#: (``benchmarks/bench_long.py``); time and memory grow with length x beam.
MAX_AUDIO_S = 3600.0
#: Widest beam (the paper's widest is 64).
MAX_BEAM = 1024
#: Most input frames of a traced or functionally simulated decode (MAX_AUDIO_S at 10 ms frames).
MAX_FRAMES = 30_000
