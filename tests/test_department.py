"""The department of deploy/department.py, as a class uses it: PostgreSQL, 3 replicas and HAProxy started
here on 127.0.0.1 (free ports, a temporary folder), shared by this module's tests and stopped at the end.

A browser test: the teacher opens a room through the balancer, students in their own browser contexts land
on different replicas (each response says which: X-DLM-Replica, the affinity cookie agrees) and answer; the
tally is right; the replica of some students is killed, the balancer takes it out (its health check), their
pages reconnect to another replica by themselves and still show their answers. Then the small, fast version
of bench/department_load.py: students through Streamlit's protocol, a replica killed mid-run, no answer
lost. Screenshots: artifacts/screenshots/department-*.png."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from browser_util import SHOTS, free_port, page_text
from test_poll_browser import CHOICES, answer, presenter_sizes, read_qr, wait_for_tally

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "deploy"), str(ROOT / "bench")]
import department_load  # noqa: E402
from department import Department  # noqa: E402

from dlm_core.classroom.poll import SQLPollStore  # noqa: E402

N_STUDENTS = 6


def run_in_thread(coroutine):
    """asyncio.run in a thread of its own: Playwright's sync API (the browser fixture) keeps an event loop
    running in the main thread for the whole session."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="module")
def dept():
    folder = tempfile.mkdtemp(prefix="dlm-department-test-")
    d = Department(folder, free_port(), 3, durable=False, pg_port=free_port(),
                   replica_ports=[free_port() for _ in range(3)], stats_port=free_port(),
                   extra_args=("--server.disconnectedSessionTTL", "10"))
    with d:
        yield d


def all_up(dept: Department) -> None:
    """Every replica running and in the balancer (a test that killed one leaves it to the next to restart)."""
    for r in dept.replicas:
        if r.proc is None or r.proc.poll() is not None:
            dept.start_replica(r)
    for r in dept.replicas:
        dept.wait_state(r.name, "UP", timeout=60)


def replica_of(response, context) -> str:
    """The replica that served a page: the balancer's header, checked against the affinity cookie."""
    served = response.headers["x-dlm-replica"]
    cookie = {c["name"]: c["value"] for c in context.cookies()}.get("DLM_REPLICA")
    assert cookie in (None, served), (cookie, served)  # the cookie, once set, names the replica that serves
    return served


@pytest.mark.browser
def test_a_class_through_the_balancer_and_a_replica_that_dies(dept, browser):
    all_up(dept)
    teacher_ctx = browser.new_context(viewport={"width": 1920, "height": 1080})
    teacher = teacher_ctx.new_page()
    teacher_replica = replica_of(teacher.goto(dept.url + "/poll"), teacher_ctx)
    teacher.get_by_role("button", name="Open a room").click()
    teacher.get_by_test_id("poll-code").wait_for(timeout=60_000)
    code = teacher.get_by_test_id("poll-code").get_attribute("aria-label")
    link = teacher.get_by_test_id("poll-link").inner_text().strip()
    assert link == f"{dept.url}/poll?room={code}" and read_qr(teacher) == link
    assert min(presenter_sizes(teacher).values()) >= 28

    students, expected = [], Counter()
    for i in range(N_STUDENTS):  # each its own browser: its own cookie, so the balancer may send it elsewhere
        ctx = browser.new_context(viewport={"width": 390, "height": 844})
        page = ctx.new_page()
        served = replica_of(page.goto(link), ctx)
        page.get_by_role("heading", name=re.compile("never replaces a unit")).wait_for(timeout=60_000)
        answer(page, CHOICES[i % 3])
        expected[CHOICES[i % 3]] += 1
        students.append((ctx, page, served, CHOICES[i % 3]))
    landed = Counter(s[2] for s in students)
    print(f"\nteacher on {teacher_replica}; students on {dict(landed)}")
    assert len(landed) >= 2, landed  # least connections spreads the class over the replicas
    wait_for_tally(teacher, {c: expected[c] for c in CHOICES})
    store = SQLPollStore(dept.pg.url)
    assert store.tally(code, "never-changes") == {c: expected[c] for c in CHOICES}
    teacher.screenshot(path=str(SHOTS / "department-teacher.png"))

    # the replica of some students (not the teacher's) dies: taken out, and their pages move on by themselves
    victim = next(r for r, _ in landed.most_common() if r != teacher_replica)
    moved = [s for s in students if s[2] == victim]
    dept.kill(victim)
    dept.wait_state(victim, "DOWN", timeout=15)
    for ctx, page, _, choice in moved:
        page.get_by_text(f"Your answer: {choice}.").wait_for(timeout=60_000)  # the page reconnected and shows it
        cookie = {c["name"]: c["value"] for c in ctx.cookies()}["DLM_REPLICA"]
        assert cookie != victim  # it now lives on another replica
    moved[0][1].screenshot(path=str(SHOTS / "department-student-moved.png"), full_page=True)
    # a student arriving now lands on a live replica; every answer is still counted
    ctx = browser.new_context(viewport={"width": 390, "height": 844})
    late = ctx.new_page()
    assert replica_of(late.goto(link), ctx) != victim
    answer(late, "gaussian")
    expected["gaussian"] += 1
    wait_for_tally(teacher, {c: expected[c] for c in CHOICES})
    assert store.tally(code, "never-changes") == {c: expected[c] for c in CHOICES}
    assert "Class poll" in page_text(teacher)
    store.close()
    for c, *_ in [*students, (ctx,)]:
        c.close()
    teacher_ctx.close()


def test_students_through_the_protocol_lose_no_answer_when_a_replica_dies(dept):
    """bench/department_load.py, small: 9 students at a quick pace, the busiest replica killed once a third
    have answered; every answer in the teacher's tally and the database, every student of that replica
    reconnected to another."""
    all_up(dept)
    code, host = department_load.open_room(dept.pg.url)
    victim = {}

    def kill(students):
        on = Counter(s.replicas[-1] for s in students if s.replicas)
        victim["name"] = on.most_common(1)[0][0]
        dept.kill(victim["name"])
        on_it = {s.index for s in students if s.replicas[-1:] == [victim["name"]]}
        return {"victim": victim["name"], "students": on_it}

    r = run_in_thread(department_load.run_class(dept.url, 9, (0.3, 0.8), code, host, kill=(0.34, kill), timeout=300,
                                              arrive_s=3))
    assert not r["stats"].errors, r["stats"].errors[:10]
    assert len(r["answered"]) == 9 and sum(r["expected"].values()) == 9
    assert r["on_page"] == r["expected"] == department_load.db_tally(dept.pg.url, code)
    moved = [s for s in r["students"] if s.index in r["killed"]["students"]]
    assert moved and all(s.reconnect_s and s.replicas[-1] != victim["name"] for s in moved)
    assert len({s.replicas[0] for s in r["students"]}) >= 2  # the class was spread over replicas
    assert dept.states()[victim["name"]] == "DOWN"
