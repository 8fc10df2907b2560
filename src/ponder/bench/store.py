"""The bench results store: one SQLite file, one row per (run, problem, strategy, budget, seed) cell.

Resumable by construction: every row is committed the moment it is added (WAL mode, synchronous=NORMAL),
so a killed run loses at most the cells still in flight, and `done(run)` tells the runner what to skip.
A row is never written twice: the cell key is the primary key and inserts are `INSERT OR IGNORE`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import zlib
from dataclasses import dataclass, field, fields
from pathlib import Path

from ponder.budget import Budget
from ponder.errors import UserError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    name TEXT PRIMARY KEY,
    created REAL,
    config TEXT,          -- json
    ponder_version TEXT,
    model TEXT            -- json: backend, path, sha256, ...
);
CREATE TABLE IF NOT EXISTS results (
    run TEXT, problem_id TEXT, strategy TEXT,
    budget INTEGER,       -- total-token cap per problem; 0 = no cap
    seed INTEGER,
    answer TEXT, reference TEXT, correct INTEGER, how TEXT,
    prompt_tokens INTEGER, completion_tokens INTEGER, calls INTEGER, latency REAL,
    trace BLOB,           -- zlib(json(list of event dicts))
    created REAL,
    PRIMARY KEY (run, problem_id, strategy, budget, seed)
);
"""

Key = tuple[str, str, int, int]  # (problem_id, strategy, budget, seed)


def budget_column(budget: Budget) -> int:
    """How a Budget is written in the store: its cap, 0 for no cap (SQLite keys need a value)."""
    return budget.max_tokens or 0


class RunMismatchError(ValueError):
    """A run name was reused with a different task or model, or a stored strategy would now run
    with other settings."""


@dataclass
class ResultRow:
    """One cell of the grid. `trace` is the strategy's events as plain dicts; the store compresses it."""

    run: str
    problem_id: str
    strategy: str
    budget: int  # 0 = no cap
    seed: int
    answer: str | None
    reference: str | None
    correct: bool
    how: str = ""  # how the verdict was reached (e.g. "math-verify", "exact", "no answer")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    latency: float = 0.0  # seconds, wall clock for the whole problem
    trace: list[dict] = field(default_factory=list)
    created: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if not isinstance(self.budget, int) or self.budget < 0:
            raise ValueError(f"budget must be a token cap >= 0 (0 = no cap), got {self.budget!r}")

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def key(self) -> Key:
        return (self.problem_id, self.strategy, self.budget, self.seed)


_COLUMNS = [f.name for f in fields(ResultRow)]


def _merge_config(old: dict, new: dict) -> dict:
    """The union of two configs: lists are merged (old order first, new items appended), dicts
    key by key, any other key takes the newer value. Enough for a resumed run that adds
    strategies, budgets or seeds."""
    merged = dict(old)
    for k, v in new.items():
        if isinstance(v, list) and isinstance(old.get(k), list):
            merged[k] = list(old[k]) + [x for x in v if x not in old[k]]
        elif isinstance(v, dict) and isinstance(old.get(k), dict):
            merged[k] = {**old[k], **v}
        else:
            merged[k] = v
    return merged


def _changed_settings(name: str, old: dict, new: dict) -> str | None:
    """Why a run cannot resume because a stored strategy would now run otherwise, or None.
    ``settings`` maps each strategy spec to every option's value (``StrategyBase.settings``): a
    spec names only what differs from the defaults of the ponder that wrote it, so after an
    upgrade the same spec can mean other settings, and its stored rows would be mixed with new
    ones under one label. Runs stored without settings are not checked."""
    before, now = old.get("settings") or {}, new.get("settings") or {}
    for spec in now.keys() & before.keys():
        # an option one side lacks (added or removed by an upgrade) is not compared: there is no
        # old value to write, and where it mattered another option says so (hard_with, ...)
        diff = [f"{k}={before[spec][k]} then, {v} now"
                for k, v in now[spec].items() if k in before[spec] and before[spec][k] != v]  # fmt: skip
        if diff:
            return (f"run {name!r} stored strategy {spec!r} with other settings than it has now "
                    f"({'; '.join(diff)}): a default changed since, and its rows would mix two "
                    "settings under one label. Pass another --run name to start a new run (a "
                    "spec with the old values written out is another label, so it runs afresh "
                    "too, beside the stored rows)")  # fmt: skip
    return None


class Store:
    """A SQLite results database. One connection, shared across threads behind a lock."""

    def __init__(self, path: str | Path):
        """Open (or make) the database at ``path``. A path that cannot hold one, a file that is
        not SQLite, or another program's SQLite database is a one-line error (UserError): the
        schema is only ever added to an empty file or a database of ponder's own."""
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: autocommit; each statement below is its own transaction.
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=30
            )
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except (OSError, sqlite3.DatabaseError) as e:
            raise UserError(f"--db {self.path}: not a results database ({e})") from None
        if tables and "runs" not in tables:
            self._db.close()
            raise UserError(f"--db {self.path}: an SQLite database, but not one of ponder's "
                            f"(its tables: {', '.join(sorted(tables))}); pick another --db")  # fmt: skip
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- runs -----------------------------------------------------------------------------------

    def open_run(self, name: str, config: dict, ponder_version: str, model: dict) -> None:
        """Register a run, or resume it. Resuming requires the same task and model spec, and the same
        settings for a strategy stored before (``config["settings"]``, see `_changed_settings`);
        the stored config becomes the union of the old and new ones (see `_merge_config`)."""
        with self._lock:
            row = self._db.execute("SELECT config FROM runs WHERE name = ?", (name,)).fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO runs (name, created, config, ponder_version, model) VALUES (?, ?, ?, ?, ?)",
                    (name, time.time(), json.dumps(config), ponder_version, json.dumps(model)),
                )
                return
            old = json.loads(row[0])
            for key in ("task", "model"):
                if old.get(key) != config.get(key):
                    raise RunMismatchError(
                        f"run {name!r} was recorded with {key} {old.get(key)!r}, not {config.get(key)!r}; "
                        f"pass another --run name to start a new run"
                    )
            if (why := _changed_settings(name, old, config)) is not None:
                raise RunMismatchError(why)
            self._db.execute(
                "UPDATE runs SET config = ? WHERE name = ?", (json.dumps(_merge_config(old, config)), name)
            )

    def runs(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT name FROM runs ORDER BY created, name")]

    def run_info(self, name: str) -> dict | None:
        """{name, created, config, ponder_version, model} with the json fields decoded, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT name, created, config, ponder_version, model FROM runs WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            return None
        return {
            "name": row[0],
            "created": row[1],
            "config": json.loads(row[2] or "{}"),
            "ponder_version": row[3],
            "model": json.loads(row[4] or "{}"),
        }

    # -- results --------------------------------------------------------------------------------

    def add(self, row: ResultRow, replace: bool = False) -> None:
        """Store one cell and commit at once. A key already stored is left as it was, unless
        ``replace`` (a row known to be stale)."""
        values = [getattr(row, c) for c in _COLUMNS]
        values[_COLUMNS.index("correct")] = int(bool(row.correct))
        values[_COLUMNS.index("trace")] = zlib.compress(json.dumps(row.trace).encode())
        sql = f"INSERT OR {'REPLACE' if replace else 'IGNORE'} INTO results ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
        with self._lock:
            self._db.execute(sql, values)

    def done(self, run: str) -> set[Key]:
        with self._lock:
            cur = self._db.execute(
                "SELECT problem_id, strategy, budget, seed FROM results WHERE run = ?", (run,)
            )
            return {tuple(r) for r in cur}

    def rows(self, run: str) -> list[ResultRow]:
        """Every stored cell of a run, traces decompressed, in a stable order."""
        with self._lock:
            cur = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM results WHERE run = ? "
                "ORDER BY strategy, budget, problem_id, seed",
                (run,),
            )
            raw = cur.fetchall()
        out = []
        for r in raw:
            d = dict(zip(_COLUMNS, r))
            d["correct"] = bool(d["correct"])
            d["trace"] = json.loads(zlib.decompress(d["trace"])) if d["trace"] else []
            out.append(ResultRow(**d))
        return out
