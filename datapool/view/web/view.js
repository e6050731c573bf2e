// The embedding view in the browser: points from the view server (never a CDN), drawn with
// regl-scatterplot (WebGL), which keeps a million points interactive. Category i < tags is
// the i-th run's tag; the last category is the embedding cache's frames the pool lacks.
import createScatterplot from 'regl-scatterplot';

const plot = document.getElementById('plot');
const canvas = document.getElementById('canvas');
const legend = document.getElementById('legend');
const tip = document.getElementById('tip');
const api = plot.dataset.api;
const method = plot.dataset.method;

function hexToRgba(hex, alpha) {
  const v = parseInt(hex.slice(1), 16);
  return [((v >> 16) & 255) / 255, ((v >> 8) & 255) / 255, (v & 255) / 255, alpha];
}

// The server answers 202 while it computes a projection (UMAP's first fit, t-SNE): ask again.
async function fetchPoints() {
  const status = document.getElementById('status');
  const said = status.textContent;
  for (;;) {
    const r = await fetch(`${api}/points.bin?method=${method}`);
    if (r.status === 202) {
      const { seconds } = await r.json();
      status.textContent = `computing the ${method} projection on the server (${seconds} s so far)...`;
      plot.dataset.computing = method;
      await new Promise((ok) => { setTimeout(ok, 1000); });
    } else if (!r.ok) {
      throw new Error(`points.bin answered ${r.status}: ${await r.text()}`);
    } else {
      status.textContent = said;
      delete plot.dataset.computing;
      return r.arrayBuffer();
    }
  }
}

async function load() {
  // The points download while the plot is set up (shader compilation takes most of a second
  // on a CPU renderer); the legend and the counts come with the page (script#meta).
  const pointsBuffer = fetchPoints();
  const meta = JSON.parse(document.getElementById('meta').textContent);
  const n = meta.total;
  const categories = [...meta.tags, meta.background];
  const { width, height } = canvas.getBoundingClientRect();
  const scatterplot = createScatterplot({
    canvas,
    width,
    height,
    pointSize: categories.map((c) => c.size),
    pointColor: categories.map((c) => hexToRgba(c.color, c.alpha)),
    colorBy: 'valueA',
    sizeBy: 'valueA',
    lassoOnLongPress: false,
    // Squares without alpha blending: what keeps 100k+ points quick on a CPU renderer (SwiftShader).
    // Colours are opaque (the faint background is a light grey), so nothing is lost.
    performanceMode: n > 50000,
  });
  const buf = await pointsBuffer;
  // In draw order (the server puts the faint background first); order[j] is drawn point j's row.
  const xs = new Float32Array(buf, 0, n);
  const ys = new Float32Array(buf, 4 * n, n);
  const order = new Uint32Array(buf, 8 * n, n);
  const zs = Float32Array.from(new Uint8Array(buf, 12 * n, n));
  performance.mark('datapool-fetched');
  await scatterplot.draw({ x: xs, y: ys, z: zs }, { zDataType: 'categorical' });
  performance.mark('datapool-drawn');

  const shown = new Set(categories.map((_, i) => i));
  const refilter = async () => {
    const keep = [];
    for (let j = 0; j < n; j += 1) if (shown.has(zs[j])) keep.push(j);
    if (keep.length === n) await scatterplot.unfilter();
    else await scatterplot.filter(keep);
    plot.dataset.points = String(keep.length);
  };
  // The legend's entries are in the page (data-tag, data-count, data-cats: the categories each switches).
  for (const item of legend.children) {
    const cats = JSON.parse(item.dataset.cats);
    item.addEventListener('click', async () => {
      const on = !cats.every((c) => shown.has(c));
      for (const c of cats) if (on) shown.add(c); else shown.delete(c);
      for (const li of legend.children) {
        const liCats = JSON.parse(li.dataset.cats);
        li.classList.toggle('off', !liCats.every((c) => shown.has(c)));
      }
      await refilter();
    });
  }

  let hovered = null;
  let hoveredPooled = false;
  let mouse = [0, 0];
  canvas.addEventListener('mousemove', (e) => { mouse = [e.clientX, e.clientY]; });
  scatterplot.subscribe('pointOver', async (j) => {
    hovered = order[j];
    hoveredPooled = zs[j] !== meta.tags.length;
    const target = hovered;
    const info = await (await fetch(`${api}/points/${target}`)).json();
    if (hovered !== target) return;
    tip.innerHTML = '';
    if (info.thumbnail) {
      const img = document.createElement('img');
      img.src = info.thumbnail;
      img.alt = info.name;
      tip.appendChild(img);
    }
    const rows = [
      ['name', info.name || '(not pooled)'], ['video', info.video], ['frame', info.frame_index],
      ['tag', info.tag || '(embedded, not pooled)'], ['nearest pool neighbour', info.nearest_pool_distance],
    ];
    for (const [label, value] of rows) {
      const div = document.createElement('div');
      div.textContent = `${label}: ${value === null ? '-' : value}`;
      tip.appendChild(div);
    }
    tip.style.left = `${mouse[0] + 14}px`;
    tip.style.top = `${mouse[1] + 14}px`;
    tip.hidden = false;
    plot.dataset.hovered = String(target);
  });
  scatterplot.subscribe('pointOut', () => { hovered = null; tip.hidden = true; });
  canvas.addEventListener('click', () => {
    if (hovered !== null && hoveredPooled) window.open(`${api}/points/${hovered}/frame`, '_blank');
  });
  window.datapoolView = { scatterplot, order, hover: (i) => scatterplot.hover(order.indexOf(i)) };
  plot.dataset.points = String(n);
  plot.dataset.ready = 'true';
}

load().catch((e) => {
  plot.dataset.error = String(e);
  document.getElementById('status').textContent = `the view could not load: ${e}`;
});
