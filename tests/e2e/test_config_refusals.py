"""Out-of-bounds configs sent as raw JSON to a real scheduler come back INVALID_ARGUMENT naming
the key, never UNKNOWN and never a gRPC trailer-size error."""

from __future__ import annotations

import grpc
import pytest
from e2e_support import RunningStack

from datapool import ApiWorkflowClient, DatasetType
from datapool.channels import make_channel
from datapool.v1 import scheduler_pb2, scheduler_pb2_grpc

STRATEGIES = '"strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}]'


@pytest.mark.parametrize(
    ("worker", "selection", "needle"),
    [
        (
            "{}",
            "{" + STRATEGIES + ', "n_samples": ' + "7" * 5000 + "}",
            "selection_config.n_samples: a 5000-digit",
        ),
        ("{}", "{" + STRATEGIES + ', "n_samples": 1180591620717411303424}', "selection_config.n_samples"),
        ('{"frame_sampling": {"target_fps": 1e-300}}', "{" + STRATEGIES + ', "n_samples": 1}', "target_fps"),
        ("{}", "[" * 100_000 + "]" * 100_000, "selection_config: 200000 bytes of JSON, over the limit"),
        ('{"model_backend": "' + "x" * 100_000 + '"}', "{}", "worker_config: 100021 bytes of JSON"),
        (
            '{"model_backend": "' + "x" * 20_000 + '"}',
            "{" + STRATEGIES + ', "n_samples": 1}',
            "model_backend",
        ),
    ],
    ids=["5000-digits", "2**70", "fps-1e-300", "deep", "huge", "long-string"],
)
def test_schedule_run_refuses_an_out_of_bounds_config_naming_the_key(
    stack: RunningStack, worker: str, selection: str, needle: str
) -> None:
    client = ApiWorkflowClient(token=stack.token, address=stack.address)
    client.create_dataset(dataset_name=f"bounds-{abs(hash(needle))}", dataset_type=DatasetType.VIDEOS)
    request = scheduler_pb2.ScheduleRunRequest(
        dataset_id=client.dataset_id, worker_config_json=worker, selection_config_json=selection
    )
    with make_channel(stack.address) as channel, pytest.raises(grpc.RpcError) as refused:
        scheduler_pb2_grpc.SchedulerStub(channel).ScheduleRun(
            request, timeout=30, metadata=(("authorization", f"Bearer {stack.token}"),)
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value
    assert needle in (refused.value.details() or "")
