"""What replaces a finding: redaction, masking, keyed pseudonyms, reversible tokens.

Replacement runs through presidio-anonymizer's AnonymizerEngine. Pseudonyms are an HMAC of
the value under a per-account key, so one value always gives one token and logs stay
joinable without the value. Reversible tokens are AES-SIV (deterministic authenticated
encryption) under a second per-account key: only a holder of that key can turn one back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig
from presidio_anonymizer.entities import RecognizerResult

MODES = ("redact", "mask", "pseudonym", "token")
TOKEN = re.compile(r"<(?P<entity>[A-Z_]{2,40})~(?P<blob>[A-Za-z0-9_-]{16,700})>")
# Most findings handed to the anonymizer at once (see apply).
SEGMENT_FINDINGS = 64


class OperatorError(ValueError):
    """A mode needs a key it was not given, or a token does not decrypt."""


@dataclass(frozen=True)
class Operator:
    """How findings are replaced. `key` is 32 bytes for pseudonym, 64 bytes for token."""

    mode: str = "redact"
    key: bytes | None = None
    mask_char: str = "*"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise OperatorError(f"mode must be one of {', '.join(MODES)}")
        if self.mode == "pseudonym" and (not self.key or len(self.key) < 32):
            raise OperatorError("pseudonym mode needs a key of at least 32 bytes")
        if self.mode == "token" and (not self.key or len(self.key) != 64):
            raise OperatorError("token mode needs a 64-byte AES-SIV key")

    def replacement(self, entity: str, value: str) -> str:
        if self.mode == "redact":
            return f"[{entity}]"
        if self.mode == "mask":
            keep = min(4, len(value) // 4)
            return self.mask_char * (len(value) - keep) + (value[-keep:] if keep else "")
        if self.mode == "pseudonym":
            message = f"{entity}\x00{value}".encode("utf-8", "surrogatepass")
            digest = hmac.new(self.key, message, hashlib.sha256)
            return f"<{entity}:{digest.hexdigest()[:12]}>"
        plain = value.encode("utf-8", "surrogatepass")
        blob = AESSIV(self.key).encrypt(plain, [entity.encode()])
        return f"<{entity}~{base64.urlsafe_b64encode(blob).decode().rstrip('=')}>"


_engine: AnonymizerEngine | None = None


def apply(text: str, findings, operator: Operator) -> str:
    """The text with every finding replaced as `operator` says (offsets as found).

    `findings` are sorted by start and do not overlap (the engine's). The anonymizer copies
    the text once per finding and joins neighbours one list search at a time, so a long
    text with many findings would cost the square of their number: findings of one type
    separated by spaces alone are joined here first (as the anonymizer would), and the rest
    goes through it in segments of at most SEGMENT_FINDINGS findings. Same result, linear.
    """
    spans = _join_spaced(text, findings)
    if len(spans) <= SEGMENT_FINDINGS:
        return _apply(text, spans, operator)
    out, pos = [], 0
    for first in range(0, len(spans), SEGMENT_FINDINGS):
        group = spans[first : first + SEGMENT_FINDINGS]
        cut = len(text) if first + SEGMENT_FINDINGS >= len(spans) else group[-1].end
        out.append(_apply(text[pos:cut], [_shift(f, -pos) for f in group], operator))
        pos = cut
    return "".join(out)


def _join_spaced(text: str, findings) -> list[RecognizerResult]:
    """Findings as anonymizer results, neighbours of one type with only spaces between them
    joined into one (the anonymizer's merge_entities_with_spaces rule)."""
    out: list[RecognizerResult] = []
    for f in findings:
        last = out[-1] if out else None
        gap = text[last.end : f.start] if last else ""
        if last and last.entity_type == f.entity_type and gap and not gap.strip(" "):
            last.end = f.end
            last.score = max(last.score, f.score)
        else:
            out.append(RecognizerResult(f.entity_type, f.start, f.end, f.score))
    return out


def _shift(finding: RecognizerResult, by: int) -> RecognizerResult:
    return RecognizerResult(
        finding.entity_type, finding.start + by, finding.end + by, finding.score
    )


def _apply(text: str, findings, operator: Operator) -> str:
    if not findings:
        return text
    global _engine
    if _engine is None:
        _engine = AnonymizerEngine()
    results = [RecognizerResult(f.entity_type, f.start, f.end, f.score) for f in findings]
    operators = {
        entity: OperatorConfig(
            "custom", {"lambda": lambda value, entity=entity: operator.replacement(entity, value)}
        )
        for entity in {f.entity_type for f in findings}
    }
    return _engine.anonymize(text, results, operators).text


def reverse(text: str, key: bytes) -> tuple[str, int]:
    """Decrypt every reversible token in `text`; returns (text, tokens reversed).

    Raises OperatorError if a token does not decrypt under `key` (wrong key or tampered).
    """
    siv = AESSIV(key)
    count = 0

    def restore(match: re.Match) -> str:
        nonlocal count
        blob = match.group("blob")
        try:
            raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
            plain = siv.decrypt(raw, [match.group("entity").encode()])
            value = plain.decode("utf-8", "surrogatepass")
        except (InvalidTag, binascii.Error, ValueError):
            raise OperatorError("a token does not decrypt with this account's key") from None
        count += 1
        return value

    return TOKEN.sub(restore, text), count
