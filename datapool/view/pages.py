"""The view's HTML: the plot page, and the pages that say why there is no plot."""

from __future__ import annotations

import json
from html import escape
from typing import Any
from urllib.parse import quote

_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 0; display: flex; height: 100vh; color: #222; }
#plot { flex: 1; position: relative; }
#canvas { width: 100%; height: 100%; display: block; }
aside { width: 260px; padding: 12px; border-left: 1px solid #ddd; overflow: auto; }
#legend { list-style: none; padding: 0; }
#legend li { cursor: pointer; padding: 3px 0; user-select: none; }
#legend li.off { opacity: 0.35; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 6px; margin-right: 6px; }
#tip { position: fixed; background: #fff; border: 1px solid #aaa; padding: 6px; font-size: 12px;
       pointer-events: none; max-width: 240px; z-index: 10; }
#tip img { max-width: 224px; display: block; margin-bottom: 4px; }
main.message { margin: 40px; }
"""


def legend_items(meta: dict[str, Any]) -> str:
    """The legend as HTML, so that scripts read `data-tag` and `data-count` without running the
    page; `data-cats` are the categories an entry switches (the page's script wires the clicks)."""
    tags = meta["tags"]
    entries = [(t, [i]) for i, t in enumerate(tags)]
    entries += [(meta["whole"], list(range(len(tags)))), (meta["background"], [len(tags)])]
    return "".join(
        f'<li data-tag="{escape(e["name"])}" data-count="{e["count"]}" data-cats="{json.dumps(cats)}">'
        f'<span class="swatch" style="background:{escape(e["color"])}"></span>'
        f'<span class="name">{escape(e.get("label") or e["name"])}</span> '
        f'<span class="count">({e["count"]})</span></li>'
        for e, cats in entries
    )


def plot_page(dataset: str, method: str, methods: tuple[str, ...], meta: dict[str, Any]) -> str:
    """`meta`: what /meta answers (version, total, legend); the page carries it, so the plot is
    set up without asking for it first."""
    api = f"/api/datasets/{quote(dataset, safe='')}"
    # Inside <script>, only "</" could end the element early.
    meta_json = json.dumps(meta).replace("</", "<\\/")
    label = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}
    links = " ".join(
        f'<a href="?method={m}">{label.get(m, m)}</a>' if m != method else f"<b>{label.get(m, m)}</b>"
        for m in methods
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{escape(dataset)} · datapool view</title>
<style>{_STYLE}</style></head>
<body>
<div id="plot" data-api="{escape(api)}" data-method="{escape(method)}" data-points="0">
<canvas id="canvas"></canvas><div id="tip" hidden></div></div>
<aside><h3>{escape(dataset)}</h3><p>projection: {links}</p>
<p id="status">Colours: one per run, in run order. Faint grey: frames embedded but not pooled.
Click a legend entry to hide or show it; hover a point for its frame; click to open it.</p>
<ul id="legend">{legend_items(meta)}</ul></aside>
<script id="meta" type="application/json">{meta_json}</script>
<script src="/static/view.js"></script>
</body></html>"""


def message_page(title: str, text: str) -> str:
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{escape(title)} · datapool view</title>
<style>{_STYLE}</style></head>
<body><main class="message"><h1>{escape(title)}</h1><p id="message">{escape(text)}</p>
<p><a href="/">all datasets</a></p></main></body></html>"""


def index_page(datasets: list[str]) -> str:
    items = (
        "".join(f'<li><a href="/datasets/{quote(d, safe="")}">{escape(d)}</a></li>' for d in datasets)
        or "<li>no datasets yet</li>"
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>datapool view</title><style>{_STYLE}</style></head>
<body><main class="message"><h1>Datasets</h1><ul>{items}</ul></main></body></html>"""
