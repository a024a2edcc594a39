"""The browser player, measured in headless Chromium against a server started here on 127.0.0.1.

    PYTHONPATH=. .venv/bin/python bench/player_browser.py [--steps 50] [--speed 0.3]

For the Reverse page (toy model, T = 100) and the Real page (the embedded model, 64 tokens,
64 steps) it prints:
- the redraw time of one step, key press (→) or scrubber input to the next painted frame,
  median of 50 steps, as a ratio against the 50 ms target;
- Play's measured interval against the chosen speed (mean of the step-to-step intervals,
  and the time step 0 is held), as a ratio (target within 1 +- 0.10);
- the websocket frames sent and received while playing (target 0: no server round trip).
Bounded: one server, two pages, about a minute; it stops the server itself.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from serving import free_port, serve, stop  # noqa: E402

REDRAW_JS = """async ([n, how]) => {
  const s = window.__dlmStageActive;
  const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  s.pause(); s.go(0); await frame();
  const times = [];
  for (let i = 0; i < n; i++) {
    const k = (s.k + 1) % (s.data.T + 1);
    const t0 = performance.now();
    if (how === "key") document.dispatchEvent(new KeyboardEvent("keydown", {key: "ArrowRight", bubbles: true}));
    else { s.scrub.value = String(k); s.scrub.dispatchEvent(new Event("input", {bubbles: true})); }
    const sync = performance.now() - t0;  // the player's own work: DOM and canvas updated
    if (how === "key" && s.k >= s.data.T) s.go(0);
    await frame();
    times.push([performance.now() - t0, sync]);
  }
  return times;
}"""

PLAY_JS = """async ([speed, steps]) => {
  const s = window.__dlmStageActive;
  s.pause(); s.go(0);
  s.interval = speed;
  const start = s.log.length;
  const t0 = performance.now();
  s.play();
  await new Promise((r) => setTimeout(r, speed * 1000 * (steps + 0.5)));
  s.pause();
  const log = s.log.slice(start).filter(([k]) => k > 0);
  return {t0, times: log.map(([, t]) => t), steps: log.map(([k]) => k)};
}"""


def measure(page, label: str, steps: int, speed: float) -> None:
    frames = {"sent": 0, "received": 0, "on": False}

    def on_ws(ws):
        ws.on("framesent", lambda _: frames.__setitem__("sent", frames["sent"] + frames["on"]))
        ws.on("framereceived", lambda _: frames.__setitem__("received", frames["received"] + frames["on"]))

    page.on("websocket", on_ws)
    for how in ("key", "scrub"):
        pairs = page.evaluate(REDRAW_JS, [steps, how])
        t = [p[0] for p in pairs]
        med, work = statistics.median(t), statistics.median(p[1] for p in pairs)
        print(f"  {label}: {how:5s} to the next painted frame: median {med:5.1f} ms over {len(t)} steps (p90 "
              f"{sorted(t)[int(0.9 * len(t))]:.1f} ms) -> {med / 50:.2f} x the 50 ms target; the player's own "
              f"work {work:.2f} ms (the rest is waiting for the display's frames)")
    frames["on"] = True
    n_play = 8
    r = page.evaluate(PLAY_JS, [speed, n_play])
    frames["on"] = False
    times = [r["t0"]] + r["times"]
    gaps = [b - a for a, b in zip(times[1:], times[2:])]
    hold0 = times[1] - times[0]
    mean_gap = statistics.mean(gaps) / 1000 if gaps else float("nan")
    print(f"  {label}: play at {speed} s/step: step 0 held {hold0 / 1000:.3f} s ({hold0 / 1000 / speed:.3f} x), "
          f"mean interval {mean_gap:.3f} s ({mean_gap / speed:.3f} x; worst "
          f"{max(abs(g / 1000 / speed - 1) for g in gaps):.1%} off) over steps {r['steps'][:1]}..{r['steps'][-1:]}")
    print(f"  {label}: websocket frames while playing: {frames['sent']} sent, {frames['received']} received")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--speed", type=float, default=0.3)
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    port = free_port()
    server = serve(port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                        args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/reverse?steps=100&strategy=ancestral")
            page.wait_for_function("() => window.__dlmStageActive && window.__dlmStageActive.data.T === 100",
                                   timeout=60000)
            print("Reverse page, masked toy model, T = 100")
            measure(page, "reverse", a.steps, a.speed)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/real?real_gen_length=64&real_steps=64&real_block_length=64")
            page.get_by_role("button", name="Generate").click()
            page.wait_for_function("() => window.__dlmStageActive && window.__dlmStageActive.data.T === 64",
                                   timeout=180000)
            print("Real page, embedded model, 64 tokens, 64 steps")
            measure(page, "real", a.steps, a.speed)
            browser.close()
    finally:
        stop(server)


if __name__ == "__main__":
    main()
