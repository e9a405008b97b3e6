"""The listening page's HTML: one self-contained file (inline CSS and JS, no network), every name escaped.

:func:`render_page` takes the rows :mod:`vc.report.listening` made (each clip with its copy, spectrogram and
gain) and returns the document. Rows carry ``data-pair`` and clips ``data-system``; a few lines of JS hide
the rows of other pairs and the clips of unticked systems. Values from the data (system, speaker and
sentence names, transcripts, paths) only ever reach the page through :func:`html.escape`, and the JS only
compares them, never builds markup from them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

from vc.evaluation.registry import spec

if TYPE_CHECKING:
    from vc.report.listening import Clip, Item

__all__ = ["PageClip", "render_page"]


@dataclass(frozen=True)
class PageClip:
    """A clip as the page shows it: the scored clip, its copy and image (relative to the page), the gain
    that made the copy, the copy's active level, whether the peak ceiling limited it, and its length."""

    clip: Clip
    audio: str
    image: str
    gain_db: float
    level_dbfs: float
    limited: bool
    seconds: float


_UP, _DOWN = "\u2191", "\u2193"
_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
h1 { font-size: 1.5em; margin: 0 0 .3em; }
p.method, p.legend { max-width: 70em; color: #444; }
#filters { position: sticky; top: 0; background: #fafafa; padding: .5em 0; border-bottom: 1px solid #ddd;
  z-index: 1; }
#filters label { margin-right: .8em; white-space: nowrap; }
section.item { margin: 1.2em 0; padding: .6em .8em; background: #fff; border: 1px solid #ddd;
  border-radius: 6px; }
section.item h2 { font-size: 1.05em; margin: 0; }
section.item p.text { margin: .2em 0 .6em; font-style: italic; }
div.clips { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: .6em; }
figure.clip { margin: 0; padding: .4em; border: 1px solid #e4e4e4; border-radius: 4px; }
figure.clip.natural { background: #f3f8ff; }
figure.clip.baseline { background: #f7f7f2; }
figcaption { font-weight: 600; }
figcaption small { font-weight: normal; color: #666; }
audio { width: 100%; height: 32px; }
img.mel { display: block; width: 100%; height: 56px; image-rendering: auto; }
dl.metrics { display: grid; grid-template-columns: auto 1fr; gap: 0 .6em; margin: .3em 0 0;
  font-size: .9em; }
dl.metrics dt { color: #555; } dl.metrics dd { margin: 0; font-variant-numeric: tabular-nums; }
p.asr { font-size: .85em; color: #555; margin: .2em 0 0; }
span.limited { color: #a40; font-size: .85em; }
[hidden] { display: none !important; }
"""

_JS = """
(function () {
  const pair = document.getElementById('pair-filter');
  const boxes = Array.from(document.querySelectorAll('input.system-filter'));
  const count = document.getElementById('shown');
  function apply() {
    const on = new Set(boxes.filter(b => b.checked).map(b => b.value));
    let shown = 0;
    document.querySelectorAll('section.item').forEach(row => {
      row.hidden = pair.value !== '' && row.dataset.pair !== pair.value;
      if (!row.hidden) shown += 1;
    });
    document.querySelectorAll('figure.clip').forEach(c => { c.hidden = !on.has(c.dataset.system); });
    count.textContent = String(shown);
  }
  pair.addEventListener('change', apply);
  boxes.forEach(b => b.addEventListener('change', apply));
  document.getElementById('all-systems').addEventListener('click', () => {
    boxes.forEach(b => { b.checked = true; }); apply();
  });
  document.getElementById('no-systems').addEventListener('click', () => {
    boxes.forEach(b => { b.checked = false; }); apply();
  });
  apply();
})();
"""


def _value(metric: str, value: float) -> str:
    return "\u2013" if not math.isfinite(value) else f"{value:.{spec(metric).decimals}f}"


def _metric_label(metric: str) -> str:
    m = spec(metric)
    return f"{m.label or m.name} {_UP if m.higher_is_better else _DOWN}"


def _clip_html(page_clip: PageClip, seed: int) -> str:
    clip = page_clip.clip
    kind = {"experiment": f"experiment, seed {seed}", "baseline": "baseline"}.get(clip.kind, "recording")
    metrics = "".join(
        f"<dt>{escape(_metric_label(m))}</dt><dd>{_value(m, v)}</dd>" for m, v in clip.metrics.items()
    )
    limited = (
        f' <span class="limited" title="the peak ceiling kept this copy below the target level">'
        f"peak-limited, {page_clip.level_dbfs:.1f} dBFS</span>"
        if page_clip.limited
        else ""
    )
    asr = (
        f'<p class="asr" title="ASR transcript">ASR: {escape(clip.transcript)}</p>' if clip.transcript else ""
    )
    name = escape(clip.system)
    return (
        f'<figure class="clip {escape(clip.kind)}" data-system="{name}">'
        f"<figcaption>{name} <small>{escape(kind)}</small>{limited}</figcaption>"
        f'<audio controls preload="metadata" src="{escape(page_clip.audio)}"></audio>'
        f'<img class="mel" src="{escape(page_clip.image)}" alt="log-mel spectrogram of {name}">'
        f'<dl class="metrics">{metrics}</dl>{asr}</figure>'
    )


def _item_html(index: int, item: Item, clips: Sequence[PageClip], seed: int) -> str:
    body = "\n".join(_clip_html(c, seed) for c in clips)
    text = f'<p class="text">\u201c{escape(item.text)}\u201d</p>' if item.text else ""
    return (
        f'<section class="item" id="row-{index}" data-pair="{escape(item.pair)}">'
        f"<h2>{escape(item.utt_id)} \u00b7 {escape(item.source)} \u2192 {escape(item.target)}</h2>"
        f'{text}<div class="clips">\n{body}\n</div></section>'
    )


def _filters_html(systems: Sequence[str], pairs: Sequence[str], rows: int) -> str:
    options = "".join(f'<option value="{escape(p)}">{escape(p)}</option>' for p in pairs)
    boxes = "".join(
        f'<label><input type="checkbox" class="system-filter" value="{escape(s)}" checked> '
        f"{escape(s)}</label>"
        for s in systems
    )
    return (
        '<div id="filters"><label>Pair <select id="pair-filter"><option value="">all pairs</option>'
        f"{options}</select></label> Systems: {boxes}"
        '<button type="button" id="all-systems">all</button> '
        '<button type="button" id="no-systems">none</button>'
        f' \u00b7 <span id="shown">{rows}</span> of {rows} rows shown</div>'
    )


def render_page(
    title: str,
    rows: Sequence[tuple[Item, Sequence[PageClip]]],
    *,
    seed: int,
    method: str,
) -> str:
    """The whole page: a title, how the clips were levelled, the legend, the filters and one section per
    row (sentence and pair) with a figure per clip."""
    systems = list(dict.fromkeys(c.clip.system for _, clips in rows for c in clips))
    pairs = list(dict.fromkeys(item.pair for item, _ in rows))
    metrics = list(dict.fromkeys(m for _, clips in rows for c in clips for m in c.clip.metrics))
    legend = "; ".join(escape(_metric_label(m)) for m in metrics)
    body = "\n".join(_item_html(i, item, clips, seed) for i, (item, clips) in enumerate(rows))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{escape(title)}</h1>
<p class="method">Loudness: {escape(method)}</p>
<p class="legend">Beside each clip: {legend} (\u2193 lower is better, \u2191 higher is better;
\u2013 not scored). MCD is to the target speaker's recording of the sentence; similarity is to the target
speaker; the predicted MOS is DNSMOS. Conversions are those of training seed {seed}. Each image is the
clip's log-mel spectrogram (low frequencies at the bottom).</p>
{_filters_html(systems, pairs, len(rows))}
<main>
{body}
</main>
<script>{_JS}</script>
</body>
</html>
"""
