"""Raw NBA Stats `playbyplayv2` games (one CSV per game) to the score-timeline table.

The input folder holds `gameplaybyplay/<game_id>.csv` and `game_info/<game_id>.json`, as in the
`gabriel1200/legacy_pbp` repository; data/README.md describes the format and how the shipped
`data/nba_score_timelines.parquet` was built from it. Only made field goals (EVENTMSGTYPE 1) and
free throws (3) with a SCORE ("VISITOR - HOME") are read. Rows are put in scoring order (running
total, then clock), repeated scores are dropped and the clock is repaired so that it never goes
back. Games that cannot be repaired are skipped with a logged reason and returned.
"""

import datetime
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from nba_ray.ingest import DataError, SkippedGame

logger = logging.getLogger(__name__)

TIMELINE_SCHEMA = pa.schema(
    [
        ("game_id", pa.string()),
        ("game_date", pa.date32()),
        ("season", pa.string()),
        ("season_type", pa.string()),
        ("home_team", pa.string()),
        ("away_team", pa.string()),
        ("elapsed_s", pa.int32()),
        ("home_score", pa.int32()),
        ("away_score", pa.int32()),
    ]
)
REQUIRED_COLUMNS = (
    "GAME_ID", "EVENTMSGTYPE", "PERIOD", "PCTIMESTRING", "HOMEDESCRIPTION",
    "VISITORDESCRIPTION", "SCORE", "PLAYER1_TEAM_ABBREVIATION",
)  # fmt: skip
SCORING_EVENT_TYPES = (1, 3)  # made field goal, free throw
SEASON_TYPES = {"002": "regular", "004": "playoff"}
PERIOD_S, OVERTIME_S, REGULATION_PERIODS = 720, 300, 4
REGULATION_S = PERIOD_S * REGULATION_PERIODS
MAX_CLOCK_MOVE_S = 120  # the most a repaired event may move
MAX_REPAIRED_EVENTS = 3  # the most events per game whose clock may be repaired


class SkipGame(Exception):
    """Raised while reading one game; the message is the reason it is skipped."""


def read_playbyplay_folder(folder: str | Path) -> tuple[pa.Table, list[SkippedGame]]:
    """Read every game in `folder` into one score timeline, plus the games that were skipped.

    Rows are sorted by game_date, game_id and scoring order, with the schema of the shipped
    Parquet. Raises DataError for folder-level problems (a missing folder, no CSV files).
    """
    folder = Path(folder)
    paths = _game_files(folder)
    games: dict[str, pa.Table] = {}
    skipped: list[SkippedGame] = []
    for path in paths:
        game_id = path.stem.zfill(10)
        try:
            if game_id in games:
                raise SkipGame(f"a second file for game {game_id}; keep one file per game")
            games[game_id] = read_game(path, folder / "game_info" / f"{path.stem}.json")
        except SkipGame as reason:
            logger.warning("skipping game %s (%s): %s", game_id, path, reason)
            skipped.append(SkippedGame(game_id=game_id, reason=str(reason)))
    order = sorted(games, key=lambda gid: (games[gid]["game_date"][0].as_py(), gid))
    tables = [games[gid] for gid in order] or [TIMELINE_SCHEMA.empty_table()]
    table = pa.concat_tables(tables).combine_chunks()
    logger.info(
        "read %d games (%d scoring events) from %s; skipped %d of %d game files",
        len(games), table.num_rows, folder, len(skipped), len(paths),
    )  # fmt: skip
    return table, skipped


def _game_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(
            f"play-by-play folder not found: {folder}; point it at a folder with "
            "gameplaybyplay/<game_id>.csv and game_info/<game_id>.json "
            "(the layout of gabriel1200/legacy_pbp)"
        )
    pbp_dir = folder / "gameplaybyplay"
    paths = sorted(pbp_dir.glob("*.csv")) if pbp_dir.is_dir() else []
    if not paths:
        raise DataError(
            f"{pbp_dir}: no play-by-play CSV files; put one playbyplayv2 CSV per game there, "
            "named <game_id>.csv"
        )
    return paths


def read_game(csv_path: Path, json_path: Path) -> pa.Table:
    """Read one game's scoring events; raise SkipGame with the reason if it cannot be used."""
    frame = _read_csv(csv_path)
    game_id = _game_id(csv_path, frame)
    season, season_type = _season(game_id)
    home_team, away_team = _teams(frame)
    game_date = _game_date(json_path)
    events = _scoring_events(frame)
    elapsed = repair_clock(events["elapsed_s"].to_numpy())
    _check_overtime(frame, elapsed, events)
    n = len(events)
    return pa.table(
        {
            "game_id": [game_id] * n,
            "game_date": [game_date] * n,
            "season": [season] * n,
            "season_type": [season_type] * n,
            "home_team": [home_team] * n,
            "away_team": [away_team] * n,
            "elapsed_s": elapsed,
            "home_score": events["home"].to_numpy(),
            "away_score": events["away"].to_numpy(),
        },
        schema=TIMELINE_SCHEMA,
    )


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise SkipGame(f"unreadable CSV ({type(error).__name__}: {error})") from error
    missing = [name for name in REQUIRED_COLUMNS if name not in frame.columns]
    if missing:
        raise SkipGame(
            f"missing column(s) {', '.join(missing)}; a playbyplayv2 CSV needs "
            f"{', '.join(REQUIRED_COLUMNS)}"
        )
    return frame


def _game_id(path: Path, frame: pd.DataFrame) -> str:
    expected = path.stem.zfill(10)
    ids = set(frame["GAME_ID"].str.strip().str.zfill(10))
    if ids != {expected} or not expected.isdigit() or len(expected) != 10:
        raise SkipGame(f"GAME_ID values {sorted(ids)[:3]} do not match the file name {path.name}")
    return expected


def _season(game_id: str) -> tuple[str, str]:
    season_type = SEASON_TYPES.get(game_id[:3])
    if season_type is None:
        raise SkipGame(
            f"game id prefix {game_id[:3]} is neither regular season (002) nor playoff (004)"
        )
    start = int(game_id[3:5])
    start += 1900 if start >= 46 else 2000  # the NBA's first season was 1946-47
    return f"{start}-{(start + 1) % 100:02d}", season_type


def _teams(frame: pd.DataFrame) -> tuple[str, str]:
    """Home and away abbreviations: the teams whose actions fill each description column."""
    home_text = frame["HOMEDESCRIPTION"].str.strip() != ""
    visitor_text = frame["VISITORDESCRIPTION"].str.strip() != ""
    team = frame["PLAYER1_TEAM_ABBREVIATION"].str.strip()
    home = team[home_text & ~visitor_text & (team != "")].mode()
    away = team[visitor_text & ~home_text & (team != "")].mode()
    if len(home) != 1 or len(away) != 1 or home[0] == away[0]:
        raise SkipGame(
            f"cannot tell the home and away team from the description columns "
            f"(home candidates {list(home)}, visitor candidates {list(away)})"
        )
    return str(home[0]), str(away[0])


def _game_date(json_path: Path) -> datetime.date:
    try:
        info = json.loads(json_path.read_text(encoding="utf-8"))
        return datetime.date.fromisoformat(str(info["date"]).strip()[:10])
    except FileNotFoundError:
        raise SkipGame(f"missing JSON date: no {json_path}; add the game_info file") from None
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise SkipGame(f"missing JSON date: {json_path} has no valid 'date' ({error!r})") from None


def _scoring_events(frame: pd.DataFrame) -> pd.DataFrame:
    """Made shots and free throws with a score, in scoring order, without repeated scores."""
    event_type = pd.to_numeric(frame["EVENTMSGTYPE"], errors="coerce")
    rows = frame[event_type.isin(SCORING_EVENT_TYPES) & (frame["SCORE"].str.strip() != "")]
    if rows.empty:
        raise SkipGame("no scoring events (EVENTMSGTYPE 1 or 3 with a SCORE)")
    score = rows["SCORE"].str.extract(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
    clock = rows["PCTIMESTRING"].str.extract(r"^\s*(\d+):(\d\d)\s*$")
    period = pd.to_numeric(rows["PERIOD"], errors="coerce")
    bad = score.isna().any(axis=1) | clock.isna().any(axis=1) | ~(period >= 1)
    if bad.any():
        row = rows[bad].iloc[0]
        raise SkipGame(
            f"unreadable scoring row (PERIOD {row['PERIOD']!r}, PCTIMESTRING "
            f"{row['PCTIMESTRING']!r}, SCORE {row['SCORE']!r})"
        )
    events = pd.DataFrame(
        {
            "period": period.astype(np.int64),
            "elapsed_s": _elapsed_s(period.astype(np.int64), clock.astype(np.int64)),
            "home": score[1].astype(np.int64),
            "away": score[0].astype(np.int64),
        }
    )
    events = events.assign(total=events["home"] + events["away"])
    events = events.sort_values(["total", "elapsed_s"], kind="stable")
    events = events.drop_duplicates(["home", "away"]).reset_index(drop=True)
    _check_scores(events)
    return events


def _elapsed_s(period: pd.Series, clock: pd.DataFrame) -> pd.Series:
    """Seconds since tip-off from the period and the time left in it (PCTIMESTRING)."""
    left = clock[0] * 60 + clock[1]
    overtime = period > REGULATION_PERIODS
    length = np.where(overtime, OVERTIME_S, PERIOD_S)
    start = np.where(
        overtime,
        REGULATION_S + (period - REGULATION_PERIODS - 1) * OVERTIME_S,
        (period - 1) * PERIOD_S,
    )
    bad = (left > length) | (clock[1] >= 60)
    if bad.any():
        raise SkipGame(f"PCTIMESTRING {left[bad].iloc[0]} s left does not fit in its period")
    return start + length - left


def _check_scores(events: pd.DataFrame) -> None:
    home_step = np.diff(events["home"].to_numpy(), prepend=0)
    away_step = np.diff(events["away"].to_numpy(), prepend=0)
    bad = (home_step < 0) | (away_step < 0) | ((home_step > 0) & (away_step > 0))
    bad |= ~np.isin(home_step + away_step, (1, 2, 3))
    if bad.any():
        row = events.iloc[int(np.flatnonzero(bad)[0])]
        raise SkipGame(
            f"scores in running-total order are inconsistent at home {row['home']}, "
            f"away {row['away']} (each event must add 1-3 points for one team)"
        )


def repair_clock(elapsed: np.ndarray) -> np.ndarray:
    """Make event times non-decreasing: keep a longest non-decreasing run of the times and give
    every other event the time of the previous kept event (tip-off, 0 s, before the first).

    Among runs of the same length, the one that moves the other events least in total is kept.
    Raises SkipGame if an event would move more than MAX_CLOCK_MOVE_S seconds, or if more than
    MAX_REPAIRED_EVENTS events need a new time.
    """
    times = np.concatenate([[0], np.asarray(elapsed, dtype=np.int64)])  # index 0: tip-off
    n = len(times)
    moves = np.triu(np.abs(times[None, :] - times[:, None]), k=1)  # moves[i, k]: k takes i's time
    moved_after = np.cumsum(moves, axis=1)  # moved_after[i, j]: rows i+1..j all take i's time
    length, cost = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    previous = np.full(n, -1)
    for j in range(1, n):
        allowed = times[:j] <= times[j]
        best = length[:j][allowed].max()
        candidates = np.flatnonzero(allowed & (length[:j] == best))
        costs = cost[candidates] + moved_after[candidates, j - 1]
        previous[j] = candidates[np.argmin(costs)]
        length[j], cost[j] = best + 1, costs.min()
    total = cost + moved_after[:, n - 1]
    last = int(np.flatnonzero(length == length.max())[np.argmin(total[length == length.max()])])
    kept = np.zeros(n, dtype=bool)
    while last >= 0:
        kept[last], last = True, previous[last]
    repaired = times[np.maximum.accumulate(np.where(kept, np.arange(n), 0))]
    shift = np.abs(repaired - times)
    if shift.max() > MAX_CLOCK_MOVE_S:
        raise SkipGame(
            f"a scoring event's clock was out of order by more than {MAX_CLOCK_MOVE_S} s "
            f"(the event at {times[shift.argmax()]} s would move {shift.max()} s; "
            "likely the wrong period)"
        )
    if (~kept).sum() > MAX_REPAIRED_EVENTS:
        raise SkipGame(
            f"{(~kept).sum()} scoring events had an out-of-order clock, more than "
            f"{MAX_REPAIRED_EVENTS}"
        )
    return repaired[1:].astype(np.int32)


def _check_overtime(frame: pd.DataFrame, elapsed: np.ndarray, events: pd.DataFrame) -> None:
    """An overtime period needs a tie at 48:00; otherwise an event or an OT row is misclocked."""
    periods = pd.to_numeric(frame["PERIOD"], errors="coerce")
    if not (periods > REGULATION_PERIODS).any():
        return
    regulation = elapsed <= REGULATION_S
    home = int(events["home"][regulation].max()) if regulation.any() else 0
    away = int(events["away"][regulation].max()) if regulation.any() else 0
    if home != away:
        raise SkipGame(
            f"an OT period is present but the score at 48:00 is not tied (home {home}, "
            f"away {away}); a misclocked event or a spurious OT row"
        )
