"""The API under a fuzzer, over HTTP: Schemathesis reads the OpenAPI document (OpenDSR
included) from a running gunicorn and sends it valid and invalid requests, as an account's
admin. Every answer must be a non-5xx that the document declares, in the declared shape, and
a request the document calls valid must not be refused for its form.

Bounded: PRIVACY_FUZZ_EXAMPLES examples per operation and phase (default 15) and a fixed
seed, so each CI pass spends a few minutes here and a failure can be replayed."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests import helpers

EXAMPLES = os.environ.get("PRIVACY_FUZZ_EXAMPLES", "15")
SEED = "20261203"
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "positive_data_acceptance",
        "missing_required_header",
        "unsupported_method",
    ]
)


@pytest.fixture
def served(tmp_path):
    """gunicorn on a fresh instance (and, in CI's second pass, a fresh PostgreSQL database)."""
    port = helpers.free_port()
    extra = {"PRIVACY_BASE_URL": f"http://127.0.0.1:{port}", "PORT": str(port)}
    drop = None
    if os.environ.get("PRIVACY_TEST_DATABASE_URL"):
        url, drop = helpers.postgres_database(
            os.environ["PRIVACY_TEST_DATABASE_URL"], "privacy_fuzz"
        )
        extra["PRIVACY_DATABASE_URL"] = url
    env = helpers.service_env(tmp_path / "instance", **extra)
    try:
        helpers.flask_cli(env, "db", "upgrade")
        token = helpers.create_account(env, "Fuzz Ltd", "fuzz@example.org")["api_token"]
        gunicorn = [str(helpers.BIN / "gunicorn"), "--config", "gunicorn.conf.py"]
        with helpers.running([*gunicorn, "wsgi:app"], env, tmp_path / "gunicorn.log"):
            helpers.wait_http(f"http://127.0.0.1:{port}/healthz")
            yield f"http://127.0.0.1:{port}", token, tmp_path / "gunicorn.log"
    finally:
        if drop is not None:
            drop()


# Operations that can take the fuzzer's own authority away (revoke its token, remove or demote
# its admin) run last, on their own, so they cannot hide the rest behind 401s.
SELF_HARM = r"^(DELETE /api/v1/tokens/|DELETE /api/v1/members/|PATCH /api/v1/members/)"


def fuzz(base: str, token: str, workdir, *selection: str) -> str:
    """Run Schemathesis over the operations `selection` picks; its report if it failed."""
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz_hooks", "PYTHONPATH": str(helpers.ROOT)}
    result = subprocess.run(
        [
            str(helpers.BIN / "schemathesis"),
            "--config-file",
            str(helpers.ROOT / "tests" / "fuzz.toml"),
            "run",
            f"{base}/api/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--phases",
            "examples,coverage,fuzzing",
            "--checks",
            CHECKS,
            "--max-examples",
            EXAMPLES,
            "--seed",
            SEED,
            # One worker: Schemathesis parses with `ast` in its threads, and CPython 3.11's
            # AST recursion guard is not thread-safe ("recursion depth mismatch").
            "--workers",
            "1",
            "--no-color",
            *selection,
        ],
        cwd=workdir,  # where Schemathesis keeps its cache: not in the project
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    return "" if result.returncode == 0 else (result.stdout + result.stderr)[-15000:]


@pytest.mark.integration
def test_the_api_answers_a_fuzzer_with_no_server_error_and_only_what_it_declares(served, tmp_path):
    base, token, log = served
    failed = fuzz(base, token, tmp_path, "--exclude-name-regex", SELF_HARM)
    failed += fuzz(base, token, tmp_path, "--include-name-regex", SELF_HARM)
    assert not failed, failed
    assert "Traceback" not in log.read_text(), log.read_text()[-4000:]
