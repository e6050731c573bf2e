"""Reading back a dataset's datasource (Lightly's `get_datasource`): which location serves which
purpose, with every credential masked. An INPUT_OUTPUT datasource is stored as two (the input, and
the pool at its `.lightly/` prefix), so it is recognised by that shape, not remembered."""

from __future__ import annotations

from datapool.errors import InvalidArgument, NotFound
from datapool.storage.nesting import reserved_pool_location
from datapool.v1 import common_pb2, scheduler_pb2
from services.common.secrets import redacted
from services.scheduler.datasources import PURPOSE_NAMES, DatasourceCatalog

INPUT, LIGHTLY, INPUT_OUTPUT = scheduler_pb2.INPUT, scheduler_pb2.LIGHTLY, scheduler_pb2.INPUT_OUTPUT


def _is_input_output(inp: common_pb2.StoreLocation | None, pool: common_pb2.StoreLocation | None) -> bool:
    if inp is None or pool is None:
        return False
    try:
        return reserved_pool_location(inp) == pool
    except ValueError:
        return False  # a prefix set with bypass_verify that names no objects


def read_back(catalog: DatasourceCatalog, dataset_id: str, purpose: int) -> scheduler_pb2.Datasource:
    """NotFound naming the dataset and purpose when nothing of that purpose is set."""
    catalog.db.get_dataset(dataset_id=dataset_id)
    inp, pool = catalog.get(dataset_id, INPUT), catalog.get(dataset_id, LIGHTLY)
    combined = _is_input_output(inp, pool)
    if purpose == scheduler_pb2.DATASOURCE_PURPOSE_UNSPECIFIED:
        purpose = INPUT_OUTPUT if combined else INPUT
    if purpose == INPUT_OUTPUT:
        if not combined:
            raise NotFound(
                f"dataset {dataset_id} has no INPUT_OUTPUT datasource (its LIGHTLY datasource is not the "
                "`.lightly/` prefix of its INPUT one); ask for purpose INPUT or LIGHTLY"
            )
        location = inp
    elif purpose in PURPOSE_NAMES:
        location = inp if purpose == INPUT else pool
    else:
        raise InvalidArgument("purpose must be INPUT, LIGHTLY or INPUT_OUTPUT")
    if location is None:
        raise NotFound(f"dataset {dataset_id} has no {PURPOSE_NAMES[purpose]} datasource")
    return scheduler_pb2.Datasource(
        dataset_id=dataset_id,
        purpose=purpose,  # type: ignore[arg-type]
        location=redacted(location),
    )
