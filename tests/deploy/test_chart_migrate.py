"""The Postgres store's schema migrations: a hook Job before install and upgrade, and a scheduler
that starts without migrating; SQLite (the default) migrates itself and gets no Job."""

from __future__ import annotations

from chart import CHART, arg, containers, of_kind, render, workload

DATABASE = {"secrets.database.existingSecret": "dp-database"}
POSTGRES_VALUES = CHART / "ci" / "postgres-values.yaml"


def test_sqlite_by_default_renders_no_migrate_job_and_the_scheduler_migrates_on_start() -> None:
    manifests = render()
    assert of_kind(manifests, "Job") == []
    (scheduler,) = (
        d for d in of_kind(manifests, "Deployment") if d["metadata"]["name"].endswith("-scheduler")
    )
    (c,) = containers(scheduler)
    assert "--no-migrate" not in c["args"]
    assert all(e["name"] != "DATAPOOL_DATABASE_URL" for e in c["env"])


def test_postgres_migrates_in_a_pre_install_and_pre_upgrade_hook_job_from_the_secret() -> None:
    manifests = render(settings={**DATABASE, "secrets.database.key": "dsn"})
    (job,) = of_kind(manifests, "Job")
    hooks = job["metadata"]["annotations"]
    assert hooks["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in hooks["helm.sh/hook-delete-policy"]
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert c["args"] == ["datapool.cli", "migrate"]
    url_ref = {"secretKeyRef": {"name": "dp-database", "key": "dsn"}}
    assert {"name": "DATAPOOL_DATABASE_URL", "valueFrom": url_ref} in c["env"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    (scheduler,) = (
        d for d in of_kind(manifests, "Deployment") if d["metadata"]["name"].endswith("-scheduler")
    )
    (s,) = containers(scheduler)
    assert "--no-migrate" in s["args"] and arg(s, "--port")
    assert {"name": "DATAPOOL_DATABASE_URL", "valueFrom": url_ref} in s["env"]


def test_the_postgres_values_file_renders_the_job_with_its_secret() -> None:
    (job,) = of_kind(render(POSTGRES_VALUES), "Job")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert c["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "datapool-database", "key": "url"}


def test_schedulers_on_postgres_are_replicas_rolled_over_without_a_volume() -> None:
    manifests = render(POSTGRES_VALUES)
    scheduler = workload(manifests, "scheduler")
    assert scheduler["spec"]["replicas"] == 2
    assert scheduler["spec"]["strategy"] == {"type": "RollingUpdate"}
    assert of_kind(manifests, "PersistentVolumeClaim") == []
    (state,) = (v for v in scheduler["spec"]["template"]["spec"]["volumes"] if v["name"] == "state")
    assert "emptyDir" in state


def test_a_scheduler_on_sqlite_stays_one_replica_recreated_on_its_volume() -> None:
    manifests = render(settings={"scheduler.replicas": 3})
    scheduler = workload(manifests, "scheduler")
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"] == {"type": "Recreate"}
    (claim,) = of_kind(manifests, "PersistentVolumeClaim")
    assert claim["metadata"]["name"].endswith("-scheduler-state")
