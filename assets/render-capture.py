#!/usr/bin/env python3
"""Renders a terminal capture with colours (`tmux capture-pane -e -p`) into a PNG.

    tmux capture-pane -e -p -t SESSION > shot.ansi
    python3 assets/render-capture.py shot.ansi assets/dashboard.png

Needs Pillow (`pip install pillow`) and the DejaVu Sans Mono font (`fonts-dejavu-core`).
Understands what the dashboard draws: SGR colours (16, 256 and 24-bit), bold, reverse,
dim, underline and strike-through; every other escape is skipped.
"""
import re
import sys

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
SIZE = 15
BG, FG = (24, 24, 28), (216, 216, 216)
BASE16 = [
    (0, 0, 0), (205, 49, 49), (13, 188, 121), (229, 229, 16),
    (36, 114, 200), (188, 63, 188), (17, 168, 205), (229, 229, 229),
    (102, 102, 102), (241, 76, 76), (35, 209, 139), (245, 245, 67),
    (59, 142, 234), (214, 112, 214), (41, 184, 219), (255, 255, 255),
]


def c256(n):
    if n < 16:
        return BASE16[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    g = 8 + 10 * (n - 232)
    return (g, g, g)


def sgr(params, st):
    p = [int(x) if x else 0 for x in params.split(";")] if params else [0]
    i = 0
    while i < len(p):
        n = p[i]
        if n == 0:
            st.update(fg=None, bg=None, bold=False, rev=False, dim=False, ul=False, strike=False)
        elif n == 1:
            st["bold"] = True
        elif n == 2:
            st["dim"] = True
        elif n == 4:
            st["ul"] = True
        elif n == 7:
            st["rev"] = True
        elif n == 9:
            st["strike"] = True
        elif n == 22:
            st["bold"] = st["dim"] = False
        elif n == 24:
            st["ul"] = False
        elif n == 27:
            st["rev"] = False
        elif n == 29:
            st["strike"] = False
        elif 30 <= n <= 37:
            st["fg"] = BASE16[n - 30]
        elif 90 <= n <= 97:
            st["fg"] = BASE16[n - 90 + 8]
        elif 40 <= n <= 47:
            st["bg"] = BASE16[n - 40]
        elif 100 <= n <= 107:
            st["bg"] = BASE16[n - 100 + 8]
        elif n == 39:
            st["fg"] = None
        elif n == 49:
            st["bg"] = None
        elif n in (38, 48) and i + 1 < len(p):
            key = "fg" if n == 38 else "bg"
            if p[i + 1] == 5 and i + 2 < len(p):
                st[key] = c256(p[i + 2])
                i += 2
            elif p[i + 1] == 2 and i + 4 < len(p):
                st[key] = (p[i + 2], p[i + 3], p[i + 4])
                i += 4
        i += 1


def cells(text):
    """Lines of (char, style) cells."""
    st = dict(fg=None, bg=None, bold=False, rev=False, dim=False, ul=False, strike=False)
    out = []
    for line in text.split("\n"):
        row = []
        for m in re.finditer(r"\x1b\[([0-9;]*)([A-Za-z])|\x1b[^\[]|([^\x1b])", line):
            if m.group(3) is not None:
                row.append((m.group(3), dict(st)))
            elif m.group(2) == "m":
                sgr(m.group(1), st)
        out.append(row)
    while out and not out[-1]:
        out.pop()
    return out


def main():
    src, dst = sys.argv[1], sys.argv[2]
    rows = cells(open(src, encoding="utf-8", errors="replace").read())
    font, bold = ImageFont.truetype(FONT, SIZE), ImageFont.truetype(BOLD, SIZE)
    w = int(font.getlength("M"))
    h = SIZE + 4
    width = max((len(r) for r in rows), default=1)
    img = Image.new("RGB", (width * w + 16, len(rows) * h + 16), BG)
    d = ImageDraw.Draw(img)
    for y, row in enumerate(rows):
        for x, (ch, st) in enumerate(row):
            fg, bg = st["fg"] or FG, st["bg"]
            if st["rev"]:
                fg, bg = (bg or BG), (st["fg"] or FG)
            if st["dim"]:
                fg = tuple(v * 6 // 10 for v in fg)
            px, py = 8 + x * w, 8 + y * h
            if bg:
                d.rectangle([px, py, px + w - 1, py + h - 1], fill=bg)
            if ch != " ":
                d.text((px, py + 1), ch, font=bold if st["bold"] else font, fill=fg)
            if st["ul"]:
                d.line([px, py + h - 2, px + w, py + h - 2], fill=fg)
            if st["strike"]:
                d.line([px, py + h // 2, px + w, py + h // 2], fill=fg)
    img.save(dst)


if __name__ == "__main__":
    main()
