"""Per-minute series from score timelines, and rejection of bad timelines."""

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import TIMELINE

from nba_ray.ingest import DataError, build_game_series, check_timeline, read_timeline


def make_timeline(events: list[tuple], game_id="0022300001", date=dt.date(2024, 1, 2)):
    """Build a one-game timeline from (elapsed_s, home_score, away_score) events."""
    n = len(events)
    return pa.table(
        {
            "game_id": [game_id] * n,
            "game_date": pa.array([date] * n, pa.date32()),
            "season": ["2023-24"] * n,
            "season_type": ["regular"] * n,
            "home_team": ["BOS"] * n,
            "away_team": ["NYK"] * n,
            "elapsed_s": pa.array([e[0] for e in events], pa.int32()),
            "home_score": pa.array([e[1] for e in events], pa.int32()),
            "away_score": pa.array([e[2] for e in events], pa.int32()),
        }
    )


def series_of(table: pa.Table, min_observed_s: int = 1440):
    games = build_game_series(check_timeline(table, "test"), "test", min_observed_s)
    return games


def test_minute_boundary_event_counts(tmp_path):
    # An event at exactly 60 s belongs to minute 1; one at 61 s only to minute 2.
    games = series_of(make_timeline([(60, 2, 0), (61, 2, 3), (2900, 4, 3)])).games
    series = np.array(games["timeseries"][0].as_py())
    assert series[0] == 0
    assert series[1] == 2
    assert series[2] == -1
    assert series[47] == -1


def test_overtime_ignored_in_regulation_series():
    # A tie at 48:00 broken in overtime must not reach minute 47.
    events = [(100, 2, 0), (2800, 2, 2), (2950, 5, 2)]
    games = series_of(make_timeline(events)).games
    series = np.array(games["timeseries"][0].as_py())
    assert len(series) == 48
    assert series[47] == 0
    assert games["final_home_score"][0].as_py() == 5


def test_pattern_and_outcome_slices():
    events = [(m * 60, m, 0) for m in range(1, 49)]
    games = series_of(make_timeline(events)).games
    assert games["pattern"][0].as_py() == [float(m) for m in range(18)]
    assert games["outcome"][0].as_py() == [float(m) for m in range(18, 24)]


def test_real_game_matches_documented_series():
    table = read_timeline(TIMELINE)
    games = build_game_series(table, "real", 1440).games
    first = games.filter(pa.compute.equal(games["game_id"], "0021300001"))
    series = first["timeseries"][0].as_py()
    assert series[:11] == [0, 2, 7, 10, 10, 8, 10, 8, 6, 6, 5]
    # The documented series ends 11 at minute 47 and the final margin of 10 at minute 48.
    assert series[47] == 11
    assert len(series) == 48
    assert games.num_rows == 15417


def test_scores_going_down_skip_game():
    skipped = series_of(make_timeline([(30, 2, 0), (90, 1, 0), (2900, 3, 0)])).skipped
    assert len(skipped) == 1
    assert "home_score goes down from 2 to 1" in skipped[0].reason


def test_short_game_skipped_with_reason():
    result = series_of(make_timeline([(30, 2, 0), (1000, 4, 0)]))
    assert result.games.num_rows == 0
    assert result.skipped[0].game_id == "0022300001"
    assert "fewer than 24 minutes" in result.skipped[0].reason


def test_duplicate_game_id_rejected():
    a = make_timeline([(30, 2, 0), (2900, 4, 0)])
    b = make_timeline([(40, 0, 2), (2900, 0, 4)], date=dt.date(2024, 1, 5))
    with pytest.raises(DataError, match="duplicate game id 0022300001"):
        series_of(pa.concat_tables([a, b]))


def test_missing_file_names_path(tmp_path):
    with pytest.raises(DataError, match="timeline file not found: .*nope.parquet"):
        read_timeline(tmp_path / "nope.parquet")


def test_missing_column_names_column(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(make_timeline([(30, 2, 0)]).drop(["away_score"]), path)
    with pytest.raises(DataError, match=r"t.parquet: missing column\(s\) away_score"):
        read_timeline(path)


def test_mistyped_column_names_type(tmp_path):
    table = make_timeline([(30, 2, 0)])
    table = table.set_column(6, "elapsed_s", table["elapsed_s"].cast(pa.string()))
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    with pytest.raises(DataError, match="column elapsed_s has type string, expected integer"):
        read_timeline(path)


def test_empty_input_rejected(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(make_timeline([(30, 2, 0)]).slice(0, 0), path)
    with pytest.raises(DataError, match="the timeline is empty"):
        read_timeline(path)


def test_unreadable_file_rejected(tmp_path):
    path = tmp_path / "t.parquet"
    path.write_text("not parquet")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        read_timeline(path)


def test_game_in_progress_has_unknown_minutes():
    table = make_timeline([(30, 2, 0), (1150, 4, 0)])
    games = series_of(table, min_observed_s=1080).games
    outcome = np.array(games["outcome"][0].as_py(), dtype=float)
    assert games["observed_s"][0].as_py() == 1150
    # Minutes 18 and 19 (1080 s, 1140 s) are observed; from minute 20 (1200 s) on they are not.
    assert outcome[0] == 2
    assert outcome[1] == 2
    assert np.isnan(outcome[2:]).all()
