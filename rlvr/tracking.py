"""The one metrics sink: ``metrics.jsonl`` in the run directory, mirrored to Weights & Biases.

Every record is ``{"step": k, **metrics}``. On resume from the checkpoint taken after step k, the
records of steps > k (written by the interrupted run after that checkpoint) are dropped, so the
file of a resumed run reads like the file of an uninterrupted one.

W&B mode ``auto``: ``WANDB_MODE`` if set, else online when an API key is configured
(``WANDB_API_KEY`` or a netrc entry for api.wandb.ai), else offline (no login, no network).
"""

from __future__ import annotations

import json
import logging
import netrc
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rlvr.config import LoggerConfig

log = logging.getLogger(__name__)


def resolve_wandb_mode(mode: str) -> str:
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        if netrc.netrc().authenticators("api.wandb.ai"):
            return "online"
    except (OSError, netrc.NetrcParseError):
        pass
    return "offline"


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"algorithm": {"beta_pos": 0.9}}`` -> ``{"algorithm.beta_pos": 0.9}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def truncate_jsonl(path: Path, last_step: int) -> None:
    """Keep only the records of ``path`` with ``step <= last_step``, through a temporary file
    and an atomic rename (a kill mid-way leaves the old file whole). A partial last line (a
    write cut by a kill or a full disk) is dropped with a warning; a broken line before the
    last is an error naming the file and line.

    Raises:
        ValueError: a line other than the last is not a JSON record.
    """
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    kept = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number < len(lines):
                raise ValueError(f"{path}:{number}: not a JSON record; the file is damaged "
                                 f"(resume=never moves the run aside and starts over)") from None
            log.warning("%s:%d: dropped a partial last line (%d characters)", path, number,
                        len(line))
            continue
        if record["step"] <= last_step:
            kept.append(line)
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with staging.open("w", encoding="utf-8") as f:
        f.write("".join(f"{line}\n" for line in kept))
        f.flush()
        os.fsync(f.fileno())
    os.replace(staging, path)


class MetricsSink:
    """Writes metrics, sample tables and the run summary to the run directory and to W&B."""

    def __init__(self, run_dir: Path, cfg: LoggerConfig, config: dict[str, Any], *,
                 name: str, group: str, tags: list[str], resume_step: int = 0,
                 wandb_id: str | None = None, enabled: bool = True) -> None:
        """``enabled=False`` (data-parallel ranks other than 0) writes nothing."""
        self.enabled = enabled
        self.run_dir = run_dir
        self._wandb = None
        self.wandb_id = wandb_id
        if not enabled:
            return
        self.metrics_path = run_dir / "metrics.jsonl"
        self.samples_path = run_dir / "samples.jsonl"
        run_dir.mkdir(parents=True, exist_ok=True)
        for path in (self.metrics_path, self.samples_path):
            if resume_step:
                truncate_jsonl(path, resume_step)
            else:
                path.unlink(missing_ok=True)
        mode = resolve_wandb_mode(cfg.wandb_mode)
        if mode != "disabled":
            if not cfg.verbose:  # W&B's banners and run summaries stay off the console
                os.environ.setdefault("WANDB_SILENT", "true")
            import wandb

            self._wandb = wandb.init(
                project=cfg.project, entity=cfg.entity, group=cfg.group or group,
                job_type=cfg.job_type, tags=[*tags, *cfg.tags], name=name,
                config=flatten(config), dir=str(run_dir), mode=mode, id=wandb_id,
                resume="allow" if wandb_id else None,
            )
        self.wandb_id = self._wandb.id if self._wandb is not None else None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        record = {"step": step, **metrics}
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self._wandb is not None:
            self._wandb.log(metrics, step=step)

    def log_samples(self, step: int, columns: list[str], rows: Iterable[list[Any]]) -> None:
        """A table of sample rollouts: one jsonl record per row, one W&B table per call."""
        if not self.enabled:
            return
        rows = list(rows)
        with self.samples_path.open("a") as f:
            for row in rows:
                f.write(json.dumps({"step": step, **dict(zip(columns, row, strict=True))}) + "\n")
        if self._wandb is not None:
            import wandb

            self._wandb.log({"samples": wandb.Table(columns=columns, data=rows)}, step=step)

    def summary(self, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        (self.run_dir / "summary.json").write_text(json.dumps(values, indent=2, sort_keys=True))
        if self._wandb is not None:
            self._wandb.summary.update(values)

    def finish(self) -> None:
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None
