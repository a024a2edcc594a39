"""Classroom: what a lesson needs beyond the views.

- `lessons`: the guided lessons; `questions`: predict-then-reveal questions answered from the models;
- `glossary` (+ `glossary_terms`, its data): plain meanings of every term a page shows;
- `poll`: the class poll (rooms, questions, anonymous answers), its public face and `default_store()`; behind
  it `poll_rules` (what a room is, what is refused, the `PollStore` interface, the CSV of tallies),
  `poll_schema` (tables, versioned upgrades, the engine for SQLite or PostgreSQL), `poll_store` (the store on
  SQLAlchemy Core) and `poll_view` (the room code, QR code and tally bars as safe HTML).

May import: every layer below (foundations, sampling, variants, studies, render, serving).
"""
