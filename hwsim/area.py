"""Silicon area of an accelerator: a first-order model from the spec's ``area`` coefficients.

Every term is a count from the spec times a coefficient of ``AreaSpec`` (``hwsim.spec``), whose
numbers live in the preset YAML with their sources (see the README's "Area model" for the table)::

    matrix      = cores * rows * cols * (sum_p macs_per_pe_per_cycle[p] * mac_um2[p] + pe_overhead_um2)
    sfu         = cores * sum_p sfu.elems_per_cycle[p] * sfu_lane_um2[p]
    vector      = cores * sum_p vector.elems_per_cycle[p] * vector_lane_um2[p]
    select      = cores * select.elems_per_cycle * select_lane_um2     (a dedicated unit only)
    ring        = cores * link_bits * ring_um2_per_link_bit            (more than one core only;
                  link_bits = 8 * inter_core_bw_bytes_per_s / frequency_hz)
    overhead    = logic_overhead_fraction * (matrix + sfu + vector + select + ring)
    scratchpad  = cores * scratchpad_bytes / MiB * sram_mm2_per_mib
    shared_sram = shared_sram_bytes / MiB * sram_mm2_per_mib

What it leaves out, by construction: datapath sharing between precisions (a PE pays for every
precision it lists: an upper bound for fused multi-precision designs), SRAM banking and ports
(capacity only), I/O, PHYs, PLLs and test logic. A spec without an ``area`` section has no area
(``area`` returns None); a coefficient the spec needs and does not give is an error naming it,
never 0 mm².
"""

from __future__ import annotations

import logging

from dataclasses import dataclass

from hwsim.spec import AcceleratorSpec
from models.yamlio import ConfigError

log = logging.getLogger(__name__)

#: Components of ``AreaBreakdown``, in the order of ``as_dict``; they sum to ``total_mm2``.
COMPONENTS = ("matrix", "sfu", "vector", "select", "scratchpad", "shared_sram", "ring", "overhead")
MIB = 2**20
UM2_PER_MM2 = 1e6
#: Inter-core bandwidth at or above this is the spec's "unbounded" default, which has no area.
UNBOUNDED_BW_BYTES_PER_S = 1e29


@dataclass(frozen=True)
class AreaBreakdown:
    """Area of the whole chip per component, in mm².

    Attributes:
        matrix_mm2, sfu_mm2, vector_mm2, select_mm2, scratchpad_mm2, shared_sram_mm2, ring_mm2,
            overhead_mm2: the components (``COMPONENTS``), every core included.
        matrix_by_precision_mm2: the matrix engines' MAC lanes split by precision, plus
            ``pe_overhead``; sums to ``matrix_mm2``.
        technology_nm: the node of the coefficients.
    """

    matrix_mm2: float
    sfu_mm2: float
    vector_mm2: float
    select_mm2: float
    scratchpad_mm2: float
    shared_sram_mm2: float
    ring_mm2: float
    overhead_mm2: float
    matrix_by_precision_mm2: dict[str, float]
    technology_nm: float

    @property
    def total_mm2(self) -> float:
        return sum(self.as_dict().values())

    def as_dict(self) -> dict[str, float]:
        """{component: mm²} in ``COMPONENTS`` order (sums to ``total_mm2``)."""
        return {c: getattr(self, f"{c}_mm2") for c in COMPONENTS}


def _lanes_um2(rates: dict[str, float], coeffs: dict[str, float], spec: AcceleratorSpec,
               field: str) -> dict[str, float]:
    """um^2 per precision of a unit with ``rates`` lanes of ``coeffs`` um^2 (missing: ConfigError)."""
    missing = [p for p in rates if p not in coeffs]
    if missing:
        raise ConfigError(f"{spec.name}: {', '.join(f'area.{field}.{p}' for p in missing)}: no entry, "
                          f"and the unit lists {sorted(rates)} (given: {sorted(coeffs)})")
    return {p: r * coeffs[p] for p, r in rates.items()}


def area(spec: AcceleratorSpec) -> AreaBreakdown | None:
    """The chip's area per component from ``spec.area`` (formulas in the module docstring).

    Returns:
        The breakdown in mm², or None if the spec has no ``area`` section.

    Raises:
        ConfigError: a coefficient the spec needs is missing (named: ``area.mac_um2.int8``,
            ``area.select_lane_um2`` for a dedicated select unit, ``area.ring_um2_per_link_bit``
            for several cores), or the ring's bandwidth is the unbounded default.
    """
    a = spec.area
    if a is None:
        return None
    core = spec.core
    pes = spec.cores * core.matrix.rows * core.matrix.cols
    lanes = _lanes_um2(core.matrix.macs_per_pe_per_cycle, a.mac_um2, spec, "mac_um2")
    by_precision = {p: pes * um2 / UM2_PER_MM2 for p, um2 in lanes.items()}
    by_precision["pe_overhead"] = pes * a.pe_overhead_um2 / UM2_PER_MM2
    matrix = sum(by_precision.values())
    sfu = spec.cores * sum(_lanes_um2(core.sfu.elems_per_cycle, a.sfu_lane_um2, spec,
                                      "sfu_lane_um2").values())
    vector = spec.cores * sum(_lanes_um2(core.vector.elems_per_cycle, a.vector_lane_um2, spec,
                                         "vector_lane_um2").values())
    select = 0.0
    if core.select.unit == "dedicated":
        if a.select_lane_um2 is None:
            raise ConfigError(f"{spec.name}: area.select_lane_um2 is needed: the select unit is dedicated")
        select = spec.cores * core.select.elems_per_cycle * a.select_lane_um2
    ring = 0.0
    if spec.cores > 1:
        if a.ring_um2_per_link_bit is None:
            raise ConfigError(f"{spec.name}: area.ring_um2_per_link_bit is needed: the chip has "
                              f"{spec.cores} cores")
        if spec.inter_core_bw_bytes_per_s >= UNBOUNDED_BW_BYTES_PER_S:
            raise ConfigError(f"{spec.name}: inter_core_bw_bytes_per_s is unbounded "
                              f"({spec.inter_core_bw_bytes_per_s:g}); an area needs a finite link")
        link_bits = 8.0 * spec.inter_core_bw_bytes_per_s / spec.frequency_hz
        ring = spec.cores * link_bits * a.ring_um2_per_link_bit
    sfu, vector, select, ring = (x / UM2_PER_MM2 for x in (sfu, vector, select, ring))
    return AreaBreakdown(
        matrix_mm2=matrix, sfu_mm2=sfu, vector_mm2=vector, select_mm2=select,
        scratchpad_mm2=spec.cores * core.scratchpad_bytes / MIB * a.sram_mm2_per_mib,
        shared_sram_mm2=spec.shared_sram_bytes / MIB * a.sram_mm2_per_mib,
        ring_mm2=ring,
        overhead_mm2=a.logic_overhead_fraction * (matrix + sfu + vector + select + ring),
        matrix_by_precision_mm2=by_precision, technology_nm=a.technology_nm)


def area_mm2(spec: AcceleratorSpec) -> float | None:
    """Total area in mm², or None if the spec has no ``area`` section."""
    b = area(spec)
    return None if b is None else b.total_mm2


def area_summary(spec: AcceleratorSpec) -> dict:
    """Summary entries: ``area_mm2`` and ``area_breakdown_mm2`` {component: mm²}; nothing (an
    empty dict) when the spec has no ``area`` section, as for ``energy_j``. A design whose area
    the coefficients cannot give (a coefficient it needs is missing, an unbounded link) is still
    costed: ``area_mm2`` is None and ``area_error`` says why."""
    try:
        b = area(spec)
    except ConfigError as exc:
        log.info("no area: %s", exc)
        return {"area_mm2": None, "area_error": str(exc)}
    if b is None:
        return {}
    return {"area_mm2": b.total_mm2, "area_breakdown_mm2": b.as_dict()}
