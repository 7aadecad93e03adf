"""The service as `make run` runs it: `python -m privacy.procfile` starting the Procfile's
gunicorn and Celery worker on a fresh instance folder and a free port, reached over HTTP and
the `flask` CLI only. No test client, no eager tasks.

On the embedded defaults by default; with PRIVACY_TEST_DATABASE_URL (CI's second pass) on a
fresh PostgreSQL database of its own and, with PRIVACY_TEST_BROKER_URL, on Redis.

The whole run fails on any 5xx answer, any ERROR line in the processes' output, or a link in
a mail or callback that does not answer 200.
"""

from __future__ import annotations

import contextlib
import email
import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from dataclasses import field
from email import policy
from pathlib import Path

import pytest
import requests

from tests import helpers

LINK = re.compile(rb"https?://[^\s\"'<>]+")
ACCESS_LINE = re.compile(
    r"privacy\.access \[[^\]]*\] (?P<method>[A-Z]+) (?P<path>\S+) (?P<code>\d{3}) "
)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Mail:
    path: Path
    raw: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw, policy=policy.default)

    @property
    def to(self) -> str:
        return str(self.message["To"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def links(self) -> list[str]:
        """Links as they stand in the raw file: a link cut by a soft line break shows up
        cut here, as it does to whoever reads the file."""
        return [m.decode().rstrip(".,;)") for m in LINK.findall(self.raw)]


@dataclass
class Service:
    root: Path
    env: dict[str, str]
    port: int
    log: Path
    database_url: str | None = None
    process: subprocess.Popen | None = None
    checked_links: set[str] = field(default_factory=set)
    answers: list[tuple[str, str, int]] = field(default_factory=list)
    stopped: dict | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def instance(self) -> Path:
        return Path(self.env["PRIVACY_INSTANCE_PATH"])

    @property
    def outbox(self) -> Path:
        return self.instance / "outbox"

    # -- the CLI ---------------------------------------------------------------------------

    def cli(self, *args: str, base_url: bool = False, check: bool = True, timeout: float = 300):
        """`flask --app wsgi ARGS` as a user types it; `base_url` adds PRIVACY_BASE_URL, the
        setting a command that mails links asks for."""
        env = dict(self.env)
        if base_url:
            env["PRIVACY_BASE_URL"] = self.base_url
        result = subprocess.run(
            [str(helpers.BIN / "flask"), "--app", "wsgi", *args],
            cwd=helpers.ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check:
            assert result.returncode == 0, f"flask {' '.join(args)}:\n{result.stderr[-3000:]}"
        for line in result.stderr.splitlines():
            assert not re.search(r"\bERROR\b", line), f"flask {' '.join(args)}: {line}"
        return result

    def run(self, *args: str, input: bytes | None = None, timeout: float = 300):
        """Another program of the project (privacy-scrub), from the same environment."""
        return subprocess.run(
            list(args),
            cwd=helpers.ROOT,
            env=self.env,
            input=input,
            capture_output=True,
            timeout=timeout,
        )

    # -- HTTP ------------------------------------------------------------------------------

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.hooks["response"].append(self._record)
        return session

    def _record(self, response, *args, **kwargs):
        self.answers.append((response.request.method, response.url, response.status_code))
        assert response.status_code < 500, (
            f"{response.request.method} {response.url} answered {response.status_code}:\n"
            f"{response.text[:2000]}\n--- processes:\n{self.tail()}"
        )

    def url(self, path: str) -> str:
        return self.base_url + path

    def check_link(self, link: str, session: requests.Session | None = None) -> requests.Response:
        """A link from a mail or a callback: it must answer 200 on the running service."""
        assert link.startswith(self.base_url + "/"), f"link to elsewhere: {link}"
        answer = (session or self.session()).get(link, timeout=60)
        assert answer.status_code == 200, f"{link} answered {answer.status_code}"
        self.checked_links.add(link)
        return answer

    # -- mail ------------------------------------------------------------------------------

    def mails(self) -> list[Mail]:
        if not self.outbox.exists():
            return []
        return [Mail(p, p.read_bytes()) for p in sorted(self.outbox.glob("*.eml"))]

    def wait_mail(self, to: str, subject_has: str, seen: int = 0, timeout: float = 90) -> Mail:
        """The first mail after the first `seen` ones to `to` whose subject has the text."""
        deadline = time.monotonic() + timeout
        while True:
            for mail in self.mails()[seen:]:
                if to.lower() in mail.to.lower() and subject_has in mail.subject:
                    return mail
            assert time.monotonic() < deadline, (
                f"no mail to {to} about {subject_has!r}: "
                f"{[(m.to, m.subject) for m in self.mails()]}\n{self.tail()}"
            )
            time.sleep(0.3)

    # -- the processes ---------------------------------------------------------------------

    def start(self) -> None:
        self.cli("db", "upgrade")  # `make run`'s migrate step
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own runner
                [str(helpers.BIN / "python"), "-m", "privacy.procfile", "--port", str(self.port)],
                cwd=helpers.ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        helpers.wait_http(self.url("/healthz"), timeout=120)
        deadline = time.monotonic() + 120
        while "ready." not in self.output():  # Celery's "celery@host ready."
            assert self.process.poll() is None, self.tail()
            assert time.monotonic() < deadline, "the worker did not start:\n" + self.tail()
            time.sleep(0.3)

    def stop(self, signum: int = signal.SIGINT) -> dict:
        """Ctrl-C to the runner; how long it took, its status and what it printed after."""
        if self.stopped is not None:
            return self.stopped
        before = len(self.output())
        started = time.monotonic()
        self.process.send_signal(signum)
        try:
            status = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            status = self.process.wait()
        self.stopped = {
            "seconds": time.monotonic() - started,
            "status": status,
            "output": self.output()[before:],
        }
        return self.stopped

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, chars: int = 4000) -> str:
        return self.output()[-chars:]

    def problems(self) -> list[str]:
        """ERROR lines, and 5xx answers in the access log, of both processes."""
        found = []
        for line in self.output().splitlines():
            access = ACCESS_LINE.search(line)
            if access and int(access["code"]) >= 500:
                found.append(line)
            elif re.search(r"\bERROR\b|Traceback \(most recent call last\)", line):
                found.append(line)
        return found


def _redis(url: str) -> str:
    """The journeys' own Redis database (14), emptied: nothing another test queued runs."""
    import redis

    own = re.sub(r"/\d+$", "", url.rstrip("/")) + "/14"
    redis.Redis.from_url(own).flushdb()
    return own


@pytest.fixture(scope="session")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("journeys")
    port = helpers.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVACY_")}
    env.pop("PORT", None)
    env.update({"PRIVACY_INSTANCE_PATH": str(root / "instance"), "PYTHONUNBUFFERED": "1"})
    cleanups = []
    database_url = None
    if os.environ.get("PRIVACY_TEST_DATABASE_URL"):
        database_url, drop = helpers.postgres_database(os.environ["PRIVACY_TEST_DATABASE_URL"])
        cleanups.append(drop)
        env["PRIVACY_DATABASE_URL"] = database_url
    if os.environ.get("PRIVACY_TEST_BROKER_URL", "").startswith("redis"):
        env["PRIVACY_BROKER_URL"] = _redis(os.environ["PRIVACY_TEST_BROKER_URL"])
    running = Service(root, env, port, root / "processes.log", database_url)
    try:
        running.start()
        yield running
        running.stop()
        problems = running.problems()
        assert not problems, "\n".join(problems[:30])
    finally:
        if running.process is not None and running.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(running.process.pid, signal.SIGKILL)
        for cleanup in cleanups:
            cleanup()


def sign_in(service: Service, email_address: str) -> requests.Session:
    """The sign-in a person does: the form, the link from the raw .eml, Continue."""
    browser = service.session()
    page = browser.get(service.url("/auth/login"), timeout=30)
    seen = len(service.mails())
    sent = browser.post(
        service.url("/auth/login"),
        data={"csrf_token": CSRF.search(page.text).group(1), "email": email_address},
        allow_redirects=False,
        timeout=30,
    )
    assert sent.status_code == 303 and sent.headers["Location"].endswith("/auth/check-email")
    mail = service.wait_mail(email_address, "sign-in", seen)
    (link,) = [link for link in mail.links() if "/auth/link/" in link]
    shown = service.check_link(link, browser)  # opening it uses nothing up (mail scanners)
    assert "Continue" in shown.text
    done = browser.post(
        service.url("/auth/link"),
        data={"csrf_token": CSRF.search(shown.text).group(1), "token": link.rsplit("/", 1)[1]},
        timeout=30,
    )
    assert done.status_code == 200, done.text[:500]
    return browser


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def account(service: Service, name: str, admin: str) -> dict:
    result = service.cli("accounts", "create", name, "--admin", admin)
    return json.loads(result.stdout)
