"""Training and evaluation of the RNN-T and its LMs.

``rnnt_loss`` (the RNN-T loss with an analytic backward), ``batching``, ``loop`` (checkpoints,
schedule), ``rnnt_trainer``, ``lm_trainer``, ``evaluate`` (WER/CER over the search settings),
``stages`` (assemble, quantize, tune, evaluate) and ``pipeline`` (the stage runner behind
``make accuracy``).
"""
