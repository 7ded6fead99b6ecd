"""Detecting a changed configuration or secret file, as plain files and as ConfigMap volumes."""

from __future__ import annotations

import os
from pathlib import Path

from pingmon.watch import FileWatch
from tests.configmap import ConfigMapDir


def test_a_configmap_symlink_swap_with_new_contents_is_a_change(tmp_path: Path) -> None:
    volume = ConfigMapDir(tmp_path / "config", {"pingmon.yaml": "a: 1\n"})
    path = str(volume.path("pingmon.yaml"))
    watch = FileWatch([path])
    volume.publish({"pingmon.yaml": "a: 2\n"})
    assert watch.changed([path]) == [path]
    assert watch.changed([path]) == []


def test_a_configmap_swap_to_identical_contents_is_not_a_change(tmp_path: Path) -> None:
    volume = ConfigMapDir(tmp_path / "config", {"pingmon.yaml": "a: 1\n", "other": "x"})
    path = str(volume.path("pingmon.yaml"))
    watch = FileWatch([path])
    volume.publish({"pingmon.yaml": "a: 1\n", "other": "y"})
    assert watch.changed([path]) == []


def test_touching_a_file_is_not_a_change(tmp_path: Path) -> None:
    path = tmp_path / "pingmon.yaml"
    path.write_text("a: 1\n")
    watch = FileWatch([str(path)])
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert watch.changed([str(path)]) == []


def test_an_edit_in_place_of_the_same_size_is_a_change(tmp_path: Path) -> None:
    path = tmp_path / "pingmon.yaml"
    path.write_text("a: 1\n")
    watch = FileWatch([str(path)])
    stat = path.stat()
    path.write_text("a: 2\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert watch.changed([str(path)]) == [str(path)]


def test_a_file_that_disappears_and_comes_back_is_a_change_each_time(tmp_path: Path) -> None:
    path = tmp_path / "pingmon.yaml"
    path.write_text("a: 1\n")
    watch = FileWatch([str(path)])
    path.unlink()
    assert watch.changed([str(path)]) == [str(path)]
    path.write_text("a: 1\n")
    assert watch.changed([str(path)]) == [str(path)]


def test_a_file_seen_for_the_first_time_is_remembered_not_reported(tmp_path: Path) -> None:
    config, secret = tmp_path / "pingmon.yaml", tmp_path / "key"
    config.write_text("a: 1\n")
    secret.write_text("k1")
    watch = FileWatch([str(config)])
    assert watch.changed([str(config), str(secret)]) == []
    secret.write_text("k2-longer")
    assert watch.changed([str(config), str(secret)]) == [str(secret)]


def test_a_file_no_longer_named_is_forgotten(tmp_path: Path) -> None:
    config, secret = tmp_path / "pingmon.yaml", tmp_path / "key"
    config.write_text("a: 1\n")
    secret.write_text("k1")
    watch = FileWatch([str(config), str(secret)])
    assert watch.changed([str(config)]) == []
    secret.write_text("k2-longer")
    assert watch.changed([str(config), str(secret)]) == []
