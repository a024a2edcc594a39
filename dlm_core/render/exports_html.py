"""A standalone HTML file that replays a trajectory offline with the same player as the app
(assets/player: its JavaScript and CSS inlined, the data embedded as JSON; no network)."""

from __future__ import annotations

import html
import json

from dlm_core import ASSETS
from dlm_core.render.stage import stage_data
from dlm_core.trajectory import Trajectory

PLAYER = ASSETS / "player"


PLAYER_SCRIPTS = ("support.js", "player.js")  # one script, in this order (player.js ends with the export)


def player_assets() -> tuple[str, str]:
    """(JavaScript, CSS) of the player."""
    js = "\n".join((PLAYER / name).read_text(encoding="utf-8") for name in PLAYER_SCRIPTS)
    return js, (PLAYER / "player.css").read_text(encoding="utf-8")


def _script_json(obj) -> str:
    """JSON safe inside a <script> element: no '</' can close it early."""
    return json.dumps(obj, ensure_ascii=False).replace("</", "<\\/").replace("<!--", "<\\!--")


def standalone_html(traj: Trajectory, title: str = "", interval_s: float = 0.8) -> str:
    """One self-contained HTML page: open it in any browser, offline, to replay the trajectory."""
    js, css = player_assets()
    data = stage_data(traj, title=title, start=0, interval_s=interval_s, report=False)
    module = js.replace("export default function mountStage", "function mountStage")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title or "Diffusion LM trajectory")}</title>
<style>body {{ margin: 24px; font-family: sans-serif; }}
{css}</style></head>
<body>
<div id="stage"></div>
<script id="trajectory-data" type="application/json">{_script_json(data)}</script>
<script>
{module}
mountStage({{data: JSON.parse(document.getElementById("trajectory-data").textContent),
            parentElement: document.getElementById("stage")}});
</script>
</body></html>
"""
