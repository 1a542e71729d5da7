"""B1 beside a cloud, from B2. B1 (443 nm, the coastal aerosol band) comes at 60 m in Level-1C:
a 60 m cell that holds the edge of a cloud, cirrus or shadow carries its brightness or darkness
into every 10 m pixel it covers, and bilinear resampling one cell further. The mask leaves the
cloud out but not the clear land beside it, so there the networks read a ground whose B1
belongs to the sky; on the cloud benchmark that one band was most of what clouds cost a
Level-1C map's clear land (docs/clouds.md).

B2 (490 nm) is B1's neighbour, sensed at 10 m, and over land the two move together (the same
ground under the same haze). Within one of B1's cells (6 pixels of 10 m) of a pixel the mask
calls cloud, cirrus or shadow, an analysed pixel's B1 is therefore taken from its B2 by the
scene's own line, fitted by least squares on the analysed pixels farther from the mask:

    B1 <- a B2 + b   where an analysed pixel lies within one B1 cell of cloud, cirrus or shadow

- Level-2A's B1 comes at 20 m (R20m), in cells no wider than its scene classification's; there
  the replacement cost more than it gave on the benchmark, so it is made from a 60 m B1 on
  (MIN_CELL).
- sentinel2.stack samples (B2, B1) of the far analysed pixels while it writes a stack with a
  cloud mask, and stores the line and the cell in the stack's tags (TAG);
  the stack keeps the product's B1. scene.Scene makes the replacement on the rows it reads
  (before the cirrus correction, which then treats the new B1 as every other band), so the
  statistics, tiles and --adapt's target see the same scene. `predict.py --corrections` without
  `edges` reads B1 as the product holds it.
- The other 60 m bands stay as they are: B10's cloud is taken out by the cirrus correction, and
  B9's made no difference on the benchmark (replacing it from B8 as well did no better).
"""
import numpy as np

MIN_CELL = 6                     # B1's cell, in pixels, from which it is replaced (60 m: L1C)
TAG = 'B1_FROM_B2'               # the stack's tag: "a b cell"
B1, B2 = 0, 1


def cell(b1_metres, pixel):
    """B1's cell in the grid's pixels. -> int >= 1"""
    return max(1, int(round(b1_metres / pixel)))


def fit(b2, b1, cell_px):
    """The line B1 = a B2 + b by least squares, with the cell. b2, b1: float [m]
    -> (a, b, cell) or None: B1 finer than MIN_CELL, fewer than 100 samples or no spread in B2"""
    if cell_px < MIN_CELL or len(b2) < 100 or np.ptp(b2) == 0:
        return None
    a, b = np.polyfit(b2.astype(np.float64), b1.astype(np.float64), 1)
    return float(a), float(b), int(cell_px)


def to_tag(line):
    return f'{line[0]:.6f} {line[1]:.6f} {line[2]}'


def from_tags(tags):
    """The line a stack's tags hold, or None. -> (a, b, cell) or None"""
    text = tags.get(TAG, '').split()
    return (float(text[0]), float(text[1]), int(text[2])) if len(text) == 3 else None


def replace(x, near, line):
    """B1 from B2 where `near` (analysed pixels within a cell of cloud, cirrus or shadow, as
    clouds.dilate finds them), in place. x: float32 [n, W, 14]; near: bool [n, W]; line:
    (a, b, cell). -> x"""
    x[near, B1] = line[0] * x[near, B2] + line[1]
    return x
