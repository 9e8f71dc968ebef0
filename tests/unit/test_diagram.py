"""The architecture diagram says what the lab's path table says, and its legend names the colours it uses."""
from __future__ import annotations

import colorsys

import matplotlib
import pytest

matplotlib.use("Agg")

from matplotlib.colors import to_rgb
from matplotlib.patches import Patch

from labkit import diagram
from labkit.diagram import (
    ARROW_ENDS,
    ARROWS,
    BOXES,
    CONTAINERS,
    RUNS_LINES,
    THROUGH,
    Part,
)


def _samples(points: list[tuple[float, float]], step: float = 0.002) -> list[tuple[float, float]]:
    """Points every ``step`` along a polyline (ends excluded by a small margin)."""
    out = []
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        length = max(abs(x1 - x0), abs(y1 - y0))
        n = max(1, int(length / step))
        out += [(x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n) for i in range(n + 1)]
    return out[3:-3]


def _inside(point: tuple[float, float], rect: tuple, margin: float = 0.0) -> bool:
    x, y = point
    rx, ry, w, h = rect[:4]
    return rx + margin < x < rx + w - margin and ry + margin < y < ry + h - margin


def test_the_apps_call_to_lambda_leaves_through_the_internet_gateway_and_never_enters_the_private_subnets():
    points = _samples(ARROWS["invoke"][0])
    assert not any(_inside(p, CONTAINERS["private"]) for p in points), "the invoke arrow enters the private subnets"
    assert any(_inside(p, BOXES["igw"]) for p in points), "it leaves the VPC through the internet gateway"
    assert ARROW_ENDS["invoke"] == ("ec2", "lambda_api")
    assert not _inside(ARROWS["invoke"][0][-1], CONTAINERS["vpc"]), "the Lambda API is outside the VPC"


@pytest.mark.parametrize("name", [*ARROWS, *RUNS_LINES])
def test_lines_run_between_boxes_never_through_one(name: str):
    points = ARROWS[name][0] if name in ARROWS else RUNS_LINES[name]
    allowed = {*ARROW_ENDS[name], *THROUGH.get(name, ())}
    for box, rect in BOXES.items():
        if box not in allowed:
            assert not any(_inside(p, rect, margin=0.002) for p in _samples(points)), f"{name} crosses {box}"


def _hue(colour: str) -> float:
    return colorsys.rgb_to_hsv(*to_rgb(colour))[0] * 360


def _figure():
    parts = {key: Part(key, True) for key in [*CONTAINERS, *BOXES]}
    return diagram.draw(parts, "test", 5000)


def test_the_endpoints_are_the_colour_the_legend_names():
    figure = _figure()
    legend = figure.legends[0]
    named = [(text.get_text(), handle) for text, handle in zip(legend.get_texts(), legend.legend_handles)]
    yellow = [handle for text, handle in named if text.startswith("yellow")]
    assert len(yellow) == 1 and isinstance(yellow[0], Patch)
    fill = yellow[0].get_facecolor()
    assert 40 <= _hue(fill) <= 60 and colorsys.rgb_to_hsv(*fill[:3])[1] > 0.5, "a yellow a reader calls yellow"
    endpoints = [p for p in figure.axes[0].patches if p.get_gid() in ("sm_endpoint", "s3_endpoint")]
    assert len(endpoints) == 2 and all(tuple(p.get_facecolor()) == tuple(fill) for p in endpoints)
    words = {"yellow", "green", "red", "orange", "purple", "blue", "grey", "gray"}
    for text in [t.get_text() for t in figure.axes[0].texts] + [t for t, _ in named]:
        for word in words & set(text.lower().replace(":", " ").split()):
            assert word == "yellow" and text.startswith("yellow"), f"{text!r} names a colour the legend does not show"
