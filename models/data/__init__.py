"""Synthetic speech corpus: text selection and normalization (``text``), voices and synthesis
(``voices``), planning/building/verifying the corpus (``corpus``), per-split feature caches
(``features``). See ``models/train/pipeline.py`` for how they are used."""
