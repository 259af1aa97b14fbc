"""Every decision in the chart: an AST lint over the engine's actions (``core/rules/``).

A *decision point* is a branch in Python (``if``, ``while``, a conditional expression, a
comprehension filter, a short-circuit ``and``/``or`` whose left side decides, or a boolean
computed and passed on to a helper) whose condition reads

* a region's state (``cx.in_state``, ``cx.state_of``, ``cx.s``, or a ``Context`` member
  derived from them such as ``cx.user_speaking`` or ``cx.closed``): kind ``region``, or
  ``mode`` when the region is ``mode``;
* an option (``cx.options``, and the copies ``Context`` keeps: ``eou_model``, ``limit``,
  ``boundary``, ``endpointing_options``): kind ``option``;
* Python state that shadows a region (:data:`SHADOW`): kind ``shadow``;

directly, through a local assigned from such a read, or through a call of a rule helper
whose result depends on one. Guards (``@RULES.guard``) may read anything: that is what a
guard is; helpers called only by guards are guard-side too. Everything else under
``core/rules/`` (actions, and the helpers and deferred steps they run) is an action: it
should only emit, record, arm/cancel a timer or raise an event, and leave the choice to a
guarded transition (issue 23, "Every decision in the chart").

A branch that only computes a value an action copies into a record or payload (what an
output reports, not what the engine does) is data, not a decision: its line says so with a
comment ``# data: WHY`` (a reason is required), and the lint skips it.

:data:`EXCEPTIONS` lists every decision point that exists today, per ``file:function``,
with its count and the reason it is still Python. A new decision point (or one more in a
listed function) fails the test; so does a listed count that is now too high (lower it: the
list only shrinks). ``PYTHONPATH=src python scripts/chart_metrics.py decisions`` prints the
points one by one.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import attrs
import pytest

CORE = Path(__file__).resolve().parents[1] / "src" / "turnfsm" / "core"

#: Context members that read the state vector (the rest is derived from context.py).
REGION_ROOTS = frozenset({"in_state", "state_of", "s", "index", "vad_region", "vad_detached"})
#: Context members that are options (or the copies Context keeps of them).
OPTION_ROOTS = frozenset({"options", "eou_model", "limit", "boundary", "endpointing_options"})
#: Context members that shadow a region: each is a state some region (or a region still to
#: be declared) should hold. ``wait`` and ``commit`` are records whose presence and flags
#: (``resolved``, ``finalized``, ``new_speech``) make sub-machines of the turn and commit
#: regions.
SHADOW = frozenset({"segment_final", "verdict_interruption", "wait", "commit"})

#: The flags of those records that are states (their other fields are data).
RECORD_STATE = frozenset({"resolved", "finalized", "new_speech", "onsets", "wait_id", "cid"})
RECORD = "record"  # marks a local bound to the wait or commit record
RECORD_SET = frozenset({RECORD})


@attrs.frozen
class Point:
    """One decision point: where, which kinds of state its condition reads, and its text."""

    file: str
    function: str
    line: int
    kinds: tuple[str, ...]
    test: str


def _decorator(fn: ast.FunctionDef) -> str | None:
    for d in fn.decorator_list:
        if isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and \
                isinstance(d.func.value, ast.Name) and d.func.value.id == "RULES":
            return d.func.attr  # "guard" or "action"
    return None


def _context_members() -> dict[str, tuple[frozenset[str], bool]]:
    """The kinds of state each Context property/method reads (directly or through another
    member), from context.py, and whether it is a property: e.g. ``user_speaking`` ->
    ({region}, True). A method counts only where it is called."""
    tree = ast.parse((CORE / "context.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Context")
    bodies = {f.name: f for f in cls.body if isinstance(f, ast.FunctionDef)}
    kinds: dict[str, set[str]] = {name: set() for name in bodies}
    changed = True
    while changed:
        changed = False
        for name, f in bodies.items():
            if name in REGION_ROOTS or name == "__init__":
                continue
            found: set[str] = set()
            for n in ast.walk(f):
                if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and \
                        n.value.id == "self":
                    a = n.attr
                    if a in REGION_ROOTS:
                        found.add("region")
                    elif a in OPTION_ROOTS:
                        found.add("option")
                    elif a in SHADOW:
                        found.add("shadow")
                    elif a in kinds and a != name:
                        found |= kinds[a]
            if not found <= kinds[name]:
                kinds[name] |= found
                changed = True
    # only members whose *result* carries the state: properties and value-returning methods
    out: dict[str, tuple[frozenset[str], bool]] = {}
    for name, f in bodies.items():
        returns = any(isinstance(n, ast.Return) and n.value is not None for n in ast.walk(f))
        prop = any(isinstance(d, ast.Name) and d.id == "property" for d in f.decorator_list)
        if returns and kinds[name]:
            out[name] = (frozenset(kinds[name]), prop)
    return out


class _Lint:
    """Taint analysis of one set of modules (functions summarised to a fixpoint)."""

    def __init__(self, modules: dict[str, ast.Module], *, methods: bool) -> None:
        self.modules = modules
        self.members = _context_members()
        self.functions: dict[str, tuple[str, ast.FunctionDef, str | None]] = {}
        for file, tree in modules.items():
            for node in tree.body:
                if isinstance(node, ast.FunctionDef):
                    self.functions[node.name] = (file, node, _decorator(node))
                elif methods and isinstance(node, ast.ClassDef):
                    for f in node.body:
                        if isinstance(f, ast.FunctionDef):
                            self.functions[f"{node.name}.{f.name}"] = (file, f, None)
        self.returns: dict[str, frozenset[str]] = {}
        changed = True
        while changed:  # what each function's result depends on
            changed = False
            for name, (_file, fn, _kind) in self.functions.items():
                r = self._returns(fn)
                if r != self.returns.get(name, frozenset()):
                    self.returns[name] = r
                    changed = True

    # -- taint ---------------------------------------------------------------------------------

    def _kinds(self, node: ast.AST, env: dict[str, frozenset[str]]) -> frozenset[str]:
        """The kinds of state an expression reads."""
        found: set[str] = set()
        self._visit(node, env, found)
        return frozenset(found)

    def _visit(self, n: ast.AST, env: dict[str, frozenset[str]], found: set[str]) -> None:
        if isinstance(n, ast.Attribute) and _is_record(n.value, env):
            if n.attr in RECORD_STATE:
                found.add("shadow")  # a flag of the record's sub-machine
            return  # any other field of the record is data
        if isinstance(n, ast.Name):
            k = env.get(n.id, frozenset())
            found |= {"shadow"} if RECORD in k else k
            return
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and \
                n.value.id == "options":
            found.add("option")
            return
        if isinstance(n, ast.Attribute) and _is_context(n.value):
            a = n.attr
            if a in REGION_ROOTS and a not in ("in_state", "state_of"):
                found.add("region")
            elif a in OPTION_ROOTS:
                found.add("option")
            elif a in SHADOW:
                found.add("shadow")
            elif a in self.members and self.members[a][1]:
                found |= self.members[a][0]  # a property
            return
        if isinstance(n, ast.Call):
            f = n.func
            if isinstance(f, ast.Attribute) and _is_context(f.value):
                region = n.args[0] if n.args else None
                if f.attr in ("in_state", "state_of"):
                    mode = isinstance(region, ast.Constant) and region.value == "mode"
                    found.add("mode" if mode else "region")
                elif f.attr in self.members:
                    found |= self.members[f.attr][0]  # a method whose result reads state
            elif isinstance(f, ast.Name) and f.id in self.returns:
                found |= self.returns[f.id]
        for child in ast.iter_child_nodes(n):
            self._visit(child, env, found)

    def _env(self, fn: ast.FunctionDef) -> dict[str, frozenset[str]]:
        """Locals (in source order) and what state they carry."""
        env: dict[str, frozenset[str]] = {}
        for n in ast.walk(fn):
            if isinstance(n, ast.Assign):
                k = RECORD_SET if _is_record(n.value, env) else self._kinds(n.value, env)
                for t in n.targets:
                    for el in (t.elts if isinstance(t, ast.Tuple) else [t]):
                        if isinstance(el, ast.Name) and k:
                            env[el.id] = env.get(el.id, frozenset()) | k
            elif isinstance(n, ast.NamedExpr) and isinstance(n.target, ast.Name):
                k = self._kinds(n.value, env)
                if k:
                    env[n.target.id] = k
        return env

    def _returns(self, fn: ast.FunctionDef) -> frozenset[str]:
        env = self._env(fn)
        k: frozenset[str] = frozenset()
        for n in ast.walk(fn):
            if isinstance(n, ast.Return) and n.value is not None:
                k |= self._kinds(n.value, env)
        return k

    # -- decisions -----------------------------------------------------------------------------

    def _guard_side(self) -> set[str]:
        """Guards, and helpers only guards (or guard-side helpers) call."""
        callers: dict[str, set[str]] = {name: set() for name in self.functions}
        for name, (_file, fn, _kind) in self.functions.items():
            for n in ast.walk(fn):
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and \
                        n.func.id in callers and n.func.id != name:
                    callers[n.func.id].add(name)
        side = {name for name, (_f, _fn, kind) in self.functions.items() if kind == "guard"}
        changed = True
        while changed:
            changed = False
            for name, (_f, _fn, kind) in self.functions.items():
                if name in side or kind is not None or not callers[name]:
                    continue
                if callers[name] <= side:
                    side.add(name)
                    changed = True
        return side

    def points(self) -> list[Point]:
        """Every decision point of the action side."""
        found: list[Point] = []
        guard_side = self._guard_side()
        for name, (file, fn, _kind) in self.functions.items():
            if name in guard_side:
                continue
            env = self._env(fn)
            for test, line in _tests(fn):
                k = self._kinds(test, env)
                if k:
                    text = ast.unparse(test)
                    found.append(Point(file, name, line, tuple(sorted(k)),
                                       text if len(text) <= 90 else text[:87] + "..."))
        return sorted(found, key=lambda p: (p.file, p.line, p.function))


def _is_context(node: ast.AST) -> bool:
    """``cx``, ``self`` (inside Context) or ``self.cx`` (the engine's)."""
    if isinstance(node, ast.Name):
        return node.id in ("cx", "self")
    return isinstance(node, ast.Attribute) and node.attr == "cx" and \
        isinstance(node.value, ast.Name) and node.value.id == "self"


def _is_record(node: ast.AST, env: dict[str, frozenset[str]]) -> bool:
    """``cx.wait``/``cx.commit``, or a local bound to one."""
    if isinstance(node, ast.Name):
        return RECORD in env.get(node.id, frozenset())
    return isinstance(node, ast.Attribute) and node.attr in ("wait", "commit") and \
        _is_context(node.value)


def _tests(fn: ast.FunctionDef) -> Iterable[tuple[ast.expr, int]]:
    """The conditions a function branches on (with their lines)."""
    for n in ast.walk(fn):
        if isinstance(n, (ast.If, ast.While, ast.IfExp)):
            yield n.test, n.test.lineno
        elif isinstance(n, ast.comprehension):
            for cond in n.ifs:
                yield cond, cond.lineno
        elif isinstance(n, ast.BoolOp) and not _is_condition(fn, n):
            for v in n.values[:-1]:  # a short circuit decides whether the rest runs
                yield v, v.lineno
        elif isinstance(n, ast.Call):
            for a in [*n.args, *(k.value for k in n.keywords)]:
                if isinstance(a, (ast.Compare, ast.BoolOp)) or (
                        isinstance(a, ast.UnaryOp) and isinstance(a.op, ast.Not)):
                    yield a, a.lineno  # a flag computed here, branched on by the callee


def _is_condition(fn: ast.FunctionDef, op: ast.BoolOp) -> bool:
    """Whether ``op`` is (inside) the condition of an if/while/ifexp already counted, or a
    call argument already counted."""
    for n in ast.walk(fn):
        if isinstance(n, (ast.If, ast.While, ast.IfExp)) and \
                any(m is op for m in ast.walk(n.test)):
            return True
        if isinstance(n, ast.comprehension) and any(m is op for c in n.ifs for m in ast.walk(c)):
            return True
        if isinstance(n, ast.Call):
            for a in [*n.args, *(k.value for k in n.keywords)]:
                if any(m is op for m in ast.walk(a)) and (
                        isinstance(a, (ast.Compare, ast.BoolOp)) or (
                            isinstance(a, ast.UnaryOp) and isinstance(a.op, ast.Not))):
                    return True
        if isinstance(n, ast.BoolOp) and n is not op and any(m is op for m in n.values):
            return True  # the inner operand of a counted short circuit
    return False


def decision_points(paths: Iterable[Path], *, methods: bool = False,
                    sources: dict[str, str] | None = None) -> list[Point]:
    """The decision points of the action side of ``paths`` (``sources``: file name -> source
    text, read instead of the file; ``methods``: also lint class methods)."""
    modules: dict[str, ast.Module] = {}
    lines: dict[str, list[str]] = {}
    for p in paths:
        name = p.name
        text = sources[name] if sources is not None and name in sources else p.read_text()
        modules[name] = ast.parse(text)
        lines[name] = text.splitlines()
    for name, text in (sources or {}).items():
        if name not in modules:
            modules[name] = ast.parse(text)
            lines[name] = text.splitlines()
    return [p for p in _Lint(modules, methods=methods).points()
            if not _DATA.search(lines[p.file][p.line - 1])]


#: the comment that marks a branch computing a record's or payload's value (with a reason)
_DATA = re.compile(r"#\s*data:\s*\S")


def rules_points(sources: dict[str, str] | None = None) -> list[Point]:
    """The decision points under ``core/rules/``."""
    return decision_points(sorted((CORE / "rules").glob("*.py")), sources=sources)


# (file, function): (decision points, why the choice is still made in Python). Issue 23's
# rebuild removes them; docs/design/chart-rebuild.md says which region or guard takes each.
EXCEPTIONS: dict[tuple[str, str], tuple[int, str]] = {
    ("streams.py", "vad_window"): (1, "the VAD window data path (before the machine) drops "
                                   "windows while vad_input is detached"),
}


def check(points: list[Point]) -> list[str]:
    """Problems: decision points not in EXCEPTIONS, and listed counts now too high."""
    have = Counter((p.file, p.function) for p in points)
    problems = []
    for key, n in sorted(have.items()):
        allowed = EXCEPTIONS.get(key, (0, ""))[0]
        if n > allowed:
            lines = [f"    {p.file}:{p.line} [{','.join(p.kinds)}] {p.test}"
                     for p in points if (p.file, p.function) == key]
            problems.append(f"{key[0]}:{key[1]} has {n} decision point(s) in Python, "
                            f"{allowed} listed; make the choice a guarded transition:\n"
                            + "\n".join(lines))
    for key, (n, _why) in sorted(EXCEPTIONS.items()):
        if have.get(key, 0) < n:
            problems.append(f"{key[0]}:{key[1]} is listed with {n} decision point(s) and has "
                            f"{have.get(key, 0)}: lower its count in EXCEPTIONS (the list "
                            "only shrinks)")
    return problems


# -- the tests --------------------------------------------------------------------------------


def test_no_new_decisions_in_actions() -> None:
    """Every Python decision point of an action under core/rules/ is a listed exception."""
    problems = check(rules_points())
    assert not problems, "\n".join(problems)


def test_every_exception_has_a_reason_and_exists() -> None:
    """Each listed exception names a real function of core/rules/ and says why."""
    names = {(p.name, n.name) for p in (CORE / "rules").glob("*.py")
             for n in ast.parse(p.read_text()).body if isinstance(n, ast.FunctionDef)}
    for key, (n, why) in EXCEPTIONS.items():
        assert key in names, f"{key[0]}:{key[1]} is listed but does not exist"
        assert n > 0 and len(why) > 20, f"{key[0]}:{key[1]}: give a count and a reason"


_ACTION = '''
@RULES.action("pick")
def pick(cx, e):
    """Chooses in Python."""
    {body}
'''


@pytest.mark.parametrize("body, kinds", [
    ('if cx.in_state("mode", "vad"):\n        cx.emit(e)', ("mode",)),
    ('if cx.in_state("turn", "open"):\n        cx.emit(e)', ("region",)),
    ("if cx.user_speaking:\n        cx.emit(e)", ("region",)),
    ("if cx.options.speech_feedback:\n        cx.fire('x')", ("option",)),
    ("limit = cx.options.backchannel_max_words\n    if len(e.text) > limit:\n"
     "        cx.emit(e)", ("option",)),
    ("x = 1 if cx.segment_final else 2\n    cx.emit(x)", ("shadow",)),
    ("cx.closed or cx.emit(e)", ("region",)),
    ("helper(cx, flag=not cx.agent_speaking)", ("region",)),
    ("[cx.emit(h) for h in cx.held if cx.eou_model]", ("option",)),
])
def test_lint_finds_a_decision(body: str, kinds: tuple[str, ...]) -> None:
    """The lint reports a branch on a region, the mode, an option or a shadow flag."""
    pts = decision_points([], sources={"x.py": _ACTION.format(body=body)})
    assert [(p.function, p.kinds) for p in pts] == [("pick", kinds)]


def test_lint_follows_helpers_and_spares_guards() -> None:
    """A helper's result carries what it reads; guards and guard-only helpers may read it."""
    src = '''
def _speaking(cx):
    return cx.in_state("user_speech", "speaking")

def _only_for_guards(cx):
    if cx.in_state("mode", "manual"):
        return False
    return True

@RULES.guard("g")
def g(cx, e):
    """A guard reads regions."""
    return _only_for_guards(cx) and cx.in_state("mode", "vad")

@RULES.action("a")
def a(cx, e):
    """An action that decides through a helper."""
    if _speaking(cx):
        cx.emit(e)
    if e.text:
        cx.emit(e)
'''
    pts = decision_points([], sources={"x.py": src})
    assert [(p.function, p.kinds, p.test) for p in pts] == [("a", ("region",), "_speaking(cx)")]


def test_lint_catches_a_decision_injected_in_a_rules_module() -> None:
    """A copy of gate.py whose hold_stt branches on the mode fails the check."""
    path = CORE / "rules" / "gate.py"
    text = path.read_text()
    anchor = "    cx.held.append(e)\n"
    assert anchor in text
    injected = text.replace(anchor, anchor + '    if cx.in_state("mode", "stt"):\n'
                                             "        cx.held.clear()\n", 1)
    assert not check(rules_points())
    problems = check(rules_points({"gate.py": injected}))
    assert len(problems) == 1 and problems[0].startswith("gate.py:hold_stt has 1 decision")


def test_lint_skips_a_branch_marked_as_data() -> None:
    """A branch that computes a value copied into a record, marked ``# data: WHY``, is not
    a decision point; the same branch unmarked, or marked without a reason, is."""
    line = "x = cx.agent_started_at if cx.agent_speaking else None{mark}\n    cx.emit(x)"
    for mark, points in (("  # data: the record names it", 0), ("", 1), ("  # data:", 1)):
        src = _ACTION.format(body=line.format(mark=mark))
        assert len(decision_points([], sources={"x.py": src})) == points, mark


def test_lint_sees_data_branches_as_none() -> None:
    """Branches on the payload or on turn data are not decision points of this lint."""
    body = ("if e.is_interruption and cx.turn.transcript:\n        cx.emit(e)\n"
            "    for h in cx.held:\n        cx.emit(h)")
    assert decision_points([], sources={"x.py": _ACTION.format(body=body)}) == []
