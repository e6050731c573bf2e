"""Datasource locations of each dataset: verified before they are stored, encrypted at rest.

Every location (credentials or not) is sealed when the scheduler has a key, so a
reader of the database file learns nothing, not even which kinds of store are used.
"""

from __future__ import annotations

import logging

from datapool.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from datapool.secret_key import KEY_ENV, KEY_FILE_OPTION
from datapool.storage import StoreError, StoreFull, describe_location, open_store, verify_access
from datapool.storage.nesting import (
    RESERVED_POOL_PREFIX,
    prefix_within,
    reserved_pool_location,
    resolved_root,
)
from datapool.v1 import common_pb2, scheduler_pb2
from services.common.secrets import (
    SCRUBBER,
    Scrubber,
    SecretBox,
    SecretKeyError,
    has_credentials,
    is_sealed,
)
from services.scheduler.db import MetadataDB

log = logging.getLogger(__name__)

PURPOSE_NAMES: dict[int, str] = {scheduler_pb2.INPUT: "INPUT", scheduler_pb2.LIGHTLY: "LIGHTLY"}
NO_KEY = (
    "this datasource carries credentials and the scheduler has no secret key to encrypt them "
    f"with: start it with ${KEY_ENV} (a Fernet key) or {KEY_FILE_OPTION} FILE "
    "(`datapool up` creates one in its state directory)"
)


class DatasourceCatalog:
    def __init__(self, db: MetadataDB, box: SecretBox | None, scrubber: Scrubber = SCRUBBER) -> None:
        self.db = db
        self.box = box
        self.scrubber = scrubber

    def set(self, dataset_id: str, purpose: int, location: common_pb2.StoreLocation, verify: bool) -> None:
        """INPUT_OUTPUT stores two datasources: INPUT at the location, LIGHTLY at its `.lightly/`."""
        self.db.get_dataset(dataset_id=dataset_id)
        if purpose not in (*PURPOSE_NAMES, scheduler_pb2.INPUT_OUTPUT):
            raise InvalidArgument(
                "purpose must be DatasourcePurpose.INPUT, DatasourcePurpose.LIGHTLY or "
                "DatasourcePurpose.INPUT_OUTPUT"
            )
        if location.WhichOneof("kind") is None:
            raise InvalidArgument("location: no datasource kind set (local, s3, gcs or azure)")
        if self.box is None and has_credentials(location):
            raise FailedPrecondition(NO_KEY)
        if purpose == scheduler_pb2.INPUT_OUTPUT:
            try:
                pool = reserved_pool_location(location)
            except ValueError as e:
                raise InvalidArgument(f"resource_path: {e}") from None
            sources: dict[int, common_pb2.StoreLocation] = {
                scheduler_pb2.INPUT: location,
                scheduler_pb2.LIGHTLY: pool,
            }
        else:
            self._refuse_nesting_with_the_other(dataset_id, purpose, location)
            sources = {purpose: location}
        # Registered before the first use, so that whatever an SDK puts into an
        # exception or a log line from here on is masked.
        self.scrubber.register(location)
        if verify:
            for which, where in sources.items():
                verify_datasource(where, which, self.scrubber)
        for which, where in sources.items():
            raw = where.SerializeToString()
            self.db.set_datasource(dataset_id, which, self.box.seal(raw) if self.box is not None else raw)

    def _refuse_nesting_with_the_other(
        self, dataset_id: str, purpose: int, location: common_pb2.StoreLocation
    ) -> None:
        other = scheduler_pb2.LIGHTLY if purpose == scheduler_pb2.INPUT else scheduler_pb2.INPUT
        try:
            other_location = self.get(dataset_id, other)
        except FailedPrecondition:
            other_location = None  # sealed under another key: setting this one must still work
        if other_location is not None:
            if purpose == scheduler_pb2.INPUT:
                refuse_pool_in_input(location, other_location)
            else:
                refuse_pool_in_input(other_location, location)

    def get(self, dataset_id: str, purpose: int) -> common_pb2.StoreLocation | None:
        raw = self.db.get_datasource(dataset_id, purpose)
        if raw is None:
            return None
        name = PURPOSE_NAMES.get(purpose, str(purpose))
        if is_sealed(raw):
            if self.box is None:
                raise FailedPrecondition(
                    f"the {name} datasource of dataset {self._dataset_name(dataset_id)} is encrypted and the "
                    f"scheduler has no secret key: start it with ${KEY_ENV} or {KEY_FILE_OPTION} FILE "
                    "set to the key it was stored with"
                )
            try:
                raw = self.box.open(raw)
            except SecretKeyError:
                raise FailedPrecondition(
                    f"wrong secret key: the {name} datasource of dataset {self._dataset_name(dataset_id)} "
                    "cannot be decrypted with the scheduler's key; start the scheduler with the key it was "
                    "stored with, or set the datasource again"
                ) from None
        location = common_pb2.StoreLocation.FromString(raw)
        self.scrubber.register(location)
        return location

    def require(self, dataset_id: str, purpose: int) -> common_pb2.StoreLocation:
        location = self.get(dataset_id, purpose)
        if location is None:
            name = PURPOSE_NAMES.get(purpose, str(purpose))
            raise FailedPrecondition(
                f"dataset {self._dataset_name(dataset_id)} has no {name} datasource; set it with "
                f"set_local_config / set_s3_config / set_gcs_config / set_azure_config(..., "
                f"purpose=DatasourcePurpose.{name})"
            )
        return location

    def _dataset_name(self, dataset_id: str) -> str:
        try:
            return f"{self.db.get_dataset(dataset_id=dataset_id).name!r} ({dataset_id})"
        except Exception:
            return dataset_id


def refuse_pool_in_input(inp: common_pb2.StoreLocation, pool: common_pb2.StoreLocation) -> None:
    """InvalidArgument naming both locations when the pool is the input or lies inside it,
    except at the input's reserved `.lightly/` prefix (where INPUT_OUTPUT puts it)."""
    nested = prefix_within(inp, pool)
    if nested is None or nested == RESERVED_POOL_PREFIX:
        return  # the reserved prefix is never listed as input (services/scheduler/run/listing.py)
    where = "is the same location as" if nested == "" else f"lies inside (at {nested!r})"
    raise InvalidArgument(
        f"resource_path: the LIGHTLY datasource {_described(pool)} {where} the INPUT datasource "
        f"{_described(inp)}; every run would take the pool's own frames as new input. "
        f"Choose a pool location outside the input, or the input's {RESERVED_POOL_PREFIX!r} prefix "
        "(where purpose INPUT_OUTPUT puts it)"
    )


def _described(location: common_pb2.StoreLocation) -> str:
    text = describe_location(location)
    if location.WhichOneof("kind") == "local" and str(resolved_root(location)) != location.local.root:
        text += f" (resolves to {resolved_root(location)})"
    return text


def verify_datasource(
    location: common_pb2.StoreLocation, purpose: int, scrubber: Scrubber = SCRUBBER
) -> None:
    """INPUT must be listable and readable; LIGHTLY also writable and deletable.

    Raises InvalidArgument for a location that cannot name a store, ResourceExhausted when
    the pool has no space for the probe, FailedPrecondition naming the missing permission
    and the path otherwise; never with a credential in it.
    """
    writable = purpose == scheduler_pb2.LIGHTLY
    try:
        store = open_store(location)
    except StoreError as e:
        raise InvalidArgument(f"resource_path: {scrubber.scrub(str(e), location)}") from None
    except Exception as e:
        # An SDK may refuse a malformed credential at client creation.
        raise InvalidArgument(
            f"resource_path: cannot open {describe_location(location)}: "
            f"{scrubber.scrub(f'{type(e).__name__}: {e}', location)}"
        ) from None
    try:
        verify_access(store, writable)
    except StoreFull as e:
        # Not a permission to fix: the check's probe object found no space.
        raise ResourceExhausted(scrubber.scrub(str(e), location)) from None
    except (StoreError, OSError) as e:
        raise FailedPrecondition(scrubber.scrub(str(e), location)) from None
    except Exception as e:
        raise FailedPrecondition(
            f"cannot verify access to {store.describe()}: "
            f"{scrubber.scrub(f'{type(e).__name__}: {e}', location)}"
        ) from None
