// Live metric charts: per-second buckets in fixed rings (memory does not grow with the event
// rate), drawn with uPlot (vendored, global `uPlot`) at most once per second.

const PALETTE = ["#60a5fa", "#f59e0b", "#34d399", "#f472b6", "#a78bfa", "#f87171",
                 "#2dd4bf", "#facc15"];
const AGENT_COLOUR = "#ffffff";
const MAX_CHARTS = 4;
const MAX_SWARM_SERIES = PALETTE.length;

class Ring {
  constructor(size) {
    this.size = size;
    this.sec = new Float64Array(size).fill(-1);
    this.sum = new Float64Array(size);
    this.n = new Uint32Array(size);
  }

  add(sec, value) {
    const i = sec % this.size;
    if (this.sec[i] !== sec) {
      this.sec[i] = sec;
      this.sum[i] = 0;
      this.n[i] = 0;
    }
    this.sum[i] += value;
    this.n[i] += 1;
  }

  mean(sec) {
    const i = sec % this.size;
    return this.sec[i] === sec && this.n[i] > 0 ? this.sum[i] / this.n[i] : null;
  }
}

/** Metric values by name and series ("swarm-1", or "agent:<id>"), averaged per second. */
export class MetricStore {
  constructor(windowSeconds = 300) {
    this.window = windowSeconds;
    this.names = new Map(); // name -> {unit, series: Map<seriesKey, Ring>}
    this.version = 0; // bumps when a name or a series appears
  }

  add(name, unit, seriesKey, ts, value) {
    let metric = this.names.get(name);
    if (!metric) {
      metric = { unit: unit || "", series: new Map() };
      this.names.set(name, metric);
      this.version += 1;
    }
    let ring = metric.series.get(seriesKey);
    if (!ring) {
      ring = new Ring(this.window);
      metric.series.set(seriesKey, ring);
      this.version += 1;
    }
    ring.add(Math.floor(ts), value);
  }

  dropSeries(prefix) {
    for (const metric of this.names.values()) {
      for (const key of [...metric.series.keys()]) {
        if (key.startsWith(prefix)) {
          metric.series.delete(key);
          this.version += 1;
        }
      }
    }
  }

  clear() {
    this.names.clear();
    this.version += 1;
  }

  /** Names to chart: the first MAX_CHARTS in alphabetical order. */
  chartNames() {
    return [...this.names.keys()].sort().slice(0, MAX_CHARTS);
  }

  seriesKeys(name) {
    const keys = [...(this.names.get(name)?.series.keys() || [])];
    const swarms = keys.filter((k) => !k.startsWith("agent:")).sort().slice(0, MAX_SWARM_SERIES);
    return [...swarms, ...keys.filter((k) => k.startsWith("agent:")).sort()];
  }

  data(name, keys, nowSec) {
    const metric = this.names.get(name);
    const xs = [];
    for (let s = nowSec - this.window + 1; s <= nowSec; s += 1) xs.push(s);
    const ys = keys.map((key) => {
      const ring = metric?.series.get(key);
      return xs.map((s) => (ring ? ring.mean(s) : null));
    });
    // start at the first second with a value: a young chart fills its width
    let first = 0;
    while (first < xs.length - 1 && ys.every((y) => y[first] === null)) first += 1;
    return [xs.slice(first), ...ys.map((y) => y.slice(first))];
  }
}

/** One uPlot per metric name, rebuilt when its series change, resized with its container. */
export class ChartBoard {
  constructor(container, emptyNote, store) {
    this.container = container;
    this.emptyNote = emptyNote;
    this.store = store;
    this.charts = new Map(); // name -> {plot, keys, box}
    this.builtVersion = -1;
    this.lastDraw = 0;
    this.clockOffset = () => 0;
    this.resizer = new ResizeObserver(() => this.resize());
    this.resizer.observe(container);
  }

  width() {
    return Math.max(200, this.container.clientWidth - 4);
  }

  /** Redraw when due (every `everyMs`); cheap to call on every frame. */
  draw(force = false, everyMs = 1000) {
    const now = performance.now();
    if (!force && now - this.lastDraw < everyMs) return;
    this.lastDraw = now;
    if (typeof window.uPlot !== "function") return;
    const nowSec = Math.floor(Date.now() / 1000 + this.clockOffset());
    if (this.builtVersion !== this.store.version) this.rebuild();
    for (const [name, chart] of this.charts) {
      chart.plot.setData(this.store.data(name, chart.keys, nowSec));
    }
  }

  rebuild() {
    this.builtVersion = this.store.version;
    const names = this.store.chartNames();
    for (const [name, chart] of this.charts) {
      const keys = this.store.seriesKeys(name);
      if (!names.includes(name) || keys.join() !== chart.keys.join()) {
        chart.plot.destroy();
        chart.box.remove();
        this.charts.delete(name);
      }
    }
    for (const name of names) {
      if (this.charts.has(name)) continue;
      const keys = this.store.seriesKeys(name);
      const box = document.createElement("figure");
      box.className = "chart";
      box.dataset.metric = name;
      const caption = document.createElement("figcaption");
      const unit = this.store.names.get(name)?.unit;
      caption.textContent = unit ? `${name} (${unit})` : name;
      box.append(caption);
      this.container.append(box);
      const plot = new window.uPlot(this.options(keys), [[]], box);
      this.charts.set(name, { plot, keys, box });
    }
    // keep the charts in name order
    for (const name of names) this.container.append(this.charts.get(name).box);
    this.emptyNote.hidden = names.length > 0;
  }

  options(keys) {
    let swarmIndex = 0;
    const series = [{}];
    for (const key of keys) {
      const agent = key.startsWith("agent:");
      series.push({
        label: agent ? key.slice(6) : key,
        stroke: agent ? AGENT_COLOUR : PALETTE[swarmIndex++ % PALETTE.length],
        width: agent ? 2 : 1.5,
        dash: agent ? [6, 3] : undefined,
        spanGaps: true,
        points: { show: false },
        value: (u, v) => (v == null ? "–" : v.toFixed(1)),
      });
    }
    const axis = { stroke: "#9aa4b2", grid: { stroke: "#263041", width: 1 },
                   ticks: { stroke: "#263041", width: 1 } };
    return {
      width: this.width(),
      height: 130,
      series,
      axes: [axis, { ...axis, size: 56 }],
      // at least a minute wide, so a young chart reads in seconds, not milliseconds
      scales: { x: { time: true, range: (u, min, max) => [Math.min(min, max - 60), max] } },
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
    };
  }

  resize() {
    const width = this.width();
    for (const chart of this.charts.values()) chart.plot.setSize({ width, height: 130 });
  }

  clear() {
    for (const chart of this.charts.values()) {
      chart.plot.destroy();
      chart.box.remove();
    }
    this.charts.clear();
    this.builtVersion = -1;
    this.emptyNote.hidden = false;
  }
}
