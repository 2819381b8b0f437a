"""The layout table stays readable when a host gets dozens of guests."""

from __future__ import annotations

import re

from planfixtures import guest, host, snap

from xenfab.cluster import backend
from xenfab.plan import plan, policy_from_dict
from xenfab.show import GUEST_COLUMN, layout_text


def test_a_long_guest_list_wraps_between_names_and_keeps_every_name() -> None:
    names = [f"reporting-warehouse-etl-{i:02d}" for i in range(30)] + ["db1", "web-front-2"]
    s = snap([host("xen01", 400_000), host("xen02", 1_000)], [guest(n, 1024) for n in names])
    layout = plan(s, policy_from_dict({"strategy": "most-free"})).to_dict()
    text = layout_text(layout, s, backend("rgmanager"))
    lines = text.split("\n\nCommands")[0].splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("---"))
    spans = [m.span() for m in re.finditer(r"-+", lines[rule])]
    assert spans[2][1] - spans[2][0] <= GUEST_COLUMN  # the guests column is bounded
    body = lines[rule + 1 :]
    cells = [line[spans[2][0] : spans[2][1]].strip() for line in body]
    assert len(body) > 5  # xen01's 32 names took several lines
    listed = [n.strip() for c in cells for n in c.split(",") if n.strip() not in ("", "-")]
    assert sorted(listed) == sorted(names)  # each whole, once: no name broken at a hyphen


def test_running_guests_are_named_in_a_line_other_skips_keep_their_row() -> None:
    running = [guest(f"up{i:02d}", 512, "started", owner="xen01") for i in range(12)]
    odd = guest("half", 512, "migrating", owner="xen01")
    s = snap([host("xen01", 64_000)], [*running, odd, guest("db01", 1024)])
    layout = plan(s, policy_from_dict({})).to_dict()
    text = layout_text(layout, s, backend("rgmanager"))
    assert "Already running (12): up00, up01," in text
    assert "already started on" not in text  # no row each
    rows = text.split("Skipped (not down, or not ours to start):")[1]
    assert "half" in rows and "migrating on xen01" in rows
    # --explain keeps every row with its reason.
    full = layout_text(layout, s, backend("rgmanager"), explain=True)
    assert "Already running" not in full and full.count("already started on xen01") == 12


def test_a_command_in_backticks_is_never_split_across_lines():
    from xenfab.show.notes import wrap

    text = "stop one copy by hand: " + "x" * 60 + " `xl destroy web01` on the host, then check"
    lines = wrap(text, "  - ", "    ", columns=80)
    assert max(len(line) for line in lines) <= 80
    assert any("`xl destroy web01`" in line for line in lines), lines
    assert " ".join(line.strip() for line in lines).replace("- ", "", 1) == text


def test_a_prefixed_view_renders_narrower_and_never_cuts_a_guest_name():
    from xenfab.show import fitted_table
    from xenfab.show.combined import for_prefix, prefixed, still_down_text
    from xenfab.show.notes import Notes

    name = "reporting-warehouse-etl-primary01"
    rows = [[name, "started", "(c1-xen01)", 16384, 2, "c1-xen01", "a long note " * 8]]
    headers = ["guest", "state", "owner (last)", "MiB", "vcpus", "running on", "note"]
    with for_prefix("lab-c1"):
        text = prefixed("lab-c1", fitted_table(rows, headers, 6, Notes()))
    assert max(len(line) for line in text.splitlines()) <= 100, text
    assert name in text and "(last)" in text  # the header took two lines, not the name
    # Unprefixed, the table has room: one header line, as before.
    assert "owner (last)" in fitted_table(rows, headers, 6, Notes())
    rows_down = [{"environment": "lab-c1", "guest": "legacy07", "reason": "word " * 60}]
    block = still_down_text(rows_down, 2)
    assert max(len(line) for line in block.splitlines()) <= 100
    assert block.splitlines()[1].startswith("  [lab-c1] legacy07: word")
    assert all(line.startswith("  [lab-c1]") for line in block.splitlines()[1:])


def test_labels_of_several_words_take_two_lines_when_a_table_must_narrow():
    from xenfab.show import fitted_table
    from xenfab.show.notes import Notes, narrower

    label = "reporting warehouse etl primary01 (79bb7e16)"
    rows = [[label, "running", "xen01 (6c586172)", 1024, 2, "xen01 (6c586172)", "note " * 20]]
    rows.append(["web-frontend-primary01", "halted", "-", 1, 1, "-", ""])
    headers = ["guest", "state", "owner (last)", "MiB", "vcpus", "running on", "note"]
    with narrower(0):
        text = fitted_table(rows, headers, 6, Notes())
    assert max(len(line) for line in text.splitlines()) <= 100, text
    assert "reporting warehouse etl" in text and "primary01 (79bb7e16)" in text
    assert "web-frontend-primary01" in text
