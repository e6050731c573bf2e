"""The fault points the tests arm are exactly the `fault_point(...)` names in the code.

A test that arms a name the code no longer has runs without its crash ever happening, so a
renamed point would quietly turn a crash test into a plain run; a point that no test arms is
a kill switch in the server that nothing exercises. Both sides are read from the source.
"""

from __future__ import annotations

import ast
import functools
import re

from source_files import ROOT, parsed, python_files, where

# A fault point is named <service>.<area>.<step>[.<detail>]; the test side finds armed names by
# that shape, so the code must keep to it (checked below).
NAME = re.compile(r"(scheduler|selector|embedder|gateway)\.[a-z_]+\.[a-z_]+(\.[a-z0-9_]+)*")
# tests/deploy holds Helm value paths of the same dotted shape (`embedder.autoscaling.enabled`)
# and runs no service code, so it arms nothing.
NOT_ARMING = ("tests/deploy/",)
# Code points that no test arms, each with the reason. Empty: every point is armed.
UNARMED: dict[str, str] = {}


def _pattern(arg: ast.expr, at: str) -> str:
    """The name a fault_point call passes, as a regex: an f-string's fields match any name segment."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return re.escape(arg.value)
    if isinstance(arg, ast.JoinedStr):
        parts = [re.escape(str(v.value)) if isinstance(v, ast.Constant) else "[a-z0-9_]+" for v in arg.values]
        return "".join(parts)
    raise AssertionError(f"{at}: fault_point's name must be a string literal or an f-string, to be checked")


def _called(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


@functools.cache
def code_points() -> dict[str, str]:
    """regex of each fault point name -> where the code reaches it."""
    points: dict[str, str] = {}
    for path in python_files("datapool", "services"):
        for node in ast.walk(parsed(path)):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            if _called(node.func) == "fault_point":
                points[_pattern(node.args[0], where(path, node))] = where(path, node)
    return points


@functools.cache
def armed_names() -> dict[str, str]:
    """Each fault-point-shaped string in the tests -> one place that uses it."""
    names: dict[str, str] = {}
    for path in python_files("tests"):
        if path.relative_to(ROOT).as_posix().startswith(NOT_ARMING):
            continue
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and NAME.fullmatch(node.value):
                names.setdefault(node.value, where(path, node))
    return names


def test_every_fault_point_in_the_code_has_a_name_of_the_checked_shape() -> None:
    points = code_points()
    assert points, "no fault_point(...) call found in datapool/ or services/"
    for pattern, at in points.items():
        example = re.sub(r"\[a-z0-9_\]\+", "x", pattern).replace("\\", "")
        assert NAME.fullmatch(example), f"{at}: fault point {example!r} is not named <service>.<area>.<step>"


def test_no_test_arms_a_fault_point_the_code_lacks() -> None:
    patterns = [re.compile(p) for p in code_points()]
    unknown = {name: at for name, at in armed_names().items() if not any(p.fullmatch(name) for p in patterns)}
    assert not unknown, f"tests arm fault points that no fault_point(...) call has: {unknown}"


def test_every_fault_point_in_the_code_is_armed_by_a_test() -> None:
    armed = armed_names()
    unarmed = {
        pattern: at
        for pattern, at in code_points().items()
        if pattern not in UNARMED and not any(re.fullmatch(pattern, name) for name in armed)
    }
    assert not unarmed, f"fault points that no test arms (arm one, or list it in UNARMED with why): {unarmed}"
    stale = set(UNARMED) - set(code_points())
    assert not stale, f"UNARMED lists points the code no longer has: {stale}"
