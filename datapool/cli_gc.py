"""`datapool gc`: delete the pool objects no manifest references, in any kind of datasource."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from datapool.v1 import common_pb2


def pool_location(url: str, args: argparse.Namespace) -> common_pb2.StoreLocation:
    """A pool given as a path or URL, with credentials from options or the standard environment."""
    from datapool.storage import locations

    scheme, sep, rest = url.partition("://")
    if not sep:
        return locations.local_location(str(Path(url).absolute()))
    endpoint = args.endpoint_url or ""
    if scheme == "s3":
        bucket, prefix = locations.parse_bucket_path(url, "s3")
        # Without --role-arn or keys in the environment, the store uses boto3's own chain.
        keyed = not args.role_arn and os.environ.get("AWS_ACCESS_KEY_ID")
        return locations.s3_location(
            bucket,
            prefix,
            region=args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", ""),
            endpoint_url=endpoint or os.environ.get("AWS_ENDPOINT_URL_S3", ""),
            access_key_id=os.environ["AWS_ACCESS_KEY_ID"] if keyed else "",
            secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "") if keyed else "",
            role_arn=args.role_arn or "",
            external_id=args.external_id or "",
        )
    if scheme == "gs":
        bucket, prefix = locations.parse_bucket_path(url, "gs")
        credentials = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        return locations.gcs_location(
            bucket,
            prefix,
            project_id=args.project or os.environ.get("GOOGLE_CLOUD_PROJECT", ""),
            credentials_json=Path(credentials).read_text() if credentials else "",
            endpoint_url=endpoint or os.environ.get("STORAGE_EMULATOR_HOST", ""),
        )
    if scheme == "azure":
        account, _, container_path = rest.partition("/")
        container, prefix = locations.parse_container_path(container_path)
        return locations.azure_location(
            account,
            container,
            prefix,
            sas_token=args.sas_token or os.environ.get("AZURE_STORAGE_SAS_TOKEN", ""),
            endpoint_url=endpoint,
        )
    raise ValueError(f"--pool {url!r}: use a local path, s3://BUCKET/PREFIX, gs://... or azure://ACCOUNT/...")


def cmd_gc(args: argparse.Namespace) -> int:
    from datapool.errors import DatapoolError
    from datapool.pool.gc import collect_garbage
    from datapool.storage import StoreError, describe_location, open_store

    try:
        location = pool_location(args.pool, args)
        store = open_store(location)
        report = collect_garbage(store, min_age_s=args.min_age, dry_run=args.dry_run)
    except (ValueError, OSError, StoreError, DatapoolError) as e:
        print(f"datapool gc: {e}", file=sys.stderr)
        return 1
    verb = "would delete" if args.dry_run else "deleted"
    for obj in report.deleted:
        print(f"{verb} {obj.key} ({obj.size} bytes, {obj.age_s or 0:.0f}s old)")
    print(
        f"gc of {describe_location(location)}: {verb} {len(report.deleted)} orphaned object(s) "
        f"({report.deleted_bytes} bytes); {len(report.kept_young)} orphan(s) kept, younger than "
        f"{args.min_age:g}s or of unknown age; {report.manifests} manifest(s), "
        f"{report.referenced_data} data object(s) and {report.referenced_frames} frame(s) referenced"
    )
    return 0


def add_gc_args(gc: argparse.ArgumentParser) -> None:
    gc.add_argument(
        "--pool",
        required=True,
        help="PATH, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or azure://ACCOUNT/CONTAINER/PREFIX",
    )
    gc.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete nothing")
    gc.add_argument(
        "--min-age",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="only delete orphans at least this old, so in-flight commits keep theirs (default %(default)g)",
    )
    gc.add_argument("--endpoint-url", help="S3, GCS or Azure endpoint (emulators, S3-compatible stores)")
    gc.add_argument("--region", help="S3 region (default: $AWS_REGION)")
    gc.add_argument("--role-arn", help="S3: assume this role with the standard AWS credential chain")
    gc.add_argument("--external-id", help="S3: external id for --role-arn")
    gc.add_argument("--project", help="GCS project (default: $GOOGLE_CLOUD_PROJECT)")
    gc.add_argument("--sas-token", help="Azure SAS token (default: $AZURE_STORAGE_SAS_TOKEN)")
