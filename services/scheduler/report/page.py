"""report.html: one self-contained page (figures and thumbnails as data: URIs, no links out).

Every number is printed from the report's JSON itself, each cell tagged with its key
(`data-key="frames.selected"`), so a reader or a test can hold the page against report.json.
"""

from __future__ import annotations

import base64
from html import escape
from typing import Any

_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; max-width: 1200px; }
table { border-collapse: collapse; margin: 8px 0 16px; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
img.figure { max-width: 100%; }
.strip { display: flex; flex-wrap: wrap; gap: 6px; }
.strip figure { margin: 0; font-size: 11px; width: 136px; }
.strip img { width: 128px; }
"""


def _uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _distance(value: float | None) -> str:
    return "distance not recorded" if value is None else f"distance {value:.3f}"


def _cell(key: str, value: object) -> str:
    return f'<td data-key="{escape(key)}">{escape(str(value))}</td>'


def _table(rows: list[tuple[str, str, object]]) -> str:
    body = "".join(f"<tr><th>{escape(label)}</th>{_cell(key, value)}</tr>" for label, key, value in rows)
    return f"<table>{body}</table>"


def _processed(processed: list[dict[str, Any]], selected: list[dict[str, Any]]) -> str:
    """Each processed file: its frames, embedded or from the cache, and picked (folded: a run
    may process thousands of files)."""
    if not processed:
        return "<p>No file was processed.</p>"
    picked: dict[str, int] = {}
    for pick in selected:
        picked[pick["source"]] = picked.get(pick["source"], 0) + 1
    columns = ("file", "frames", "embedded", "from the embedding cache", "picked")
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in columns) + "</tr>"
    rows = "".join(
        f"<tr><td>{escape(f['path'])}</td><td>{f['frames']}</td><td>{f['frames_embedded']}</td>"
        f"<td>{f.get('frames_from_cache') or 0}</td><td>{picked.get(f['path'], 0)}</td></tr>"
        for f in processed
    )
    table = f'<table id="processed">{head}{rows}</table>'
    return f"<details><summary>{len(processed)} files</summary>{table}</details>"


def render_page(
    report: dict[str, Any],
    figures: dict[str, bytes],
    thumbnails: list[tuple[dict[str, Any], bytes]],
) -> str:
    files, frames = report["files"], report["frames"]
    before, after = report["pool_before"], report["pool_after"]
    counts = _table(
        [
            ("files listed", "files.listed", files["listed"]),
            ("media files", "files.media", files["media"]),
            ("new files", "files.new", files["new"]),
            ("files processed", "files.processed", len(files["processed"])),
            ("files skipped", "files.skipped", len(files["skipped"])),
            ("frames decoded", "frames.decoded", frames["decoded"]),
            ("frames embedded", "frames.embedded", frames["embedded"]),
            ("frames from the embedding cache", "frames.from_cache", frames["from_cache"]),
            ("frames selected", "frames.selected", frames["selected"]),
            ("pool before (frames)", "pool_before.frames", before["frames"]),
            ("pool after (frames)", "pool_after.frames", after["frames"]),
            ("tag", "tag", report["tag"] or "(none: nothing added)"),
        ]
    )
    seconds = _table([(stage, f"seconds.{stage}", v) for stage, v in report["seconds"].items()])
    skipped = "".join(
        f'<tr><td>{escape(s["path"])}</td><td class="reason">{escape(s["reason"])}</td></tr>'
        for s in files["skipped"]
    )
    skipped_table = (
        f'<table id="skipped"><tr><th>skipped file</th><th>reason</th></tr>{skipped}</table>'
        if skipped
        else "<p>No file was skipped.</p>"
    )
    processed_table = _processed(files["processed"], report["selected"])
    strip = "".join(
        f'<figure><img alt="{escape(p["frame_name"])}" src="{_uri(data, "image/jpeg")}">'
        f"<figcaption>{escape(p['frame_name'])}<br>{_distance(p['distance'])}</figcaption></figure>"
        for p, data in thumbnails
    )
    shown = f"{len(thumbnails)} of {len(report['selected'])}"
    images = {
        k: f'<img class="figure" id="fig-{k}" alt="{k}" src="{_uri(v, "image/png")}">'
        for k, v in figures.items()
    }
    view = images.get("view", "<p>Too few frames to project.</p>")
    note = f"<p>{escape(files['note'])}</p>" if files.get("note") else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>datapool run {escape(report["run_id"])}</title>
<style>{_STYLE}</style></head>
<body>
<h1>Run {escape(report["run_id"])}</h1>
<p>started {escape(report["started_at"])}, finished {escape(report["finished_at"])}</p>{note}
<h2>Counts</h2>{counts}
<h2>Processed files</h2>{processed_table}
<h2>Skipped files</h2>{skipped_table}
<h2>Seconds per stage</h2>{seconds}
{images.get("summary", "")}
<h2>The pool in 2-D, this run's picks highlighted</h2>{view}
<h2>Picks ({shown})</h2><div class="strip" id="picks">{strip}</div>
<h2>Sampling density per video</h2>{images.get("density", "")}
</body></html>"""
