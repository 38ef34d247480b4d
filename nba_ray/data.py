"""Ray Data access to the prepared splits, and the model inputs built from them."""

import functools
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray.data

from nba_ray import OUTCOME_MINUTES, PATTERN_MINUTES
from nba_ray.config import ConfigError, ModelConfig
from nba_ray.features import MIRRORED_FEATURES
from nba_ray.ingest import DataError
from nba_ray.normalization import Normalization, Standardizer

logger = logging.getLogger(__name__)

# Per-game identity columns carried from the splits into every results table.
ID_COLUMNS = ("game_id", "game_date", "season", "home_team", "away_team")
ARRAY_WIDTHS = {"pattern": PATTERN_MINUTES, "outcome": OUTCOME_MINUTES}


def split_path(splits_dir: Path, name: str) -> Path:
    """Return the folder of one split."""
    return Path(splits_dir) / name


def check_split(path: Path, context_features: list[str]) -> None:
    """Raise DataError unless `path` contains Parquet files with the columns the model needs."""
    files = sorted(Path(path).glob("*.parquet")) if Path(path).is_dir() else []
    if not files:
        raise DataError(
            f"split folder {path} is missing or contains no Parquet files; run "
            "`python jobs/prepare.py --config configs/data.yaml` to create the splits"
        )
    for file in files:
        try:
            schema = pq.read_schema(file)
            rows = pq.ParquetFile(file).metadata.num_rows
        except (pa.ArrowInvalid, OSError) as error:
            raise DataError(f"{file}: not a readable Parquet file ({error})") from error
        for name, width in ARRAY_WIDTHS.items():
            _check_array_column(file, schema, name, width)
        for name in (*ID_COLUMNS, *context_features):
            if name not in schema.names:
                raise DataError(
                    f"{file}: missing column {name}; re-run the prepare job so the splits carry it"
                )
        if rows == 0:
            raise DataError(f"{file}: the split has no games; widen the data selection")


def _check_array_column(file: Path, schema: pa.Schema, name: str, width: int) -> None:
    if name not in schema.names:
        raise DataError(f"{file}: missing column {name}; re-run the prepare job")
    field_type = schema.field(name).type
    if not pa.types.is_fixed_size_list(field_type) or field_type.list_size != width:
        raise DataError(
            f"{file}: column {name} has type {field_type}, expected a fixed-size list of "
            f"{width} floats; re-run the prepare job"
        )


def read_split(path: Path, context_features: list[str] | None = None) -> ray.data.Dataset:
    """Read one checked split as a Dataset whose array columns are 2-D float32 arrays."""
    context_features = list(context_features or [])
    check_split(path, context_features)
    columns = [*ID_COLUMNS, *ARRAY_WIDTHS, *context_features]
    dataset = ray.data.read_parquet(str(path)).select_columns(columns)
    return dataset.map_batches(arrays_to_numpy, batch_format="pyarrow", batch_size=4096)


def arrays_to_numpy(batch: pa.Table) -> dict[str, np.ndarray]:
    """Convert fixed-size list columns to 2-D float32 arrays, which Ray Data keeps as tensors."""
    out: dict[str, np.ndarray] = {}
    for name in batch.column_names:
        column = batch.column(name).combine_chunks()
        if pa.types.is_fixed_size_list(column.type):
            width = column.type.list_size
            flat = column.flatten().to_numpy(zero_copy_only=False)
            out[name] = flat.astype(np.float32).reshape(-1, width)
        elif pa.types.is_date(column.type):
            out[name] = column.cast(pa.string()).to_numpy(zero_copy_only=False)
        else:
            out[name] = column.to_numpy(zero_copy_only=False)
    return out


def collect(dataset, columns: list[str]) -> dict[str, np.ndarray]:
    """Return columns of a small Dataset or dataset shard as concatenated numpy arrays."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in columns}
    for batch in dataset.iter_batches(batch_format="numpy", batch_size=4096):
        for name in columns:
            parts[name].append(batch[name])
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def target_values(pattern: np.ndarray, outcome: np.ndarray, target: str) -> np.ndarray:
    """Return what the model learns: the outcome itself, or its change from minute 17."""
    if target == "delta":
        return outcome - pattern[:, -1:]
    return outcome


def forecast_from_target(pattern: np.ndarray, predicted: np.ndarray, target: str) -> np.ndarray:
    """Turn de-normalized model output back into differentials at minutes 18-23."""
    if target == "delta":
        return predicted + pattern[:, -1:]
    return predicted


def fit_normalization(train: ray.data.Dataset, model: ModelConfig) -> Normalization:
    """Fit the z-score statistics on the training split only."""
    arrays = collect(train, ["pattern", "outcome", *model.context_features])
    context = None
    if model.context_features:
        context = Standardizer.fit(_context_matrix(arrays, model.context_features))
        for name, std in zip(model.context_features, context.std, strict=True):
            # A constant column would turn any other value at scoring time into a huge z-score.
            if std < 1e-6:
                raise DataError(
                    f"context feature {name} is constant in the training split; remove it from "
                    "model.context_features"
                )
    return Normalization(
        pattern=Standardizer.fit(arrays["pattern"]),
        target=Standardizer.fit(target_values(arrays["pattern"], arrays["outcome"], model.target)),
        context=context,
    )


def _context_matrix(batch: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    return np.stack([batch[name].astype(np.float32) for name in names], axis=1)


def build_model_inputs(
    batch: dict[str, np.ndarray],
    normalization: Normalization,
    model: ModelConfig,
    side: float = 1.0,
) -> dict[str, np.ndarray]:
    """Add normalized model inputs `x`, `context` and target `y` to a numpy batch.

    `y` is NaN where the outcome is unknown and absent when the batch has no outcome column;
    training splits never contain such games. For a `mirror_sides` model the last context
    column is `side`: 1 for games as played, -1 for copies made by `mirror_sides`.
    """
    pattern = batch["pattern"]
    out = dict(batch)
    out["x"] = normalization.pattern.transform(pattern)
    if model.context_features:
        out["context"] = normalization.context.transform(
            _context_matrix(batch, model.context_features)
        )
    else:
        out["context"] = np.zeros((len(pattern), 0), dtype=np.float32)
    if model.mirror_sides:
        sides = np.full((len(pattern), 1), side, dtype=np.float32)
        out["context"] = np.concatenate([out["context"], sides], axis=1)
    if "outcome" in batch:
        target = target_values(pattern, batch["outcome"], model.target)
        out["y"] = normalization.target.transform(target)
    return out


def mirror_plan(context_features: list[str]) -> list[tuple[str, str, float]]:
    """Return (column, source column, sign) for every context feature of a mirrored game."""
    missing = [name for name in context_features if name not in MIRRORED_FEATURES]
    if missing:
        raise ConfigError(
            f"model.mirror_sides is true but context feature(s) {', '.join(missing)} have no "
            "home/away mirror in nba_ray.features.MIRRORED_FEATURES; add one or set "
            "mirror_sides: false"
        )
    return [(name, *MIRRORED_FEATURES[name]) for name in context_features]


def mirror_sides(
    batch: dict[str, np.ndarray], context_features: list[str]
) -> dict[str, np.ndarray]:
    """Return the pattern, outcome and context columns of `batch` with home and away swapped."""
    out = {name: -batch[name] for name in ARRAY_WIDTHS if name in batch}
    for name, source, sign in mirror_plan(context_features):
        out[name] = sign * batch[source]
    return out


def training_inputs(
    batch: dict[str, np.ndarray], normalization: Normalization, model: ModelConfig
) -> dict[str, np.ndarray]:
    """Return the training columns of a batch, followed by its mirrored copy when configured."""
    columns = ["x", "context", "y", *ARRAY_WIDTHS]
    played = build_model_inputs(batch, normalization, model)
    if not model.mirror_sides:
        return {name: played[name] for name in columns}
    swapped = build_model_inputs(
        mirror_sides(batch, model.context_features), normalization, model, side=-1.0
    )
    return {name: np.concatenate([played[name], swapped[name]]) for name in columns}


def with_model_inputs(
    dataset: ray.data.Dataset,
    normalization: Normalization,
    model: ModelConfig,
    for_training: bool = False,
) -> ray.data.Dataset:
    """Apply the fitted normalization to a split with Ray Data.

    With `for_training`, only the columns the training loop reads are kept, and a
    `mirror_sides` model gets every game a second time with home and away swapped.
    """
    build = training_inputs if for_training else build_model_inputs
    transform = functools.partial(build, normalization=normalization, model=model)
    return dataset.map_batches(transform, batch_format="numpy", batch_size=4096)
