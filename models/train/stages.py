"""Pipeline stages after training: assemble the FP32 system, quantize (PTQ / QAT), evaluate.

Checkpoints (``checkpoints/``, committed; sizes kept small):

- ``small-fp32.pt``: ``models.system`` checkpoint (``load_system``), weights stored as FP16 to halve
  the file; the FP32 results are measured with exactly these (FP16-rounded) weights.
- ``small-int4-naive-ptq.npz``, ``small-int4-ptq.npz``, ``small-int4-qat.npz``: integer exports
  (``models.quant.export``; load with ``models.quant.load``).
- ``MANIFEST.json``: how each file was produced (command, steps, data seed, final loss, sizes).
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import models
from models.search.scoring import SearchConfig
from models.system import CHECKPOINT_FORMAT
from models.yamlio import to_dict

log = logging.getLogger("models.train.stages")

PRECISIONS = ("fp32", "int4-naive-ptq", "int4-ptq", "int4-qat")
TESTS = {"fortunes": "fortunes_test", "bible": "bible_test"}
BEAMS = (1, 4, 8, 16)
FILES = {"fp32": "fp32.pt", "int4-naive-ptq": "int4-naive-ptq.npz", "int4-ptq": "int4-ptq.npz",
         "int4-qat": "int4-qat.npz"}
CHUNK = 20  # utterances per evaluation task
#: The precision policy of each checkpoint (``models/quant/policies``).
POLICY = {"fp32": "fp32", "int4-naive-ptq": "int4-naive", "int4-ptq": "int4", "int4-qat": "int4"}


def _ckpt(s, precision: str) -> Path:
    """``checkpoints/<preset>-<precision file>``, e.g. ``checkpoints/small-int4-qat.npz``."""
    return Path(s.checkpoints) / f"{s.preset}-{FILES[precision]}"


def _manifest_path(s) -> Path:
    return Path(s.checkpoints) / "MANIFEST.json"


def _update_manifest(s, key: str, entry: dict) -> None:
    path = _manifest_path(s)
    data = json.loads(path.read_text()) if path.exists() else {"checkpoints": {}}
    data["checkpoints"][key] = entry
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _last(history: list, k: int = 50) -> float:
    vals = [row[1] for row in history[-k:]]
    return float(np.mean(vals)) if vals else float("nan")


# ----------------------------------------------------------------------------------------------
# assemble


def load_fp32(s) -> "models.System":
    return models.load_system(_ckpt(s, "fp32"))


def stage_assemble(s) -> None:
    """Trained RNN-T (normalization folded) + both LMs -> ``small-fp32.pt`` (FP16 storage)."""
    from models.train.loop import load_state
    from models.train.rnnt_trainer import finalize

    out = _ckpt(s, "fp32")
    if out.exists():
        log.info("%s exists; skipping", out)
        return
    states = {k: load_state(s.runs / f"{k}.state.pt") for k in ("rnnt", "lm_ext", "lm_src")}
    missing = [k for k, st in states.items() if not (st and st.get("done"))]
    if missing:
        raise RuntimeError(f"training of {missing} is not finished (run the train stage)")
    cfg = models.load_config(s.preset)
    system = models.build_system(cfg, seed=s.seed)
    finalize(system.rnnt, states["rnnt"])
    system.lm_ext.load_state_dict(states["lm_ext"]["model"])
    system.lm_src.load_state_dict(states["lm_src"]["model"])
    half = {k: {n: t.detach().half() for n, t in m.state_dict().items()} for k, m in system.submodels().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    torch.save({"format": CHECKPOINT_FORMAT, "config": to_dict(cfg), **half}, tmp)
    os.replace(tmp, out)
    entry = {"file": out.name, "bytes": out.stat().st_size, "precision": "fp32",
             "storage": "FP16-rounded weights (results are measured with these exact weights)",
             "load": "models.load_system(path)", "data_seed": s.seed,
             "corpus": json.loads((s.corpus / "corpus.json").read_text())["splits"]}
    for k, st in states.items():
        entry[k] = {"command": ("python -m models.train.pipeline train-rnnt" if k == "rnnt"
                                else "python -m models.train.pipeline train-lms") + _settings_flags(s),
                    "steps": st["step"], "train_wall_s": round(st["elapsed_s"], 1),
                    "stop_reason": st.get("stop_reason"), "config": st["config"],
                    "final_train_loss_nats": round(_last(st["history"]), 4),
                    "final_dev": st["dev_history"][-1][1]}
    entry["rnnt"]["loss_unit"] = "RNN-T loss, nats per label; final_dev = dev loss per label"
    entry["lm_ext"]["loss_unit"] = entry["lm_src"]["loss_unit"] = \
        "cross-entropy, nats per character; final_dev = dev perplexity per character"
    _update_manifest(s, "fp32", entry)


def _settings_flags(s) -> str:
    from models.train.pipeline import Settings

    default = Settings()
    flags = [f" --{k.replace('_', '-')} {v}" for k, v in asdict(s).items() if getattr(default, k) != v]
    return "".join(flags)


# ----------------------------------------------------------------------------------------------
# quantize


def _calibration_items(s, system) -> list[dict]:
    """Acoustic batches of the training split (raw features: the normalization is folded) + LM
    text batches (``models.train.qat.calibration_items``)."""
    from models.data.features import load_features
    from models.train.qat import calibration_items, read_lm_text

    train = load_features(s.corpus, "train")
    ext, src = read_lm_text(s.corpus, system.config)
    return calibration_items(system.config, system.rnnt.encoder, train["feats"], train["texts"], ext, src,
                             seed=s.seed)


def stage_qat_lms(s) -> None:
    """INT4 QAT of both LMs from their FP32 weights (cross-entropy), resumable.

    Needs only the trained LMs, so the pipeline runs it right after LM training, while the RNN-T
    still trains: their training states (DATA/runs/lm_*.state.pt) when they are there, else the
    LMs of the assembled FP32 checkpoint (a later session, whose DATA holds no training state).
    Output: DATA/runs/qat_lms.pt (the quantized LMs' state dicts: weights and quantizer
    parameters), loaded by :func:`stage_qat`.
    """
    from models.quant import quantize
    from models.quant.qsystem import qat_step
    from models.train.loop import Clock, load_state, save_atomic
    from models.train.qat import calibration_pass, lm_qat_loss, lm_stream, read_lm_text

    out = s.runs / "qat_lms.pt"
    if out.exists():
        return
    cfg = models.load_config(s.preset)
    system = models.build_system(cfg, seed=s.seed)
    fp32 = None
    for name in ("lm_ext", "lm_src"):
        trained = load_state(s.runs / f"{name}.state.pt")
        if trained is None:
            fp32 = fp32 or load_fp32(s)
            system.submodels()[name].load_state_dict(fp32.submodels()[name].state_dict())
            log.info("qat LMs: %s from %s (no training state in %s)", name, _ckpt(s, "fp32"), s.runs)
        else:
            system.submodels()[name].load_state_dict(trained["model"])
    ext, src = read_lm_text(s.corpus, cfg)
    stream = lm_stream(ext, src, 64, s.seed)
    state_path = s.runs / "qat_lms.state.pt"
    state = load_state(state_path)
    if state is None:
        calib = [next(stream) for _ in range(8)]
        qsys = quantize(system, "int4", mode="qat", calib_features=calib, calib_fn=calibration_pass, seed=s.seed)
        state = {"step": 0, "elapsed_s": 0.0, "history": []}
        params = [p for m in (qsys.lm_ext, qsys.lm_src) for p in m.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=s.qat_lm_lr)
    else:
        qsys = state["qsys"]
        params = [p for m in (qsys.lm_ext, qsys.lm_src) for p in m.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=s.qat_lm_lr)
        opt.load_state_dict(state["optimizer"])
        for _ in range(8 + state["step"]):
            next(stream)
    qsys.train()
    clock, step = Clock(state["elapsed_s"]), state["step"]
    bar = tqdm(total=s.qat_lm_steps, initial=step, desc="qat int4 LMs", unit="step")
    while step < s.qat_lm_steps:
        loss = qat_step(qsys, next(stream), lm_qat_loss, opt)
        step += 1
        state["history"].append((step, loss, s.qat_lm_lr, clock.elapsed_s))
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")
        if step % 50 == 0:
            state.update(qsys=qsys, optimizer=opt.state_dict(), step=step, elapsed_s=clock.elapsed_s)
            save_atomic(state, state_path)
    bar.close()
    save_atomic({"lm_ext": qsys.lm_ext.state_dict(), "lm_src": qsys.lm_src.state_dict(), "steps": step,
                 "elapsed_s": clock.elapsed_s, "history": state["history"], "lr": s.qat_lm_lr}, out)


def stage_ptq(s) -> None:
    from models.quant import quantize
    from models.train.qat import calibration_pass

    fp32 = None
    for key in ("int4-naive-ptq", "int4-ptq"):
        policy = POLICY[key]
        if _have(s, key):
            continue
        fp32 = fp32 or load_fp32(s)
        calib = _calibration_items(s, fp32)
        qsys = quantize(fp32, policy, mode="ptq", calib_features=calib, calib_fn=calibration_pass, seed=s.seed)
        entry = {"policy": policy, "mode": "ptq", "from": _ckpt(s, "fp32").name,
                 "calibration": f"{len(calib)} training batches (~30 s audio each) + 32 sentences per LM each",
                 "command": "python -m models.train.pipeline quantize" + _settings_flags(s), "data_seed": s.seed}
        _update_manifest(s, key, {**entry, **_export_or_pickle(s, qsys, key)})
        log.info("%s done", key)


def _snapshot_path(s, step: int) -> Path:
    return s.runs / f"{s.preset}-qat-step{step}.qsys.pt"


def qat_snapshot_steps(s) -> list[int]:
    """The steps at which ``stage_qat`` keeps a frozen copy to choose from on the dev sets: every
    ``qat_select_every`` steps and the last (none but the last when 0)."""
    every = s.qat_select_every
    steps = list(range(every, s.qat_steps, every)) if every > 0 else []
    return steps + [s.qat_steps]


def stage_qat(s) -> None:
    """QAT of the whole system, resumable, then export: both LMs from ``stage_qat_lms``, the RNN-T
    by its loss from the FP32 checkpoint, at ``qat_lr`` (``qat_schedule``: ``constant``, or
    ``decay``, the FP32 training's shape, ``models.train.loop.Schedule``: warm-up
    ``qat_warmup_steps``, then linear decay over the last 40%), on clean batches or with a feature
    augmentation (``qat_augment``: ``none``, ``rnnt`` = the FP32 training's ``rnnt_augment``, or
    a spec). The step count is chosen on the dev sets only: a frozen copy every
    ``qat_select_every`` steps and at the end (``qat_snapshot_steps``) is decoded on the first
    ``ablate_utts`` utterances of both dev sets at ALSD beam ``ablate_beam`` without and with DR
    fusion, and the copy with the lowest mean of the two pooled dev WERs is exported (the manifest
    records every copy's dev WERs). The defaults are the recipe of the committed checkpoint (150
    steps, constant rate, clean batches): 450 steps, with the decay and the FP32 augmentation or
    without, did no better on the dev sets (``reports/accuracy/qat_recipes.json``)."""
    import copy

    from models.data.features import load_features
    from models.quant import freeze, quantize
    from models.quant.qsystem import qat_step
    from models.train.batching import make_acoustic_batches
    from models.train.loop import Clock, Schedule, load_state, save_atomic
    from models.train.qat import acoustic_stream, augment_transform, calibration_pass, rnnt_qat_loss

    if _have(s, "int4-qat"):
        return
    torch.set_num_threads(s.rnnt_threads)   # nothing else trains now: the RNN-T's threads
    state_path = s.runs / "qat.state.pt"
    state = load_state(state_path)
    fp32 = load_fp32(s)
    cfg = fp32.config
    stage_qat_lms(s)
    lms = load_state(s.runs / "qat_lms.pt")
    if state is None:
        qsys = quantize(fp32, "int4", mode="qat", calib_features=_calibration_items(s, fp32),
                        calib_fn=calibration_pass, seed=s.seed)
        qsys.lm_ext.load_state_dict(lms["lm_ext"])
        qsys.lm_src.load_state_dict(lms["lm_src"])
        opt = torch.optim.Adam([p for p in qsys.rnnt.parameters() if p.requires_grad], lr=s.qat_lr)
        state = {"step": 0, "elapsed_s": 0.0, "history": []}
    else:
        qsys = state["qsys"]
        opt = torch.optim.Adam([p for p in qsys.rnnt.parameters() if p.requires_grad], lr=s.qat_lr)
        opt.load_state_dict(state["optimizer"])
    qsys.train()
    train = load_features(s.corpus, "train")
    batches = make_acoustic_batches(cfg, train["feats"], train["texts"], s.qat_max_frames, 16)
    augment_spec = s.rnnt_augment if s.qat_augment == "rnnt" else s.qat_augment
    stream = acoustic_stream(cfg, qsys.rnnt.encoder, train["feats"], train["texts"], batches, s.seed + 7,
                             start=state["step"], transform=augment_transform(augment_spec, train["feats"], s.seed))
    if s.qat_schedule not in ("constant", "decay"):
        raise ValueError(f"--qat-schedule {s.qat_schedule!r}: expected constant or decay")
    sched = Schedule(s.qat_lr, s.qat_steps, s.qat_warmup_steps) if s.qat_schedule == "decay" else None
    snapshots = qat_snapshot_steps(s)
    clock = Clock(state["elapsed_s"])
    step = state["step"]
    bar = tqdm(total=s.qat_steps, initial=step, desc="qat int4", unit="step")
    reason = "max_steps"
    while step < s.qat_steps:
        lr = s.qat_lr if sched is None else sched.lr(step, clock.elapsed_s / s.qat_budget_s)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = qat_step(qsys, {"acoustic": next(stream)}, rnnt_qat_loss, opt)
        step += 1
        state["history"].append((step, loss, lr, clock.elapsed_s))
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")
        out_of_time = clock.elapsed_s >= s.qat_budget_s
        if (step in snapshots or out_of_time) and not _snapshot_path(s, step).exists():
            snap = copy.deepcopy(qsys)
            freeze(snap)
            snap.eval()
            save_atomic(snap, _snapshot_path(s, step))
        if out_of_time:
            reason = "time_budget"
            break
        if step % 10 == 0:
            state.update(qsys=qsys, optimizer=opt.state_dict(), step=step, elapsed_s=clock.elapsed_s)
            save_atomic(state, state_path)
    bar.close()
    kept = [n for n in snapshots + [step] if _snapshot_path(s, n).exists()]
    kept = sorted(set(kept))
    selection = qat_dev_selection(s, kept)
    best = min(selection, key=lambda r: (r["dev_wer_mean"], r["steps"]))
    chosen = torch.load(_snapshot_path(s, best["steps"]), weights_only=False)
    _update_manifest(s, "int4-qat", {
        **_export_or_pickle(s, chosen, "int4-qat"), "policy": "int4", "mode": "qat", "from": _ckpt(s, "fp32").name,
        "command": "python -m models.train.pipeline quantize" + _settings_flags(s), "steps": best["steps"],
        "steps_run": step, "stop_reason": reason, "train_wall_s": round(clock.elapsed_s, 1), "lr": s.qat_lr,
        "lr_schedule": ("constant" if sched is None else f"models.train.loop.Schedule(peak {s.qat_lr}, "
                        f"{s.qat_steps} steps, warm-up {s.qat_warmup_steps})"),
        "augment": augment_spec, "max_frames": s.qat_max_frames,
        "selection": selection, "selected_by": "lowest mean of the pooled dev WERs without and with DR fusion",
        "loss": "RNN-T loss (nats/label)", "final_loss": round(_last(state["history"][:best["steps"]], 20), 4),
        "data_seed": s.seed,
        "lms": {"steps": lms["steps"], "train_wall_s": round(lms["elapsed_s"], 1), "lr": lms["lr"],
                "loss": "lm_ext CE + lm_src CE (nats/char)", "final_loss": round(_last(lms["history"], 20), 4),
                "history": [(r[0], round(r[1], 4), round(r[3], 1)) for r in lms["history"]]},
        "history": [(r[0], round(r[1], 4), round(r[3], 1)) for r in state["history"]]})


def qat_dev_selection(s, steps: list[int]) -> list[dict]:
    """Pooled dev WER (both dev sets, ``dev_eval``) of each QAT snapshot, without and with DR."""
    fusion = stage_tune(s)["best"]
    res = dev_eval(s, [f"qat-step:{n}" for n in steps], ablation_configs(fusion, s.ablate_beam),
                   Path(s.data) / "eval" / "qat-select")
    from models.train.evaluate import pooled_wer

    rows = []
    for n in steps:
        wer = {lm: pooled_wer([r for r in res[f"qat-step:{n}"].values() if r["lm_fusion"] == lm])["wer"]
               for lm in ("none", "dr")}
        rows.append({"steps": n, "dev_wer_none": round(wer["none"], 2), "dev_wer_dr": round(wer["dr"], 2),
                     "dev_wer_mean": round((wer["none"] + wer["dr"]) / 2, 3)})
    log.info("QAT selection on dev: %s", rows)
    return rows


def _pickle_path(s, key: str) -> Path:
    return s.runs / f"{s.preset}-{key}.qsys.pt"


def _export_or_pickle(s, qsys, key: str) -> dict:
    """Integer export to ``checkpoints/``; if the exporter rejects the system, a pickled
    fake-quantized system under DATA/runs/ instead (not committed), with the reason recorded."""
    from models.quant import export

    out = _ckpt(s, key)
    try:
        manifest = export(qsys, out)
        return {"file": out.name, "bytes": out.stat().st_size, "weight_bytes": manifest["weight_bytes"],
                "load": "models.quant.load(path)"}
    except ValueError as exc:
        log.warning("%s: integer export failed (%s); pickling the fake-quantized system instead", key, exc)
        path = _pickle_path(s, key)
        from models.train.loop import save_atomic

        save_atomic(qsys, path)
        path.with_name(path.name + ".export-error.txt").write_text(f"export failed: {exc}\n")
        return {"file": None, "export_error": str(exc), "pickled_to": str(path),
                "load": "torch.load(pickled_to, weights_only=False)"}


def stage_quantize(s) -> None:
    stage_ptq(s)
    stage_qat(s)


# ----------------------------------------------------------------------------------------------
# evaluate


def _have(s, key: str) -> bool:
    return _ckpt(s, key).exists() or _pickle_path(s, key).exists()


def load_precision(s, precision: str):
    """The system of a checkpoint name (``PRECISIONS``) or of an ablation variant
    (``ablation:<name>``, pickled by ``stage_ablate``)."""
    if precision.startswith("ablation:"):
        return torch.load(_ablation_path(s, precision.split(":", 1)[1]), weights_only=False)
    if precision.startswith("qat-step:"):
        return torch.load(_snapshot_path(s, int(precision.split(":", 1)[1])), weights_only=False)
    if precision == "fp32":
        return load_fp32(s)
    if not _ckpt(s, precision).exists() and _pickle_path(s, precision).exists():
        return torch.load(_pickle_path(s, precision), weights_only=False)
    from models.quant import load

    return load(_ckpt(s, precision))


def search_configs(fusion: dict, beams=BEAMS) -> dict[str, SearchConfig]:
    """Keys ``{search}-{beam}-{fusion}``; greedy has beam 1."""
    out = {}
    for lm in ("none", "dr"):
        w = fusion if lm == "dr" else {}
        out[f"greedy-1-{lm}"] = SearchConfig(method="greedy", beam=1, lm_fusion=lm, **w)
        for b in beams:
            out[f"alsd-{b}-{lm}"] = SearchConfig(method="alsd", beam=b, lm_fusion=lm, **w)
    return out


def _eval_task(args) -> dict:
    s, precision, split, lo, hi, configs, out = args
    from models.data.features import load_features
    from models.train.evaluate import evaluate

    torch.set_num_threads(1)
    system = load_precision(s, precision)
    data = load_features(s.corpus, split)
    res = evaluate(system, data["feats"][lo:hi], data["texts"][lo:hi], configs)
    payload = {k: {"counts": asdict(r.counts), "search": asdict(r.search), "examples": r.examples,
                   "refs": data["texts"][lo:hi], "hyps": r.hyps, "heldout_voice": data["heldout_voice"][lo:hi],
                   "voices": data["voices"][lo:hi]}
               for k, r in res.items()}
    tmp = Path(out).with_suffix(".tmp")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, out)
    return payload


def _run_tasks(s, tasks: list, desc: str) -> None:
    todo = [t for t in tasks if not Path(t[-1]).exists()]
    if not todo:
        return
    for t in todo:
        Path(t[-1]).parent.mkdir(parents=True, exist_ok=True)
    with mp.get_context("fork").Pool(s.jobs) as pool:
        for _ in tqdm(pool.imap_unordered(_eval_task, todo), total=len(todo), desc=desc, unit="task"):
            pass


def _collect(paths: list[Path]) -> dict[str, dict]:
    from models.data.voices import voice_group
    from models.train.evaluate import ErrorCounts, SearchTotals

    agg: dict[str, tuple] = {}
    for p in paths:
        for k, v in json.loads(p.read_text()).items():
            c, st, ex, seen, held, groups, utt = agg.setdefault(
                k, (ErrorCounts(), SearchTotals(), [], ErrorCounts(), ErrorCounts(), {}, []))
            c.merge(ErrorCounts(**v["counts"]))
            st.merge(SearchTotals(**v["search"]))
            ex.extend(v["examples"])
            voices = v.get("voices") or [None] * len(v["refs"])  # older payloads lack voices
            for ref, hyp, h, voice in zip(v["refs"], v["hyps"], v["heldout_voice"], voices, strict=True):
                one = ErrorCounts()  # this utterance's edit distances, computed once
                one.add(ref, hyp)
                (held if h else seen).merge(one)
                if voice is not None:
                    groups.setdefault(voice_group(voice), ErrorCounts()).merge(one)
                utt.append((one.word_errors, one.words))

    def summary(e: ErrorCounts) -> dict:
        return {"wer": e.wer, "cer": e.cer, "utterances": e.utterances}

    return {k: {"wer": c.wer, "cer": c.cer, "utterances": c.utterances, "words": c.words,
                "search": st.rates(), "examples": ex[:3], "seen_voices": summary(seen),
                "heldout_voices": summary(held), "voice_groups": {g: summary(e) for g, e in sorted(groups.items())},
                "utt_word_errors": [e for e, _ in utt], "utt_words": [n for _, n in utt]}
            for k, (c, st, ex, seen, held, groups, utt) in agg.items()}


def fusion_grid() -> list[dict]:
    return [{"lambda_ext": le, "lambda_src": ls, "length_reward": lr}
            for le in (0.3, 0.5, 0.7, 0.9) for ls in (0.0, 0.2) for lr in (0.3, 0.8, 1.3)]


def stage_tune(s) -> dict:
    """DR weights by WER on the Bible dev book (FP32, ALSD beam ``s.tune_beam``)."""
    path = Path(s.data) / "eval" / "fusion.json"
    if path.exists():
        return json.loads(path.read_text())
    grid = fusion_grid()
    configs = {f"g{i}": SearchConfig(method="alsd", beam=s.tune_beam, lm_fusion="dr", **w)
               for i, w in enumerate(grid)}
    configs["none"] = SearchConfig(method="alsd", beam=s.tune_beam, lm_fusion="none")
    root = Path(s.data) / "eval" / "tune"
    n = s.tune_utts
    tasks = [(s, "fp32", "bible_dev", lo, min(n, lo + 10), configs, str(root / f"{lo:04d}.json"))
             for lo in range(0, n, 10)]
    _run_tasks(s, tasks, "tune DR weights (bible dev)")
    res = _collect([Path(t[-1]) for t in tasks])
    rows = [{**grid[i], "wer": res[f"g{i}"]["wer"], "cer": res[f"g{i}"]["cer"]} for i in range(len(grid))]
    best = min(rows, key=lambda r: (r["wer"], r["cer"]))
    out = {"best": {k: best[k] for k in ("lambda_ext", "lambda_src", "length_reward")},
           "dev_wer_no_fusion": res["none"]["wer"], "dev_wer_best": best["wer"], "beam": s.tune_beam,
           "utterances": n, "grid": rows}
    path.write_text(json.dumps(out, indent=2) + "\n")
    log.info("DR weights %s: dev WER %.2f -> %.2f", out["best"], out["dev_wer_no_fusion"], best["wer"])
    return out


def stage_evaluate(s) -> None:
    """Evaluate ``s.precisions`` (comma list) on both tests; results.json covers every precision
    evaluated so far."""
    precisions = tuple(p for p in s.precisions.split(",") if p)
    unknown = set(precisions) - set(PRECISIONS)
    if unknown:
        raise ValueError(f"unknown precisions {sorted(unknown)}; known: {PRECISIONS}")
    fusion = stage_tune(s)["best"]
    root = Path(s.data) / "eval"
    tasks = []
    for precision in precisions:
        if not _have(s, precision):
            log.warning("no checkpoint for %s; skipped", precision)
            continue
        configs = search_configs(fusion, tuple(int(b) for b in s.beams.split(",")))
        for test, split in TESTS.items():
            for lo in range(0, s.eval_utts, CHUNK):
                tasks.append((s, precision, split, lo, min(s.eval_utts, lo + CHUNK), configs,
                              str(root / precision / test / f"{lo:04d}.json")))
    _run_tasks(s, tasks, "evaluate")
    results = []
    for precision in PRECISIONS:
        for test in TESTS:
            paths = sorted((root / precision / test).glob("*.json"))
            if not paths:
                continue
            for key, r in _collect(paths).items():
                search, beam, lm = key.split("-")
                results.append({"precision": precision, "test": test, "search": search, "beam": int(beam),
                                "lm_fusion": lm, "wer": round(r["wer"], 2), "cer": round(r["cer"], 2),
                                "utterances": r["utterances"], "words": r["words"],
                                "seen_voices": r["seen_voices"], "heldout_voices": r["heldout_voices"],
                                "voice_groups": r["voice_groups"], "utt_word_errors": r["utt_word_errors"],
                                "utt_words": r["utt_words"],
                                "search_stats": r["search"], "examples": r["examples"]})
    (root / "results.json").write_text(json.dumps({"fusion": stage_tune(s), "rows": results}, indent=2) + "\n")


# ----------------------------------------------------------------------------------------------
# ablate

#: Dev sets of the ablation (never the tests: it chooses between quantizers).
DEV_SETS = {"fortunes": "fortunes_dev", "bible": "bible_dev"}


def _ablation_path(s, name: str) -> Path:
    return s.runs / f"{s.preset}-ablation-{name}.qsys.pt"


def ablation_configs(fusion: dict, beam: int) -> dict[str, SearchConfig]:
    """ALSD at ``beam`` without and with DR fusion (keys as ``search_configs``)."""
    return {k: v for k, v in search_configs(fusion, (beam,)).items() if k.startswith("alsd-")}


def dev_sizes(s) -> dict[str, int]:
    """Utterances decoded per dev split: the first ``s.ablate_utts`` (fewer if the split is smaller)."""
    from models.data.features import load_features

    return {split: min(s.ablate_utts, len(load_features(s.corpus, split)["texts"])) for split in DEV_SETS.values()}


def dev_eval(s, systems: list[str], configs: dict[str, SearchConfig], root: Path) -> dict[str, dict[str, dict]]:
    """Decode every system (``load_precision`` names) on the first utterances of both dev sets
    (``dev_sizes``) with every config, in resumable tasks under ``root``. Returns per system
    ``{"<dev>/<config>": {"dev", "search", "beam", "lm_fusion", "wer", "cer", "utterances", "words",
    "utt_word_errors", "utt_words"}}``."""
    sizes = dev_sizes(s)
    tasks = []
    for system in systems:
        for dev, split in DEV_SETS.items():
            for lo in range(0, sizes[split], CHUNK):
                tasks.append((s, system, split, lo, min(sizes[split], lo + CHUNK), configs,
                              str(root / system.replace(":", "-") / dev / f"{lo:04d}.json")))
    _run_tasks(s, tasks, f"dev sets ({root.name})")
    out: dict[str, dict[str, dict]] = {}
    for system in systems:
        out[system] = {}
        for dev in DEV_SETS:
            for key, r in _collect(sorted((root / system.replace(":", "-") / dev).glob("*.json"))).items():
                search, beam, lm = key.split("-")
                out[system][f"{dev}/{key}"] = {
                    "dev": dev, "search": search, "beam": int(beam), "lm_fusion": lm, "wer": round(r["wer"], 2),
                    "cer": round(r["cer"], 2), "utterances": r["utterances"], "words": r["words"],
                    "utt_word_errors": r["utt_word_errors"], "utt_words": r["utt_words"]}
    return out


def stage_ablate(s) -> None:
    """Per-role ablation (``models.quant.ablation.ABLATIONS``): INT4 PTQ with one role at a time
    back to the naive quantizer, calibrated as ``stage_ptq`` calibrates (pickled under DATA/runs/,
    not committed), and every checkpoint of ``PRECISIONS``, decoded on the first
    ``s.ablate_utts`` utterances of each dev set at ALSD beam ``s.ablate_beam`` without and with DR
    fusion (the tuned weights). Writes DATA/eval/ablation.json: one row per (system, dev set,
    fusion) with WER, CER, words and per-utterance word errors (for paired intervals)."""
    from models.quant import quantize
    from models.quant.ablation import ABLATIONS, BASE_POLICY, ablation_policy
    from models.train.qat import calibration_pass

    fp32 = None
    for a in ABLATIONS:
        path = _ablation_path(s, a.name)
        if path.exists():
            continue
        fp32 = fp32 or load_fp32(s)
        calib = _calibration_items(s, fp32)
        qsys = quantize(fp32, ablation_policy(a.name), mode="ptq", calib_features=calib, calib_fn=calibration_pass,
                        seed=s.seed)
        from models.train.loop import save_atomic

        save_atomic(qsys, path)
        log.info("ablation %s: PTQ done", a.name)
    fusion = stage_tune(s)["best"]
    systems = [p for p in PRECISIONS if _have(s, p)] + [f"ablation:{a.name}" for a in ABLATIONS]
    res = dev_eval(s, systems, ablation_configs(fusion, s.ablate_beam), Path(s.data) / "eval" / "ablation")
    sizes = dev_sizes(s)
    rows = []
    for system in systems:
        policy = (ablation_policy(system.split(":", 1)[1]).name if system.startswith("ablation:")
                  else POLICY[system])
        rows += [{"system": system, "policy": policy, **r} for r in res[system].values()]
    out = {"preset": s.preset, "fusion": fusion, "beam": s.ablate_beam, "utterances": sizes,
           "base_policy": BASE_POLICY,
           "ablations": [{"name": a.name, "change": a.change, "policy": ablation_policy(a.name).name}
                         for a in ABLATIONS], "rows": rows}
    (Path(s.data) / "eval" / "ablation.json").write_text(json.dumps(out, indent=2) + "\n")


__all__ = ["stage_assemble", "stage_quantize", "stage_ptq", "stage_qat", "stage_tune", "stage_evaluate",
           "search_configs", "PRECISIONS", "load_precision", "stage_ablate", "ablation_configs", "DEV_SETS"]
