"""The ratings store: one SQLite file in WAL mode; every answer is committed before it is acknowledged.

Tables: ``raters`` (token, when invited, when revoked) and ``answers`` (token, item id, task, answer, the
sha256 of the stimulus and of the reference that were heard, when). ``(token, item)`` is the primary key:
a repeated submission stores nothing new. Commits use ``synchronous=FULL``, so an acknowledged answer
survives the server being killed (and a power cut). Each call opens its own connection, so the store is
safe to use from the web server's worker threads; SQLite serialises the writers.

Exports go to a new file, never over an existing one (``os.link`` of a finished temporary file fails when
the name is taken), so a ratings file a person relies on is never overwritten.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from vc.errors import InputError
from vc.listen.protocol import TestDefinition

__all__ = ["EXPORT_COLUMNS", "ListenFolder", "RatingStore", "export_ratings", "utc_now"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS raters (
    token TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS answers (
    token TEXT NOT NULL REFERENCES raters(token),
    item_id TEXT NOT NULL,
    task TEXT NOT NULL,
    answer TEXT NOT NULL,
    audio_sha256 TEXT NOT NULL,
    reference_sha256 TEXT NOT NULL,
    answered_at TEXT NOT NULL,
    PRIMARY KEY (token, item_id)
);
"""
EXPORT_COLUMNS = (
    "rater",
    "item_id",
    "task",
    "answer",
    "audio_sha256",
    "reference_sha256",
    "answered_at",
    "system",
    "source",
    "target",
    "utt_id",
)
Outcome = Literal["stored", "duplicate", "conflict", "forbidden"]


def utc_now() -> str:
    """The time now, UTC, ISO 8601 with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class RatingStore:
    """The SQLite file at ``path`` (created with its tables on first use)."""

    path: Path

    def __post_init__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=60000")
            yield db
        finally:
            db.close()

    def invite(self, n: int) -> list[str]:
        """``n`` new rater tokens (URL-safe, 128 random bits each)."""
        if n < 1:
            raise InputError(f"--n must be >= 1, got {n}")
        tokens = [secrets.token_urlsafe(16) for _ in range(n)]
        with self._connect() as db:
            db.executemany(
                "INSERT INTO raters (token, created_at) VALUES (?, ?)", [(t, utc_now()) for t in tokens]
            )
        return tokens

    def revoke(self, token: str) -> None:
        """Revoke a token: it can neither load the test nor answer; its answers so far are kept."""
        with self._connect() as db:
            cur = db.execute(
                "UPDATE raters SET revoked_at = ? WHERE token = ? AND revoked_at IS NULL", (utc_now(), token)
            )
            if (
                cur.rowcount == 0
                and not db.execute("SELECT 1 FROM raters WHERE token = ?", (token,)).fetchone()
            ):
                raise InputError(f"{self.path}: no rater token '{token}'")

    def is_active(self, token: str) -> bool:
        """Whether ``token`` was invited and is not revoked."""
        with self._connect() as db:
            row = db.execute("SELECT revoked_at FROM raters WHERE token = ?", (token,)).fetchone()
        return row is not None and row[0] is None

    def raters(self) -> list[tuple[str, str, str | None]]:
        """``(token, created_at, revoked_at)`` of every rater, in invitation order."""
        with self._connect() as db:
            return db.execute(
                "SELECT token, created_at, revoked_at FROM raters ORDER BY created_at"
            ).fetchall()

    def answered(self, token: str) -> set[str]:
        """The item ids ``token`` has answered."""
        with self._connect() as db:
            return {r[0] for r in db.execute("SELECT item_id FROM answers WHERE token = ?", (token,))}

    def record(
        self, token: str, item_id: str, task: str, answer: str, audio_sha: str, ref_sha: str
    ) -> Outcome:
        """Store one answer, committed before returning. ``forbidden``: the token is unknown or revoked
        (checked in the same transaction); ``duplicate``: the same answer was stored before (nothing new);
        ``conflict``: a different answer was stored before (it is kept: answers are final)."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                outcome = self._insert(db, (token, item_id, task, answer, audio_sha, ref_sha, utc_now()))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return outcome

    @staticmethod
    def _insert(db: sqlite3.Connection, row: tuple[str, ...]) -> Outcome:
        """The body of :meth:`record`, inside its transaction."""
        token, item_id, answer = row[0], row[1], row[3]
        rater = db.execute("SELECT revoked_at FROM raters WHERE token = ?", (token,)).fetchone()
        if rater is None or rater[0] is not None:
            return "forbidden"
        if db.execute("INSERT OR IGNORE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?)", row).rowcount == 1:
            return "stored"
        query = "SELECT answer FROM answers WHERE token = ? AND item_id = ?"
        return "duplicate" if db.execute(query, (token, item_id)).fetchone()[0] == answer else "conflict"

    def rows(self) -> list[dict[str, str]]:
        """Every stored answer, oldest first."""
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            query = "SELECT * FROM answers ORDER BY answered_at, token, item_id"
            return [dict(r) for r in db.execute(query)]


def _export_rows(store: RatingStore, definition: TestDefinition) -> list[dict[str, str]]:
    """The stored answers with the item's system and sentence (blank for items no longer in the test)."""
    out = []
    for row in store.rows():
        item = definition.item(row["item_id"])
        system = definition.system(item.system).name if item else ""
        where = (item.source, item.target, item.utt_id) if item else ("", "", "")
        out.append(
            dict(
                zip(
                    EXPORT_COLUMNS,
                    (
                        row["token"],
                        row["item_id"],
                        row["task"],
                        row["answer"],
                        row["audio_sha256"],
                        row["reference_sha256"],
                        row["answered_at"],
                        system,
                        *where,
                    ),
                    strict=True,
                )
            )
        )
    return out


def _write_new(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` only if no such file exists: a finished temporary file is hard-linked
    to the name (fails if taken), so the file appears whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask narrows the mode
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise InputError(f"{path}: exists already; ratings files are never overwritten") from None
    finally:
        tmp.unlink(missing_ok=True)


def export_ratings(
    store: RatingStore,
    definition: TestDefinition,
    out: str | Path | None = None,
    *,
    folder: str | Path | None = None,
    fmt: Literal["csv", "jsonl"] = "csv",
) -> Path:
    """Write every stored answer to a NEW file: ``out``, or ``<folder>/ratings-<UTC time>.<fmt>``; an
    existing file is an error, never overwritten. Returns the path written."""
    if fmt not in ("csv", "jsonl"):
        raise InputError(f"export format must be csv or jsonl, got '{fmt}'")
    if out is None:
        if folder is None:
            raise InputError("export needs an output file or folder")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        out = Path(folder) / f"ratings-{stamp}.{fmt}"
    rows = _export_rows(store, definition)
    if fmt == "jsonl":
        text = "".join(json.dumps(r, sort_keys=False) + "\n" for r in rows)
    else:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buf.getvalue()
    _write_new(Path(out), text)
    return Path(out)


@dataclass(frozen=True)
class ListenFolder:
    """The files of one listening test: ``test.json`` (the definition), ``ratings.sqlite`` (the answers),
    ``playback/`` (loudness-matched copies, disposable) and ``exports/`` (exported ratings files)."""

    root: Path

    @property
    def definition(self) -> Path:
        return self.root / "test.json"

    @property
    def database(self) -> Path:
        return self.root / "ratings.sqlite"

    @property
    def playback(self) -> Path:
        return self.root / "playback"

    @property
    def exports(self) -> Path:
        return self.root / "exports"
