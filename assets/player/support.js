// Helpers of the trajectory player (player.js, which follows this file in one script): the speeds, the
// page-wide keys, reduced motion and autoplay, and each state's mark on the canvas
// (dlm_core/render/palette.MARKS; the PNG / GIF exports draw the same shapes, render/marks.py).

const SPEEDS = [["slow (1.5 s/step)", 1.5], ["normal (0.8 s/step)", 0.8], ["fast (0.3 s/step)", 0.3],
                ["very fast (0.15 s/step)", 0.15]];

const reducedMotion = () => !!(window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches);

function autoplayAsked() {  // ?autoplay=1 in the page's link (or #autoplay for an exported file)
  try {
    const v = new URLSearchParams(window.location.search).get("autoplay");
    return v === "1" || v === "true" || window.location.hash === "#autoplay";
  } catch (e) { return false; }
}

const FIELD_ROLES = /^(slider|radio|checkbox|switch|tab|option|combobox|listbox|menuitem|spinbutton|textbox)$/;

function ownKeys(t) {  // what a focused element of the page answers itself: "all" (a field, a slider, a radio),
  if (!t || !t.tagName) return "";  // "press" (a button or a link: Space and Enter), or "" (nothing)
  const tag = t.tagName.toLowerCase(), role = (t.getAttribute && t.getAttribute("role")) || "";
  if (["input", "textarea", "select"].includes(tag) || t.isContentEditable || FIELD_ROLES.test(role)) return "all";
  if (["button", "a", "summary"].includes(tag) || role === "button" || role === "link") return "press";
  return "";
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function installKeys() {
  if (window.__dlmStageKeys) return;
  window.__dlmStageKeys = true;
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const path = e.composedPath ? e.composedPath() : [e.target];
    const t = path[0];
    const inside = (window.__dlmStages || []).find((st) => path.includes(st.root));
    const s = inside || window.__dlmStageActive;
    if (!s || !s.root.isConnected) return;
    const k = e.key;
    const tag = (t && t.tagName || "").toLowerCase();
    if (k === "Escape" && s.present) { s.setPresent(false); e.preventDefault(); return; }
    if (inside) {  // in the stage: its buttons take Space / Enter, its menu its own keys, a position the arrows
      window.__dlmStageActive = s;
      if (tag === "select") return;
      if ((k === " " || k === "Enter") && tag === "button") return;
      if (t.classList && t.classList.contains("cell") && cellKey(s, k, t)) { e.preventDefault(); return; }
    } else {  // a widget of the page keeps its keys: a field or a slider all of them, a button Space and Enter
      const own = ownKeys(t);
      if (own === "all" || (own === "press" && (k === " " || k === "Enter"))) return;
    }
    if (k === " " || k === "Spacebar") s.toggle();
    else if (k === "ArrowRight") s.go(s.k + 1);
    else if (k === "ArrowLeft") s.go(s.k - 1);
    else if (k === "Home") s.go(0);
    else if (k === "End") s.go(s.data.T);
    else if (k === "f" || k === "F") s.setPresent(!s.present);
    else return;
    e.preventDefault();
  });
  const style = document.createElement("style");  // presenter mode hides the page around the stage
  style.textContent = "body.dlm-presenting section[data-testid='stSidebar']{display:none!important}" +
    "body.dlm-presenting header[data-testid='stHeader']{display:none!important}";
  document.head.appendChild(style);
}

function drawMark(g, s, x, y, w, h, big) {  // the state's shape, besides its colour (render/palette.MARKS)
  // cells under 6 px (a dashed outline: 14 px) keep their colour alone; the text alternative names every state
  const m = Math.min(w, h);
  if (!s.mark || m < 6 || (s.mark === "outline" && m < 14)) return;
  g.save();
  g.fillStyle = s.ink; g.strokeStyle = s.ink;
  if (s.mark === "outline") {  // a mask: dashed outline inside the cell
    const lw = big ? 3 : 2;
    g.lineWidth = lw; g.setLineDash([big ? 9 : 5, big ? 6 : 3]);
    g.strokeRect(x + lw / 2 + 1, y + lw / 2 + 1, w - lw - 2, h - lw - 2);
  } else if (s.mark === "dot") {  // committed now: a dot in the top-right corner
    const r = Math.max(2, Math.min(big ? 8 : 5, m * 0.14)), pad = Math.min(4, m * 0.12);
    g.beginPath(); g.arc(x + w - r - pad, y + r + pad, r, 0, 2 * Math.PI); g.fill();
  } else if (s.mark === "triangle") {  // changed: a triangle in the top-right corner
    const a = Math.max(4, Math.min(big ? 18 : 11, m * 0.3)), pad = Math.min(3, m * 0.1);
    g.beginPath(); g.moveTo(x + w - pad - a, y + pad + a); g.lineTo(x + w - pad, y + pad + a);
    g.lineTo(x + w - pad - a / 2, y + pad); g.closePath(); g.fill();
  } else if (s.mark === "strike") {  // re-masked: struck through
    g.lineWidth = big ? 3 : 2;
    g.beginPath(); g.moveTo(x + 2, y + h / 2); g.lineTo(x + w - 2, y + h / 2); g.stroke();
  }
  g.restore();
}

function paintCell(c, s, plain) {  // a chip of the sentence or the legend: its state's colour and mark
  if (c.stateKey !== s.key || c.plain !== !!plain) {
    if (c.stateKey) c.classList.remove("s-" + c.stateKey);
    c.classList.add("s-" + s.key);
    c.stateKey = s.key;
    c.plain = !!plain;
    c.dataset.mark = s.glyph || "";
    c.style.setProperty("--ink", s.ink || "#000");
    c.style.background = plain ? "transparent" : s.fill;
    c.style.color = plain ? "#0b3d66" : s.fg;
  }
}

function speedMenu(interval) {  // the speed menu, with the page's own speed where it is not one of SPEEDS
  const menu = el("select", "speed");
  const speeds = SPEEDS.some(([, v]) => Math.abs(v - interval) < 1e-9) ? SPEEDS
    : SPEEDS.concat([[`${interval} s/step`, interval]]);
  for (const [label, v] of speeds) {
    const o = el("option", "", label);
    o.value = String(v);
    if (Math.abs(v - interval) < 1e-9) o.selected = true;
    menu.append(o);
  }
  return menu;
}

function cellKey(stage, k, cell) {  // keys on a focused position of the sentence: move along it, pick it
  const l = +cell.dataset.lane, i = +cell.dataset.pos, cells = stage.lanes[l].cells;
  let j = null;
  if (k === "ArrowRight") j = Math.min(cells.length - 1, i + 1);
  else if (k === "ArrowLeft") j = Math.max(0, i - 1);
  else if (k === "Enter" || k === " ") { stage.pick(l, i, stage.k); return true; }
  else return false;
  cells.forEach((c, n) => { c.tabIndex = n === j ? 0 : -1; });
  cells[j].focus();
  return true;
}
