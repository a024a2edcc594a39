"""Classroom: what a lesson needs beyond the views.

- `lessons`: the guided lessons; `questions`: predict-then-reveal questions answered from the models;
- `glossary` (+ `glossary_terms`, its data): plain meanings of every term a page shows;
- `poll`: the class poll's store (rooms, questions, anonymous answers).

May import: every layer below (foundations, sampling, variants, studies, render, serving).
"""
