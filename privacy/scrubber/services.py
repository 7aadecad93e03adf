"""The scrubber behind the API: one Scrubber per process, per-account keys, audited reversal."""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

from privacy.audit import services as audit
from privacy.database import for_account
from privacy.database import utcnow
from privacy.errors import ValidationFailed
from privacy.extensions import db
from privacy.scrubber import operators
from privacy.scrubber import patterns
from privacy.scrubber.config import DEFAULT_ENTITIES
from privacy.scrubber.config import OPTIONAL_ENTITIES
from privacy.scrubber.config import ScrubConfig
from privacy.scrubber.limits import Deadline
from privacy.scrubber.models import ScrubSettings

if TYPE_CHECKING:
    from privacy.scrubber.engine import Scrubbed
    from privacy.scrubber.engine import Scrubber

logger = logging.getLogger(__name__)
SETTINGS_FIELDS = ("entities", "patterns", "deny", "allow")

# purpose -> key length the operator needs (HMAC-SHA256 for pseudonyms, AES-SIV-256 for tokens)
KEY_LENGTHS = {"pseudonym": 32, "token": 64}

_scrubber: Scrubber | None = None
_scrubber_lock = threading.Lock()
# account id -> (settings version, Scrubber); the spaCy model is shared, so these are cheap.
_account_scrubbers: dict[int, tuple[object, Scrubber]] = {}


class TokenRefused(ValidationFailed):
    description = (
        "A token does not decrypt with this account's key: it was made by another account, "
        "before the index key was rotated, or it was altered."
    )


def get_scrubber() -> Scrubber:
    """The process's Scrubber, built on first use: loading spaCy takes about a second, and
    a Scrubber is thread-safe once built. The engine module is imported here, not with this
    module, so that a process loads Presidio and spaCy when it first scrubs (the light
    start: a web worker that never scrubs never pays for them)."""
    from privacy.scrubber.engine import Scrubber  # the light start: see the docstring

    global _scrubber
    if _scrubber is None:
        with _scrubber_lock:
            if _scrubber is None:
                _scrubber = Scrubber()
    return _scrubber


def scrubber_for(account) -> Scrubber:
    """The Scrubber with the account's settings (the process default when it has none)."""
    settings = db.session.scalar(for_account(ScrubSettings, account))
    if settings is None:
        return get_scrubber()
    cached = _account_scrubbers.get(account.id)
    if cached is None or cached[0] != settings.updated_at:
        scrubber = _with_config(_config(settings))
        if scrubber.custom.legacy:
            # Saved before patterns had to be RE2: they still run, bounded by a timeout.
            logger.warning(
                "account %s has %d custom patterns RE2 cannot run; they run with a timeout "
                "and a line they time out on is masked",
                account.public_id,
                len(scrubber.custom.legacy),
            )
        cached = (settings.updated_at, scrubber)
        _account_scrubbers[account.id] = cached
    return cached[1]


def _with_config(config: ScrubConfig) -> Scrubber:
    from privacy.scrubber.engine import Scrubber  # the light start: see get_scrubber

    return Scrubber(config=config)


def _config(settings: ScrubSettings) -> ScrubConfig:
    return ScrubConfig(
        entities=DEFAULT_ENTITIES | frozenset(settings.entities),
        patterns={k: list(v) for k, v in settings.patterns.items()},
        deny={k: list(v) for k, v in settings.deny.items()},
        allow=frozenset(settings.allow),
    )


def get_settings(account) -> ScrubSettings:
    """The account's settings row, or an unsaved one holding the defaults."""
    settings = db.session.scalar(for_account(ScrubSettings, account))
    return settings or ScrubSettings(
        account_id=account.id, entities=[], patterns={}, deny={}, allow=[], updated_at=None
    )


def update_settings(account, *, data: dict, actor: str) -> ScrubSettings:
    """Replace the account's settings with `data` (every field of SETTINGS_FIELDS).

    Raises ValidationFailed (422 naming the field) for a pattern RE2 cannot run, a deny list
    too large to match or an unknown entity; nothing is written then. Audited; ids and
    counts only, never values.
    """
    return _save(account, data, changed=SETTINGS_FIELDS, actor=actor)


def patch_settings(account, *, changes: dict, actor: str) -> ScrubSettings:
    """Change the fields in `changes` (each replaces that field); the others keep their
    values. Checked and audited as update_settings; patterns and deny lists are only
    checked when they are among the changes."""
    current = get_settings(account)
    data = {name: changes.get(name, getattr(current, name)) for name in SETTINGS_FIELDS}
    if "entities" not in changes:
        # Stored entities include the custom ones; drop those whose patterns are gone.
        known = DEFAULT_ENTITIES | OPTIONAL_ENTITIES | set(data["patterns"]) | set(data["deny"])
        data["entities"] = [e for e in data["entities"] if e in known]
    return _save(
        account, data, changed=tuple(n for n in SETTINGS_FIELDS if n in changes), actor=actor
    )


def _save(account, data: dict, *, changed: Sequence[str], actor: str) -> ScrubSettings:
    errors: dict[str, list[str]] = {}
    if "patterns" in changed:
        for entity, expressions in data["patterns"].items():
            for number, expression in enumerate(expressions, start=1):
                problem = patterns.check(expression)
                if problem:
                    errors.setdefault("patterns", []).append(f"{entity} #{number}: {problem}")
    if "deny" in changed:
        for entity, values in data["deny"].items():
            problem = patterns.check_deny(values)
            if problem:
                errors.setdefault("deny", []).append(f"{entity}: {problem}")
    custom = set(data["patterns"]) | set(data["deny"])
    unknown = set(data["entities"]) - DEFAULT_ENTITIES - OPTIONAL_ENTITIES - custom
    if unknown:
        errors["entities"] = [f"Unknown entities: {', '.join(sorted(unknown))}."]
    if errors:
        raise ValidationFailed(errors={"json": errors})
    settings = db.session.scalar(for_account(ScrubSettings, account))
    if settings is None:
        settings = ScrubSettings(account_id=account.id)
        db.session.add(settings)
    settings.entities = sorted(set(data["entities"]) | custom)
    settings.patterns = data["patterns"]
    settings.deny = data["deny"]
    settings.allow = sorted(set(data["allow"]))
    settings.updated_at = utcnow()
    db.session.flush()
    audit.record(
        account,
        action="scrub.settings_changed",
        object_type="scrub_settings",
        object_id=settings.id,
        actor=actor,
        data={
            "changed": list(changed),
            "entities": len(settings.entities),
            "patterns": len(settings.patterns),
            "deny": len(settings.deny),
            "allow": len(settings.allow),
        },
    )
    return settings


def account_key(account, purpose: str) -> bytes:
    """The account's key for `purpose` ("pseudonym": 32 bytes, "token": 64 bytes).

    Derived with HKDF-SHA256 from the app's INDEX_KEY and the account's public id, never
    stored. Rotating PRIVACY_INDEX_KEY therefore changes every pseudonym and makes tokens
    made before the rotation irreversible.
    """
    master = base64.b64decode(current_app.config["INDEX_KEY"], validate=True)
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_LENGTHS[purpose],
        salt=None,
        info=f"scrub-{purpose}:{account.public_id}".encode(),
    )
    return hkdf.derive(master)


def operator_for(account, mode: str) -> operators.Operator:
    """The replacement operator for `mode`, keyed to the account where the mode needs a key."""
    if mode in KEY_LENGTHS:
        return operators.Operator(mode, key=account_key(account, mode))
    return operators.Operator(mode)


def scrub_batch(
    lines: Sequence[str],
    operator: operators.Operator,
    scrubber: Scrubber | None = None,
    *,
    budget: float | Deadline | None = None,
) -> list[Scrubbed]:
    """Scrubbed lines in input order. A line not finished within `budget` seconds comes
    back as the engine's NOT_SCRUBBED (`<UNSCRUBBED>`, `unscrubbed` set)."""
    return (scrubber or get_scrubber()).scrub_batch(lines, operator, budget=budget)


def reverse_tokens(account, *, text: str, actor: str) -> tuple[str, int]:
    """`text` with the account's reversible tokens turned back into their values, and how many.

    Audited in the caller's transaction either way: `scrub.reversed`, or, when a token does
    not decrypt under this account's key, `scrub.reverse_refused` before raising
    TokenRefused (422). The caller commits in both cases, so refusals stay on record.
    """
    try:
        original, count = operators.reverse(text, account_key(account, "token"))
    except operators.OperatorError:
        tokens = sum(1 for _ in operators.TOKEN.finditer(text))
        audit.record(
            account,
            action="scrub.reverse_refused",
            object_type="scrub",
            data={"tokens": tokens},
            actor=actor,
        )
        raise TokenRefused() from None
    audit.record(
        account, action="scrub.reversed", object_type="scrub", data={"tokens": count}, actor=actor
    )
    return original, count
