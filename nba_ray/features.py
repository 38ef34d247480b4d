"""Leak-free per-game context features, appended as float32 columns to the per-game table.

`add_context_features(games)` takes the table of `nba_ray.ingest.build_game_series` (all games,
both season types, all seasons) and appends the columns in `CONTEXT_FEATURES`:

- `elo_diff` (points): home minus away pre-game Elo rating, divided by `ELO_PER_POINT` (28 Elo
  points per point of expected final margin), so it reads as an expected final margin in points
  before home-court advantage (a constant the model learns). Ratings start at `ELO_BASE` (1500)
  for a team's first game, move after each finished game by `ELO_K` times a margin-of-victory
  multiplier ((|margin| + 3) ** 0.8 / (7.5 + 0.006 * winner's Elo edge)) times (result minus
  expected result, with `ELO_HOME_ADVANTAGE` Elo points for the home side), and are pulled a
  quarter of the way back to `ELO_BASE` at a team's first game of a new season.
- `ewm_margin_diff` (points per game): home minus away exponentially weighted mean of each team's
  earlier final margins (own points minus opponent's, overtime included), half-life
  `MARGIN_HALF_LIFE` games; a team without earlier finished games counts as 0.
- `ewm_window_diff` (points per 6 minutes): home minus away exponentially weighted mean of each
  team's change in differential from minute 17 to minute 23 (the forecast window) in its earlier
  games, from the team's point of view, half-life `WINDOW_HALF_LIFE` games; 0 without history.
- `rest_days_home`, `rest_days_away` (days): days since the team's previous game on an earlier
  date, capped at `REST_CAP_DAYS` (7); a team's first game of a season gets the cap.
- `b2b_home`, `b2b_away` (0/1): 1.0 when the team played on the previous day.
- `pace_17` (points): total points of both teams at minute 17 of this game (known at minute 17).
- `ewm_pace_home`, `ewm_pace_away` (points): exponentially weighted mean of `points_at_17` of the
  team's earlier games, half-life `PACE_HALF_LIFE` games; without history the league-wide
  exponentially weighted mean over earlier dates (half-life `LEAGUE_PACE_HALF_LIFE` games), or
  `DEFAULT_PACE_17` before any game.
- `is_playoff` (0/1): 1.0 for playoff games.

Leak rules: a game's features use only its own minutes 0-17 (`points_at_17`), its date, teams,
season and season type, and games on strictly earlier dates (playoffs and earlier seasons
included). Every date is processed as a whole: all its games read the ratings and averages as
they stood after the previous date, and only then are they updated with that date's results.
Games are processed in (game_date, game_id) order, so the values do not depend on the order of
the input rows.

A game counts as finished (and updates Elo and the margin average) when `observed_s` covers all
of regulation and the final score is not tied; a game still in progress contributes its rest
days, its pace and, when minute 23 is observed, its window change. At each team's first game of a
new season the weights of its earlier games in the exponentially weighted means are multiplied by
`SEASON_CARRY_WEIGHT`, so the new season's games dominate sooner.
"""

import numpy as np
import pyarrow as pa

from nba_ray import OUTCOME_MINUTES, PATTERN_MINUTES, REGULATION_MINUTES

CONTEXT_FEATURES: tuple[str, ...] = (
    "elo_diff",
    "ewm_margin_diff",
    "ewm_window_diff",
    "rest_days_home",
    "rest_days_away",
    "b2b_home",
    "b2b_away",
    "pace_17",
    "ewm_pace_home",
    "ewm_pace_away",
    "is_playoff",
)

# Each column's value for the same game seen with home and away swapped: (column, sign). Home
# minus away differences change sign, per-side columns trade places, whole-game ones stay.
MIRRORED_FEATURES: dict[str, tuple[str, float]] = {
    "elo_diff": ("elo_diff", -1.0),
    "ewm_margin_diff": ("ewm_margin_diff", -1.0),
    "ewm_window_diff": ("ewm_window_diff", -1.0),
    "rest_days_home": ("rest_days_away", 1.0),
    "rest_days_away": ("rest_days_home", 1.0),
    "b2b_home": ("b2b_away", 1.0),
    "b2b_away": ("b2b_home", 1.0),
    "pace_17": ("pace_17", 1.0),
    "ewm_pace_home": ("ewm_pace_away", 1.0),
    "ewm_pace_away": ("ewm_pace_home", 1.0),
    "is_playoff": ("is_playoff", 1.0),
}

REQUIRED_COLUMNS = (
    "game_id",
    "game_date",
    "season",
    "season_type",
    "home_team",
    "away_team",
    "observed_s",
    "final_home_score",
    "final_away_score",
    "points_at_17",
    "timeseries",
)

ELO_BASE = 1500.0
ELO_K = 20.0
ELO_HOME_ADVANTAGE = 100.0
ELO_PER_POINT = 28.0
# Share of a team's distance from ELO_BASE kept at its first game of a new season.
ELO_SEASON_CARRY = 0.75
MARGIN_HALF_LIFE = 10.0
WINDOW_HALF_LIFE = 20.0
PACE_HALF_LIFE = 10.0
LEAGUE_PACE_HALF_LIFE = 200.0
SEASON_CARRY_WEIGHT = 0.5
REST_CAP_DAYS = 7.0
DEFAULT_PACE_17 = 75.0

_LAST_PATTERN_MINUTE = PATTERN_MINUTES - 1
_LAST_OUTCOME_MINUTE = PATTERN_MINUTES + OUTCOME_MINUTES - 1


class _Ewm:
    """Per-team exponentially weighted mean kept as a decayed sum and a decayed weight."""

    def __init__(self, num_teams: int, half_life: float):
        self.decay = 0.5 ** (1.0 / half_life)
        self.total = np.zeros(num_teams)
        self.weight = np.zeros(num_teams)

    def mean(self, teams: np.ndarray, fallback: float) -> np.ndarray:
        weight = self.weight[teams]
        return np.where(weight > 0, self.total[teams] / np.where(weight > 0, weight, 1.0), fallback)

    def shrink(self, teams: np.ndarray, factor: float) -> None:
        self.total[teams] *= factor
        self.weight[teams] *= factor

    def update(self, teams: np.ndarray, values: np.ndarray, repeated: bool) -> None:
        """Add one observation per entry of `teams`, in array order."""
        if not repeated:
            self.total[teams] = self.decay * self.total[teams] + values
            self.weight[teams] = self.decay * self.weight[teams] + 1.0
            return
        for team, value in zip(teams.tolist(), values.tolist(), strict=True):
            self.total[team] = self.decay * self.total[team] + value
            self.weight[team] = self.decay * self.weight[team] + 1.0


def add_context_features(games: pa.Table) -> pa.Table:
    """Return `games` with the float32 columns of `CONTEXT_FEATURES` appended (see module doc).

    Columns of those names already in `games` are replaced. Raises ValueError when a required
    column is missing or a game_id appears twice.
    """
    missing = [name for name in REQUIRED_COLUMNS if name not in games.column_names]
    if missing:
        raise ValueError(
            f"games table lacks column(s) {', '.join(missing)}; build it with "
            "nba_ray.ingest.build_game_series"
        )
    values = _compute(games)
    table = games.drop_columns([name for name in CONTEXT_FEATURES if name in games.column_names])
    for name in CONTEXT_FEATURES:
        table = table.append_column(name, pa.array(values[name], type=pa.float32()))
    return table


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Return (sorted unique values, code of each row), independent of row order."""
    values = column.to_numpy(zero_copy_only=False).astype(str)
    uniques, codes = np.unique(values, return_inverse=True)
    return uniques, codes.reshape(-1)


def _compute(games: pa.Table) -> dict[str, np.ndarray]:
    num_games = games.num_rows
    if num_games == 0:
        return {name: np.zeros(0, dtype=np.float32) for name in CONTEXT_FEATURES}
    game_ids, id_codes = _codes(games["game_id"])
    if len(game_ids) != num_games:
        raise ValueError("game_id values must be unique to order games within a date")
    days = games["game_date"].cast(pa.date32()).to_numpy().astype("datetime64[D]").astype(np.int64)
    teams, team_codes = _codes(
        pa.chunked_array(
            [games["home_team"].cast(pa.string()), games["away_team"].cast(pa.string())]
        )
    )
    _, season_codes = _codes(games["season"])

    # Work in (date, game_id) order; `order[k]` is the input row of the k-th processed game.
    order = np.lexsort((id_codes, days))
    day = days[order]
    home = team_codes[:num_games][order]
    away = team_codes[num_games:][order]
    season = season_codes[order]
    final_home = games["final_home_score"].to_numpy().astype(np.float64)[order]
    final_away = games["final_away_score"].to_numpy().astype(np.float64)[order]
    margin = final_home - final_away
    finished = (
        games["observed_s"].to_numpy().astype(np.int64)[order] >= REGULATION_MINUTES * 60
    ) & (margin != 0)
    series = _series_matrix(games["timeseries"])[order]
    window = series[:, _LAST_OUTCOME_MINUTE] - series[:, _LAST_PATTERN_MINUTE]
    window_ok = np.isfinite(window)
    pace = games["points_at_17"].to_numpy(zero_copy_only=False).astype(np.float64)[order]
    pace_ok = np.isfinite(pace)
    is_playoff = games["season_type"].to_numpy(zero_copy_only=False)[order] == "playoff"

    out = {name: np.zeros(num_games) for name in CONTEXT_FEATURES}
    num_teams = len(teams)
    elo = np.full(num_teams, ELO_BASE)
    last_day = np.zeros(num_teams, dtype=np.int64)
    last_season = np.full(num_teams, -1, dtype=np.int64)
    margins = _Ewm(num_teams, MARGIN_HALF_LIFE)
    windows = _Ewm(num_teams, WINDOW_HALF_LIFE)
    paces = _Ewm(num_teams, PACE_HALF_LIFE)
    league_decay = 0.5 ** (1.0 / LEAGUE_PACE_HALF_LIFE)
    league_total = league_weight = 0.0

    starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    ends = np.r_[starts[1:], num_games]
    repeated_on_date = _dates_with_repeated_teams(day, home, away, starts)

    for lo, hi, repeated in zip(
        starts.tolist(), ends.tolist(), repeated_on_date.tolist(), strict=True
    ):
        h, a = home[lo:hi], away[lo:hi]
        # Home and away entries interleaved so each team's games stay in game_id order.
        side_teams = np.stack([h, a], axis=1).ravel()
        side_season = np.repeat(season[lo:hi], 2)
        new_season = last_season[side_teams] != side_season
        returning = side_teams[new_season & (last_season[side_teams] >= 0)]
        if len(returning):
            elo[returning] = ELO_BASE + ELO_SEASON_CARRY * (elo[returning] - ELO_BASE)
            for ewm in (margins, windows, paces):
                ewm.shrink(np.unique(returning), SEASON_CARRY_WEIGHT)

        rest = np.where(
            new_season, REST_CAP_DAYS, np.minimum(day[lo] - last_day[side_teams], REST_CAP_DAYS)
        )
        league_pace = league_total / league_weight if league_weight > 0 else DEFAULT_PACE_17
        pace_mean = paces.mean(side_teams, league_pace)
        out["elo_diff"][lo:hi] = (elo[h] - elo[a]) / ELO_PER_POINT
        out["ewm_margin_diff"][lo:hi] = margins.mean(h, 0.0) - margins.mean(a, 0.0)
        out["ewm_window_diff"][lo:hi] = windows.mean(h, 0.0) - windows.mean(a, 0.0)
        out["rest_days_home"][lo:hi] = rest[0::2]
        out["rest_days_away"][lo:hi] = rest[1::2]
        out["b2b_home"][lo:hi] = rest[0::2] == 1
        out["b2b_away"][lo:hi] = rest[1::2] == 1
        out["ewm_pace_home"][lo:hi] = pace_mean[0::2]
        out["ewm_pace_away"][lo:hi] = pace_mean[1::2]

        # Only now, with every game of the date read, fold the date's results in.
        done = finished[lo:hi]
        if done.any():
            _update_elo(elo, h[done], a[done], margin[lo:hi][done])
        side_margin = np.stack([margin[lo:hi], -margin[lo:hi]], axis=1).ravel()
        side_window = np.stack([window[lo:hi], -window[lo:hi]], axis=1).ravel()
        keep = np.repeat(done, 2)
        margins.update(side_teams[keep], side_margin[keep], repeated)
        keep = np.repeat(window_ok[lo:hi], 2)
        windows.update(side_teams[keep], side_window[keep], repeated)
        keep = np.repeat(pace_ok[lo:hi], 2)
        paces.update(side_teams[keep], np.repeat(pace[lo:hi], 2)[keep], repeated)
        date_paces = pace[lo:hi][pace_ok[lo:hi]]
        shrink = league_decay ** len(date_paces)
        league_total = shrink * league_total + float(date_paces.sum())
        league_weight = shrink * league_weight + len(date_paces)
        last_day[side_teams] = day[lo]
        last_season[side_teams] = side_season

    out["pace_17"] = pace
    out["is_playoff"] = is_playoff.astype(np.float64)
    # Back to input row order.
    result = {}
    for name, sorted_values in out.items():
        values = np.empty(num_games)
        values[order] = sorted_values
        result[name] = values.astype(np.float32)
    return result


def _series_matrix(column: pa.ChunkedArray) -> np.ndarray:
    """Return the fixed-size list column as a (games, minutes) float array, null rows as NaN."""
    array = column.combine_chunks()
    width = array.type.list_size
    # `.values` keeps the slots of null rows (unlike `flatten`), so rows stay aligned.
    flat = array.values.slice(array.offset * width, len(array) * width)
    matrix = flat.to_numpy(zero_copy_only=False).astype(np.float64).reshape(-1, width)
    if array.null_count:
        matrix[~array.is_valid().to_numpy(zero_copy_only=False)] = np.nan
    return matrix


def _dates_with_repeated_teams(day, home, away, starts) -> np.ndarray:
    """Per date group, whether some team plays more than one game on it."""
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(day)]))
    num_teams = int(max(home.max(), away.max())) + 1
    keys = np.sort(np.concatenate([group * num_teams + home, group * num_teams + away]))
    repeated = np.zeros(len(starts), dtype=bool)
    repeated[keys[1:][keys[1:] == keys[:-1]] // num_teams] = True
    return repeated


def _update_elo(elo, home, away, margin) -> None:
    """Apply the Elo changes of one date's finished games, all from the pre-date ratings."""
    edge = elo[home] + ELO_HOME_ADVANTAGE - elo[away]
    expected = 1.0 / (1.0 + 10.0 ** (-edge / 400.0))
    home_won = margin > 0
    winner_edge = np.where(home_won, edge, -edge)
    multiplier = (np.abs(margin) + 3.0) ** 0.8 / np.maximum(7.5 + 0.006 * winner_edge, 1.0)
    change = ELO_K * multiplier * (home_won - expected)
    np.add.at(elo, home, change)
    np.add.at(elo, away, -change)
