"""Detecting a changed configuration or secret file, as plain files and as ConfigMap volumes;
a change counts once complete; the watcher outlives any failure."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from pingmon.config import load_config
from pingmon.watch import ConfigWatcher, FileWatch
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


def test_an_edit_in_place_of_the_same_size_is_a_change_once_it_stayed_for_a_poll(
    tmp_path: Path,
) -> None:
    path = tmp_path / "pingmon.yaml"
    path.write_text("a: 1\n")
    watch = FileWatch([str(path)])
    stat = path.stat()
    path.write_text("a: 2\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert watch.changed([str(path)]) == []  # perhaps still being written
    assert watch.changed([str(path)]) == [str(path)]
    assert watch.changed([str(path)]) == []


def test_a_file_that_disappears_and_comes_back_is_a_change_each_time_it_settles(
    tmp_path: Path,
) -> None:
    path = tmp_path / "pingmon.yaml"
    path.write_text("a: 1\n")
    watch = FileWatch([str(path)])
    path.unlink()
    assert watch.changed([str(path)]) == []
    assert watch.changed([str(path)]) == [str(path)]
    path.write_text("a: 1\n")
    assert watch.changed([str(path)]) == []
    assert watch.changed([str(path)]) == [str(path)]


def test_a_slow_copy_in_place_is_reported_once_whole_never_in_parts(tmp_path: Path) -> None:
    path = tmp_path / "pingmon.yaml"
    path.write_text(targets(60))
    watch = FileWatch([str(path)])
    whole = targets(61)
    with path.open("w") as file:  # truncates, as cp and a shell's > do
        file.flush()
        assert watch.changed([str(path)]) == []  # empty
        for end in range(0, len(whole), len(whole) // 5):
            file.write(whole[end : end + len(whole) // 5])
            file.flush()
            assert watch.changed([str(path)]) == []  # different at every look
    assert path.read_text() == whole
    assert watch.changed([str(path)]) == [str(path)]  # the same as at the last look
    assert watch.changed([str(path)]) == []


def test_an_in_place_edit_undone_before_it_settled_is_not_a_change(tmp_path: Path) -> None:
    path = tmp_path / "pingmon.yaml"
    path.write_text("a: 1\n")
    watch = FileWatch([str(path)])
    path.write_text("")
    assert watch.changed([str(path)]) == []
    path.write_text("a: 1\n")
    assert watch.changed([str(path)]) == []
    assert watch.changed([str(path)]) == []


@pytest.mark.parametrize("way", ["rename", "symlink swap"])
def test_a_file_replaced_whole_is_a_change_at_the_first_look(tmp_path: Path, way: str) -> None:
    path = tmp_path / "pingmon.yaml"
    if way == "rename":
        path.write_text(targets(1))
    else:
        (tmp_path / "v1.yaml").write_text(targets(1))
        path.symlink_to("v1.yaml")
    watch = FileWatch([str(path)])
    staged = tmp_path / ("staged.yaml" if way == "rename" else "v2.yaml")
    staged.write_text(targets(2))
    if way == "rename":
        os.replace(staged, path)
    else:
        (tmp_path / "link-tmp").symlink_to("v2.yaml")
        os.replace(tmp_path / "link-tmp", path)
    assert watch.changed([str(path)]) == [str(path)]


def test_a_fifo_device_or_directory_in_place_of_a_file_is_a_change_and_never_blocks(
    tmp_path: Path,
) -> None:
    path = tmp_path / "key"
    path.write_text("k1")
    watch = FileWatch([str(path)])
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    os.replace(fifo, path)
    looked: list[list[str]] = []
    poll = threading.Thread(target=lambda: looked.append(watch.changed([str(path)])), daemon=True)
    poll.start()
    poll.join(timeout=10)
    assert looked == [[str(path)]]  # returned, and saw a change (a FIFO reads as no content)
    device = tmp_path / "zero"
    device.symlink_to("/dev/zero")
    os.replace(device, path)
    assert watch.changed([str(path)]) == [str(path)]
    os.unlink(path)
    path.mkdir()
    assert watch.changed([str(path)]) == [str(path)]  # another file: replaced whole


def targets(count: int) -> str:
    lines = [f"  - {{name: t{i}, provider: h}}\n" for i in range(count)]
    return "targets:\n" + "".join(lines)


def test_a_file_seen_for_the_first_time_is_remembered_not_reported(tmp_path: Path) -> None:
    config, secret = tmp_path / "pingmon.yaml", tmp_path / "key"
    config.write_text("a: 1\n")
    secret.write_text("k1")
    watch = FileWatch([str(config)])
    assert watch.changed([str(config), str(secret)]) == []
    secret.write_text("k2-longer")
    assert watch.changed([str(config), str(secret)]) == []
    assert watch.changed([str(config), str(secret)]) == [str(secret)]


def test_a_file_no_longer_named_is_forgotten(tmp_path: Path) -> None:
    config, secret = tmp_path / "pingmon.yaml", tmp_path / "key"
    config.write_text("a: 1\n")
    secret.write_text("k1")
    watch = FileWatch([str(config), str(secret)])
    assert watch.changed([str(config)]) == []
    secret.write_text("k2-longer")
    assert watch.changed([str(config), str(secret)]) == []


async def test_the_watcher_outlives_a_reload_that_raises_and_retries_only_on_a_new_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "pingmon.yaml"
    path.write_text("providers: {h: {type: http, base_url: 'http://127.0.0.1:9'}}\n")
    config = load_config(path)
    calls: list[int] = []

    async def reload() -> tuple[bool, list[str]]:
        calls.append(1)
        raise UnicodeDecodeError("utf-8", b"\xe9", 0, 1, "invalid continuation byte")

    watcher = ConfigWatcher(lambda: config, reload)
    staged = tmp_path / "staged"
    staged.write_bytes(b"# caf\xe9\n")
    os.replace(staged, path)
    await watcher.poll()
    assert calls == [1]
    assert "watching the configuration failed" in caplog.text
    assert [r.__dict__.get("error", "")[:19] for r in caplog.records] == ["UnicodeDecodeError:"]
    await watcher.poll()
    assert calls == [1]  # the same bad file is not tried again
    staged.write_bytes(b"# caf\xe9 again\n")
    os.replace(staged, path)
    await watcher.poll()
    assert calls == [1, 1]


async def test_a_change_made_while_pingmon_starts_is_still_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "pingmon.yaml"
    path.write_text("providers: {h: {type: http, base_url: 'http://127.0.0.1:9'}}\n")
    first_look = FileWatch([str(path)])  # as `pingmon run` does before loading
    config = load_config(path)
    staged = tmp_path / "staged"
    staged.write_text("providers: {h: {type: http, base_url: 'http://127.0.0.1:8'}}\n")
    os.replace(staged, path)  # while the daemon starts
    reloads: list[int] = []

    async def reload() -> tuple[bool, list[str]]:
        reloads.append(1)
        return True, []

    watcher = ConfigWatcher(lambda: config, reload, first_look)
    await watcher.poll()
    assert reloads == [1]
