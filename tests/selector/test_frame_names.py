"""Frame names follow the run's output_image_format: a jpg run's picks and the frames its
commit puts in the manifest are named `.jpg`, like the files the scheduler renders."""

from __future__ import annotations

import dataclasses

import pytest
from selector_helpers import clustered_unit_vectors, file_ref, rendered_picks, select, spec

from datapool.errors import InvalidArgument
from datapool.pool.repository import PoolRepository
from services.selector.service import SelectorService
from services.selector.session import Committed


def test_a_jpg_selection_names_its_picks_and_pooled_frames_jpg(
    service: SelectorService, repo: PoolRepository
) -> None:
    files = {file_ref("cam.mp4"): clustered_unit_vectors(seed=3, clusters=4, per_cluster=3)}
    session = select(service, repo, dataclasses.replace(spec("j", n_samples=3), image_format="jpg"), files)
    assert [p.frame_name for p in session.picks] and all(
        p.frame_name.endswith("-mp4.jpg") for p in session.picks
    )
    assert isinstance(service.commit("j", "jpg-tag", rendered_picks(session)), Committed)
    frames = repo.load_state(repo.newest_manifest()).frames
    assert sorted(f.frame_name for f in frames) == sorted(p.frame_name for p in session.picks)
    assert all(f.key == f"frames/run-j/{f.frame_name}" for f in frames)


def test_a_png_selection_keeps_png_names(service: SelectorService, repo: PoolRepository) -> None:
    files = {file_ref("cam.mp4"): clustered_unit_vectors(seed=3, clusters=4, per_cluster=3)}
    session = select(service, repo, spec("p", n_samples=3), files)
    assert all(p.frame_name.endswith("-mp4.png") for p in session.picks)


def test_an_unknown_image_format_is_refused_naming_the_field(
    service: SelectorService, repo: PoolRepository
) -> None:
    with pytest.raises(InvalidArgument, match=r"spec\.image_format .*'gif'"):
        service.open_select(dataclasses.replace(spec("g", n_samples=1), image_format="gif"), repo)
