"""The picture a mapper looks at first: a mapped scene in true colour, stretched over the land
that was analysed (a cloud stretched into the range would turn the land black), the classes of
the map drawn over it (landslides outlined, what was not analysed hatched, no data black) and a
legend in the picture itself, in a small bitmap font written out below. tiles.py and change.py
call picture(); report.write_png writes it.
"""
import numpy as np

from report import true_colour

# a 5 x 7 bitmap font: each glyph seven rows of five bits, as hexadecimal pairs
FONT = {
    'A': '0E11111F111111', 'B': '1E11111E11111E', 'C': '0E11101010110E', 'D': '1E11111111111E',
    'E': '1F10101E10101F', 'F': '1F10101E101010', 'G': '0E11101711110F', 'H': '1111111F111111',
    'I': '0E04040404040E', 'J': '0702020202120C', 'K': '11121418141211', 'L': '1010101010101F',
    'M': '111B1515111111', 'N': '11111915131111', 'O': '0E11111111110E', 'P': '1E11111E101010',
    'Q': '0E11111115120D', 'R': '1E11111E141211', 'S': '0F10100E01011E', 'T': '1F040404040404',
    'U': '1111111111110E', 'V': '11111111110A04', 'W': '1111111515150A', 'X': '11110A040A1111',
    'Y': '11110A04040404', 'Z': '1F01020408101F', '0': '0E11131519110E', '1': '040C040404040E',
    '2': '0E11010204081F', '3': '1F02040201110E', '4': '02060A121F0202', '5': '1F101E0101110E',
    '6': '0608101E11110E', '7': '1F010204080808', '8': '0E11110E11110E', '9': '0E11110F01020C',
    ' ': '00000000000000', '.': '00000000000C0C', ',': '000000000C0408', '%': '18190204081303',
    '(': '02040808080402', ')': '08040202020408', '-': '0000001F000000', '/': '00010204081000',
    ':': '000C0C000C0C00'}
HATCH = (150, 160, 185), (70, 80, 105)          # not analysed: a slate veil with darker stripes


def glyph(ch):
    """One character as bool [7, 5] (unknown characters blank)."""
    rows = FONT.get(ch.upper(), FONT[' '])
    return np.array([[int(rows[2 * r:2 * r + 2], 16) >> (4 - c) & 1 for c in range(5)]
                     for r in range(7)], bool)


def text(img, x, y, s, colour=(0, 0, 0), scale=1):
    """Write s into img [h, w, 3] (in place) from its top-left corner (x, y); clipped at the
    edges. -> the x after the text"""
    for ch in s:
        g = np.kron(glyph(ch), np.ones((scale, scale), bool))
        h, w = g.shape
        sub = img[y:y + h, x:x + w]
        sub[g[:sub.shape[0], :sub.shape[1]]] = colour
        x += 6 * scale
    return x


def outline(m):
    """The border pixels of the regions of m (bool [h, w]): those with a 4-neighbour outside."""
    p = np.pad(m, 1)
    inner = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return m & ~inner


def picture(raw, classes, styles, nodata=255):
    """raw: [h, w, 3] B4, B3, B2 (any units); classes: uint8 [h, w], the map's values; styles:
    {value: (label, rgb, 'outline' | 'hatch' | 'plain')}, the values to draw and name in the
    legend ('plain': analysed, drawn as the land). -> uint8 [h + legend, w, 3]"""
    analysed = np.isin(classes, [v for v, s in styles.items() if s[2] != 'hatch']) & \
        np.isfinite(raw).all(-1)
    img = true_colour(raw, analysed)
    yy, xx = np.mgrid[0:classes.shape[0], 0:classes.shape[1]]
    for v, (_, rgb, how) in styles.items():
        m = classes == v
        if how == 'hatch':
            stripe = ((yy + xx) % 6 < 2) & m
            img[m] = (0.35 * img[m] + 0.65 * np.array(HATCH[0])).astype(np.uint8)
            img[stripe] = HATCH[1]
        elif how == 'outline':
            img[outline(m)] = rgb
    img[classes == nodata] = 0
    return np.concatenate([img, legend(img.shape[1], styles, nodata)])


def legend(width, styles, nodata):
    """The legend band: a swatch and a label per drawn class, wrapped to the width."""
    scale = 2 if width >= 640 else 1
    items = [(s[0], s[1], s[2]) for s in styles.values() if s[2] != 'plain'] + \
        [('no data', (0, 0, 0), 'fill')]
    line, pad = 10 * scale, 4 * scale
    rows, x, placed = 0, pad, []
    for label, rgb, how in items:
        w = line + 2 * scale + 6 * scale * len(label) + 3 * pad
        if x + w > width and x > pad:
            rows, x = rows + 1, pad
        placed.append((x, rows, label, rgb, how))
        x += w
    band = np.full(((rows + 1) * (line + pad) + pad, width, 3), 255, np.uint8)
    for x, r, label, rgb, how in placed:
        y = pad + r * (line + pad)
        sw = band[y:y + line, x:x + line]
        if how == 'hatch':
            sy, sx = np.mgrid[0:sw.shape[0], 0:sw.shape[1]]
            sw[:] = HATCH[0]
            sw[(sy + sx) % 6 < 2] = HATCH[1]
        else:
            sw[:] = rgb
            if how == 'outline':                    # the swatch as the map draws it
                sw[scale:-scale, scale:-scale] = (235, 235, 235)
        text(band, x + line + 2 * scale, y + (line - 7 * scale) // 2, label, scale=scale)
    return band
