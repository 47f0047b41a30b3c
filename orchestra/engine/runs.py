"""Named MLflow runs: `with orch.run("arm"):` groups requests under one run."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from orchestra.tracking.params import settings_params
from orchestra.tracking.tags import KIND_TAG
from orchestra.tracking.tracker import RunHandle

if TYPE_CHECKING:
    from orchestra.engine.orchestrator import Orchestra

CURRENT_RUN: ContextVar[RunHandle | None] = ContextVar("orchestra_current_run", default=None)


class RunScope:
    """`with orch.run("arm"):` or `async with orch.run("arm") as run:`; ends the run on exit."""

    def __init__(
        self,
        orch: Orchestra,
        name: str,
        params: dict[str, Any] | None,
        tags: dict[str, str] | None,
        parent: RunHandle | None = None,
    ):
        self.orch = orch
        self.parent = parent
        self.name = name
        self.params = {**settings_params(orch.settings), **(params or {})}
        self.tags = {KIND_TAG: "run", **(tags or {})}
        self.handle: RunHandle | None = None
        self.metrics: dict[str, float] = {}
        self._token: Any = None

    def log_metrics(self, metrics: dict[str, float]) -> None:
        """Metrics to log with the run's aggregates when it ends."""
        self.metrics.update(metrics)

    def _parent(self) -> RunHandle | None:
        return self.parent if self.parent is not None else CURRENT_RUN.get()

    def __enter__(self) -> RunScope:
        self.handle = self.orch.tracker.start_run(self.name, self.params, self.tags, parent=self._parent())
        self._token = CURRENT_RUN.set(self.handle)
        return self

    async def __aenter__(self) -> RunScope:
        await self.orch.start()
        self.handle = await self.orch.tracker.astart_run(
            self.name, self.params, self.tags, parent=self._parent()
        )
        self._token = CURRENT_RUN.set(self.handle)
        return self

    def __exit__(self, exc_type: type | None, *rest: object) -> None:
        CURRENT_RUN.reset(self._token)
        assert self.handle is not None
        self.orch.tracker.end_run(self.handle, "FAILED" if exc_type else "FINISHED", self.metrics)

    async def __aexit__(self, exc_type: type | None, *rest: object) -> None:
        self.__exit__(exc_type)

    @property
    def run_id(self) -> str | None:
        return None if self.handle is None else self.orch.tracker.run_id(self.handle)
