"""Render: what the pages and exports draw, from trajectories and results (no model is called here).

- `palette`: the one palette (state colours for states only, series colours for series);
- `cells`: what each cell of a trajectory shows and its state; `chips`: tokens as coloured chips, the legend;
- `safe_html`: the only way to build HTML (every value escaped);
- `svg_chart`, `svg_figures`: the views under the stages as inline SVG; `plotly_figures`,
  `order_figures`, `study_figures`: the plotly figures of the study pages;
- `stage`: the browser player's data; `exports`, `exports_html`: GIF, PNG and the offline HTML player.

May import: the foundations and sampling only (never a variant or a study: render draws what they computed).
"""
