"""Object stores behind a datasource: one small interface, one adapter per backend.

The cloud adapters (S3Store, GcsStore, AzureStore) live in their own modules and are imported
by open_store only when a location needs them, so that local use never loads a cloud SDK.
"""

from datapool.storage.base import (
    BucketNotFound,
    ForwardingStore,
    InvalidObjectKey,
    ObjectExists,
    ObjectInfo,
    ObjectNotFound,
    Store,
    StoreAccessDenied,
    StoreAuthError,
    StoreError,
    StoreFull,
    StoreNotFoundError,
    StoreUnavailable,
)
from datapool.storage.local import LocalStore
from datapool.storage.locations import (
    InvalidLocation,
    azure_location,
    describe_location,
    gcs_location,
    local_location,
    open_store,
    parse_bucket_path,
    parse_container_path,
    s3_location,
)
from datapool.storage.verify import verify_access

__all__ = [
    "BucketNotFound",
    "ForwardingStore",
    "InvalidLocation",
    "InvalidObjectKey",
    "LocalStore",
    "ObjectExists",
    "ObjectInfo",
    "ObjectNotFound",
    "Store",
    "StoreAccessDenied",
    "StoreAuthError",
    "StoreError",
    "StoreFull",
    "StoreNotFoundError",
    "StoreUnavailable",
    "azure_location",
    "describe_location",
    "gcs_location",
    "local_location",
    "open_store",
    "parse_bucket_path",
    "parse_container_path",
    "s3_location",
    "verify_access",
]
