"""Tests for parse_guest_config: the xl grammar, xl semantics and the xm (Python) fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenfab.parse import GuestConfig, ParseError, parse_guest_config

FIXTURES = Path(__file__).parent / "fixtures" / "parse"


def fixture(name: str) -> str:
    # Bytes, so CRLF and trailing whitespace reach the parser untouched.
    return (FIXTURES / name).read_bytes().decode("utf-8")


def sizes(cfg: GuestConfig) -> tuple:
    return (cfg.name, cfg.memory_mib, cfg.maxmem_mib, cfg.vcpus)


# --- xl semantics -------------------------------------------------------------------------


def test_simple_xl() -> None:
    cfg = parse_guest_config('name = "web01"\nmemory = 1024\nvcpus = 2\n')
    assert sizes(cfg) == ("web01", 1024, 1024, 2)
    assert cfg["memory_mib"] == 1024


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", (32, 32, 1)),
        ("maxmem=512\n", (512, 512, 1)),
        ("memory=512\n", (512, 512, 1)),
        ("memory=512\nmaxmem=2048\n", (512, 2048, 1)),
        ("vcpus=3\n", (32, 32, 3)),
    ],
)
def test_xl_defaults(body: str, expected: tuple) -> None:
    cfg = parse_guest_config("name='x'\n" + body)
    assert (cfg.memory_mib, cfg.maxmem_mib, cfg.vcpus) == expected


@pytest.mark.parametrize(
    ("value", "mib"),
    [
        ("256", 256),
        ("'256'", 256),
        ('"256"', 256),
        ("0x100", 256),
        ('"0x100"', 256),
        ("0X100", 256),
        ("0100", 64),  # strtol base 0: a leading zero is octal
        ("'0100'", 64),
        ("' 128'", 128),  # strtol skips leading blanks
        ("'+128'", 128),
    ],
)
def test_numbers_read_like_strtol(value: str, mib: int) -> None:
    assert parse_guest_config(f"name='x'\nmemory = {value}\n").memory_mib == mib


@pytest.mark.parametrize(
    "value",
    ["0", "'0'", "'-512'", "'512M'", "'1.5'", "''", "'abc'", "08", "0x", "[512]", "'9' * 99"],
)
def test_memory_that_is_not_a_positive_integer(value: str) -> None:
    with pytest.raises(ParseError) as exc:
        parse_guest_config(f"name = 'x'\nmemory = {value}\n", source="vm.cfg")
    assert exc.value.source == "vm.cfg"


def test_huge_memory_is_refused() -> None:
    with pytest.raises(ParseError) as exc:
        parse_guest_config("name='x'\nmemory = " + "9" * 30 + "\n")
    assert exc.value.line == 2


def test_bad_vcpus_and_maxmem() -> None:
    with pytest.raises(ParseError):
        parse_guest_config("name='x'\nvcpus = 'two'\n")
    with pytest.raises(ParseError):
        parse_guest_config("name='x'\nmaxmem = 0\n")


def test_name_is_required() -> None:
    with pytest.raises(ParseError) as exc:
        parse_guest_config("memory = 512\n", source="/etc/xen/a.cfg")
    assert "name" in str(exc.value) and "/etc/xen/a.cfg" in str(exc.value)
    with pytest.raises(ParseError):
        parse_guest_config("name = ''\n")
    with pytest.raises(ParseError):
        parse_guest_config("name = ['a']\n")


def test_number_as_name() -> None:
    assert parse_guest_config("name = 42\n").name == "42"


def test_last_assignment_wins() -> None:
    assert parse_guest_config("name='a'\nmemory=1\nmemory=2\nname='b'\n").name == "b"


# --- xl grammar ----------------------------------------------------------------------------


def test_semicolons_and_no_spaces() -> None:
    cfg = parse_guest_config("name='x';memory=24576; vcpus=4;\n")
    assert sizes(cfg) == ("x", 24576, 24576, 4)


def test_plus_equals_appends_strings_and_lists() -> None:
    cfg = parse_guest_config(
        "name = 'web'\nname += '01'\nmemory = 1\nmemory += 28\ndisk = ['a']\ndisk += ['b',]\n"
    )
    assert cfg.name == "web01" and cfg.memory_mib == 128


def test_plus_equals_without_previous_value() -> None:
    assert parse_guest_config("name += 'x'\n").name == "x"


def test_hash_inside_strings_and_trailing_comments() -> None:
    text = (
        'name = "web#1" # the # after the value is a comment\n'
        "memory = 512 # MiB\n"
        "extra = 'console=hvc0 # not a comment'\n"
        "vcpus = 4 # make your domain a 4-way\n"
    )
    assert sizes(parse_guest_config(text)) == ("web#1", 512, 512, 4)


def test_escapes_in_strings() -> None:
    assert parse_guest_config(r'name = "a\"b\\c\x41\101\n"').name == 'a"b\\cAA\n'
    assert parse_guest_config(r"name = 'it\'s'").name == "it's"


def test_multiline_nested_lists_with_trailing_commas() -> None:
    text = """name = "x"
disk = [
    'phy:/dev/vg/x,xvda,w',
    ',hdc:cdrom,r',
    ]
vif = [ '' ]
pci = [ [ '01:00.0', ], [], ]
cpus = [ "2", "3" ]
memory = 256
"""
    assert sizes(parse_guest_config(text)) == ("x", 256, 256, 1)


def test_empty_list_and_blank_whitespace_lines() -> None:
    text = "  \n\t\nname='x'   \n\nvif=[]\n   \nmemory = 128   \n"
    assert parse_guest_config(text).memory_mib == 128


def test_missing_final_newline_and_crlf() -> None:
    assert parse_guest_config("name='x'\r\nmemory=64").memory_mib == 64


def test_uppercase_and_dotted_keys_are_tolerated() -> None:
    cfg = parse_guest_config(fixture("ovm-crlf.cfg"))
    assert sizes(cfg) == ("0004fb00000600001b6f2d4f2d1b1b1b", 65536, 65536, 8)
    assert parse_guest_config("device_model.args = 'x'\nname='y'\n").name == "y"


def test_xen_tools_config() -> None:
    cfg = parse_guest_config(fixture("xl-xentools.cfg"), source="web01.cfg")
    assert sizes(cfg) == ("web01", 256, 512, 2)


def test_builder_and_type_together() -> None:
    text = "builder = 'hvm'\ntype = \"hvm\"\nname = 'h'\nmemory = 2048\nvcpus = 2\n"
    assert sizes(parse_guest_config(text)) == ("h", 2048, 2048, 2)


# --- xm (Python) configs --------------------------------------------------------------------


def test_xm_python_config_falls_back() -> None:
    cfg = parse_guest_config(fixture("xm-python.cfg"), source="web01.cfg")
    # maxmem = memory resolves through the earlier literal assignment.
    assert sizes(cfg) == ("web01", 2048, 2048, 4)


def test_xm_python2_config_uses_line_reader() -> None:
    cfg = parse_guest_config(fixture("xm-python2.cfg"))
    assert sizes(cfg) == ("legacy", 256, 256, 2)


def test_computed_name_raises_with_source_and_line() -> None:
    with pytest.raises(ParseError) as exc:
        parse_guest_config(fixture("xm-computed-name.cfg"), source="/etc/xen/vm.cfg")
    assert exc.value.line == 4 and exc.value.source == "/etc/xen/vm.cfg"
    assert str(exc.value).startswith("/etc/xen/vm.cfg: 4: ")


def test_computed_name_in_python2_file() -> None:
    text = 'print "x"\nmemory = 64\nname = "VM%d" % vmid\n'
    with pytest.raises(ParseError) as exc:
        parse_guest_config(text, source="f")
    assert exc.value.line == 3


@pytest.mark.parametrize(
    "text",
    [
        "memory = 512\nif big:\n    memory = 4096\nname = 'x'\n",
        "name = 'x'\nmemory = 256\nmemory += 256\nacpi = True\n",
        "name = 'x'\nmemory, vcpus = 512, 2\nacpi = True\n",
        "name = 'x'\nfor memory in (1, 2):\n    pass\n",
        "name = 'x'\nmemory = 2 * 1024\n",
        "name = 'x'\nmemory = 512.0\nacpi = True\n",
        "name = 'x'\nmemory = True\n",
        "name = 'x'\nmem = 512\nif big:\n    mem = 1024\nmemory = mem\n",
    ],
)
def test_python_that_cannot_be_read_safely(text: str) -> None:
    with pytest.raises(ParseError):
        parse_guest_config(text)


def test_python_indirection_through_literal_variables() -> None:
    text = "mem = 1024\nvmname = 'db%02d' % 1 if False else 'db01'\nname = 'db01'\nmemory = mem\n"
    assert sizes(parse_guest_config(text)) == ("db01", 1024, 1024, 1)


def test_python_assignments_inside_functions_are_ignored() -> None:
    text = "def f():\n    memory = 1\n    return memory\nname = 'x'\nmemory = 96\nacpi = True\n"
    assert parse_guest_config(text).memory_mib == 96


def test_line_reader_refuses_indented_assignment() -> None:
    text = 'print "x"\nname = "a"\nif x:\n    memory = 4\n'
    with pytest.raises(ParseError) as exc:
        parse_guest_config(text)
    assert exc.value.line == 4


def test_line_reader_accepts_semicolon_and_comment() -> None:
    text = 'print "x"\nname = "a"  # guest\nmemory = 0x80;\nvcpus = \'2\'\n'
    assert sizes(parse_guest_config(text)) == ("a", 128, 128, 2)


def test_config_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"import os\nos.system('touch {marker}')\nopen('{marker}', 'w')\nname = 'x'\n"
    assert parse_guest_config(text).name == "x"
    assert not marker.exists()


def test_absurdly_nested_lists_are_refused() -> None:
    with pytest.raises(ParseError) as exc:
        parse_guest_config("name='x'\nd = " + "[" * 500 + "]" * 500 + "\n", source="deep.cfg")
    assert exc.value.source == "deep.cfg" and exc.value.line == 2


def test_line_reader_splits_statements_on_semicolons() -> None:
    text = "print 'x'\nname = 'a;b'; memory = 0200 ; vcpus = 3 # c; maxmem = 1\n"
    assert sizes(parse_guest_config(text)) == ("a;b", 128, 128, 3)
