"""The broker boundary in unit tests: what the code enqueued, run only when a test says so.

Celery's eager mode runs a task inside the `.delay()` call, that is inside the commit hook of
the code that queued it, in its thread, with retries run at once and failures swallowed by
whoever called `.delay()`. A worker does none of that, so tests that relied on it could pass
where the worker fails. Here `.delay()`, `.apply_async()` and a task's `retry()` only record
a Job (name, arguments, countdown, retry count), the message a broker would carry. A test
asserts on those, or runs them: each run is a worker's, in its own app context and database
session, with the message's retry count, after the code that queued it has returned. The
real worker process carries the integration tests (tests/journeys, tests/test_worker.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field

from celery import Celery
from celery.app.task import Task
from celery.exceptions import Retry

from privacy.extensions import db


@dataclass
class Job:
    """One message on the queue."""

    name: str
    args: tuple
    kwargs: dict
    countdown: float | None = None
    retries: int = 0
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # The task object that queued it (tests with a second app run its tasks in that app).
    task: Task | None = field(default=None, repr=False, compare=False)


@dataclass
class Ran:
    job: Job
    result: object = None
    retried: bool = False


class _Sent:
    """What apply_async returns: the id, as a producer sees it (no result backend)."""

    def __init__(self, job_id: str) -> None:
        self.id = job_id


class JobQueue:
    def __init__(self, celery: Celery) -> None:
        self.celery = celery
        self.jobs: list[Job] = []
        self.ran: list[Ran] = []

    # -- the boundary ------------------------------------------------------------------

    def record(self, task: Task, args=None, kwargs=None, **options) -> _Sent:
        countdown = options.get("countdown")
        if countdown is None and options.get("eta") is not None:
            countdown = -1.0  # an eta: "later", which tests treat like a countdown
        job = Job(
            task.name,
            tuple(args or ()),
            dict(kwargs or {}),
            countdown,
            int(options.get("retries") or 0),
            options.get("task_id") or str(uuid.uuid4()),
            task,
        )
        self.jobs.append(job)
        return _Sent(job.id)

    # -- what a test asks --------------------------------------------------------------

    def names(self) -> list[str]:
        return [job.name for job in self.jobs]

    def take(self, name: str) -> list[Job]:
        """Remove and return the queued jobs of task `name`."""
        taken = [job for job in self.jobs if job.name == name]
        self.jobs = [job for job in self.jobs if job.name != name]
        return taken

    def clear(self) -> None:
        self.jobs.clear()

    def run_one(self, job: Job) -> Ran:
        """Run `job` as a worker runs a message: the task's own __call__ (app context, its
        error handling) under a request with the message's id and retry count. A retry the
        task asks for is queued like any message; other exceptions reach the test."""
        if job in self.jobs:
            self.jobs.remove(job)
        # The test's session is the one its requests used (they share its app context): end
        # its transaction as the end of a request would, or SQLite's write lock stays held.
        db.session.commit()
        task = job.task or self.celery.tasks[job.name]
        task.push_request(
            id=job.id,
            args=list(job.args),
            kwargs=job.kwargs,
            retries=job.retries,
            called_directly=False,
            is_eager=False,
            delivery_info={"exchange": "", "routing_key": "celery", "priority": None},
        )
        try:
            ran = Ran(job, task(*job.args, **job.kwargs))
        except Retry:
            ran = Ran(job, None, retried=True)
        finally:
            task.pop_request()
        self.ran.append(ran)
        return ran

    def run(self, name: str | None = None, *, limit: int = 500) -> list[Ran]:
        """Run queued jobs (of task `name`, or all) in order, and what they queue in turn,
        retries included, until none is left; at most `limit` runs (then AssertionError)."""
        done: list[Ran] = []
        while True:
            job = next(self._pending(name), None)
            if job is None:
                return done
            assert len(done) < limit, f"more than {limit} runs: {self.names()[:20]}"
            done.append(self.run_one(job))

    def run_now(self, name: str | None = None) -> list[Ran]:
        """Like run(), but leaves retries and other delayed jobs queued."""
        done: list[Ran] = []
        while True:
            job = next((j for j in self._pending(name) if not j.countdown), None)
            if job is None:
                return done
            done.append(self.run_one(job))

    def _pending(self, name: str | None) -> Iterator[Job]:
        return (job for job in list(self.jobs) if name is None or job.name == name)

    def results(self, name: str) -> list[object]:
        return [ran.result for ran in self.ran if ran.job.name == name and not ran.retried]
