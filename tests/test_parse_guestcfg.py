"""Tests for parse_guest_config (xl grammar and xm Python fallback)."""

from __future__ import annotations

import pytest

from xenfab.parse import ParseError, parse_guest_config


def test_simple_xl() -> None:
    cfg = parse_guest_config('name = "web01"\nmemory = 1024\nvcpus = 2\n')
    assert (cfg.name, cfg.memory_mib, cfg.maxmem_mib, cfg.vcpus) == ("web01", 1024, 1024, 2)


def test_defaults() -> None:
    cfg = parse_guest_config("name='x'\n")
    assert (cfg.memory_mib, cfg.maxmem_mib, cfg.vcpus) == (32, 32, 1)
    cfg = parse_guest_config("name='x'\nmaxmem=512\n")
    assert (cfg.memory_mib, cfg.maxmem_mib) == (512, 512)


def test_quoted_octal_hex() -> None:
    cfg = parse_guest_config("name = 'x'\nmemory = '256'\nmaxmem = \"0x400\"\nvcpus = 010\n")
    assert (cfg.memory_mib, cfg.maxmem_mib, cfg.vcpus) == (256, 1024, 8)


def test_computed_name_raises_with_line() -> None:
    text = 'def f(v):\n    return v\n\nmemory = 64\nname = "VM%d" % vmid\n'
    with pytest.raises(ParseError) as exc:
        parse_guest_config(text, source="/etc/xen/vm.cfg")
    assert exc.value.line == 5 and exc.value.source == "/etc/xen/vm.cfg"


def test_bad_memory() -> None:
    with pytest.raises(ParseError):
        parse_guest_config("name='x'\nmemory = '512M'\n")
