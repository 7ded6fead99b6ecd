"""Reading the configuration file within bounds: each bound at its edge, and every fault a line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pingmon import loading
from pingmon.config import load_config
from pingmon.errors import ConfigError
from pingmon.loading import MAX_FILE_BYTES, load_yaml


def refused(path: Path | str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_yaml(str(path))
    return [str(problem) for problem in raised.value.problems]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pingmon.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# The file itself: a regular file, read up to 4 MiB.


def test_a_file_past_4_mib_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "pingmon.yaml"
    with path.open("wb") as file:
        file.truncate(50 * 1024 * 1024)  # 50 MB, sparse: refused on its size alone
    assert refused(path) == [
        "cannot read the file: larger than 4 MiB, the most pingmon reads of it"
    ]


def test_a_file_of_exactly_4_mib_is_read(tmp_path: Path) -> None:
    line = "# " + "x" * 1021 + "\n"  # 1 KiB of comment
    path = write(tmp_path, "concurrency: 7\n" + line * (MAX_FILE_BYTES // 1024 - 1))
    path.write_bytes(path.read_bytes().ljust(MAX_FILE_BYTES, b"\n"))
    assert path.stat().st_size == MAX_FILE_BYTES
    assert load_yaml(str(path)) == {"concurrency": 7}


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/dev/zero", "it is a character device, not a regular file"),
        ("/dev/null", "it is a character device, not a regular file"),
        ("/", "it is a directory, not a regular file"),
        ("/nonexistent/pingmon.yaml", "No such file or directory"),
    ],
)
def test_a_configuration_that_is_not_a_regular_file_is_refused_unread(
    path: str, reason: str
) -> None:
    assert refused(path) == [f"cannot read the file: {reason}"]


def test_a_configuration_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "pingmon.yaml"
    os.mkfifo(fifo)
    assert refused(fifo) == ["cannot read the file: it is a FIFO, not a regular file"]


# Encoding: UTF-8, a byte order mark allowed; anything else named.


def test_a_utf8_byte_order_mark_is_allowed(tmp_path: Path) -> None:
    assert load_yaml(str(write(tmp_path, "\ufeffconcurrency: 3\n"))) == {"concurrency": 3}


@pytest.mark.parametrize(
    ("encoding", "name"),
    [
        ("utf-16-le", "UTF-16"),
        ("utf-16-be", "UTF-16"),
        ("utf-32-le", "UTF-32"),
        ("utf-32-be", "UTF-32"),
    ],
)
def test_a_utf16_or_utf32_file_is_named_as_such(tmp_path: Path, encoding: str, name: str) -> None:
    path = tmp_path / "pingmon.yaml"
    path.write_bytes("\ufeffconcurrency: 3\n".encode(encoding))
    assert refused(path) == [
        f"the file is {name} (it starts with a byte order mark); save it as UTF-8"
    ]


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (b"listen: caf\xe9\n", "line 1, column 12: not UTF-8 (byte 0xe9 at offset 11)"),
        (
            b"a: 1\n# \xc3\xa9t\xc3\xa9 \xff\n",
            "line 2, column 7: not UTF-8 (byte 0xff at offset 13)",
        ),
        (b"a: \xc3\n", "line 1, column 4: not UTF-8 (byte 0xc3 at offset 3)"),  # cut sequence
    ],
)
def test_a_byte_that_is_not_utf8_is_refused_at_its_line_and_column(
    tmp_path: Path, content: bytes, where: str
) -> None:
    path = tmp_path / "pingmon.yaml"
    path.write_bytes(content)
    assert refused(path) == [f"{where}; save the file as UTF-8"]


# Nesting: 64 levels, the file's root mapping included.


def test_64_levels_of_nesting_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, "x: " + "[" * 63 + "]" * 63 + "\n")
    assert load_yaml(str(path)) is not None


def test_65_levels_of_nesting_are_refused_where_the_65th_opens(tmp_path: Path) -> None:
    path = write(tmp_path, "x: " + "[" * 64 + "]" * 64 + "\n")
    assert refused(path) == [
        "x[0][0][0][0][0][0][0]...: line 1, column 67: nested more than 64 levels deep"
    ]


def test_block_nesting_counts_like_flow_nesting(tmp_path: Path) -> None:
    text = "".join(f"{'  ' * level}k{level}:\n" for level in range(64)) + "  " * 64 + "v: 1\n"
    assert refused(write(tmp_path, text)) == [
        "k0.k1.k2.k3.k4.k5.k6.k7...: line 65, column 129: nested more than 64 levels deep"
    ]


def test_nesting_past_libyamls_own_bound_in_a_large_file_names_pingmons_bound(
    tmp_path: Path,
) -> None:
    # Past 256 KiB the fault keeps libyaml's mark (no second, pure-Python parse for wording).
    padding = "# " + "x" * 1021 + "\n"
    path = write(tmp_path, padding * 300 + "x: " + "[" * 1500 + "]" * 1500 + "\n")
    assert refused(path) == ["line 301, column 1003: nested more than 64 levels deep"]


# Values: at most 1,000,000, each alias counted as the copy it stands for.


def test_aliases_and_merge_keys_within_the_bound_are_expanded(tmp_path: Path) -> None:
    text = (
        "x-base: &base {interval: 30s, timeout: 5s}\n"
        "a: {<<: *base, name: a}\n"
        "b: {<<: *base, timeout: 10s}\n"
        "c: *base\n"
    )
    loaded = load_yaml(str(write(tmp_path, text)))
    assert loaded["a"] == {"interval": "30s", "timeout": "5s", "name": "a"}
    assert loaded["b"] == {"interval": "30s", "timeout": "10s"}
    assert loaded["c"] == {"interval": "30s", "timeout": "5s"}


def test_the_value_bound_counts_every_alias_as_its_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loading, "MAX_VALUES", 19)
    # The root, x, its list and 3 items (6), y and its list (8), 4 values per alias: 16 ...
    within = "x: &l [1, 2, 3]\ny: [*l, *l]\n"
    assert load_yaml(str(write(tmp_path, within))) == {"x": [1, 2, 3], "y": [[1, 2, 3]] * 2}
    past = "x: &l [1, 2, 3]\ny: [*l, *l, *l]\n"  # ... and 20 with a third alias
    assert refused(write(tmp_path, past)) == [
        "y[2]: line 2, column 13: more than 19 values (scalars, lists and mappings, each alias "
        "counted as the copy it stands for)"
    ]


def test_the_value_bound_holds_without_aliases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loading, "MAX_VALUES", 1000)
    path = write(tmp_path, "x: [" + ", ".join(["1"] * 1000) + "]\n")
    assert refused(path) == [
        "x[997]: line 1, column 2996: more than 1,000 values (scalars, lists and mappings, "
        "each alias counted as the copy it stands for)"
    ]


# Every fault of a syntax or a value YAML cannot build is one line, never a traceback.


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a: !!float abc\n", "line 1, column 4: not a valid float (could not convert string "
                             "to float: 'abc')"),
        ("a: !!int 0x\n", "line 1, column 4: not a valid int (invalid literal for int() with "
                          "base 16: '')"),
        ("a: 2023-13-01\n", "line 1, column 4: not a valid timestamp (month must be in 1..12)"),
        ("a: !!binary abc\n", "line 1, column 4: failed to decode base64 data: Incorrect padding"),
        ("a: !!python/name:os.system\n", "line 1, column 4: could not determine a constructor "
                                        "for the tag 'tag:yaml.org,2002:python/name:os.system'"),
        ("? [a]\n: 1\n", "line 1, column 3: found unhashable key"),
        ("a: [1, 2\n", "line 2, column 1: expected ',' or ']', but got '<stream end>'"),
        ("a: b\x00c\n", "line 1, column 5: character U+0000 is not allowed in YAML"),
    ],
)  # fmt: skip
def test_a_value_yaml_cannot_build_is_one_line(tmp_path: Path, text: str, line: str) -> None:
    assert refused(write(tmp_path, text)) == [line]


def test_a_syntax_fault_in_a_large_file_is_worded_by_libyaml(tmp_path: Path) -> None:
    padding = "# " + "x" * 1021 + "\n"
    path = write(tmp_path, padding * 300 + "a: [1, 2\n")
    assert refused(path) == ["line 302, column 1: did not find expected ',' or ']'"]


@pytest.mark.parametrize(
    "key", ["_env_file", "_cli_parse_args", "_secrets_dir", "_case_sensitive"]
)
def test_a_key_that_would_reach_pydantic_settings_is_an_unknown_key(
    tmp_path: Path, key: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, f"{key}: /\nconcurrency: 0\n"))
    assert [str(problem) for problem in raised.value.problems] == [
        f"{key}: unknown key (refused so that a typo never silently changes a check)",
        "concurrency: Input should be greater than 0",
    ]


@pytest.mark.parametrize(("key", "shown"), [("1", "1"), ("null", "None"), ("true", "True")])
def test_a_key_that_is_not_a_string_is_an_unknown_key(
    tmp_path: Path, key: str, shown: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, f"{key}: x\n"))
    assert [str(problem) for problem in raised.value.problems] == [
        f"{shown}: unknown key (refused so that a typo never silently changes a check)"
    ]


# A file that is JSON is read as JSON (fast), into exactly what YAML reads; else by YAML.

SAME_AS_YAML = [
    '{"a":1.5e+3,"b":-0,"c":[true,false,null,-0.0,12345678901234567890],"d":{"e":"x # y"}}',
    '{\n  "targets": [\n    {"name": "a", "provider": "l", "expect": {"status": [200]}}\n  ]\n}\n',
    '\n{"": "", "<<": {"=": "&x *x !t"}, "k": [[], {}, "2024-01-01", "0x10", "1_000"]}',
    # YAML reads these otherwise than JSON (or refuses them): YAML's reading is kept.
    '{"a": 1e3, "b": 1.5e3, "c": 1E+3}',
    '{"a": NaN, "b": Infinity}',
    '{"a": "\\u00e9\\ud83d\\ude00\\/"}',
    '{"a": "x\u2028y", "b": "x\u0085y", "\u00e9": "\ufeff"}',
    '{"a"\n: 1, "b" : 2}',
    '{"' + "k" * 300 + '": 1}',
    "[1, 2]",
]


@pytest.mark.parametrize("text", SAME_AS_YAML)
def test_a_json_file_reads_as_yaml_reads_it(tmp_path: Path, text: str) -> None:
    yaml_reads, problem = loading._construct(text)
    if problem is not None:
        assert refused(write(tmp_path, text)) == [str(problem)]
        return
    if not isinstance(yaml_reads, dict):
        assert refused(write(tmp_path, text)) == ["the file must hold a mapping of settings"]
        return
    loaded = load_yaml(str(write(tmp_path, text)))
    assert loaded == yaml_reads
    assert repr(loaded) == repr(yaml_reads)  # the same types (1 is not 1.0, -0.0 keeps its sign)


def test_plain_json_is_read_without_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_yaml(text: str) -> None:
        raise AssertionError("read by YAML")

    monkeypatch.setattr(loading, "_shape_problem", no_yaml)
    path = write(tmp_path, '{"targets": [{"name": "t1", "provider": "l", "interval": 1.5}]}')
    assert load_yaml(str(path)) == {"targets": [{"name": "t1", "provider": "l", "interval": 1.5}]}


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('{"a": 1, "a": 2}', "a: line 1, column 10: duplicate key; YAML would silently keep "
                             "only its last value"),
        ('{"x": ' + "[" * 64 + "]" * 64 + "}", "x[0][0][0][0][0][0][0]...: line 1, column 70: "
                                              "nested more than 64 levels deep"),
        ('{"a": 1} {"b": 2}', "line 1, column 10: expected '<document start>', but found '{'"),
        ('{"a": [1, 2}', "line 1, column 12: expected ',' or ']', but got '}'"),
        ('{"a": "\x7f"}', "line 1, column 8: character U+007F is not allowed in YAML"),
    ],
)  # fmt: skip
def test_a_json_file_is_refused_as_yaml_refuses_it(tmp_path: Path, text: str, line: str) -> None:
    assert refused(write(tmp_path, text)) == [line]


def test_the_value_bound_holds_for_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loading, "MAX_VALUES", 8)  # the root, x, its list and 3 items, y, {}
    within = '{"x": [1, 2, 3], "y": {}}'
    assert load_yaml(str(write(tmp_path, within))) == {"x": [1, 2, 3], "y": {}}
    assert refused(write(tmp_path, '{"x": [1, 2, 3], "y": [1]}')) == [
        "y[0]: line 1, column 24: more than 8 values (scalars, lists and mappings, each alias "
        "counted as the copy it stands for)"
    ]
