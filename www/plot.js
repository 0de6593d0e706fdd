// A tiny time-series plot on a canvas: one line per series, the last 30 samples (30 s at 1 Hz), the
// y axis scaled to what is shown (or fixed), the current values in the corner.

const SAMPLES = 30;

export class Plot {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{ title: string, series: { label: string, color: string }[], max?: number,
   *           format?: (v: number) => string }} opts
   */
  constructor(canvas, opts) {
    this.canvas = canvas;
    this.opts = opts;
    this.data = opts.series.map(() => []);
  }

  /** One sample per series (null: unknown). */
  push(values) {
    values.forEach((v, i) => {
      const d = this.data[i];
      d.push(v);
      if (d.length > SAMPLES) d.shift();
    });
    this.draw();
  }

  draw() {
    const { canvas, opts } = this;
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); }
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const fmt = opts.format ?? ((v) => v.toFixed(0));
    const seen = this.data.flat().filter((v) => v !== null && Number.isFinite(v));
    const max = opts.max ?? Math.max(1, ...seen) * 1.2;
    const top = 18, bottom = h - 4;
    const y = (v) => bottom - (Math.min(v, max) / max) * (bottom - top);
    g.strokeStyle = '#2a3140';
    g.lineWidth = 1;
    for (const f of [0, 0.5, 1]) {
      g.beginPath(); g.moveTo(0, y(max * f) + 0.5); g.lineTo(w, y(max * f) + 0.5); g.stroke();
    }
    g.font = '11px system-ui, sans-serif';
    g.fillStyle = '#8b95a7';
    g.fillText(opts.title, 4, 12);
    g.textAlign = 'right';
    g.fillText(fmt(max), w - 4, top + 10);
    let x = w - 4;
    this.data.forEach((d, i) => {
      const s = opts.series[i];
      g.strokeStyle = s.color;
      g.lineWidth = 1.5;
      g.beginPath();
      let pen = false;
      d.forEach((v, j) => {
        const px = w - (d.length - 1 - j) * (w / (SAMPLES - 1));
        if (v === null || !Number.isFinite(v)) { pen = false; return; }
        pen ? g.lineTo(px, y(v)) : g.moveTo(px, y(v));
        pen = true;
      });
      g.stroke();
    });
    // Current values, right-aligned, last series rightmost.
    for (let i = this.data.length - 1; i >= 0; i--) {
      const last = this.data[i].at(-1);
      const text = `${opts.series[i].label} ${last === null || last === undefined ? '–' : fmt(last)}`;
      g.fillStyle = opts.series[i].color;
      g.fillText(text, x, 12);
      x -= g.measureText(text).width + 10;
    }
    g.textAlign = 'left';
  }
}
