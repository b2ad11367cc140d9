"""A flame graph (SVG) from collapsed stacks, as `py-spy record --format raw`
writes them ("frame;frame;frame count" a line). Self-contained: no Perl, no
browser script; hover a box for its frame and share.

    py-spy record -p PID -d 15 -r 100 --format raw -o order.raw
    python bench/flamegraph.py order.raw docs/profiles/order.svg --title "order, flood"
"""

from __future__ import annotations

import argparse
import html
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

WIDTH = 1200
ROW = 16
# frames below these are the interpreter's and uvicorn's start-up: same in every stack
SKIP = re.compile(r"^(_run_module_as_main|_run_code|<module>|Command\.|Context\.invoke|main |run )")


@dataclass
class Node:
    name: str
    count: int = 0
    children: dict[str, Node] = field(default_factory=dict)


def load(path: Path) -> Node:
    root = Node("all")
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        root.count += n
        node = root
        for frame in stack.split(";"):
            if SKIP.match(frame):
                continue
            frame = re.sub(r":\d+\)$", ")", frame)  # one box per function, not per line
            node = node.children.setdefault(frame, Node(frame))
            node.count += n
    return root


def colour(name: str) -> str:
    """Warm colours, stable per function; the project's own code in blue."""
    h = zlib.crc32(name.encode())
    if "services/" in name or "shopctl/" in name:
        return f"rgb({60 + h % 40},{120 + h % 60},{200 + h % 55})"
    return f"rgb({205 + h % 50},{90 + (h >> 8) % 110},{40 + (h >> 16) % 40})"


def render(root: Node, title: str) -> str:
    boxes: list[str] = []
    depth_max = 0

    def walk(node: Node, x: float, depth: int) -> None:
        nonlocal depth_max
        width = WIDTH * node.count / root.count
        if width < 0.5:
            return
        depth_max = max(depth_max, depth)
        share = 100 * node.count / root.count
        label = html.escape(node.name)
        text = html.escape(node.name[: int(width / 7)]) if width > 30 else ""
        boxes.append(
            f"<g><title>{label} ({share:.1f} %, {node.count} samples)</title>"
            f'<rect x="{x:.1f}" y="{{y{depth}}}" width="{width:.1f}" height="{ROW - 1}" '
            f'fill="{colour(node.name)}" rx="2"/>'
            f'<text x="{x + 3:.1f}" y="{{t{depth}}}">{text}</text></g>'
        )
        for child in sorted(node.children.values(), key=lambda c: c.name):
            walk(child, x, depth + 1)
            x += WIDTH * child.count / root.count

    walk(root, 0.0, 0)
    height = (depth_max + 1) * ROW + 40
    svg = "\n".join(boxes)
    for depth in range(depth_max + 1):  # the root at the bottom, as flame graphs go
        y = height - 10 - (depth + 1) * ROW
        svg = svg.replace(f'"{{y{depth}}}"', f'"{y}"').replace(f'"{{t{depth}}}"', f'"{y + 11}"')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="monospace" font-size="11">'
        f'<rect width="100%" height="100%" fill="#fdfdf6"/>'
        f'<text x="6" y="18" font-size="14">{html.escape(title)} '
        f"({root.count} samples)</text>\n{svg}\n</svg>\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("raw", type=Path)
    parser.add_argument("svg", type=Path)
    parser.add_argument("--title", default="")
    options = parser.parse_args()
    options.svg.parent.mkdir(parents=True, exist_ok=True)
    options.svg.write_text(render(load(options.raw), options.title or options.raw.name))
    print(f"{options.svg}: {options.svg.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
