"""What `colorize eval` writes: metrics.json, a self-contained report.html and grid.png.

* metrics.json: settings, metric definitions, per-model aggregates (and images/s), per-picture
  scores of every model (NaN/inf written as null).
* report.html: one file, pictures embedded as base64 (PNG for pictures up to 64 px, else
  JPEG q90). A score table (click a header to sort) and the pictures: grayscale | ground
  truth | each model, all of them when there are few, else grouped into the best and worst
  by the ranking metric of the first model; rows sort by any column, under a per-picture
  metric chosen in a drop-down.
* grid.png: grayscale | truth | each model for a few pictures spread from best to worst,
  with the ranking metric under each picture.
"""

from __future__ import annotations

import base64
import html
import json
import math
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from labcolor.core import metrics
from labcolor.evaluation.evaluate import EvalResult, grid_indices, report_indices

_ARROW = {"higher": "\u2191", "lower": "\u2193", "one": "\u21921"}
SUMMARY_HEADERS = ("model", *(f"{m.label}{_ARROW[m.better]}" for m in metrics.METRICS), "img/s")


def _fmt(value: float | None, fmt: str) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return format(value, fmt)


def _best(values: list[float | None], better: str) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None
    if better == "higher":
        return max(finite)
    if better == "lower":
        return min(finite)
    return min(finite, key=lambda v: abs(v - 1.0))


def summary_rows(result: EvalResult) -> list[list[tuple[str, bool]]]:
    """One row per model (baseline first), matching SUMMARY_HEADERS: (text, is the column's best) per cell.

    Presentation (bold, colour) is the caller's: the CLI's table, Markdown in scripts.
    """
    rows: list[list[tuple[str, bool]]] = [[(m.name, False)] for m in result.models]
    for metric in metrics.METRICS:
        values = [m.aggregate.get(metric.key) for m in result.models]
        best = _best(values, metric.better)
        for row, value in zip(rows, values):
            row.append((_fmt(value, metric.fmt), value is not None and value == best))
    for row, m in zip(rows, result.models):
        row.append((_fmt(m.images_per_s, ".1f"), False))
    return rows


def write_json(result: EvalResult, path: Path) -> Path:
    data = result.to_dict()
    data["generated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    path.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- grid


def _scaled(rgb: np.ndarray, cell: int) -> np.ndarray:
    """Picture scaled to fit a cell x cell square; tiny ones enlarged by an integer factor (pixels kept sharp)."""
    h, w = rgb.shape[:2]
    scale = cell / max(h, w)
    if scale >= 2:
        k = int(scale)
        return cv2.resize(rgb, (w * k, h * k), interpolation=cv2.INTER_NEAREST)
    if scale != 1:
        return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                          interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    return rgb


def _pad(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre a picture on a white height x width canvas."""
    out = np.full((height, width, 3), 255, np.uint8)
    y, x = (height - rgb.shape[0]) // 2, (width - rgb.shape[1]) // 2
    out[y : y + rgb.shape[0], x : x + rgb.shape[1]] = rgb
    return out


def _label(text: str, width: int, height: int) -> np.ndarray:
    strip = np.full((height, width, 3), 255, np.uint8)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    while len(text) > 4 and cv2.getTextSize(text, font, scale, 1)[0][0] > width - 4:
        text = text[: len(text) - 3] + ".."  # Hershey fonts are ASCII only
    (tw, th), _ = cv2.getTextSize(text, font, scale, 1)
    cv2.putText(strip, text, (max(2, (width - tw) // 2), (height + th) // 2), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def make_grid(result: EvalResult, *, count: int | None = None, cell: int = 128) -> np.ndarray:
    """The grid as an RGB uint8 array: a header row, then one row per picture, a caption under each cell."""
    count = result.settings.get("grid_images", 8) if count is None else count
    picks = grid_indices(result.ranking, count)
    metric = next(m for m in metrics.METRICS if m.key == result.rank_by)
    columns = ["grayscale input", "ground truth", *(m.name for m in result.models[1:])]
    gap, caption = 4, 16
    rows = [np.concatenate([_label(c, cell, 20) for c in columns], axis=1)]
    for i in picks:
        sources = [(result.gray_thumbs[i], result.models[0]), (result.truth_thumbs[i], None),
                   *((m.thumbs[i], m) for m in result.models[1:])]
        scaled = [_scaled(thumb, cell) for thumb, _ in sources]
        height = max(s.shape[0] for s in scaled)
        cells = []
        for picture, (_, model) in zip(scaled, sources):
            text = result.data.pictures[i].name if model is None else \
                f"{metric.label} {_fmt(model.per_image[i][metric.key], metric.fmt)}"
            cells.append(np.concatenate([_pad(picture, height, cell), _label(text, cell, caption)], axis=0))
        rows.append(np.concatenate(cells, axis=1))
    width = rows[0].shape[1]
    parts = []
    for row in rows:
        parts += [row, np.full((gap, width, 3), 255, np.uint8)]
    return np.concatenate(parts[:-1], axis=0)


def write_grid(result: EvalResult, path: Path, *, count: int | None = None, cell: int = 128) -> Path:
    grid = make_grid(result, count=count, cell=cell)
    ok, data = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"cannot encode {path}")
    path.write_bytes(data.tobytes())
    return path


# --------------------------------------------------------------------------- HTML


def _data_uri(rgb: np.ndarray) -> str:
    small = max(rgb.shape[:2]) <= 64
    ext, params = (".png", []) if small else (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 90])
    ok, data = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OSError("cannot encode a thumbnail")
    mime = "image/png" if small else "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(data.tobytes()).decode('ascii')}"


def _img(rgb: np.ndarray, display: int = 160) -> str:
    h, w = rgb.shape[:2]
    scale = display / max(h, w)
    if scale > 1:  # tiny pictures (CIFAR) are shown enlarged by an integer factor, pixels kept sharp
        scale = int(scale)
    return (f'<img src="{_data_uri(rgb)}" width="{round(w * scale)}" height="{round(h * scale)}" '
            f'alt="" loading="lazy">')


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;vertical-align:top}
th{background:#f2f2f2;cursor:pointer;user-select:none;position:sticky;top:0}
th.asc::after{content:" \\25B2"}th.desc::after{content:" \\25BC"}
td.name,th.name{text-align:left;max-width:16em;overflow-wrap:anywhere}
td.best{font-weight:bold;color:#060}
table.pics td{text-align:center}
tbody.group th{background:#dde8f5;text-align:left;cursor:default;position:static}
img{image-rendering:pixelated;display:block;margin:auto}
.s{font-size:.8em;color:#555}
"""

_JS = """
function cellKey(cell){
  const m=document.getElementById('metric');
  const v=(m&&cell.dataset[m.value]!==undefined)?cell.dataset[m.value]:(cell.dataset.sort??cell.textContent.trim());
  const n=parseFloat(v);return isNaN(n)?v:n;
}
function cmp(a,b){
  if(typeof a==='number'&&typeof b==='number')return a-b;
  if(typeof a==='number')return -1;if(typeof b==='number')return 1;return String(a).localeCompare(String(b));
}
document.querySelectorAll('table.sortable').forEach(table=>{
  table.querySelectorAll('thead th').forEach((th,col)=>th.addEventListener('click',()=>{
    const asc=!th.classList.contains('asc');
    table.querySelectorAll('thead th').forEach(h=>h.classList.remove('asc','desc'));
    th.classList.add(asc?'asc':'desc');
    table.querySelectorAll('tbody.rows').forEach(body=>{
      [...body.rows].sort((r,s)=>cmp(cellKey(r.cells[col]),cellKey(s.cells[col]))*(asc?1:-1))
        .forEach(r=>body.appendChild(r));
    });
  }));
});
function showMetric(){
  const m=document.getElementById('metric');if(!m)return;
  const fmt=m.selectedOptions[0].dataset.digits|0;
  document.querySelectorAll('table.pics td[data-'+m.value+']').forEach(td=>{
    const v=td.dataset[m.value];const s=td.querySelector('.s');
    if(s)s.textContent=(v===''?'-':parseFloat(v).toFixed(fmt));
  });
}
const sel=document.getElementById('metric');if(sel){sel.addEventListener('change',showMetric);showMetric();}
"""


_NAME = ' class="name"'


def _attr(key: str) -> str:
    """The data-* attribute of a metric: no underscores, so dataset[name] in JS is the same word."""
    return "data-" + key.replace("_", "")


def _attr_value(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else repr(float(value))


def _summary_table(result: EvalResult) -> str:
    e = html.escape
    head = "".join(f"<th{_NAME if i == 0 else ''}>{e(h)}</th>" for i, h in enumerate(SUMMARY_HEADERS))
    best = {m.key: _best([r.aggregate.get(m.key) for r in result.models], m.better) for m in metrics.METRICS}
    body = []
    for r in result.models:
        cells = [f'<td class="name" title="{e(r.path or "the grayscale input itself")}">{e(r.name)}</td>']
        for m in metrics.METRICS:
            v = r.aggregate.get(m.key)
            cls = ' class="best"' if v is not None and v == best[m.key] else ""
            cells.append(f'<td data-sort="{_attr_value(v)}"{cls}>{_fmt(v, m.fmt)}</td>')
        cells.append(f'<td data-sort="{_attr_value(r.images_per_s)}">{_fmt(r.images_per_s, ".1f")}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody class="rows">'
            + "\n".join(body) + "</tbody></table>")


def _picture_rows(result: EvalResult, indices: list[int]) -> str:
    e = html.escape
    position = {i: k for k, i in enumerate(result.ranking)}
    rows = []
    for i in indices:
        pic = result.data.pictures[i]
        cells = [f'<td data-sort="{position[i] + 1}">{position[i] + 1}</td>',
                 f'<td class="name" data-sort="{e(pic.name)}">{e(pic.name)}<div class="s">{pic.rgb.shape[1]}x{pic.rgb.shape[0]}</div></td>']
        truth = f'<td data-sort="{i}">{_img(result.truth_thumbs[i])}</td>'
        for k, model in enumerate(result.models):
            attrs = " ".join(f'{_attr(m.key)}="{_attr_value(model.per_image[i][m.key])}"' for m in metrics.METRICS)
            cells.append(f'<td {attrs}>{_img(model.thumbs[i])}<div class="s"></div></td>')
            if k == 0:  # grayscale input | ground truth | models
                cells.append(truth)
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return "\n".join(rows)


def _pictures_table(result: EvalResult, count: int) -> str:
    e = html.escape
    names = [m.name for m in result.models]
    columns = ["rank", "picture", "grayscale input", "ground truth", *names[1:]]
    head = "".join(f'<th{_NAME if c == "picture" else ""}>{e(c)}</th>' for c in columns)
    metric = next(m for m in metrics.METRICS if m.key == result.rank_by)
    shown = report_indices(result.ranking, count)
    n = len(result.ranking)
    if len(shown) == n:
        groups = [(f"all {n} pictures, best first by {metric.label} of {result.rank_model}", shown)]
    else:
        half = count // 2
        groups = [(f"best {half} by {metric.label} of {result.rank_model}", shown[:half]),
                  (f"worst {len(shown) - half} (of {n})", shown[half:])]
    bodies = "".join(
        f'<tbody class="group"><tr><th colspan="{len(columns)}">{e(title)}</th></tr></tbody>'
        f'<tbody class="rows">{_picture_rows(result, idx)}</tbody>'
        for title, idx in groups
    )
    options = "".join(
        f'<option value="{_attr(m.key)[5:]}" data-digits="{m.fmt[1]}"'
        f'{" selected" if m.key == result.rank_by else ""}>{e(m.label)}</option>'
        for m in metrics.METRICS
    )
    return (f'<p>Per-picture metric shown and sorted by: <select id="metric">{options}</select> '
            "(click a column header to sort within each group)</p>"
            f'<table class="sortable pics"><thead><tr>{head}</tr></thead>{bodies}</table>')


def render_html(result: EvalResult, *, count: int | None = None) -> str:
    e = html.escape
    count = result.settings.get("report_images", 24) if count is None else count
    d = result.data
    skipped = f", {len(d.skipped)} skipped" if d.skipped else ""
    defs = "".join(f"<li><b>{e(m.label)}</b> ({e(m.better)} is better): {e(m.description)}</li>"
                   for m in metrics.METRICS)
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>labcolor evaluation: {e(d.source)}</title>
<style>{_CSS}</style></head><body>
<h1>Colorization evaluation</h1>
<p>Data: <code>{e(d.source)}</code> ({e(d.kind)}), {len(d.pictures)} pictures{skipped}. Generated {generated}.
Inputs are the ground truth's Lab L with a = b = 0; the <i>grayscale</i> row scores that input itself.</p>
<h2>Scores</h2>
{_summary_table(result)}
<details><summary>Metric definitions</summary><ul>{defs}</ul></details>
<h2>Pictures</h2>
{_pictures_table(result, count)}
<script>{_JS}</script>
</body></html>
"""


def write_html(result: EvalResult, path: Path, *, count: int | None = None) -> Path:
    path.write_text(render_html(result, count=count), encoding="utf-8")
    return path


def write_outputs(result: EvalResult, out_dir: Path) -> dict[str, Path]:
    """metrics.json, report.html and grid.png into out_dir (created if needed); returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "json": write_json(result, out_dir / "metrics.json"),
        "html": write_html(result, out_dir / "report.html"),
        "grid": write_grid(result, out_dir / "grid.png"),
    }
