"""Chart overlays: a chart described as its differences from another one.

A behaviour profile's chart (``profiles/*.yaml``) is an overlay on ``states.yaml``: it adds
events and regions and patches the transitions of existing regions; the result is then
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
          replace:               # each `match` must select at least one written transition
            - match: {event: E, source: S, guard: [G, ...]}   # source and guard optional
              with: [TRANSITION, ...]                         # in place of what matched
          add: [TRANSITION, ...]
          ignore_in: {STATE: [EVENT, ...]}                    # added ignores
          doc: text                                           # replaces the region's doc
      substitute: {ACTION: OTHER_ACTION}                      # in every transition

A match compares the written entries: ``event`` and ``source`` as sets of names (a single
name or ``"*"`` as written), ``guard`` as the set of guard terms (``not g`` and literals such
as ``in: r.s`` included).
Every problem is reported with the overlay's file and line.
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import ChartError
from .model import guard_term

_OVERLAY_KEYS = {"events", "regions", "patch", "substitute"}
_PATCH_KEYS = {"replace", "add", "ignore_in", "doc"}


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


def _guard_set(v: Any) -> frozenset[str] | None:
    """Guard terms as written (names and literals, ``not`` included), canonical."""
    terms = v if isinstance(v, list) else [v]
    guards = [guard_term(x) for x in terms]
    if any(g is None for g in guards):
        return None
    return frozenset(str(g) for g in guards)


def _matches(t: Any, match: dict[str, Any]) -> bool:
    if not isinstance(t, dict):
        return False
    for key in ("event", "source"):
        if key in match and _set(t.get(key)) != _set(match[key]):
            return False
    return "guard" not in match or \
        _guard_set(t.get("guard") or []) == _guard_set(match["guard"] or [])


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
        if k not in _OVERLAY_KEYS:
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
            if k not in _PATCH_KEYS:
                bad(patch, f"{where}: unknown key {k!r} (expected one of {sorted(_PATCH_KEYS)})")
        ts = region.setdefault("transitions", [])
        for j, rep in enumerate(patch.get("replace") or []):
            rwhere = f"{where}.replace[{j}]"
            if not isinstance(rep, dict) or not isinstance(rep.get("match"), dict) or \
                    not isinstance(rep.get("with", []), list):
                bad(rep, f"{rwhere}: needs 'match' (a mapping) and 'with' (a list)",
                    _line(patch, 1))
                continue
            match = rep["match"]
            unknown = set(match) - {"event", "source", "guard"}
            if unknown:
                bad(match, f"{rwhere}.match: unknown key(s) {sorted(unknown)}")
                continue
            hits = [k for k, t in enumerate(ts) if _matches(t, match)]
            if not hits:
                bad(match, f"{rwhere}: matches no transition of region {rname!r}")
                continue
            first = hits[0]
            kept = [t for k, t in enumerate(ts) if k not in hits]
            ts[:] = kept[:first] + copy.deepcopy(list(rep.get("with") or [])) + kept[first:]
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

    subst = overlay.get("substitute") or {}
    if not isinstance(subst, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in subst.items()):
        bad(subst, "chart.substitute must map action names to action names")
        subst = {}
    used: set[str] = set()
    for region in regions:
        for t in region.get("transitions") or [] if isinstance(region, dict) else []:
            acts = t.get("actions") if isinstance(t, dict) else None
            if isinstance(acts, list):
                used |= {a for a in acts if a in subst}
                t["actions"] = [subst.get(a, a) for a in acts]
    for a in sorted(set(subst) - used):
        bad(subst, f"chart.substitute: no transition names action {a!r}")
    if problems:
        raise ChartError(problems, source)
    return doc
