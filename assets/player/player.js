// The trajectory player: the sentence, the token x step grid, the legend and the transport
// bar, drawn in the browser from dlm_core.stage.stage_data(). Scrubbing and playing never
// ask the server for anything; the step is reported back (debounced, paused only) when the
// page wants it. Keys: Space play/pause, arrows step, Home/End first/last, F presenter.
// Every text that comes from a model or a file is set with textContent, never as HTML.
// Each state has a mark besides its colour; the step shown is also text (data.alt), spoken by a live
// region when a key or the scrubber changes it (never during Play); reduced motion: no autoplay.
// Its helpers (keys, motion, marks) are in support.js, joined before it by exports_html.player_assets.

// The block cache (data.recomputed, one '0'/'1' string per step): a small dark square in the top-right
// corner of each cell whose position that step's forward pass computed; the other cells were read
// from the keys and values kept from the block's first pass.
function markRecomputed(g, d, p, y0) {
  const s = Math.max(3, Math.min(7, Math.floor(Math.min(p.cellW, p.cellH) / 2)));
  g.fillStyle = "#000000";
  d.recomputed.forEach((mask, c) => {
    if (!mask) return;
    d.rows.forEach((pos, r) => {
      if (mask[pos] === "1") g.fillRect(p.labelW + (c + 1) * p.cellW - s - 1, y0 + r * p.cellH + 1, s, s);
    });
  });
}

function recomputedChip() {
  const chip = document.createElement("span");
  chip.className = "chip";
  chip.style.background = "#FFFFFF";
  chip.style.color = "#000000";
  chip.style.border = "1px solid #999999";
  chip.textContent = "■ computed by this step's pass (block cache)";
  return chip;
}

class Stage {
  constructor(component) {
    this.component = component;
    this.data = component.data;
    this.k = this.data.start;
    this.playing = false;
    this.present = false;
    this.interval = this.data.interval;
    this.reported = this.data.start;
    this.log = [];  // [step, time] of every redraw (read by the benchmark)
    this.pickable = !!(this.data.report && component.setTriggerValue);  // cells open the page's edit panel
    this.reducedMotion = reducedMotion();
    this.build(component.parentElement);
    this.setPresent(this.data.present);
    this.go(this.k, false);
    this.autoplayed = false;  // read by the tests: autoplay never runs for a reader who asked for less motion
    if ((this.data.autoplay || autoplayAsked()) && !this.reducedMotion && this.data.T > 0) {
      this.autoplayed = true;
      this.play();
    }
  }

  build(parent) {
    const d = this.data;
    const root = el("div", "dlm-stage" + (d.kind === "text" ? " text" : ""));
    this.root = root;
    root.tabIndex = -1;  // focusable by a click (its keys), not a Tab stop of its own: its controls are
    root.setAttribute("role", "region");
    root.setAttribute("aria-label", `Stage${d.title ? ": " + d.title : ""}`);
    const top = el("div", "top");
    this.stepInfo = el("span", "stepinfo");
    top.append(el("span", "title", d.title || ""), this.stepInfo);
    const pbtn = el("button", "present-btn", "Presenter (F)");
    pbtn.type = "button";
    pbtn.title = "Draw the stage large for a projector (F or Esc to leave)";
    pbtn.setAttribute("aria-keyshortcuts", "F");
    pbtn.onclick = () => { window.__dlmStageActive = this; this.setPresent(!this.present); };
    this.presentBtn = pbtn;
    top.append(pbtn);
    // the step shown, as text: always current (silent), and a live region that speaks a step changed by hand
    this.altEl = el("p", "sr-only alt");
    this.altEl.id = `dlm-alt-${d.id}`;
    this.live = el("div", "sr-only live");
    this.live.setAttribute("role", "status");
    this.live.setAttribute("aria-live", "polite");
    // lane 0 is the run itself; branches that part from it (data.lanes) are drawn under it
    this.lanes = [{ label: d.lane_label || "", from: 0, tokens: d.tokens, states: d.states, commits: d.commits,
                    fixed: d.fixed }].concat((d.lanes || []).map((l) => Object.assign({}, l)));
    this.picked = d.picked || null;
    this.seqs = el("div", "seqs");
    this.lanes.forEach((lane, l) => {
      const row = el("div", "lane");
      lane.row = row;
      if (lane.label) { lane.labelEl = el("div", "lane-label", lane.label); row.append(lane.labelEl); }
      const seq = el("div", "seq");
      lane.cells = lane.tokens[0].map((_, i) => {
        const c = el("span", "cell" + (lane.fixed.includes(i) ? " fixed" : ""));
        c.dataset.lane = String(l);
        c.dataset.pos = String(i);
        if (this.pickable) {  // one Tab stop per sequence; arrows move between its positions, Enter picks
          c.title = `Position ${i + 1}: click (or Enter) to pick it for an edit (pin, re-mask, release)`;
          c.setAttribute("role", "button");
          c.tabIndex = i === 0 ? 0 : -1;
        }
        c.onclick = () => this.pick(l, i, this.k);
        seq.append(c);
        return c;
      });
      row.append(seq);
      this.seqs.append(row);
    });
    this.seq = this.lanes[0].row;
    this.cells = this.lanes[0].cells;
    this.note = el("div", "note", d.note || "");
    if (!d.note) this.note.style.display = "none";
    this.gridWrap = el("div", "gridwrap");
    this.canvas = el("canvas", "grid");
    this.canvas.setAttribute("role", "img");
    this.canvas.setAttribute("aria-label", `Token by ${d.step_name} grid: one row per position, one column per ` +
      `${d.step_name} from 0 to ${d.T}, each cell in its state's colour and mark; the column shown is outlined.`);
    this.canvas.setAttribute("aria-describedby", this.altEl.id);
    this.tip = el("div", "tip");
    this.gridWrap.append(this.canvas, this.tip);
    const legend = el("div", "legend");
    legend.setAttribute("aria-label", "Legend");
    for (const code of d.legend) {
      const s = d.state_list[code];
      const chip = el("span", "chip", s.label);
      paintCell(chip, s);
      chip.title = `${s.label}: ${s.mark_words}`;
      legend.append(chip);
    }
    if (this.lanes.some((l) => l.fixed.length)) legend.append(el("span", "chip fixed-chip", "prompt / pinned by the user"));
    if (d.recomputed) legend.append(recomputedChip());
    const bar = el("div", "transport");
    const btn = (label, title, fn, cls) => {
      const b = el("button", cls || "", label);
      b.type = "button";
      b.title = title;
      b.onclick = () => { window.__dlmStageActive = this; fn(); };
      bar.append(b);
      return b;
    };
    const keyed = (b, keys) => { b.setAttribute("aria-keyshortcuts", keys); return b; };
    keyed(btn("|◀ First", "First (Home)", () => this.go(0), "first"), "Home");
    keyed(btn("◀ Prev", "Previous step (←)", () => this.go(this.k - 1), "prev"), "ArrowLeft");
    this.playBtn = keyed(btn("▶ Play", "Play / pause (Space)", () => this.toggle(), "play"), "Space");
    keyed(btn("Next ▶", "Next step (→)", () => this.go(this.k + 1), "next"), "ArrowRight");
    keyed(btn("Last ▶|", "Last (End)", () => this.go(d.T), "last"), "End");
    const speedLabel = el("label", "speed-label", "Speed ");
    this.speed = speedMenu(this.interval);
    this.speed.onchange = () => { this.interval = parseFloat(this.speed.value); if (this.playing) this.restartClock(); };
    speedLabel.append(this.speed);
    bar.append(speedLabel);
    this.scrub = el("input", "scrub");
    this.scrub.type = "range";
    this.scrub.min = "0";
    this.scrub.max = String(d.T);
    this.scrub.step = "1";
    this.scrub.setAttribute("aria-label", d.step_name === "step" ? "Step" : `Step (${d.step_name})`);
    this.scrub.oninput = () => { window.__dlmStageActive = this; this.pause(); this.go(parseInt(this.scrub.value, 10)); };
    bar.append(this.scrub);
    const help = el("div", "help", "Keys: Space play / pause · ← → one step · Home / End first / last · " +
      "F presenter mode (Esc leaves) · Tab moves between the controls" +
      (this.pickable ? " · on the sentence, ← → choose a position and Enter picks it for an edit" : ""));
    // the text a lesson says beside its stage: drawn in presenter mode only (the page shows it otherwise)
    const lead = el("div", "lead");
    (d.lead || []).forEach((para) => lead.append(el("p", "", para)));
    root.append(top, lead, this.seqs, this.altEl, this.live, this.note, this.gridWrap, legend, bar, help);
    root.addEventListener("pointerdown", () => { window.__dlmStageActive = this; });
    parent.append(root);
    window.__dlmStageActive = this;
    this.canvas.addEventListener("mousemove", (e) => this.hover(e));
    this.canvas.addEventListener("mouseleave", () => { this.tip.style.display = "none"; });
    this.canvas.addEventListener("click", (e) => {
      const at = this.cellAt(e);
      if (at && at.c <= this.k) { this.pause(); this.go(at.c); this.pick(at.l, at.pos, at.c); }
    });
    if (window.ResizeObserver) {
      this.resizer = new ResizeObserver(() => { if (this.layoutWidth !== this.width()) this.layout(); });
      this.resizer.observe(this.gridWrap);
    }
    this.layout();
  }

  width() { return Math.max(240, Math.floor(this.gridWrap.clientWidth || this.root.clientWidth || 700)); }

  layout() {  // grid geometry and the fully drawn grid, kept off screen and cropped per step
    const d = this.data, R = d.rows.length, C = d.T + 1, big = this.present, nL = this.lanes.length;
    const W = this.width();
    this.layoutWidth = W;
    const real = d.kind === "text";
    const narrow = W < 520;
    // presenter mode fills a projector's screen: the grid takes the width (cells up to 260 px wide), rows up
    // to 80 px high while the grid fits, and its text is 28 px or more where the cells leave room for it
    this.labelW = real ? (narrow ? 70 : (big ? 260 : 150)) : (narrow ? 44 : (big ? 150 : 64));
    this.cellW = Math.max(2, Math.min(big ? 260 : 90, Math.floor((W - this.labelW - 4) / C)));
    this.cellH = real ? Math.max(3, Math.min(big ? 40 : 20, Math.floor((big ? 600 : 520) / (R * nL))))
                      : (big ? Math.max(28, Math.min(80, Math.floor(600 / (R * nL)))) : (narrow ? 28 : 36));
    this.laneGap = nL > 1 ? (big ? 36 : 18) : 0;  // room for each branch's name above its rows
    this.laneH = R * this.cellH;
    this.gridH = nL * this.laneH + (nL - 1) * this.laneGap;
    const dpr = window.devicePixelRatio || 1;
    const axis = big ? 22 : 11, counts = big ? 58 : 29;  // the step axis, and the changed counts below it
    const w = this.labelW + C * this.cellW + 2, h = this.gridH + counts + (big ? 22 : 11);
    this.gw = w; this.gh = h;
    for (const c of [this.canvas]) {
      c.width = Math.ceil(w * dpr); c.height = Math.ceil(h * dpr);
      c.style.width = w + "px"; c.style.height = h + "px";
    }
    const off = document.createElement("canvas");
    off.width = this.canvas.width; off.height = this.canvas.height;
    const g = off.getContext("2d");
    g.scale(dpr, dpr);
    g.fillStyle = "#FFFFFF"; g.fillRect(0, 0, w, h);
    const fontPx = Math.min(big ? 34 : 14, Math.floor(this.cellH * (big ? 0.48 : 0.5)));
    const showText = this.cellW >= (big ? 40 : 28) && this.cellH >= 14;
    this.gridFontPx = showText ? fontPx : 0;  // read by the tests: grid text size in presenter mode
    const labelEvery = Math.max(1, Math.ceil(12 / this.cellH));
    g.textBaseline = "middle";
    this.lanes.forEach((lane, l) => {
      const y0 = this.laneY(l);
      if (l > 0) {  // the branch's name, above its rows
        g.fillStyle = "#333333"; g.textAlign = "left";
        g.font = `${big ? 28 : 12}px sans-serif`;
        g.fillText(`Branch ${l}: parts at step ${lane.from}`, this.labelW, y0 - this.laneGap / 2);
      }
      for (let r = 0; r < R; r++) {
        const pos = d.rows[r], y = y0 + r * this.cellH;
        if (r % labelEvery === 0) {
          g.fillStyle = "#333333";
          g.font = `${Math.max(10, Math.min(big ? 28 : 13, this.cellH * labelEvery - 2))}px sans-serif`;
          g.textAlign = "right";
          let label = real ? `${pos + 1} · ${d.labels[String(lane.tokens[C - 1][pos])] || ""}` : `pos ${pos + 1}`;
          if (narrow && real) label = String(pos + 1);
          g.fillText(label.length > 18 ? label.slice(0, 17) + "…" : label, this.labelW - 6, y + this.cellH / 2);
        }
        for (let c = 0; c < C; c++) {
          const s = d.state_list[+lane.states[c][pos]];
          const x = this.labelW + c * this.cellW;
          g.globalAlpha = l > 0 && c <= lane.from ? 0.35 : 1;  // a branch's shared steps are its parent's: faded
          g.fillStyle = s.fill;
          const gap = this.cellW > 6 && this.cellH > 6 ? 1 : 0;
          g.fillRect(x + gap, y + gap, this.cellW - 2 * gap, this.cellH - 2 * gap);
          if (showText) {
            const tok = lane.tokens[c][pos];
            let text = s.key === "mask" && d.kind === "text" ? "" : (d.labels[String(tok)] || "");
            g.textAlign = "center";
            g.fillStyle = s.fg;
            const room = this.cellW - 8;
            let px = fontPx;
            g.font = `${px}px sans-serif`;
            while (px > Math.max(9, Math.round(fontPx * 0.75)) && g.measureText(text).width > room) {
              px -= 1;  // a long unit: a little smaller first, cut only when that is not enough
              g.font = `${px}px sans-serif`;
            }
            if (g.measureText(text).width > room) {
              if (s.key === "mask") text = "·";
              else {
                while (text.length > 1 && g.measureText(text + "…").width > room) text = text.slice(0, -1);
                text += "…";
              }
            }
            g.fillText(text, x + this.cellW / 2, y + this.cellH / 2);
          }
          drawMark(g, s, x + gap, y + gap, this.cellW - 2 * gap, this.cellH - 2 * gap, big);
          g.globalAlpha = 1;
        }
        if (lane.fixed.includes(pos)) {
          g.strokeStyle = "#000000"; g.lineWidth = 2;
          g.strokeRect(this.labelW + 1, y + 1, C * this.cellW - 2, this.cellH - 2);
        }
      }
      g.strokeStyle = "#000000"; g.lineWidth = 2; g.setLineDash([6, 4]);
      for (const b of d.blocks) {  // semi-autoregressive block boundaries
        const r = d.rows.indexOf(b);
        if (r < 0) continue;
        g.beginPath(); g.moveTo(this.labelW, y0 + r * this.cellH); g.lineTo(w, y0 + r * this.cellH); g.stroke();
      }
      if (l === 0 && d.recomputed) markRecomputed(g, d, this, y0);
      if (l > 0) {  // where the branch parts from its parent: after column `from`
        const x = this.labelW + (lane.from + 1) * this.cellW;
        g.lineWidth = big ? 5 : 4; g.setLineDash([]);
        g.beginPath(); g.moveTo(x, y0 - 4); g.lineTo(x, y0 + this.laneH + 4); g.stroke();
      }
      g.setLineDash([]);
    });
    g.fillStyle = "#333333"; g.textAlign = "center";
    g.font = `${big ? 28 : 11}px sans-serif`;
    const every = Math.max(1, Math.ceil((big ? 44 : 28) / this.cellW));
    for (let c = 0; c < C; c += every) g.fillText(String(c), this.labelW + c * this.cellW + this.cellW / 2, this.gridH + axis);
    // how many positions each step committed (or changed): idle steps show as 0
    g.fillStyle = "#666666";
    g.textAlign = "right";
    g.fillText(narrow ? "+" : "changed", this.labelW - 6, this.gridH + counts);
    g.textAlign = "center";
    for (let c = 1; c < C; c += every) {
      g.fillStyle = d.commits[c] ? "#333333" : "#B00020";
      g.fillText(String(d.commits[c]), this.labelW + c * this.cellW + this.cellW / 2, this.gridH + counts);
    }
    this.off = off;
    this.drawGrid();
  }

  describe(k) {  // the step shown, in words (dlm_core.render.stage.step_texts), with the branches that differ
    const parts = [this.data.alt ? this.data.alt[k] : ""];
    this.lanes.slice(1).forEach((lane, j) => {
      if (lane.alt && k > lane.from) parts.push(`Branch ${j + 1}: ${lane.alt[k] || ""}`);
    });
    return parts.join(" ");
  }

  announce() { this.live.textContent = this.describe(this.k); }

  drawGrid() {
    const dpr = window.devicePixelRatio || 1;
    const g = this.canvas.getContext("2d");
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.fillStyle = "#FFFFFF";
    g.fillRect(0, 0, this.canvas.width, this.canvas.height);
    const cw = Math.ceil((this.labelW + (this.k + 1) * this.cellW) * dpr);
    g.drawImage(this.off, 0, 0, cw, this.canvas.height, 0, 0, cw, this.canvas.height);
    const axisY = Math.floor(this.gridH * dpr);
    g.drawImage(this.off, cw, axisY, this.canvas.width - cw, this.canvas.height - axisY,
                cw, axisY, this.canvas.width - cw, this.canvas.height - axisY);  // the step axis stays whole
    g.scale(dpr, dpr);
    g.strokeStyle = "#000000"; g.lineWidth = 3;
    g.strokeRect(this.labelW + this.k * this.cellW + 1.5, 1.5, this.cellW - 3, this.gridH - 3);
  }

  laneY(l) { return l * (this.laneH + this.laneGap); }

  cellAt(e) {  // the lane, position and step under the pointer, or null
    const rect = this.canvas.getBoundingClientRect();
    const x = e.clientX - rect.left, y = e.clientY - rect.top;
    const c = Math.floor((x - this.labelW) / this.cellW);
    for (let l = 0; l < this.lanes.length; l++) {
      const r = Math.floor((y - this.laneY(l)) / this.cellH);
      if (c >= 0 && c <= this.data.T && r >= 0 && r < this.data.rows.length) return { l, c, pos: this.data.rows[r], x, y };
    }
    return null;
  }

  pick(l, pos, step) {  // the user picked a cell for an edit: tell the page (it reruns and shows the edit panel)
    window.__dlmStageActive = this;
    this.pause();
    this.picked = { lane: l, pos };
    this.markPicked();
    clearTimeout(this.reportTimer);
    if (this.data.report && this.component.setStateValue && step !== this.reported) {
      this.reported = step;
      this.component.setStateValue("step", step);
    }
    if (this.component.setTriggerValue) this.component.setTriggerValue("pick", { lane: l, pos, step });
  }

  markPicked() {
    this.lanes.forEach((lane, l) => lane.cells.forEach((c, i) => {
      c.classList.toggle("picked", !!this.picked && this.picked.lane === l && this.picked.pos === i);
    }));
  }

  hover(e) {
    const at = this.cellAt(e);
    const d = this.data;
    if (!at || at.c > this.k) { this.tip.style.display = "none"; return; }
    const { l, c, pos, x, y } = at, lane = this.lanes[l];
    const tok = lane.tokens[c][pos], s = d.state_list[+lane.states[c][pos]];
    this.tip.textContent = `${l ? `branch ${l}, ` : ""}${d.step_name} ${c}, position ${pos + 1}: ` +
      `${d.labels[String(tok)] || ""} (${s.label})`;
    this.tip.style.display = "block";
    this.tip.style.left = Math.min(x + 12, this.gw - 200) + "px";
    this.tip.style.top = (y + 14) + "px";
  }

  go(k, user = true) {
    const d = this.data;
    k = Math.max(0, Math.min(d.T, k | 0));
    if (user && this.playing && k !== this.k && !this._ticking) this.pause();
    this.k = k;
    this.lanes.forEach((lane, l) => {
      const toks = lane.tokens[k], states = lane.states[k];
      for (let i = 0; i < lane.cells.length; i++) {
        const s = d.state_list[+states[i]];
        const c = lane.cells[i], plain = d.kind === "text" && s.key === "committed_earlier" && !lane.fixed.includes(i);
        c.textContent = d.texts[String(toks[i])] ?? "";
        paintCell(c, s, plain);
        if (this.pickable) c.setAttribute("aria-label", `Position ${i + 1}: ${d.labels[String(toks[i])] ?? ""}, ${s.label}`);
      }
      lane.row.classList.toggle("shared", l > 0 && k <= lane.from);  // not parted yet: the parent's
    });
    this.markPicked();
    this.scrub.value = String(k);
    this.scrub.setAttribute("aria-valuetext", `${d.step_name} ${k} of ${d.T}`);
    const n = d.commits[k];
    this.stepInfo.textContent = `${d.step_name} ${k} of ${d.T}` + (k > 0 ? ` · ${n} position${n === 1 ? "" : "s"} changed` : "");
    this.altEl.textContent = this.describe(k);
    if (user && !this._ticking) this.announce();  // a step changed by hand is spoken; Play's steps are not
    this.drawGrid();
    this.log.push([k, performance.now()]);
    if (this.log.length > 2000) this.log.splice(0, 1000);
    this.scheduleReport();
  }

  scheduleReport() {
    if (!this.data.report || this.playing || !this.component.setStateValue) return;
    clearTimeout(this.reportTimer);
    this.reportTimer = setTimeout(() => {
      if (this.playing || this.k === this.reported) return;
      this.reported = this.k;
      this.component.setStateValue("step", this.k);
    }, 350);
  }

  toggle() { if (this.playing) this.pause(); else this.play(); }

  play() {
    if (this.k >= this.data.T) this.go(0, false);
    this.playing = true;
    this.playBtn.textContent = "❚❚ Pause";
    this.restartClock();
  }

  restartClock() {  // ticks on a fixed clock from the start, so the interval does not drift
    clearTimeout(this.timer);
    this.t0 = performance.now();
    this.n = 0;
    this.schedule();
  }

  schedule() {
    this.n += 1;
    const due = this.t0 + this.n * this.interval * 1000;
    this.timer = setTimeout(() => this.tick(), Math.max(0, due - performance.now()));
  }

  tick() {
    if (!this.playing || !this.root.isConnected) return;
    this._ticking = true;
    this.go(this.k + 1, false);
    this._ticking = false;
    if (this.k >= this.data.T) this.pause(); else this.schedule();
  }

  pause() {
    clearTimeout(this.timer);
    if (!this.playing) return;
    this.playing = false;
    this.playBtn.textContent = "▶ Play";
    this.announce();  // where Play stopped
    this.scheduleReport();
  }

  setPresent(on) {
    this.present = !!on;
    this.root.classList.toggle("present", this.present);
    this.presentBtn.setAttribute("aria-pressed", String(this.present));
    document.body.classList.toggle("dlm-presenting", this.present);
    this.layout();
    this.go(this.k, false);
  }

  destroy() {
    clearTimeout(this.timer);
    clearTimeout(this.reportTimer);
    if (this.resizer) this.resizer.disconnect();
    if (this.present) document.body.classList.remove("dlm-presenting");
    this.root.remove();
  }
}

export default function mountStage(component) {
  installKeys();
  const parent = component.parentElement;
  const old = parent.__dlmStage;
  if (old && old.data.id === component.data.id && old.root.isConnected) {
    old.component = component;  // a rerun with the same trajectory: keep the step, the clock and the mode
    if (component.data.present !== old.data.present) { old.data.present = component.data.present; old.setPresent(old.data.present); }
    return;
  }
  if (old) old.destroy();
  const stage = new Stage(component);
  parent.__dlmStage = stage;
  window.__dlmStages = (window.__dlmStages || []).filter((s) => s.root.isConnected).concat([stage]);
}
