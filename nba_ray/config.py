"""Typed job configs, loaded from YAML with strict key and type checks.

Each YAML file maps onto a dataclass tree below. An unknown key, a missing required key or a
value of the wrong type raises `ConfigError` naming the file and the dotted key, before any Ray
work starts. Relative paths are resolved later against the project root the job runs in.
"""

import dataclasses
import datetime as dt
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

_EXPONENT_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")

SPLIT_NAMES = ("train", "val", "cal", "test")


class ConfigError(ValueError):
    """A config file or override is invalid."""


SEASON_TYPES = ("regular", "playoff")


def _require(condition: bool, key: str, value: object, rule: str) -> None:
    if not condition:
        raise ConfigError(f"{key} must be {rule}, got {value!r}")


@dataclasses.dataclass
class SplitFractions:
    """Share of unique game dates in each split, oldest dates first."""

    train: float = 0.606
    val: float = 0.117
    cal: float = 0.141
    test: float = 0.135


@dataclasses.dataclass
class SplitBoundaries:
    """First game date of each later split; when set, these replace the fractions."""

    val: dt.date
    cal: dt.date
    test: dt.date


@dataclasses.dataclass
class DataConfig:
    """Settings of the prepare job: which games go into the splits and where they are written."""

    timeline_path: str = "data/nba_score_timelines.parquet"
    output_dir: str = "outputs/splits"
    season_types: list[str] = dataclasses.field(default_factory=lambda: ["regular"])
    # Empty means every season in the timeline file.
    seasons: list[str] = dataclasses.field(default_factory=list)
    fractions: SplitFractions = dataclasses.field(default_factory=SplitFractions)
    boundaries: SplitBoundaries | None = None
    # Keep only this many games per split, the latest ones, for smoke runs; null keeps all.
    max_games_per_split: int | None = None

    def __post_init__(self) -> None:
        for season_type in self.season_types:
            _require(
                season_type in SEASON_TYPES,
                "season_types",
                season_type,
                f"one of {list(SEASON_TYPES)}",
            )
        if self.max_games_per_split is not None:
            _require(
                self.max_games_per_split >= 1,
                "max_games_per_split",
                self.max_games_per_split,
                "at least 1 (or null for all games)",
            )


@dataclasses.dataclass
class ModelConfig:
    """Shape of the LSTM forecaster and what it predicts."""

    hidden_size: int = 64
    num_layers: int = 2
    dropout: float = 0.1
    # "level" predicts minutes 18-23 directly; "delta" predicts their change from minute 17.
    target: Literal["level", "delta"] = "level"
    # Per-game pre-game columns fed beside the pattern; empty for the plain LSTM.
    context_features: list[str] = dataclasses.field(default_factory=list)
    # Width of the hidden layer that mixes context and LSTM state; 0 means a single Linear head.
    head_hidden_size: int = 0
    # Train on every game twice: as played and with home and away swapped (differentials and
    # home-minus-away features negated, per-side features exchanged). One more head input marks
    # the side: +1 as played, -1 swapped. Scoring always feeds +1.
    mirror_sides: bool = False


@dataclasses.dataclass
class TrainConfig:
    """Optimisation settings of the per-worker training loop."""

    learning_rate: float = 1e-3
    # Global batch size across all workers; each worker takes batch_size / num_workers.
    batch_size: int = 32
    max_epochs: int = 50
    patience_epochs: int = 5
    grad_clip_norm: float = 1.0
    loss: Literal["mse", "l1"] = "mse"
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        # 0 is allowed: it freezes the weights, which checks of the validation path rely on.
        _require(self.learning_rate >= 0, "train.learning_rate", self.learning_rate, "0 or more")
        _require(self.batch_size >= 1, "train.batch_size", self.batch_size, "at least 1")
        _require(self.max_epochs >= 1, "train.max_epochs", self.max_epochs, "at least 1")
        _require(
            self.patience_epochs >= 1, "train.patience_epochs", self.patience_epochs, "at least 1"
        )
        _require(self.grad_clip_norm > 0, "train.grad_clip_norm", self.grad_clip_norm, "positive")
        _require(self.weight_decay >= 0, "train.weight_decay", self.weight_decay, "0 or more")


@dataclasses.dataclass
class ScalingSettings:
    """Ray Train worker layout."""

    num_workers: int = 2
    use_gpu: bool = False
    # Resources one worker reserves, for example {CPU: 1} or {CPU: 4, GPU: 1}.
    resources_per_worker: dict[str, float] = dataclasses.field(default_factory=lambda: {"CPU": 1})

    def __post_init__(self) -> None:
        _require(self.num_workers >= 1, "scaling.num_workers", self.num_workers, "at least 1")


@dataclasses.dataclass
class RunSettings:
    """Name, storage location and failure handling of a training run."""

    name: str = "lstm"
    storage_path: str = "outputs/runs"
    # Worker failures Ray Train recovers from by restarting at the latest checkpoint.
    max_failures: int = 0


@dataclasses.dataclass
class ScoreSettings:
    """Ray Data batch-inference settings."""

    # Games per model call: large enough to amortise the per-batch overhead of Ray Data.
    batch_size: int = 1024
    # Number of predictor actors.
    concurrency: int = 1
    num_gpus_per_actor: float = 0.0
    num_cpus_per_actor: float = 1.0
    output_dir: str = "outputs/scores"
    bootstrap_samples: int = 2000
    # Conformal interval levels reported beside point forecasts.
    interval_levels: list[float] = dataclasses.field(default_factory=lambda: [0.8, 0.9, 0.95])

    def __post_init__(self) -> None:
        _require(self.batch_size >= 1, "score.batch_size", self.batch_size, "at least 1")
        _require(self.concurrency >= 1, "score.concurrency", self.concurrency, "at least 1")
        _require(
            self.num_gpus_per_actor >= 0,
            "score.num_gpus_per_actor",
            self.num_gpus_per_actor,
            "0 or more",
        )
        for level in self.interval_levels:
            _require(0 < level < 1, "score.interval_levels", level, "between 0 and 1")


@dataclasses.dataclass
class TrainJobConfig:
    """Everything `jobs/train.py` and `jobs/score.py` read."""

    splits_dir: str = "outputs/splits"
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    scaling: ScalingSettings = dataclasses.field(default_factory=ScalingSettings)
    run: RunSettings = dataclasses.field(default_factory=RunSettings)
    score: ScoreSettings = dataclasses.field(default_factory=ScoreSettings)

    def __post_init__(self) -> None:
        if self.train.batch_size % self.scaling.num_workers:
            raise ConfigError(
                f"train.batch_size={self.train.batch_size} is not divisible by "
                f"scaling.num_workers={self.scaling.num_workers}; the global batch is split "
                "evenly across workers, so pick a batch size that is a multiple of the workers"
            )


def load_config(path: str | Path, cls: type, overrides: list[str] | None = None) -> Any:
    """Load YAML file `path` into dataclass `cls`, then apply `key.sub=value` overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    for override in overrides or []:
        _apply_override(raw, override, path)
    try:
        return _build(cls, raw, str(path), "")
    except ConfigError as error:
        # Value checks in __post_init__ do not know the file, so it is added here.
        if str(error).startswith(str(path)):
            raise
        raise ConfigError(f"{path}: {error}") from error
    except ValueError as error:
        # __post_init__ checks raise ConfigError; this catches dataclass construction errors.
        raise ConfigError(f"{path}: {error}") from error


def config_to_dict(config: Any) -> dict[str, Any]:
    """Return a config dataclass as plain JSON-compatible data."""
    return _plain(dataclasses.asdict(config))


def config_from_dict(cls: type, data: dict[str, Any], source: str = "<dict>") -> Any:
    """Rebuild a config dataclass from `config_to_dict` output, with the same checks."""
    return _build(cls, data, source, "")


def changed_keys(found: dict, expected: dict, prefix: str = "") -> list[str]:
    """List every dotted key whose value differs between two nested config dicts.

    Each entry reads `key: found -> expected`, so an error message can show both values.
    """
    changed = []
    for key in sorted(set(found) | set(expected)):
        a, b = found.get(key), expected.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            changed.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return changed


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _apply_override(raw: dict, override: str, path: Path) -> None:
    if "=" not in override:
        raise ConfigError(f"override {override!r} must look like key.sub=value")
    dotted, text = override.split("=", 1)
    keys = dotted.strip().split(".")
    node = raw
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{path}: override {dotted!r}: {key!r} is not a section")
    node[keys[-1]] = yaml.safe_load(text)


def _build(cls: type, raw: Any, source: str, prefix: str) -> Any:
    if not isinstance(raw, dict):
        where = prefix.rstrip(".") or "the top level"
        raise ConfigError(f"{source}: {where} must be a mapping, got {raw!r}")
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        names = ", ".join(prefix + key for key in unknown)
        raise ConfigError(
            f"{source}: unknown key {names}; valid keys here are {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    values = {}
    for name, field in fields.items():
        key = prefix + name
        if name not in raw:
            no_default = (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            )
            if no_default:
                raise ConfigError(f"{source}: missing required key {key}")
            continue
        values[name] = _coerce(hints[name], raw[name], source, key)
    return cls(**values)


def _coerce(hint: Any, value: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (arg for arg in args if arg is not type(None)):
            try:
                return _coerce(option, value, source, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0])
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{source}: {key} must be one of {list(args)}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key} must be a list, got {value!r}")
        return [_coerce(args[0], item, source, f"{key}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key} must be a mapping, got {value!r}")
        return {
            _coerce(args[0], k, source, key): _coerce(args[1], v, source, f"{key}.{k}")
            for k, v in value.items()
        }
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, source, key + ".")
    return _coerce_scalar(hint, value, source, key)


def _coerce_scalar(hint: type, value: Any, source: str, key: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        # YAML 1.1 reads exponents without a dot, such as 1e-3, as strings.
        if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is dt.date:
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
    raise ConfigError(
        f"{source}: {key} must be of type {getattr(hint, '__name__', hint)}, got {value!r}"
    )
