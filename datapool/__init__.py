"""datapool: grow a training dataset of the most diverse frames from raw video."""

from datapool.client import ApiWorkflowClient
from datapool.client_models import (
    ApiError,
    ComputeWorkerRun,
    ComputeWorkerRunInfo,
    DatasetType,
    DatasourcePurpose,
    RunState,
    TagData,
)

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "ApiWorkflowClient",
    "ComputeWorkerRun",
    "ComputeWorkerRunInfo",
    "DatasetType",
    "DatasourcePurpose",
    "RunState",
    "TagData",
    "__version__",
]
