"""The scrubbing API under /api/v1/scrub: JSON, NDJSON streaming, and reversal of tokens."""

from __future__ import annotations

import functools
import io
import json
import logging
import math
from collections.abc import Iterator
from typing import IO

import marshmallow as ma
from flask import Response
from flask import current_app
from flask import g
from flask import jsonify
from flask import request
from flask import stream_with_context
from werkzeug.exceptions import ClientDisconnected
from werkzeug.exceptions import RequestEntityTooLarge

from privacy.api import Blueprint
from privacy.auth.permissions import requires
from privacy.errors import BadRequest
from privacy.errors import Conflict
from privacy.errors import PayloadTooLarge
from privacy.errors import ServiceUnavailable
from privacy.errors import TooManyRequests
from privacy.extensions import db
from privacy.scrubber import limits
from privacy.scrubber import services
from privacy.scrubber.operators import Operator
from privacy.scrubber.relay import RelayUnavailable
from privacy.scrubber.relay import Target
from privacy.scrubber.schemas import RelayOptionsSchema
from privacy.scrubber.schemas import RelayResultSchema
from privacy.scrubber.schemas import ReverseInputSchema
from privacy.scrubber.schemas import ReverseResultSchema
from privacy.scrubber.schemas import ScrubInputSchema
from privacy.scrubber.schemas import ScrubOptionsSchema
from privacy.scrubber.schemas import ScrubResultSchema
from privacy.scrubber.schemas import ScrubSettingsPatchSchema
from privacy.scrubber.schemas import ScrubSettingsSchema

MAX_LINES = 10_000
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_BUDGET_SECONDS = 2.0
STREAM_CHUNK = 512
logger = logging.getLogger(__name__)
NDJSON_TYPES = {"application/x-ndjson", "application/jsonl", "application/x-jsonlines"}

bp = Blueprint(
    "scrub",
    __name__,
    url_prefix="/api/v1",
    description="Find and replace personal data in log lines.",
)


def _max_body_bytes() -> int:
    return current_app.config.get("SCRUB_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)


def _scrub_body_limit(view):
    """Apply SCRUB_MAX_BODY_BYTES instead of the app-wide limit, before the body is read."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        request.max_content_length = _max_body_bytes()
        return view(*args, **kwargs)

    return wrapper


def _budget() -> float:
    return float(current_app.config.get("SCRUB_BUDGET_SECONDS", DEFAULT_BUDGET_SECONDS))


def _take_slot() -> limits.Held:
    """Hold one of this process's scrub slots for the caller's account. 429 when the
    account has its share in progress, 503 when the process has (so other requests always
    find a thread); both with Retry-After, and nothing held."""
    config = current_app.config
    held = limits.slots.hold(
        g.account.id,
        per_key=config.get("SCRUB_ACCOUNT_CONCURRENCY", 1),
        total=config.get("SCRUB_PROCESS_CONCURRENCY", 2),
    )
    retry = {"Retry-After": str(max(1, math.ceil(_budget())))}
    if held == limits.ACCOUNT:
        raise TooManyRequests(
            "This account has as many scrub requests in progress as it may; retry when one "
            "has finished.",
            headers=retry,
        )
    if held == limits.PROCESS:
        raise ServiceUnavailable(
            "The scrubber is busy with other requests; retry shortly.", headers=retry
        )
    return held


def _scrub_slot(view):
    """Run the view holding a scrub slot (see _take_slot), taken before the body is read."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        held = _take_slot()
        try:
            return view(*args, **kwargs)
        finally:
            held.release()

    return wrapper


def _report_masked(masked: int, total: int) -> None:
    """Log lines masked for the budget: counts and ids only, never text."""
    if masked:
        logger.warning(
            "scrub budget of %ss exceeded: %d of %d lines masked as <UNSCRUBBED> (account %s)",
            _budget(),
            masked,
            total,
            g.account.public_id,
        )


def _release_database() -> None:
    # Scrubbing needs no database: end the read transaction of the token check so that a
    # long scrub or stream does not hold a pooled connection.
    db.session.close()


def _result(scrubbed, with_findings: bool) -> dict:
    if with_findings:
        return scrubbed.as_dict()
    out = {"text": scrubbed.text}
    if scrubbed.unscrubbed:
        out["unscrubbed"] = True
    return out


@bp.post("/scrub")
@requires("scrub")
@_scrub_slot
@_scrub_body_limit
@bp.arguments(ScrubInputSchema)
@bp.response(200, ScrubResultSchema)
def scrub(data):
    """Scrub one text or up to 10,000 lines; findings hold offsets into each input line.

    A line not scrubbed within the time budget (PRIVACY_SCRUB_BUDGET_SECONDS for the whole
    request) comes back as `<UNSCRUBBED>` with `"unscrubbed": true`, and its number is in
    `unscrubbed_lines`. 429 when the account already has its scrub requests in progress.
    """
    lines = [data["text"]] if "text" in data else data["lines"]
    if len(lines) > MAX_LINES:
        raise PayloadTooLarge(f"Send at most {MAX_LINES:,} lines a request, or use /scrub/stream.")
    operator = services.operator_for(g.account, data["mode"])
    scrubber = services.scrubber_for(g.account)  # the first in a process loads the model
    _release_database()
    scrubbed = services.scrub_batch(lines, operator, scrubber, budget=_budget())
    masked = [number for number, s in enumerate(scrubbed, start=1) if s.unscrubbed]
    _report_masked(len(masked), len(lines))
    results = [_result(s, data["findings"]) for s in scrubbed]
    answer = results[0] if "text" in data else {"lines": results}
    if masked:
        answer["unscrubbed_lines"] = masked
    # Already the documented shape: sent as it is, not walked again through the schema
    # (that took a tenth of a large batch's time).
    return jsonify(answer)


@bp.post("/scrub/stream")
@requires("scrub")
# A misspelt option is an error rather than silently the default (a `mdoe=token` would redact).
@bp.arguments(ScrubOptionsSchema, location="query", unknown=ma.RAISE)
@bp.doc(
    requestBody={
        "required": True,
        "description": 'One line per log line: a JSON string or an object {"text": "..."}.',
        "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
    }
)
@bp.response(
    200,
    description='One JSON object per input line, in order: {"text", "findings"}, or '
    '{"error": {"line", "message"}} for a line that cannot be read (the stream goes on).',
    content_type="application/x-ndjson",
)
def scrub_stream(args):
    """Scrub NDJSON as it arrives, in chunks, so memory stays flat however long the body."""
    if request.mimetype not in NDJSON_TYPES:
        raise BadRequest(
            'Send Content-Type: application/x-ndjson, one JSON string or {"text": ...} a line.'
        )
    held = _take_slot()
    try:
        request.max_content_length = _max_body_bytes()
        # Touching the stream now raises 413 for a too-long Content-Length before the 200.
        stream = request.stream
        operator = services.operator_for(g.account, args["mode"])
        scrubber = services.scrubber_for(g.account)
        report = functools.partial(_report_masked_for, g.account.public_id, _budget())
        _release_database()
        response = Response(
            stream_with_context(
                _stream_results(stream, operator, args["findings"], scrubber, report, held)
            ),
            mimetype="application/x-ndjson",
        )
    except BaseException:
        held.release()
        raise
    # The slot is held while the body streams out: released when the stream ends, or when
    # the server closes a response whose stream never started.
    response.call_on_close(held.release)
    return response


@bp.post("/scrub/relay")
@requires("scrub")
@_scrub_slot
@_scrub_body_limit
@bp.arguments(RelayOptionsSchema, location="query", unknown=ma.RAISE)
@bp.doc(
    requestBody={
        "required": True,
        "description": "Log lines as plain text, one a line (syslog-ng's http() batches).",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
)
@bp.response(200, RelayResultSchema)
def relay(args):
    """Scrub plain-text lines and send them on to the operator's PRIVACY_SCRUB_RELAY_URL.

    For shippers that ignore the answer to a POST. 503 when the receiver cannot be reached
    (the shipper retries the batch); 409 when no receiver is configured. A line not scrubbed
    within the time budget is relayed as `<UNSCRUBBED>` and numbered in `unscrubbed_lines`.
    """
    url = current_app.config.get("SCRUB_RELAY_URL")
    if not url:
        raise Conflict("No relay receiver is configured (PRIVACY_SCRUB_RELAY_URL).")
    body = request.get_data(cache=False)
    # Invalid UTF-8 is a damaged log line, not a reason to lose the batch.
    lines = body.decode("utf-8", errors="replace").replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) > MAX_LINES:
        raise PayloadTooLarge(f"Send at most {MAX_LINES:,} lines a request.")
    operator = services.operator_for(g.account, args["mode"])
    scrubber = services.scrubber_for(g.account)
    _release_database()
    results = services.scrub_batch(lines, operator, scrubber, budget=_budget())
    masked = [number for number, s in enumerate(results, start=1) if s.unscrubbed]
    _report_masked(len(masked), len(lines))
    scrubbed = [s.text for s in results]
    try:
        Target.parse(url).send(scrubbed)
    except RelayUnavailable as exc:
        logger.warning("scrub relay failed: %s", exc)
        raise ServiceUnavailable(
            "The relay receiver cannot be reached; retry later.", headers={"Retry-After": "5"}
        ) from None
    answer = {"lines": len(scrubbed)}
    if masked:
        answer["unscrubbed_lines"] = masked
    return answer


@bp.get("/scrub/settings")
@requires("scrub")
@bp.response(200, ScrubSettingsSchema)
def get_settings():
    """The account's opt-in entities, custom patterns, deny and allow lists."""
    return services.get_settings(g.account)


@bp.put("/scrub/settings")
@requires("scrub:settings")
@bp.arguments(ScrubSettingsSchema)
@bp.response(200, ScrubSettingsSchema)
def put_settings(data):
    """Replace all of the account's scrubber settings: every field is required (send empty
    ones to clear them); PATCH changes some. Patterns must be RE2 (422 otherwise)."""
    settings = services.update_settings(g.account, data=data, actor=g.actor)
    db.session.commit()
    return settings


@bp.patch("/scrub/settings")
@requires("scrub:settings")
@bp.arguments(ScrubSettingsPatchSchema)
@bp.response(200, ScrubSettingsSchema)
def patch_settings(data):
    """Change the settings named in the body, each replaced whole; the others stay as they
    are. Patterns must be RE2 (422 otherwise)."""
    settings = services.patch_settings(g.account, changes=data, actor=g.actor)
    db.session.commit()
    return settings


@bp.post("/scrub/reverse")
@requires("scrub:reverse")
@bp.arguments(ReverseInputSchema)
@bp.response(200, ReverseResultSchema)
def reverse(data):
    """Turn this account's reversible tokens back into their values; every call is audited.

    A token of another account, or an altered one, is 422, and the refusal is audited too.
    """
    try:
        text, count = services.reverse_tokens(g.account, text=data["text"], actor=g.actor)
    except services.TokenRefused:
        db.session.commit()  # the refused attempt stays on record
        raise
    db.session.commit()
    return {"text": text, "reversed": count}


# -- NDJSON streaming --------------------------------------------------------------------


def _report_masked_for(account_id, budget: float, masked: int, total: int) -> None:
    if masked:
        logger.warning(
            "scrub budget of %ss a chunk exceeded: %d of %d streamed lines masked as "
            "<UNSCRUBBED> (account %s)",
            budget,
            masked,
            total,
            account_id,
        )


def _stream_results(
    stream: IO[bytes], operator: Operator, with_findings: bool, scrubber, report, held
) -> Iterator[str]:
    """One output line per input line, in order, scrubbed STREAM_CHUNK lines at a time,
    each chunk within the time budget; `report(masked, total)` at the end."""
    first = 1
    counts = [0, 0]  # lines masked for the budget, lines scrubbed
    budget = _budget()
    try:
        for chunk in _chunks(stream):
            first = chunk[0][0]
            yield _render(chunk, operator, with_findings, scrubber, budget, counts)
    except Exception as exc:
        # The 200 has gone out, so the error handler cannot answer: say so in the stream and
        # log the type only, as the handler does (exception messages can carry input).
        logger.error("scrub stream stopped at line %s: %s", first, type(exc).__name__)
        yield json.dumps({"error": {"line": first, "message": "Internal error; stopped here."}})
        yield "\n"
    finally:
        held.release()
        report(*counts)


def _chunks(stream: IO[bytes]) -> Iterator[list[tuple[int, str | None, str | None]]]:
    """Parsed input lines in lists of at most STREAM_CHUNK, read as they arrive."""
    reader = io.BufferedReader(stream, buffer_size=64 * 1024)
    chunk: list[tuple[int, str | None, str | None]] = []
    number = 0
    try:
        for number, raw in enumerate(reader, start=1):
            chunk.append(_parse_line(number, raw))
            if len(chunk) >= STREAM_CHUNK:
                yield chunk
                chunk = []
    except RequestEntityTooLarge:
        message = f"The body is over {_max_body_bytes()} bytes; the rest was not read."
        chunk.append((number + 1, None, message))
    except ClientDisconnected:
        return
    if chunk:
        yield chunk


def _parse_line(number: int, raw: bytes) -> tuple[int, str | None, str | None]:
    """(line number, text, None) or (line number, None, error message); never echoes input."""
    expected = 'Send a JSON string or an object {"text": "..."} on each line.'
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return number, None, f"This line is not valid JSON in UTF-8. {expected}"
    if isinstance(value, dict) and set(value) == {"text"}:
        value = value["text"]
    if not isinstance(value, str):
        return number, None, expected
    return number, value, None


def _render(
    chunk, operator: Operator, with_findings: bool, scrubber, budget: float, counts: list[int]
) -> str:
    texts = [t for _, t, e in chunk if e is None]
    results = services.scrub_batch(texts, operator, scrubber, budget=budget)
    counts[0] += sum(s.unscrubbed for s in results)
    counts[1] += len(results)
    scrubbed = iter(results)
    out = []
    for number, _text, error in chunk:
        if error is None:
            item = _result(next(scrubbed), with_findings)
        else:
            item = {"error": {"line": number, "message": error}}
        # ASCII escapes: a lone surrogate (valid in JSON, not in UTF-8) cannot break the stream.
        out.append(json.dumps(item) + "\n")
    return "".join(out)
