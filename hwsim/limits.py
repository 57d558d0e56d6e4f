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

#: Most ops whose per-op files a run folder gets (``SimResult.save``: ``ops.parquet``/``.csv``,
#: ``trace.json``, ``gantt.png``, ``breakdown``, ``roofline``: all built from the per-op table),
#: and whose breakdown ``hwsim simulate`` prints.
#: Measured: 300 s of swb300 (1.95M ops) took 83 s and 3.4 GB to write them, 1.2 GB on disk;
#: an hour would need about 40 GB. Above the limit the folder has the summary, phases, memory
#: plan, mapping, config and provenance (which says what was left out); the per-op table stays
#: available from Python (``SimResult.ops``).
MAX_RUN_FOLDER_OPS = 1_000_000
