import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from nba_ray.ingest import DataError, SkippedGame, read_timeline
from nba_ray.raw_pbp import SkipGame, read_playbyplay_folder, repair_clock

ROOT = Path(__file__).parents[1]
DATA = ROOT / "data"
SAMPLES = DATA / "raw_samples" / "legacy_pbp"
GAME_IDS = ["0021300001", "0021600219", "0021900001"]


@pytest.fixture(scope="module")
def shipped():
    table = pq.read_table(DATA / "nba_score_timelines.parquet")
    return table.filter(pc.is_in(table["game_id"], pc.cast(GAME_IDS, table["game_id"].type)))


@pytest.fixture(scope="module")
def samples():
    return read_playbyplay_folder(SAMPLES)


def game_rows(table, game_id):
    return table.filter(pc.equal(table["game_id"], game_id))


def copy_game(folder: Path, raw_id: str, edit=None) -> None:
    """Copy one sample game into `folder`, passing its CSV through `edit(frame)` if given."""
    (folder / "gameplaybyplay").mkdir(parents=True, exist_ok=True)
    (folder / "game_info").mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLES / "game_info" / f"{raw_id}.json", folder / "game_info")
    source = SAMPLES / "gameplaybyplay" / f"{raw_id}.csv"
    if edit is None:
        shutil.copy(source, folder / "gameplaybyplay")
        return
    frame = edit(pd.read_csv(source, dtype=str, keep_default_na=False))
    frame.to_csv(folder / "gameplaybyplay" / f"{raw_id}.csv", index=False)


def scoring_rows(frame):
    return frame.index[frame["EVENTMSGTYPE"].isin(["1", "3"]) & (frame["SCORE"] != "")]


def move_to_period_2(frame):
    """The first made shot of period 3 claims period 2: out of order by a whole period."""
    rows = scoring_rows(frame)
    frame.loc[rows[frame.loc[rows, "PERIOD"] == "3"][0], "PERIOD"] = "2"
    return frame


def swap_clocks(count):
    """Swap the clocks of `count` pairs of consecutive scores, each pair in its own period."""

    def edit(frame):
        rows = scoring_rows(frame)
        for period in ["1", "2", "3", "4"][:count]:
            in_period = [r for r in rows if frame.loc[r, "PERIOD"] == period]
            first, second = next(
                (a, b)
                for a, b in zip(in_period[5:], in_period[6:], strict=False)
                if frame.loc[a, "PCTIMESTRING"] != frame.loc[b, "PCTIMESTRING"]
            )
            clocks = frame.loc[[first, second], "PCTIMESTRING"].to_list()
            frame.loc[[first, second], "PCTIMESTRING"] = clocks[::-1]
        return frame

    return edit


def spurious_overtime(frame):
    """A period-5 start row in a game that ended 97-87 in regulation."""
    extra = {name: "" for name in frame.columns}
    extra.update(GAME_ID="0021300001", EVENTNUM="999", EVENTMSGTYPE="12", PERIOD="5",
                 PCTIMESTRING="5:00")  # fmt: skip
    return pd.concat([frame, pd.DataFrame([extra])], ignore_index=True)


def test_output_schema_equals_the_shipped_parquet(samples, shipped):
    table, skipped = samples
    assert skipped == []
    assert table.schema.equals(shipped.schema)
    assert table.equals(shipped)  # every row, every column, in the shipped order


@pytest.mark.parametrize("game_id", GAME_IDS)
def test_each_sample_game_equals_its_shipped_rows(samples, shipped, game_id):
    ours, theirs = game_rows(samples[0], game_id), game_rows(shipped, game_id)
    assert ours.num_rows == theirs.num_rows > 0
    assert ours.to_pylist() == theirs.to_pylist()
    assert ours.equals(theirs)


def test_out_of_order_free_throw_takes_the_later_time(samples):
    game = game_rows(samples[0], "0021600219").to_pandas()
    raw = pd.read_csv(SAMPLES / "gameplaybyplay" / "21600219.csv", dtype=str)
    technical = raw.loc[raw["EVENTNUM"] == "343", ["PERIOD", "PCTIMESTRING", "SCORE"]]
    # Q3 3:52 is 1928 s, but the two free throws before it in scoring order are at 1944 s.
    assert technical.values.tolist() == [["3", "3:52", "78 - 65"]]
    rows = game[(game["away_score"] == 78) & game["home_score"].isin([63, 64, 65])]
    assert rows["home_score"].tolist() == [63, 64, 65]
    assert rows["elapsed_s"].tolist() == [1944, 1944, 1944]
    assert (np.diff(game["elapsed_s"]) >= 0).all()


def test_overtime_game_ends_inside_the_first_overtime(samples):
    game = game_rows(samples[0], "0021900001").to_pandas()
    last = game.iloc[-1]
    assert (last["elapsed_s"], last["home_score"], last["away_score"]) == (3124, 130, 122)
    assert (last["home_team"], last["away_team"]) == ("TOR", "NOP")  # the JSON scores are swapped
    regulation = game[game["elapsed_s"] <= 2880].iloc[-1]
    assert regulation["home_score"] == regulation["away_score"] == 117


def test_unchanged_copy_reads_the_same(tmp_path, shipped):
    copy_game(tmp_path, "21600219", edit=lambda frame: frame)
    table, skipped = read_playbyplay_folder(tmp_path)
    assert skipped == []
    assert table.equals(game_rows(shipped, "0021600219"))


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (move_to_period_2, "out of order by more than 120 s"),
        (swap_clocks(4), "4 scoring events had an out-of-order clock, more than 3"),
        (spurious_overtime, "score at 48:00 is not tied"),
        (lambda frame: frame.drop(columns=["SCORE"]), "missing column(s) SCORE"),
        (lambda frame: frame.iloc[:0, :2], "missing column(s) EVENTMSGTYPE"),
    ],
    ids=["wrong-period", "four-out-of-order", "spurious-overtime", "no-score-column", "no-rows"],
)
def test_broken_game_is_skipped_with_a_reason(tmp_path, shipped, caplog, edit, reason):
    copy_game(tmp_path, "21900001")
    copy_game(tmp_path, "21300001", edit=edit)
    with caplog.at_level(logging.WARNING, logger="nba_ray.raw_pbp"):
        table, skipped = read_playbyplay_folder(tmp_path)
    assert [item.game_id for item in skipped] == ["0021300001"]
    assert reason in skipped[0].reason
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "0021300001" in warnings[0].getMessage()
    assert reason in warnings[0].getMessage()
    assert table.equals(game_rows(shipped, "0021900001"))


def test_three_out_of_order_clocks_are_repaired(tmp_path, shipped):
    copy_game(tmp_path, "21300001", edit=swap_clocks(3))
    table, skipped = read_playbyplay_folder(tmp_path)
    assert skipped == []
    expected = game_rows(shipped, "0021300001")
    assert table["home_score"].equals(expected["home_score"])
    assert table["away_score"].equals(expected["away_score"])
    assert (np.diff(table["elapsed_s"].to_numpy()) >= 0).all()
    assert (table["elapsed_s"].to_numpy() != expected["elapsed_s"].to_numpy()).sum() == 3


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00garbage\n\x93"], ids=["empty", "binary"])
def test_unreadable_csv_and_missing_json_are_counted(tmp_path, content):
    copy_game(tmp_path, "21300001")
    copy_game(tmp_path, "21600219")
    copy_game(tmp_path, "21900001")
    (tmp_path / "gameplaybyplay" / "21300001.csv").write_bytes(content)
    (tmp_path / "game_info" / "21600219.json").unlink()
    table, skipped = read_playbyplay_folder(tmp_path)
    assert table["game_id"].unique().to_pylist() == ["0021900001"]
    assert [item.game_id for item in skipped] == ["0021300001", "0021600219"]
    assert "unreadable CSV" in skipped[0].reason
    assert "missing JSON date" in skipped[1].reason and "21600219.json" in skipped[1].reason
    assert all(isinstance(item, SkippedGame) for item in skipped)


def test_missing_folder_raises_with_the_path(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(DataError, match=str(missing)):
        read_playbyplay_folder(missing)


def test_folder_without_csv_files_raises(tmp_path):
    (tmp_path / "gameplaybyplay").mkdir()
    with pytest.raises(DataError, match="no play-by-play CSV files"):
        read_playbyplay_folder(tmp_path)


@pytest.mark.parametrize(
    ("times", "repaired"),
    [
        ([1944, 1944, 1928, 1946], [1944, 1944, 1944, 1946]),
        ([10, 50, 20, 60], [10, 50, 50, 60]),  # moving 20 s by 30 beats moving 50 s by 40
        ([30, 10, 20], [0, 10, 20]),  # before the first kept event, the time is tip-off
        ([5, 6, 7], [5, 6, 7]),
    ],
)
def test_repair_clock(times, repaired):
    assert repair_clock(np.array(times)).tolist() == repaired


def test_repair_clock_refuses_large_or_many_moves():
    with pytest.raises(SkipGame, match="more than 120 s"):
        repair_clock(np.array([10, 900, 20, 30]))
    with pytest.raises(SkipGame, match="4 scoring events"):
        repair_clock(np.array([20, 10, 40, 30, 60, 50, 80, 70]))


def run_job(*args):
    return subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "ingest_raw.py"), *map(str, args)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip


def test_job_writes_a_readable_timeline(tmp_path, shipped):
    output = tmp_path / "out" / "timelines.parquet"
    result = run_job("--input", SAMPLES, "--output", output)
    assert result.returncode == 0, result.stdout + result.stderr
    assert read_timeline(output).equals(shipped)
    assert "read 3 games" in result.stdout and "skipped 0" in result.stdout
    assert [p.name for p in output.parent.iterdir()] == ["timelines.parquet"]  # no temp file left


def test_job_counts_skipped_games_and_fails_on_a_missing_folder(tmp_path):
    copy_game(tmp_path / "in", "21900001")
    copy_game(tmp_path / "in", "21300001", edit=move_to_period_2)
    result = run_job("--input", tmp_path / "in", "--output", tmp_path / "t.parquet")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" in result.stdout and "skipped 1" in result.stdout
    assert read_timeline(tmp_path / "t.parquet")["game_id"].unique().to_pylist() == ["0021900001"]

    missing = tmp_path / "missing"
    result = run_job("--input", missing, "--output", tmp_path / "u.parquet")
    assert result.returncode != 0
    assert str(missing) in result.stdout + result.stderr
    assert not (tmp_path / "u.parquet").exists()
