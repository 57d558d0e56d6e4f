"""Accelerator specifications: frozen dataclasses loaded from YAML presets in ``hwsim/presets/``.

An ``AcceleratorSpec`` is plain data in SI units (every field name carries its unit). Loading goes
through ``models.yamlio``: unknown and duplicate keys, wrong types and impossible values are
``ConfigError``s that name the file and the dotted field.

Model of one chip::

    chip: frequency_hz, cores x CoreSpec, shared on-chip SRAM, DRAM, inter-core links, mapping knobs
    core: matrix engine (rows x cols PEs; MACs/cycle per PE per precision; dataflow os|ws),
          special-function unit (nonlinear ops), vector unit (element-wise, reductions),
          select/move capability (topk, sort, gather, copy), scratchpad, per-op dispatch overhead

Precisions are those of ``models.quant.policy.BITS``. A precision an engine does not list is not
pretended: ``fallback_precision`` maps it to the narrowest listed precision that represents it
exactly (see ``FALLBACK_CHAIN``), and the simulator reports the substitution.

Design-space sweeps vary any field by dotted path: ``spec.replace_path("core.matrix.rows", 64)``
returns a new, fully re-validated spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from models.quant.policy import BITS
from models.yamlio import (ConfigError, from_dict, load_yaml, preset_file, preset_names, replace_paths, require,
                           to_dict)

PRESET_DIR = Path(__file__).parent / "presets"

#: Limits of a spec (beyond them a design point would take hours, or the number is a typo).
MAX_CORES = 4096
MAX_FREQUENCY_HZ = 1e11
PRECISIONS = tuple(BITS)

#: Where an unsupported precision goes, in order of preference: the narrowest wider format that
#: holds every value exactly. Integers fit a float whose significand has at least as many bits
#: (int8 -> fp16, 11-bit significand); fp8 is not an integer format (3 mantissa bits), so int8
#: never falls back to fp8; bf16's 8-bit exponent does not fit fp16, so bf16 -> fp32.
FALLBACK_CHAIN: dict[str, tuple[str, ...]] = {
    "int2": ("int4", "int8", "fp16", "bf16", "fp32"),
    "int4": ("int8", "fp16", "bf16", "fp32"),
    "int8": ("fp16", "bf16", "fp32"),
    "fp8": ("fp16", "bf16", "fp32"),
    "fp16": ("fp32",),
    "bf16": ("fp32",),
    "fp32": (),
}


def _check_rates(rates: dict[str, float], what: str) -> None:
    require(len(rates) > 0, f"{what}: at least one precision is needed")
    for p, r in rates.items():
        require(p in BITS, f"{what}: unsupported precision name {p!r}; known: {list(BITS)}")
        require(r > 0, f"{what}.{p} must be > 0, got {r}")


def fallback_precision(precision: str, supported: Any) -> str:
    """The precision a unit really runs ``precision`` at, given the precisions it ``supported``.

    Returns ``precision`` itself when supported; else the first of ``FALLBACK_CHAIN[precision]``
    that is supported; else (nothing wider exists) the widest supported precision, which the
    caller reports as a narrowing fallback.
    """
    if precision in supported:
        return precision
    for p in FALLBACK_CHAIN[precision]:
        if p in supported:
            return p
    return max(supported, key=lambda p: (BITS[p], p.startswith("fp")))


@dataclass(frozen=True)
class CpuGemmSpec:
    """How a CPU's GEMM library runs one precision (``matrix.cycle_model: cpu``; ``hwsim.gemm``).

    A CPU thread has no systolic array: a BLAS-like library multiplies ``(m x k) @ (k x n)`` as a
    fixed call cost, passes over the weight (reading it, and for most libraries packing it into
    a panel layout first), and the multiply-adds of the rows at the SIMD datapath's rate. The
    fields are what ``hwsim calibrate`` measures (``hwsim.calibrate.fit_cpu_gemm``); the rows
    rate is ``matrix.macs_per_pe_per_cycle`` of the 1 x 1 "array".

    Attributes:
        call_cycles: fixed cycles of one call at this precision, on top of the core's
            ``dispatch_overhead_cycles`` (argument checks, primitive selection, buffers).
        n_granule: n is rounded up to a multiple of this (the register tile's columns: the
            SIMD width in output lanes, or the panel width of a prepacked weight).
        m_tile: rows of m per pass over the weight (a kernel whose register tile holds
            ``m_tile`` rows re-reads the weight panel for every row tile); 0: one pass whatever
            m (the library packs the weight once and keeps every row's partial sums).
        weight_passes: passes over the weight's bytes per row tile (a pack reads the weight and
            writes and re-reads the packed copy: about 2-4 passes; a kernel on a prepacked
            weight: about 1). The first pass reads the level the weight is stored at; the
            others read where ``reread`` says.
        reread: where the passes after the first read the weight: ``home``, the level it is
            stored at (a library that streams the whole weight again for every row tile);
            ``near``, the core's own cache (``core.scratchpad_bw_bytes_per_s``: a library that
            keeps a block of the weight there while every row tile uses it).
        out_cycles_per_elem: cycles per output element on top of the MACs (the epilogue that
            converts, requantizes and stores each of the m x n outputs).
        gemv_weight_passes: passes over the weight when m = 1 (a GEMV path that streams the
            weight without packing: 1); None: as for m >= 2.
        gemv_macs_per_cycle: MACs per cycle when m = 1 (a GEMV runs at its own, lower rate:
            one row cannot fill the register tile); None: the rows rate.
    """

    call_cycles: float = 0.0
    n_granule: int = 1
    m_tile: int = 0
    weight_passes: float = 1.0
    reread: Literal["home", "near"] = "home"
    out_cycles_per_elem: float = 0.0
    gemv_weight_passes: float | None = None
    gemv_macs_per_cycle: float | None = None

    def __post_init__(self) -> None:
        require(self.call_cycles >= 0, f"call_cycles must be >= 0, got {self.call_cycles}")
        require(self.n_granule >= 1, f"n_granule must be >= 1, got {self.n_granule}")
        require(self.m_tile >= 0, f"m_tile must be >= 0 (0: one pass), got {self.m_tile}")
        require(self.weight_passes >= 0, f"weight_passes must be >= 0, got {self.weight_passes}")
        require(self.out_cycles_per_elem >= 0, f"out_cycles_per_elem must be >= 0, got {self.out_cycles_per_elem}")
        require(self.gemv_weight_passes is None or self.gemv_weight_passes >= 0,
                f"gemv_weight_passes must be >= 0, got {self.gemv_weight_passes}")
        require(self.gemv_macs_per_cycle is None or self.gemv_macs_per_cycle > 0,
                f"gemv_macs_per_cycle must be > 0, got {self.gemv_macs_per_cycle}")


@dataclass(frozen=True)
class MatrixEngineSpec:
    """Systolic matrix engine of one core.

    MAC rates are given **per PE**, not for the whole array: a PE's datapath (how many MACs of a
    precision it retires per cycle) is what a designer draws, and it is what stays fixed when the
    array is resized. The whole-array rate is derived (``array_macs_per_cycle``), so a 64 x 64
    array copied from a 32 x 32 preset has 4x its MACs per cycle, as the silicon would. (An older
    schema gave ``macs_per_cycle`` for the whole array; it is no longer a field, so old YAML is
    rejected by the strict loader naming ``macs_per_cycle`` instead of being silently misread.)

    Attributes:
        rows, cols: PE array shape. Output-stationary (``os``): rows tile the GEMM's m (batch)
            axis, cols tile n (output features). Weight-stationary (``ws``): rows hold the k
            (reduction) axis, cols hold n.
        macs_per_pe_per_cycle: MACs per PE per cycle for each supported precision: the number
            of MAC lanes per PE along k (sub-word parallelism at low precision, e.g. 8 int4 MACs
            in an fp16 PE). A rate below 1 is a multi-cycle PE (0.5: one MAC every 2 cycles).
            ``os``: any rate > 0 (a PE does its k MACs in ``ceil(k / rate)`` cycles). ``ws``: a
            weight tile covers ``rows * rate`` values of k, which must be a whole number >= 1.
            ``cycle_model: scalesim``: rates must be whole numbers >= 1.
        dataflow: ``os`` or ``ws``.
        fill_drain_overlap: true if a tile's fill/drain (rows + cols cycles) overlaps the next
            tile's compute (then paid once per GEMM, not per tile).
        weight_preload_overlap: ``ws`` only: true if loading the next weight tile (rows cycles)
            is double-buffered behind compute (then paid once per GEMM).
        fold_outputs: ``os`` only: the array may also map ``rows * cols`` outputs of one row of
            m over all PEs (for GEMMs with few rows, such as a single hypothesis's GEMV), at
            the price of re-reading the weights once per row (``hwsim.gemm.gemm_mapping``).
        cycle_model: how a GEMM's folds (tiles) are timed. ``hwsim`` (default): fill/drain of
            ``rows + cols`` cycles per tile (or once, see ``fill_drain_overlap``), ws weight
            preload of ``rows`` cycles per tile (or once). ``scalesim``: SCALE-Sim 3.0's schedule
            (compute cycles without memory stalls): every fold is timed alone, its fill/drain is
            the pipeline skew ``rows - 1 + cols - 1``, a ws fold first preloads ``rows`` cycles
            of weights, and the total is reported as SCALE-Sim does, as the index of the last
            cycle counted from 0 (one less than the cycles simulated). SCALE-Sim has neither
            overlap nor folding, so this model requires the three flags above to be false.
            ``cpu``: a CPU thread's GEMM library (``CpuGemmSpec`` per precision in ``cpu``): the
            "array" is 1 x 1 and its one PE the whole SIMD datapath, so ``macs_per_pe_per_cycle``
            is the core's rate for the rows of a GEMM; a GEMM costs its call, its passes over
            the weight at the bandwidth of the level the weight is in, and its MACs, one after
            another (one thread does them in turn). Requires rows = cols = 1, dataflow ``os``
            and the three flags above false.
            See ``hwsim.gemm`` for the closed forms.
        cpu: ``cycle_model: cpu`` only: one ``CpuGemmSpec`` per precision of
            ``macs_per_pe_per_cycle``.
    """

    rows: int
    cols: int
    macs_per_pe_per_cycle: dict[str, float]
    dataflow: Literal["os", "ws"] = "os"
    fill_drain_overlap: bool = False
    weight_preload_overlap: bool = False
    fold_outputs: bool = False
    cycle_model: Literal["hwsim", "scalesim", "cpu"] = "hwsim"
    cpu: dict[str, CpuGemmSpec] | None = None

    def __post_init__(self) -> None:
        require(self.rows >= 1, f"rows must be >= 1, got {self.rows}")
        require(self.cols >= 1, f"cols must be >= 1, got {self.cols}")
        _check_rates(self.macs_per_pe_per_cycle, "macs_per_pe_per_cycle")
        for p, r in self.macs_per_pe_per_cycle.items():
            if self.cycle_model == "scalesim":
                require(float(r).is_integer(), f"macs_per_pe_per_cycle.{p} must be a whole number "
                        f"with cycle_model: scalesim (integer MAC lanes per PE), got {r}")
            elif self.dataflow == "ws":
                extent = self.rows * r
                require(extent >= 1 and abs(extent - round(extent)) <= 1e-9 * extent,
                        f"macs_per_pe_per_cycle.{p}: with dataflow: ws a weight tile holds rows x "
                        f"rate = {self.rows} x {r} = {extent:g} values of k, which must be a whole "
                        "number >= 1")
        if self.cycle_model == "scalesim":
            for name in ("fill_drain_overlap", "weight_preload_overlap", "fold_outputs"):
                require(not getattr(self, name), f"{name} must be false with cycle_model: scalesim "
                        "(SCALE-Sim times every fold alone)")
        if self.cycle_model == "cpu":
            require(self.rows == 1 and self.cols == 1 and self.dataflow == "os",
                    "cycle_model: cpu models a CPU thread as a 1 x 1 output-stationary 'array' (its one PE "
                    f"is the SIMD datapath): rows, cols, dataflow must be 1, 1, os; got {self.rows}, "
                    f"{self.cols}, {self.dataflow}")
            for name in ("fill_drain_overlap", "weight_preload_overlap", "fold_outputs"):
                require(not getattr(self, name), f"{name} must be false with cycle_model: cpu (a CPU GEMM "
                        "has no array fill/drain, preload or folding)")
            missing = sorted(set(self.macs_per_pe_per_cycle) - set(self.cpu or {}))
            require(not missing, f"cpu: cycle_model: cpu needs an entry per precision of "
                    f"macs_per_pe_per_cycle; missing: {', '.join(missing)}")
            extra = sorted(set(self.cpu or {}) - set(self.macs_per_pe_per_cycle))
            require(not extra, f"cpu: entries for precisions the engine does not run: {', '.join(extra)}")
        else:
            require(self.cpu is None, f"cpu: only with cycle_model: cpu (this engine's is {self.cycle_model})")

    def array_macs_per_cycle(self, precision: str) -> float:
        """Whole-array MACs per cycle at ``precision`` (a supported one): rows * cols * per-PE rate."""
        return self.rows * self.cols * self.macs_per_pe_per_cycle[precision]


@dataclass(frozen=True)
class SFUSpec:
    """Special-function unit (sigmoid, tanh, exp, log, softmax elements).

    Attributes:
        elems_per_cycle: elements per cycle per supported precision (the SFU's precision(s)).
    """

    elems_per_cycle: dict[str, float]

    def __post_init__(self) -> None:
        _check_rates(self.elems_per_cycle, "elems_per_cycle")


@dataclass(frozen=True)
class VectorSpec:
    """Vector unit for element-wise ops and reductions.

    Attributes:
        elems_per_cycle: elements per cycle per supported precision.
    """

    elems_per_cycle: dict[str, float]

    def __post_init__(self) -> None:
        _check_rates(self.elems_per_cycle, "elems_per_cycle")


@dataclass(frozen=True)
class SelectSpec:
    """Which unit runs select/move ops (topk, sort, gather, embedding lookup, copy, cat).

    Attributes:
        unit: ``vector`` or ``sfu`` (shares that unit's time) or ``dedicated`` (its own unit).
        elems_per_cycle: elements handled per cycle (input elements for topk/sort).
    """

    unit: Literal["vector", "sfu", "dedicated"]
    elems_per_cycle: float

    def __post_init__(self) -> None:
        require(self.elems_per_cycle > 0, f"elems_per_cycle must be > 0, got {self.elems_per_cycle}")


@dataclass(frozen=True)
class CoreSpec:
    """One core.

    Attributes:
        matrix, sfu, vector, select: its compute units.
        scratchpad_bytes: private on-chip memory of the core.
        scratchpad_bw_bytes_per_s: scratchpad <-> units bandwidth.
        dispatch_overhead_cycles: fixed cycles per op (instruction issue, configuration, sync).
        dispatch_by_phase: cycles per op for the ops of the phases named (``workloads.graph.PHASES``),
            instead of ``dispatch_overhead_cycles``: e.g. a statically scheduled encoder issues
            its ops for less than a search that is decided step by step.
        hyp_overhead_cycles: cycles per hypothesis the search expands (per step, the search
            statistics of the graph), for the search's own bookkeeping (scoring, sorting and
            merging hypotheses) when this core runs it, as a CPU thread running the search in
            Python does; charged to the search phase's ops, spread evenly over them. 0 (default):
            a host does it alongside [assumption for the accelerator presets].
        concurrent_units: true (default): the matrix engine, SFU, vector and select units run
            ops at the same time, each one op at a time; false: the core runs one op at a time
            whatever its unit (a CPU thread, which issues every op itself).
    """

    matrix: MatrixEngineSpec
    sfu: SFUSpec
    vector: VectorSpec
    select: SelectSpec
    scratchpad_bytes: int
    scratchpad_bw_bytes_per_s: float
    dispatch_overhead_cycles: float = 0.0
    dispatch_by_phase: dict[str, float] | None = None
    hyp_overhead_cycles: float = 0.0
    concurrent_units: bool = True

    def __post_init__(self) -> None:
        from workloads.graph import PHASES

        for ph, c in (self.dispatch_by_phase or {}).items():
            require(ph in PHASES, f"dispatch_by_phase: unknown phase {ph!r}; phases: {', '.join(PHASES)}")
            require(c >= 0, f"dispatch_by_phase.{ph} must be >= 0, got {c}")
        require(self.hyp_overhead_cycles >= 0,
                f"hyp_overhead_cycles must be >= 0, got {self.hyp_overhead_cycles}")
        require(self.scratchpad_bytes >= 0, f"scratchpad_bytes must be >= 0, got {self.scratchpad_bytes}")
        require(self.scratchpad_bw_bytes_per_s > 0,
                f"scratchpad_bw_bytes_per_s must be > 0, got {self.scratchpad_bw_bytes_per_s}")
        require(self.dispatch_overhead_cycles >= 0,
                f"dispatch_overhead_cycles must be >= 0, got {self.dispatch_overhead_cycles}")


@dataclass(frozen=True)
class MappingSpec:
    """How the compiler maps work and memory (knobs of the mapping, not of the silicon).

    See ``hwsim.plan`` for what each knob changes.

    Attributes:
        residency: ``plan`` (per execution segment, the weights reused within the segment are
            kept on chip as capacity allows, the rest streams: ``hwsim.plan``), ``cache`` (the
            on-chip memories are LRU caches: a segment's reused weights stay at the smallest
            level that holds all of them, else stream at every use: ``hwsim.plan``), ``none`` (every
            weight streamed from DRAM at every use; activations stay on chip).
        prefetch: load the next segment's weights during the current one into the capacity the
            current one leaves free (double buffering).
        spatial: independent work groups of a segment (the directions of a layer; prediction
            net, LMs and joint of the search) get their own cores; false: every group uses
            every core, one group at a time per unit.
        split_min_macs: GEMMs with at least this many MACs are split over the cores of their
            work group (n divided); smaller ones run on one of them.
        split_overhead_cycles: extra cycles of a split GEMM (partition, synchronisation).
        cache_hit_curve: with ``residency: cache``, the share of a working set's weight bytes
            that the shared level serves, as measured under cyclic reuse (a miss-ratio curve):
            ``(working-set bytes, share)`` points, bytes increasing, shares in [0, 1] and not
            increasing; between points linear in log bytes, flat beyond them. It replaces the
            all-or-nothing test against ``shared_sram_bytes`` for the groups whose weights miss
            their scratchpads: the rest of those bytes stream from DRAM at every use.
    """

    residency: Literal["plan", "cache", "none"] = "plan"
    prefetch: bool = True
    spatial: bool = True
    split_min_macs: int = 1
    split_overhead_cycles: float = 0.0
    cache_hit_curve: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self) -> None:
        require(self.split_min_macs >= 1, f"split_min_macs must be >= 1, got {self.split_min_macs}")
        if self.cache_hit_curve is not None:
            pts = self.cache_hit_curve
            require(len(pts) >= 1 and all(len(p) == 2 for p in pts),
                    "cache_hit_curve: expected (bytes, share) points")
            require(self.residency == "cache", "cache_hit_curve is only used with residency: cache")
            require(all(b > 0 for b, _ in pts) and all(a[0] < b[0] for a, b in zip(pts, pts[1:])),
                    f"cache_hit_curve: bytes must be > 0 and increasing, got {[p[0] for p in pts]}")
            require(all(0 <= h <= 1 for _, h in pts) and all(a[1] >= b[1] for a, b in zip(pts, pts[1:])),
                    f"cache_hit_curve: shares must lie in [0, 1] and not increase, got {[p[1] for p in pts]}")
        require(self.split_overhead_cycles >= 0, "split_overhead_cycles must be >= 0")


@dataclass(frozen=True)
class EnergySpec:
    """Energy costs per component (``hwsim.energy``).

    Attributes:
        mac_j: joules per MAC per precision. Every precision a GEMM runs at needs an entry
            (a missing one is an error naming the field, not 0 J).
        scratchpad_byte_j, shared_byte_j, dram_byte_j, inter_core_byte_j: joules per byte moved
            at each memory level (DRAM bytes also cross the scratchpad; inter-core bytes are
            remote weight reads, split-GEMM broadcasts and gathers, and cross-core transfers).
        sfu_elem_j, vector_elem_j: joules per element on the SFU and the vector unit (select
            ops count on the unit that runs them).
        static_w: static (leakage and always-on) power in watts, charged over the whole latency.
    """

    mac_j: dict[str, float]
    scratchpad_byte_j: float = 0.0
    shared_byte_j: float = 0.0
    dram_byte_j: float = 0.0
    inter_core_byte_j: float = 0.0
    sfu_elem_j: float = 0.0
    vector_elem_j: float = 0.0
    static_w: float = 0.0

    def __post_init__(self) -> None:
        for p, e in self.mac_j.items():
            require(p in BITS, f"mac_j: unsupported precision name {p!r}; known: {list(BITS)}")
            require(e >= 0, f"mac_j.{p} must be >= 0, got {e}")
        for name in ("scratchpad_byte_j", "shared_byte_j", "dram_byte_j", "inter_core_byte_j",
                     "sfu_elem_j", "vector_elem_j", "static_w"):
            require(getattr(self, name) >= 0, f"{name} must be >= 0")


@dataclass(frozen=True)
class AreaSpec:
    """Silicon area coefficients at one technology node (``hwsim.area`` adds them up).

    Logic is given in µm² per lane (one MAC, or one element per cycle), SRAM in mm² per MiB. Every
    number in a preset names its source or says it is an assumption.

    Attributes:
        technology_nm: the node the coefficients are for. A label: ``hwsim.area`` does not rescale
            the coefficients from it (logic and SRAM scale differently from node to node), so a
            design at another node needs that node's coefficients.
        mac_um2: µm² of one MAC lane per precision (multiplier, accumulate adder, operand
            registers). A PE's datapath for precision p costs ``macs_per_pe_per_cycle[p] *
            mac_um2[p]``; a PE pays for every precision it lists (no sharing between them). Every
            precision the matrix engine lists needs an entry (a missing one is an error naming
            ``area.mac_um2.<precision>``, not 0 mm²).
        pe_overhead_um2: µm² per PE whatever its precisions (accumulator register, local control).
        sfu_lane_um2, vector_lane_um2: µm² per element per cycle of the SFU and the vector unit,
            per precision (every precision the unit lists needs an entry).
        select_lane_um2: µm² per element per cycle of a ``dedicated`` select unit (a select unit
            that shares the vector unit or the SFU adds no area). None: not given, an error only
            for a spec whose select unit is dedicated.
        sram_mm2_per_mib: mm² per MiB of SRAM macro (bit cells and periphery), for the
            scratchpads and the shared SRAM.
        ring_um2_per_link_bit: µm² per core per bit of inter-core link width (the link carries
            ``inter_core_bw_bytes_per_s / frequency_hz`` bytes per cycle). None: not given, an
            error only for a spec with more than one core.
        logic_overhead_fraction: area added to all logic (matrix, SFU, vector, select, ring) for
            what the lanes leave out: placement utilization, clock tree, wiring, control. Not
            applied to SRAM, whose density includes its periphery.
    """

    technology_nm: float
    mac_um2: dict[str, float]
    sfu_lane_um2: dict[str, float]
    vector_lane_um2: dict[str, float]
    sram_mm2_per_mib: float
    pe_overhead_um2: float = 0.0
    select_lane_um2: float | None = None
    ring_um2_per_link_bit: float | None = None
    logic_overhead_fraction: float = 0.0

    def __post_init__(self) -> None:
        require(self.technology_nm > 0, f"technology_nm must be > 0, got {self.technology_nm}")
        for name in ("mac_um2", "sfu_lane_um2", "vector_lane_um2"):
            for p, a in getattr(self, name).items():
                require(p in BITS, f"{name}: unsupported precision name {p!r}; known: {list(BITS)}")
                require(a > 0, f"{name}.{p} must be > 0, got {a}")
        require(self.sram_mm2_per_mib > 0, f"sram_mm2_per_mib must be > 0, got {self.sram_mm2_per_mib}")
        for name in ("pe_overhead_um2", "logic_overhead_fraction"):
            require(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("select_lane_um2", "ring_um2_per_link_bit"):
            v = getattr(self, name)
            require(v is None or v > 0, f"{name} must be > 0 (or left out), got {v}")


@dataclass(frozen=True)
class AcceleratorSpec:
    """A whole accelerator.

    Attributes:
        name: preset name.
        frequency_hz: clock of every unit.
        cores: number of identical cores.
        core: the core.
        shared_sram_bytes: on-chip memory shared by the cores (0 if none).
        shared_bw_bytes_per_s: bandwidth of the shared memory (to all cores together).
        dram_bw_bytes_per_s: off-chip memory bandwidth.
        dram_latency_s: latency of a DRAM access, paid once per op that streams from DRAM.
        inter_core_bw_bytes_per_s: core-to-core bandwidth (ring, NoC).
        inter_core_latency_s: latency of one core-to-core transfer.
        mapping: scheduler knobs.
        energy: optional energy costs.
        area: optional area coefficients (``hwsim.area``; None: the area is unknown).
        description: one line for tables.
    """

    name: str
    frequency_hz: float
    cores: int
    core: CoreSpec
    dram_bw_bytes_per_s: float
    shared_sram_bytes: int = 0
    shared_bw_bytes_per_s: float = 1e30
    dram_latency_s: float = 0.0
    inter_core_bw_bytes_per_s: float = 1e30
    inter_core_latency_s: float = 0.0
    mapping: MappingSpec = MappingSpec()
    energy: EnergySpec | None = None
    area: AreaSpec | None = None
    description: str = ""

    def __post_init__(self) -> None:
        require(self.frequency_hz > 0, f"frequency_hz must be > 0, got {self.frequency_hz}")
        require(1 <= self.cores <= MAX_CORES, f"cores must be 1..{MAX_CORES}, got {self.cores} (a larger "
                "chip takes hours to schedule op by op)")
        require(self.frequency_hz <= MAX_FREQUENCY_HZ,
                f"frequency_hz must be <= {MAX_FREQUENCY_HZ:g}, got {self.frequency_hz}")
        require(self.shared_sram_bytes >= 0, f"shared_sram_bytes must be >= 0, got {self.shared_sram_bytes}")
        for name in ("shared_bw_bytes_per_s", "dram_bw_bytes_per_s", "inter_core_bw_bytes_per_s"):
            require(getattr(self, name) > 0, f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("dram_latency_s", "inter_core_latency_s"):
            require(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")

    # ------------------------------------------------------------------------------------------

    @property
    def onchip_bytes(self) -> int:
        """Capacity for resident weights: every core's scratchpad plus the shared memory."""
        return self.cores * self.core.scratchpad_bytes + self.shared_sram_bytes

    def engine_precision(self, precision: str) -> str:
        """Precision the matrix engine really runs ``precision`` at (see ``fallback_precision``)."""
        return fallback_precision(precision, self.core.matrix.macs_per_pe_per_cycle)

    def peak_macs_per_s(self, precision: str) -> float:
        """Whole-chip peak MACs/s at ``precision`` (after fallback)."""
        p = self.engine_precision(precision)
        return self.cores * self.core.matrix.array_macs_per_cycle(p) * self.frequency_hz

    def to_dict(self) -> dict:
        return to_dict(self)

    def replace_path(self, path: str, value: Any) -> AcceleratorSpec:
        """A new spec with the field at dotted ``path`` set to ``value``, fully re-validated.

        Example: ``spec.replace_path("core.matrix.rows", 64)``,
        ``spec.replace_path("core.matrix.macs_per_pe_per_cycle.int4", 4)``.

        Raises:
            ConfigError: the path names no field, or the new value is invalid (field named).
        """
        return self.replace_paths({path: value})

    def replace_paths(self, changes: dict[str, Any]) -> AcceleratorSpec:
        """A new spec with every dotted path of ``changes`` set, validated once (so that values
        valid only together are accepted). The one way to edit a spec by path: sweeps, reports
        and ``replace_path`` use it.

        Raises:
            ConfigError: a path names no field (unknown fields are rejected), or the new spec is
                invalid (field named).
        """
        listed = ", ".join(f"{p}={v!r}" for p, v in changes.items())
        return replace_paths(self, changes, self.name, f"{self.name} with {listed}",
                             open_maps=("macs_per_pe_per_cycle", "elems_per_cycle", "mac_j"))

    def get_path(self, path: str) -> Any:
        """The value at dotted ``path`` (ConfigError naming it if there is none)."""
        node: Any = self
        for part in path.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif not isinstance(node, dict) and hasattr(node, part):
                node = getattr(node, part)
            else:
                raise ConfigError(f"{self.name}: {path}: no such field")
        return node


def presets() -> list[str]:
    """Names of the accelerator presets shipped in ``hwsim/presets/``."""
    return preset_names(PRESET_DIR)


def preset_path(name_or_path: str | Path) -> Path:
    """Path of a preset name or a YAML path (ConfigError for an unknown preset)."""
    return preset_file(name_or_path, PRESET_DIR, "hardware preset")


def load_spec(name_or_path: str | Path | AcceleratorSpec) -> AcceleratorSpec:
    """Load an accelerator spec from a preset name, a YAML path, or pass a loaded one through.

    Raises:
        ConfigError: unknown preset, unreadable file, or invalid content (file and field named).
    """
    if isinstance(name_or_path, AcceleratorSpec):
        return name_or_path
    path = preset_path(name_or_path)
    return from_dict(AcceleratorSpec, load_yaml(path), source=str(path))
