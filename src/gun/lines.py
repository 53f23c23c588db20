"""Output bytes into lines, as Heroku cuts them: at each LF, and a line longer than MAX_LINE bytes
in pieces, each cut between UTF-8 sequences rather than inside one (pure).

Every reader of a process's output uses these: the supervisor's tail and the release phase (a
process's output file or pipe), the log shipper (a line's frames) and the build (a command's
pipe, where a line that waits for its end is shown in part, cut with `utf8_cut`).
"""

from __future__ import annotations

MAX_LINE = 10_000  # bytes


def split_lines(
    data: bytes, *, final: bool, limit: int = MAX_LINE, most: int | None = None
) -> tuple[list[bytes], int]:
    """Complete lines in data (without their LF, `most` of them) and the bytes they used.

    A line longer than `limit` bytes comes out in pieces of at most `limit` bytes, cut before a
    UTF-8 sequence rather than inside it. An unfinished last line stays unused unless `final`.
    """
    lines: list[bytes] = []
    pos = 0
    while pos < len(data) and (most is None or len(lines) < most):
        end = data.find(b"\n", pos, pos + limit + 1)
        if end != -1:
            lines.append(data[pos:end])
            pos = end + 1
        elif len(data) - pos > limit:
            cut = pos + (utf8_cut(data[pos : pos + limit]) or limit)
            lines.append(data[pos:cut])
            pos = cut
        elif final:
            lines.append(data[pos:])
            pos = len(data)
        else:
            break
    return lines, pos


def utf8_cut(data: bytes) -> int:
    """The length of `data` without an unfinished UTF-8 sequence at its end (bytes that are not
    UTF-8 at all are left as they are: they are replaced when decoded)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # a continuation byte: its lead is further back
            continue
        need = (
            2
            if byte >> 5 == 0b110
            else 3
            if byte >> 4 == 0b1110
            else 4
            if byte >> 3 == 0b11110
            else 1
        )
        return len(data) - back if need > back else len(data)
    return len(data)


def text(line: bytes) -> str:
    """A line as text: bad UTF-8 replaced, a CR before its LF dropped."""
    return line.decode("utf-8", "replace").removesuffix("\r")
