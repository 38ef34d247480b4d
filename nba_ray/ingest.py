"""Score timelines (one row per scoring event) to per-game, per-minute differential series.

Minute m of a game is the home-minus-away differential after the last event with
`elapsed_s <= m * 60`, and 0 before the first event, so minute 0 is 0-0 and an event at exactly
60 s counts for minute 1. Overtime events never reach the 48-minute regulation series.
"""

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from nba_ray import OUTCOME_MINUTES, PATTERN_MINUTES, REGULATION_MINUTES

logger = logging.getLogger(__name__)

SECONDS_PER_MINUTE = 60
# A finished game always has a score in the fourth quarter: the longest scoring drought in the
# 2013-2025 data is 286 s. A timeline whose last score is earlier is a game in progress.
FOURTH_QUARTER_START_S = 3 * 720
REGULATION_S = REGULATION_MINUTES * SECONDS_PER_MINUTE
OUTCOME_END_S = (PATTERN_MINUTES + OUTCOME_MINUTES) * SECONDS_PER_MINUTE

# Column name -> (accepted Arrow type check, type named in error messages).
TIMELINE_COLUMNS = {
    "game_id": (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "string"),
    "game_date": (lambda t: pa.types.is_date(t) or pa.types.is_timestamp(t), "date"),
    "season": (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "string"),
    "season_type": (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "string"),
    "home_team": (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "string"),
    "away_team": (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "string"),
    "elapsed_s": (pa.types.is_integer, "integer"),
    "home_score": (pa.types.is_integer, "integer"),
    "away_score": (pa.types.is_integer, "integer"),
}
# Optional: seconds of play the timeline covers, for games still in progress.
OBSERVED_COLUMN = "observed_s"
GAME_COLUMNS = ("game_id", "game_date", "season", "season_type", "home_team", "away_team")


class DataError(ValueError):
    """Input data that cannot be used as a whole; the message names the file and the fix."""


@dataclasses.dataclass
class SkippedGame:
    """A single game left out of the output, with the reason."""

    game_id: str
    reason: str


@dataclasses.dataclass
class GameSeries:
    """Per-game table with fixed-size list columns, plus the games that were skipped."""

    games: pa.Table
    skipped: list[SkippedGame]


def read_timeline(path: str | Path) -> pa.Table:
    """Read a score-timeline Parquet file and check its columns and types."""
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"timeline file not found: {path}; point timeline_path at the score-timeline "
            "Parquet (the repository ships data/nba_score_timelines.parquet)"
        )
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise DataError(f"{path}: not a readable Parquet file ({error})") from error
    return check_timeline(table, str(path))


def check_timeline(table: pa.Table, source: str) -> pa.Table:
    """Check the timeline schema and return it with normalised column types."""
    if table.num_rows == 0:
        raise DataError(f"{source}: the timeline is empty; it needs one row per scoring event")
    missing = [name for name in TIMELINE_COLUMNS if name not in table.column_names]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(missing)}; a timeline needs "
            f"{', '.join(TIMELINE_COLUMNS)} (one row per scoring event)"
        )
    for name, (accepts, expected) in TIMELINE_COLUMNS.items():
        actual = table.schema.field(name).type
        if not accepts(actual):
            raise DataError(
                f"{source}: column {name} has type {actual}, expected {expected}; "
                f"cast it to {expected} before writing the file"
            )
        if table.column(name).null_count:
            raise DataError(f"{source}: column {name} has null values; fill or drop those rows")
    columns = {name: table.column(name) for name in GAME_COLUMNS}
    columns["game_date"] = table.column("game_date").cast(pa.date32())
    for name in ("game_id", "season", "season_type", "home_team", "away_team"):
        columns[name] = table.column(name).cast(pa.string())
    for name in ("elapsed_s", "home_score", "away_score"):
        columns[name] = table.column(name).cast(pa.int32())
    if OBSERVED_COLUMN in table.column_names:
        if not pa.types.is_integer(table.schema.field(OBSERVED_COLUMN).type):
            raise DataError(f"{source}: column {OBSERVED_COLUMN} must be an integer (seconds)")
        columns[OBSERVED_COLUMN] = table.column(OBSERVED_COLUMN).cast(pa.int32())
    return pa.table(columns)


def build_game_series(timeline: pa.Table, source: str, min_observed_s: int) -> GameSeries:
    """Turn a checked timeline into one row per game with the per-minute differential.

    Games observed for fewer than `min_observed_s` seconds, and games whose scores go down or
    whose clock is negative, are skipped with a reason. Minutes past the observed part of a game
    are NaN.
    """
    order = np.lexsort(
        (
            (timeline["home_score"].to_numpy() + timeline["away_score"].to_numpy()),
            timeline["elapsed_s"].to_numpy(),
            pc.rank(timeline["game_id"], sort_keys="ascending", tiebreaker="dense").to_numpy(),
        )
    )
    timeline = timeline.take(pa.array(order))
    game_ids = timeline["game_id"].to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, game_ids[1:] != game_ids[:-1]])
    ends = np.r_[starts[1:], len(game_ids)]
    _check_game_metadata(timeline, starts, ends, source)

    elapsed = timeline["elapsed_s"].to_numpy().astype(np.int64)
    home = timeline["home_score"].to_numpy().astype(np.int64)
    away = timeline["away_score"].to_numpy().astype(np.int64)
    observed = _observed_seconds(timeline, elapsed, starts, ends)

    reasons = _game_problems(elapsed, home, away, starts, ends, observed, min_observed_s)
    skipped = [SkippedGame(game_ids[starts[i]], reason) for i, reason in reasons.items()]
    for item in skipped:
        logger.warning("skipping game %s from %s: %s", item.game_id, source, item.reason)
    keep = np.array([i not in reasons for i in range(len(starts))], dtype=bool)

    series = _minute_differentials(elapsed, home - away, starts, ends)
    minutes = np.arange(REGULATION_MINUTES) * SECONDS_PER_MINUTE
    series[minutes[None, :] > observed[:, None]] = np.nan
    last = ends - 1
    points_at_17 = _minute_totals(elapsed, home + away, starts, ends, PATTERN_MINUTES - 1)

    games = pa.table(
        {
            **{name: timeline[name].take(pa.array(starts[keep])) for name in GAME_COLUMNS},
            "observed_s": pa.array(observed[keep].astype(np.int32)),
            "final_home_score": pa.array(home[last][keep].astype(np.int32)),
            "final_away_score": pa.array(away[last][keep].astype(np.int32)),
            "points_at_17": pa.array(points_at_17[keep].astype(np.float32)),
            "timeseries": _fixed_list(series[keep]),
            "pattern": _fixed_list(series[keep, :PATTERN_MINUTES]),
            "outcome": _fixed_list(series[keep, PATTERN_MINUTES : PATTERN_MINUTES + 6]),
        }
    )
    return GameSeries(games=games, skipped=skipped)


def _fixed_list(values: np.ndarray) -> pa.FixedSizeListArray:
    values = np.ascontiguousarray(values, dtype=np.float32)
    flat = pa.array(values.reshape(-1), type=pa.float32(), from_pandas=True)
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])


def _check_game_metadata(timeline: pa.Table, starts, ends, source: str) -> None:
    """Raise if one game id carries two different dates, teams or seasons."""
    for name in GAME_COLUMNS[1:]:
        values = timeline[name].to_numpy(zero_copy_only=False)
        first = np.repeat(values[starts], ends - starts)
        conflict = np.flatnonzero(values != first)
        if len(conflict):
            row = int(conflict[0])
            game = timeline["game_id"][row].as_py()
            raise DataError(
                f"{source}: duplicate game id {game}: its rows disagree on {name} "
                f"({first[row]} vs {values[row]}); give each game a unique game_id"
            )


def _observed_seconds(timeline: pa.Table, elapsed: np.ndarray, starts, ends) -> np.ndarray:
    if OBSERVED_COLUMN in timeline.column_names:
        return timeline[OBSERVED_COLUMN].to_numpy()[starts].astype(np.int64)
    last_event = elapsed[ends - 1]
    # Finished games cover all of regulation even when the last score comes before 48:00.
    return np.where(
        last_event >= FOURTH_QUARTER_START_S, np.maximum(last_event, REGULATION_S), last_event
    )


def _game_problems(elapsed, home, away, starts, ends, observed, min_observed_s) -> dict[int, str]:
    reasons: dict[int, str] = {}
    same_game = np.ones(len(elapsed), dtype=bool)
    same_game[starts] = False
    game_of_row = np.repeat(np.arange(len(starts)), ends - starts)
    for label, values in (("home_score", home), ("away_score", away)):
        drops = np.flatnonzero(same_game & (np.diff(values, prepend=0) < 0))
        for row in drops[::-1]:
            reasons[int(game_of_row[row])] = (
                f"{label} goes down from {values[row - 1]} to {values[row]} at {elapsed[row]} s; "
                "fix the event order or the scores in the source"
            )
    for row in np.flatnonzero(elapsed < 0)[::-1]:
        reasons[int(game_of_row[row])] = f"negative elapsed_s {elapsed[row]}; fix the clock"
    for index in np.flatnonzero(observed < min_observed_s):
        reasons.setdefault(
            int(index),
            f"only {observed[index]} s of play observed, fewer than {min_observed_s // 60} "
            "minutes; supply the rest of the game or drop it",
        )
    return reasons


def _last_event_before(elapsed, starts, ends, limits_s: np.ndarray) -> np.ndarray:
    """Return, per game and limit, the row of the last event at or before the limit, or -1."""
    game_index = np.repeat(np.arange(len(starts)), ends - starts)
    # One sorted key per event lets a single searchsorted serve every game at once.
    span = int(max(elapsed.max(initial=0), limits_s.max(initial=0))) + 1
    keys = game_index * span + elapsed
    queries = np.arange(len(starts))[:, None] * span + limits_s[None, :]
    rows = np.searchsorted(keys, queries, side="right") - 1
    return np.where(rows >= starts[:, None], rows, -1)


def _minute_differentials(elapsed, differential, starts, ends) -> np.ndarray:
    limits = np.arange(REGULATION_MINUTES) * SECONDS_PER_MINUTE
    rows = _last_event_before(elapsed, starts, ends, limits)
    return np.where(rows >= 0, differential[np.maximum(rows, 0)], 0).astype(np.float32)


def _minute_totals(elapsed, totals, starts, ends, minute: int) -> np.ndarray:
    rows = _last_event_before(elapsed, starts, ends, np.array([minute * SECONDS_PER_MINUTE]))[:, 0]
    return np.where(rows >= 0, totals[np.maximum(rows, 0)], 0)
