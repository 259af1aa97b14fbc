"""Chart overlays: a chart described as its differences from another one.

A behaviour profile's chart (``profiles/*.yaml``) is an overlay on ``states.yaml``: it adds
events and regions, replaces whole regions (the base chart's seams, ``seam: true``: small
regions where profiles differ), and adds transitions to existing regions; the result is then
loaded and checked like any chart (:func:`turnfsm.chart.loader.build_chart`), so a composed
chart obeys every rule a written one does (exclusive guards, every event handled or ignored
in every state, registered names). An overlay document::

    chart:                       # the part that edits the chart (everything optional)
      events: {NAME: SPEC, ...}  # added events (a name the base declares is an error)
      regions:                   # added regions; `before: REGION` places one (default: last);
                                 # `replaces: REGION` puts it in that region's place, whole
        - {name: ..., before: turn, initial: ..., states: ..., transitions: ..., ignore_in: ...}
      patch:
        REGION:
          add: [TRANSITION, ...]                              # added transitions
          ignore_in: {STATE: [EVENT, ...]}                    # added ignores
          doc: text                                           # replaces the region's doc

A profile never edits or renames what the base chart wrote: where it must behave otherwise,
the base chart has a seam region it replaces whole, so the diagram shows the difference as a
region. The earlier keys ``patch.REGION.replace`` (transitions matched by their content) and
``substitute`` (action renames) are refused with an error naming the key and the file.
Every problem is reported with the overlay's file and line.
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import ChartError

_OVERLAY_KEYS = {"events", "regions", "patch"}
_PATCH_KEYS = {"add", "ignore_in", "doc"}
#: Keys of the earlier overlay format, refused with what to do instead.
_SUBSTITUTE = ("chart.substitute (action renames) is no longer part of the overlay format: "
               "replace the base chart's seam region that runs the action, whole "
               "(regions: - {name: REGION, replaces: REGION, ...})")
_REPLACE = ("chart.patch.{region}.replace (transitions matched by their content) is no "
            "longer part of the overlay format: replace the base chart's seam region whole "
            "(regions: - {{name: REGION, replaces: REGION, ...}}), or add transitions with "
            "patch.{region}.add")


def _line(obj: Any, default: int) -> int:
    return int(getattr(obj, "line", default) or default)


def _set(v: Any) -> frozenset[str] | None:
    if v is None:
        return None
    if isinstance(v, str):
        return frozenset([v])
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return frozenset(v)
    return None


def compose(base: Any, overlay: Any, source: str) -> Any:
    """The base chart document with ``overlay`` (the overlay's ``chart`` part) applied.

    ``base`` is left untouched. Raises :class:`ChartError` naming ``source`` and the line
    of each problem.
    """
    problems: list[str] = []

    def bad(obj: Any, msg: str, default: int = 1) -> None:
        problems.append(f"{source}:{_line(obj, default)}: {msg}")

    if not isinstance(base, dict):
        raise ChartError([f"{source}:1: the base chart must be a mapping"], source)
    doc = copy.deepcopy(base)
    if overlay is None:
        return doc
    if not isinstance(overlay, dict):
        raise ChartError([f"{source}:{_line(overlay, 1)}: 'chart' must be a mapping"], source)
    for k in overlay:
        if k == "substitute":
            bad(overlay, _SUBSTITUTE)
        elif k not in _OVERLAY_KEYS:
            bad(overlay, f"chart: unknown key {k!r} (expected one of {sorted(_OVERLAY_KEYS)})")
    events = doc.setdefault("events", {})
    added = overlay.get("events") or {}
    if not isinstance(added, dict):
        bad(added, "chart.events must be a mapping of event names")
        added = {}
    for name, spec in added.items():
        if name in events:
            bad(added, f"chart.events.{name}: the base chart already declares it")
        events[name] = copy.deepcopy(spec)

    regions = doc.setdefault("regions", [])
    by_name = {r.get("name"): r for r in regions if isinstance(r, dict)}
    new_regions = overlay.get("regions") or []
    if not isinstance(new_regions, list):
        bad(new_regions, "chart.regions must be a list of regions")
        new_regions = []
    for i, raw in enumerate(new_regions):
        if not isinstance(raw, dict):
            bad(raw, f"chart.regions[{i}]: must be a mapping", _line(new_regions, 1))
            continue
        region = copy.deepcopy(raw)
        before = region.pop("before", None)
        replaces = region.pop("replaces", None)
        name = region.get("name")
        names = [r.get("name") for r in regions if isinstance(r, dict)]
        if replaces is not None:
            if replaces not in names or before is not None:
                bad(raw, f"chart.regions[{i}] ({name}): replaces names unknown region "
                         f"{replaces!r}" if replaces not in names else
                         f"chart.regions[{i}] ({name}): 'replaces' and 'before' exclude each other")
                continue
            regions[names.index(replaces)] = region
            del by_name[replaces]
            by_name[name] = region
            continue
        if name in by_name:
            bad(raw, f"chart.regions[{i}] ({name}): the base chart already has this region")
            continue
        if before is None:
            regions.append(region)
        elif before in names:
            regions.insert(names.index(before), region)
        else:
            bad(raw, f"chart.regions[{i}] ({name}): before names unknown region {before!r}")
            continue
        by_name[name] = region

    patches = overlay.get("patch") or {}
    if not isinstance(patches, dict):
        bad(patches, "chart.patch must map region names to patches")
        patches = {}
    for rname, patch in patches.items():
        where = f"chart.patch.{rname}"
        target_region = by_name.get(rname)
        if target_region is None:
            bad(patches, f"{where}: no region {rname!r} to patch")
            continue
        region = target_region
        if not isinstance(patch, dict):
            bad(patch, f"{where}: must be a mapping", _line(patches, 1))
            continue
        for k in patch:
            if k == "replace":
                bad(patch, _REPLACE.format(region=rname))
            elif k not in _PATCH_KEYS:
                bad(patch, f"{where}: unknown key {k!r} (expected one of {sorted(_PATCH_KEYS)})")
        ts = region.setdefault("transitions", [])
        add = patch.get("add") or []
        if not isinstance(add, list):
            bad(add, f"{where}.add must be a list of transitions")
        else:
            ts.extend(copy.deepcopy(add))
        ign = patch.get("ignore_in") or {}
        if not isinstance(ign, dict):
            bad(ign, f"{where}.ignore_in must map states to event lists")
        else:
            target = region.setdefault("ignore_in", {})
            for state, evs in ign.items():
                if _set(evs) is None:
                    bad(ign, f"{where}.ignore_in.{state}: must be a list of event names")
                    continue
                have = target.get(state) or []
                target[state] = [*have, *(e for e in evs if e not in have)]
        if "doc" in patch:
            region["doc"] = patch["doc"]

    if problems:
        raise ChartError(problems, source)
    return doc
