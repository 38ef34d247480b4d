"""Tests of the leak-free context features."""

import datetime as dt
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from nba_ray import OUTCOME_MINUTES, PATTERN_MINUTES, REGULATION_MINUTES
from nba_ray import features as F
from nba_ray.features import CONTEXT_FEATURES, REQUIRED_COLUMNS, add_context_features

DATA = Path(__file__).resolve().parents[1] / "data" / "nba_score_timelines.parquet"
START = dt.date(2020, 1, 1)


def make_games(rows: list[dict]) -> pa.Table:
    """Per-game table with the schema of `build_game_series`.

    Each row needs game_id, day (offset from START, or a date), home, away; optional home_score,
    away_score, season, season_type, points_at_17, observed_s and timeseries (48 values; by
    default a straight line from 0 to the final margin).
    """
    columns = {name: [] for name in REQUIRED_COLUMNS if name != "timeseries"}
    series = []
    for row in rows:
        day = row["day"]
        home_score = row.get("home_score", 100)
        away_score = row.get("away_score", 95)
        columns["game_id"].append(row["game_id"])
        columns["game_date"].append(day if isinstance(day, dt.date) else START + dt.timedelta(day))
        columns["season"].append(row.get("season", "2019-20"))
        columns["season_type"].append(row.get("season_type", "regular"))
        columns["home_team"].append(row["home"])
        columns["away_team"].append(row["away"])
        columns["observed_s"].append(row.get("observed_s", REGULATION_MINUTES * 60))
        columns["final_home_score"].append(home_score)
        columns["final_away_score"].append(away_score)
        columns["points_at_17"].append(row.get("points_at_17", 70.0))
        default = np.linspace(0.0, home_score - away_score, REGULATION_MINUTES)
        series.append(np.asarray(row.get("timeseries", default), dtype=np.float32))
    matrix = np.stack(series) if series else np.zeros((0, REGULATION_MINUTES), np.float32)

    def fixed(values: np.ndarray) -> pa.FixedSizeListArray:
        flat = pa.array(np.ascontiguousarray(values).reshape(-1), type=pa.float32())
        return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])

    return pa.table(
        {
            "game_id": pa.array(columns["game_id"], pa.string()),
            "game_date": pa.array(columns["game_date"], pa.date32()),
            "season": pa.array(columns["season"], pa.string()),
            "season_type": pa.array(columns["season_type"], pa.string()),
            "home_team": pa.array(columns["home_team"], pa.string()),
            "away_team": pa.array(columns["away_team"], pa.string()),
            "observed_s": pa.array(columns["observed_s"], pa.int32()),
            "final_home_score": pa.array(columns["final_home_score"], pa.int32()),
            "final_away_score": pa.array(columns["final_away_score"], pa.int32()),
            "points_at_17": pa.array(columns["points_at_17"], pa.float32()),
            "timeseries": fixed(matrix),
            "pattern": fixed(matrix[:, :PATTERN_MINUTES]),
            "outcome": fixed(matrix[:, PATTERN_MINUTES : PATTERN_MINUTES + OUTCOME_MINUTES]),
        }
    )


def random_rows(seed: int, num_dates: int = 40, num_teams: int = 8) -> list[dict]:
    """A random two-season schedule with playoffs, gaps between dates and one double-header."""
    rng = np.random.default_rng(seed)
    teams = [f"T{i}" for i in range(num_teams)]
    rows, day = [], 0
    for index in range(num_dates):
        day += int(rng.choice([1, 1, 2, 3, 9]))
        season = "2019-20" if index < num_dates // 2 else "2020-21"
        season_type = "playoff" if index % (num_dates // 2) >= num_dates // 2 - 4 else "regular"
        picks = rng.permutation(teams)[: 2 * int(rng.integers(1, num_teams // 2 + 1))]
        pairs = [(picks[i], picks[i + 1]) for i in range(0, len(picks), 2)]
        if index == 7:  # one team plays twice on the same date
            pairs.append((pairs[0][0], picks[-1] if len(picks) > 2 else teams[-1]))
        for home, away in pairs:
            if home == away:
                continue
            rows.append(random_game(rng, f"g{len(rows):04d}", day, home, away, season, season_type))
    return rows


def random_game(rng, game_id, day, home, away, season="2019-20", season_type="regular") -> dict:
    steps = rng.integers(-3, 4, size=REGULATION_MINUTES).astype(np.float32)
    steps[0] = 0.0
    series = np.cumsum(steps)
    away_score = int(rng.integers(85, 125))
    home_score = away_score + int(series[-1]) + (1 if series[-1] == 0 else 0)
    return {
        "game_id": game_id,
        "day": day,
        "home": home,
        "away": away,
        "season": season,
        "season_type": season_type,
        "home_score": home_score,
        "away_score": away_score,
        "points_at_17": float(rng.integers(55, 95)),
        "timeseries": series,
    }


def perturb(rng, row: dict, own_only: bool = False) -> dict:
    """Change a game's result; with own_only, only what happens from minute 18 on."""
    row = dict(row)
    series = np.array(row["timeseries"], dtype=np.float32)
    series[PATTERN_MINUTES:] += rng.integers(-15, 16, size=REGULATION_MINUTES - PATTERN_MINUTES)
    row["home_score"] = int(rng.integers(70, 140))
    row["away_score"] = int(rng.integers(70, 140))
    if not own_only:
        series[1:PATTERN_MINUTES] += rng.integers(-9, 10, size=PATTERN_MINUTES - 1)
        row["points_at_17"] = float(rng.integers(40, 110))
        row["observed_s"] = int(rng.choice([REGULATION_MINUTES * 60, 3180, 1500]))
    row["timeseries"] = series
    return row


def features_by_id(table: pa.Table) -> dict[str, dict[str, float]]:
    ids = table["game_id"].to_pylist()
    columns = {name: table[name].to_pylist() for name in CONTEXT_FEATURES}
    return {gid: {name: columns[name][i] for name in CONTEXT_FEATURES} for i, gid in enumerate(ids)}


def test_columns_are_appended_as_float32():
    games = make_games(random_rows(0))
    out = add_context_features(games)
    assert out.column_names == games.column_names + list(CONTEXT_FEATURES)
    for name in CONTEXT_FEATURES:
        assert out.schema.field(name).type == pa.float32()
    again = add_context_features(out)
    assert again.column_names == out.column_names
    assert again.equals(out)


def test_missing_column_and_duplicate_id_are_rejected():
    games = make_games(random_rows(0))
    with pytest.raises(ValueError, match="final_home_score"):
        add_context_features(games.drop_columns(["final_home_score"]))
    with pytest.raises(ValueError, match="unique"):
        add_context_features(pa.concat_tables([games, games.slice(0, 1)]))


def test_empty_table():
    out = add_context_features(make_games([]))
    assert out.num_rows == 0 and set(CONTEXT_FEATURES) <= set(out.column_names)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_leak_from_same_or_later_dates(seed):
    rng = np.random.default_rng(100 + seed)
    rows = random_rows(seed)
    base = features_by_id(add_context_features(make_games(rows)))
    dates = sorted({row["day"] for row in rows})
    for cut in dates[1::3]:
        for target in [row for row in rows if row["day"] == cut]:
            # Every other game on the cut date and every game after it changes; add a later game.
            changed = [
                perturb(rng, row)
                if row["day"] > cut or (row["day"] == cut and row["game_id"] != target["game_id"])
                else row
                for row in rows
            ]
            changed.append(random_game(rng, "zz_late", cut + 1, target["home"], "NEW"))
            after = features_by_id(add_context_features(make_games(changed)))
            for row in rows:
                if row["day"] < cut or row["game_id"] == target["game_id"]:
                    assert after[row["game_id"]] == base[row["game_id"]], (cut, row["game_id"])


@pytest.mark.parametrize("seed", [0, 3])
def test_own_minutes_18_on_do_not_change_own_features(seed):
    rng = np.random.default_rng(200 + seed)
    rows = random_rows(seed)
    base = features_by_id(add_context_features(make_games(rows)))
    for index in range(0, len(rows), 5):
        changed = list(rows)
        changed[index] = perturb(rng, rows[index], own_only=True)
        table = make_games(changed)
        assert table["outcome"][index].as_py() != make_games(rows)["outcome"][index].as_py()
        after = features_by_id(add_context_features(table))
        for row in rows:
            if row["day"] <= rows[index]["day"]:
                assert after[row["game_id"]] == base[row["game_id"]]


@pytest.mark.parametrize("seed", [0, 2])
def test_swapped_sides_mirror_features(seed):
    assert set(F.MIRRORED_FEATURES) == set(CONTEXT_FEATURES)
    rows = random_rows(seed)
    base = features_by_id(add_context_features(make_games(rows)))
    checked = 0
    for index in range(0, len(rows), 3):
        row = rows[index]
        swapped = dict(
            row,
            home=row["away"],
            away=row["home"],
            home_score=row["away_score"],
            away_score=row["home_score"],
            timeseries=-np.asarray(row["timeseries"], dtype=np.float32),
        )
        changed = [swapped if i == index else other for i, other in enumerate(rows)]
        after = features_by_id(add_context_features(make_games(changed)))[row["game_id"]]
        before = base[row["game_id"]]
        for name, (source, sign) in F.MIRRORED_FEATURES.items():
            assert after[name] == pytest.approx(sign * before[source], abs=1e-5), name
        checked += before["elo_diff"] != 0 and before["rest_days_home"] != before["rest_days_away"]
    # The mirror must have been checked on games whose two sides differ.
    assert checked >= 3


@pytest.mark.parametrize("seed", [0, 4])
def test_row_order_does_not_matter(seed):
    games = make_games(random_rows(seed))
    base = features_by_id(add_context_features(games))
    for shuffle in range(3):
        order = np.random.default_rng(shuffle).permutation(games.num_rows)
        shuffled = add_context_features(games.take(pa.array(order)))
        assert shuffled["game_id"].to_pylist() == games["game_id"].take(pa.array(order)).to_pylist()
        assert features_by_id(shuffled) == base


def test_rest_days_and_back_to_backs():
    rows = [
        {"game_id": "a1", "day": 0, "home": "A", "away": "B"},
        {"game_id": "a2", "day": 1, "home": "C", "away": "A"},  # A: back-to-back
        {"game_id": "a3", "day": 4, "home": "A", "away": "B"},  # A: 3 days, B: 4 days
        {"game_id": "a4", "day": 5, "home": "B", "away": "C"},  # B: b2b, C: 4 days
        {"game_id": "a5", "day": 19, "home": "A", "away": "C"},  # 15 and 14 days -> cap 7
        {"game_id": "a6", "day": 20, "home": "A", "away": "B", "season": "2020-21"},
        {"game_id": "a7", "day": 21, "home": "D", "away": "A", "season": "2020-21"},
    ]
    got = features_by_id(add_context_features(make_games(rows)))
    expected = {  # game -> (rest home, rest away, b2b home, b2b away)
        "a1": (7, 7, 0, 0),  # first games get the cap
        "a2": (7, 1, 0, 1),
        "a3": (3, 4, 0, 0),
        "a4": (1, 4, 1, 0),
        "a5": (7, 7, 0, 0),
        "a6": (7, 7, 0, 0),  # first game of a new season gets the cap despite 1 day
        "a7": (7, 1, 0, 1),  # D's first game; A back-to-back within the new season
    }
    for game, (rest_home, rest_away, b2b_home, b2b_away) in expected.items():
        assert got[game]["rest_days_home"] == rest_home, game
        assert got[game]["rest_days_away"] == rest_away, game
        assert got[game]["b2b_home"] == b2b_home, game
        assert got[game]["b2b_away"] == b2b_away, game


def test_same_date_double_header_sees_only_earlier_dates():
    rows = [
        {"game_id": "d0", "day": 0, "home": "A", "away": "B", "home_score": 120, "away_score": 90},
        {"game_id": "d1", "day": 3, "home": "A", "away": "C", "home_score": 80, "away_score": 110},
        {"game_id": "d2", "day": 3, "home": "D", "away": "A"},  # A loses by 5
        {"game_id": "d3", "day": 4, "home": "A", "away": "E"},
    ]
    got = features_by_id(add_context_features(make_games(rows)))
    assert got["d1"]["ewm_margin_diff"] == 30.0
    assert got["d2"]["ewm_margin_diff"] == -30.0
    assert got["d1"]["elo_diff"] == -got["d2"]["elo_diff"] > 0
    assert got["d1"]["rest_days_home"] == got["d2"]["rest_days_away"] == 3
    # Both games of day 3 then enter A's average, in game_id order.
    decay = 0.5 ** (1 / F.MARGIN_HALF_LIFE)
    expected = (decay**2 * 30 - decay * 30 - 5) / (decay**2 + decay + 1)
    assert got["d3"]["ewm_margin_diff"] == pytest.approx(expected, rel=1e-6)
    assert got["d3"]["rest_days_home"] == 1.0 and got["d3"]["b2b_home"] == 1.0


def test_elo_first_game_base_winner_rises_and_exact_update():
    rows = [
        {"game_id": "e1", "day": 0, "home": "A", "away": "B", "home_score": 110, "away_score": 100},
        {"game_id": "e2", "day": 0, "home": "C", "away": "D", "home_score": 90, "away_score": 99},
        {"game_id": "e3", "day": 1, "home": "A", "away": "E"},  # E: first game
        {"game_id": "e4", "day": 1, "home": "F", "away": "B"},  # F: first game
        {"game_id": "e5", "day": 2, "home": "C", "away": "D"},
    ]
    got = features_by_id(add_context_features(make_games(rows)))
    assert got["e1"]["elo_diff"] == got["e2"]["elo_diff"] == 0.0  # everyone starts at the base
    edge = F.ELO_HOME_ADVANTAGE
    expected = 1 / (1 + 10 ** (-edge / 400))
    change = F.ELO_K * (10 + 3) ** 0.8 / (7.5 + 0.006 * edge) * (1 - expected)
    # A won: its rating rose by `change` and B's fell by as much; E and F have the base rating.
    assert got["e3"]["elo_diff"] == pytest.approx(change / F.ELO_PER_POINT, rel=1e-6)
    assert got["e4"]["elo_diff"] == got["e3"]["elo_diff"] > 0
    # D won away from home: D is now rated above C.
    assert got["e5"]["elo_diff"] < 0


def test_elo_regresses_toward_base_at_season_start():
    rows = [
        {"game_id": "s1", "day": 0, "home": "A", "away": "B", "home_score": 110, "away_score": 100},
        {"game_id": "s2", "day": 1, "home": "A", "away": "C"},  # same season, C new
        {"game_id": "s3", "day": 200, "home": "A", "away": "D", "season": "2020-21"},  # D new
    ]
    got = features_by_id(add_context_features(make_games([rows[0], rows[1]])))
    after_first = got["s2"]["elo_diff"]
    assert after_first > 0
    got = features_by_id(add_context_features(make_games([rows[0], rows[2]])))
    assert got["s3"]["elo_diff"] == pytest.approx(F.ELO_SEASON_CARRY * after_first, rel=1e-6)


def test_earlier_seasons_weigh_less_in_averages():
    rows = [
        {"game_id": "w1", "day": 0, "home": "A", "away": "B", "home_score": 110, "away_score": 100},
        {
            "game_id": "w2",
            "day": 200,
            "home": "C",
            "away": "A",
            "home_score": 104,
            "away_score": 100,
            "season": "2020-21",
        },
        {"game_id": "w3", "day": 201, "home": "A", "away": "D", "season": "2020-21"},
    ]
    got = features_by_id(add_context_features(make_games(rows)))
    assert got["w2"]["ewm_margin_diff"] == -10.0  # a weighted mean of one game is that game
    old = F.SEASON_CARRY_WEIGHT * 0.5 ** (1 / F.MARGIN_HALF_LIFE)
    assert got["w3"]["ewm_margin_diff"] == pytest.approx((old * 10 - 4) / (old + 1), rel=1e-6)


def test_ewm_margin_and_window_values():
    first = np.zeros(REGULATION_MINUTES)
    first[17], first[23] = 4.0, 10.0  # A (home) gains 6 in the window
    second = np.zeros(REGULATION_MINUTES)
    second[17], second[23] = -1.0, 2.0  # A (away) loses 3 in the window
    rows = [
        {
            "game_id": "m1",
            "day": 0,
            "home": "A",
            "away": "B",
            "home_score": 110,
            "away_score": 100,
            "timeseries": first,
        },
        {
            "game_id": "m2",
            "day": 1,
            "home": "C",
            "away": "A",
            "home_score": 104,
            "away_score": 100,
            "timeseries": second,
        },
        {"game_id": "m3", "day": 2, "home": "A", "away": "D"},
    ]
    got = features_by_id(add_context_features(make_games(rows)))
    assert got["m1"]["ewm_margin_diff"] == got["m1"]["ewm_window_diff"] == 0.0
    assert got["m2"]["ewm_margin_diff"] == -10.0  # C has no history, A is +10
    assert got["m2"]["ewm_window_diff"] == -6.0
    decay = 0.5 ** (1 / F.MARGIN_HALF_LIFE)
    assert got["m3"]["ewm_margin_diff"] == pytest.approx((decay * 10 - 4) / (decay + 1), rel=1e-6)
    decay = 0.5 ** (1 / F.WINDOW_HALF_LIFE)
    assert got["m3"]["ewm_window_diff"] == pytest.approx((decay * 6 - 3) / (decay + 1), rel=1e-6)


def test_pace_and_playoff_flags():
    rows = [
        {"game_id": "p1", "day": 0, "home": "A", "away": "B", "points_at_17": 60.0},
        {
            "game_id": "p2",
            "day": 1,
            "home": "A",
            "away": "C",
            "points_at_17": 80.0,
            "season_type": "playoff",
        },
    ]
    got = features_by_id(add_context_features(make_games(rows)))
    assert got["p1"]["pace_17"] == 60.0 and got["p2"]["pace_17"] == 80.0
    assert got["p1"]["ewm_pace_home"] == got["p1"]["ewm_pace_away"] == F.DEFAULT_PACE_17
    assert got["p2"]["ewm_pace_home"] == 60.0
    assert got["p2"]["ewm_pace_away"] == 60.0  # C has no history: league mean of earlier dates
    assert got["p1"]["is_playoff"] == 0.0 and got["p2"]["is_playoff"] == 1.0


def test_game_in_progress_does_not_move_ratings():
    rows = [
        {
            "game_id": "i1",
            "day": 0,
            "home": "A",
            "away": "B",
            "home_score": 60,
            "away_score": 40,
            "observed_s": 1500,
            "timeseries": np.r_[np.zeros(25), np.full(23, np.nan)],
        },
        {"game_id": "i2", "day": 1, "home": "A", "away": "B"},
    ]
    got = features_by_id(add_context_features(make_games(rows)))
    assert got["i2"]["elo_diff"] == got["i2"]["ewm_margin_diff"] == 0.0
    assert got["i2"]["rest_days_home"] == 1.0
    for name in CONTEXT_FEATURES:
        assert np.isfinite(got["i1"][name]) and np.isfinite(got["i2"][name])


@pytest.mark.skipif(not DATA.exists(), reason="real timeline file not present")
def test_real_data_features_are_finite_and_fast():
    from nba_ray.ingest import OUTCOME_END_S, build_game_series, read_timeline

    games = build_game_series(read_timeline(DATA), str(DATA), OUTCOME_END_S).games
    started = time.perf_counter()
    out = add_context_features(games)
    seconds = time.perf_counter() - started
    assert out.num_rows == games.num_rows
    for name in CONTEXT_FEATURES:
        values = out[name].to_numpy()
        assert np.isfinite(values).all(), name
    assert set(np.unique(out["b2b_home"].to_numpy())) <= {0.0, 1.0}
    assert out["rest_days_home"].to_numpy().min() >= 1.0
    assert out["rest_days_home"].to_numpy().max() == F.REST_CAP_DAYS
    assert seconds < 3.0
