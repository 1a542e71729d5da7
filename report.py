"""A run's report: report.md beside metrics.json, with the per-round table, pseudo-label
statistics, the band statistics of source and target before and after separated normalization
(the paper's Figure 2) and quicklooks of target patches per round. PNGs are written with the
standard library (zlib + struct); nothing to install.

    python report.py runs/demo            # (re)write runs/demo/report.md from a run folder
"""
import json
import os
import struct
import sys
import zlib

import numpy as np

import landslide as L

BLUE, ORANGE, GREY = (60, 110, 200), (240, 140, 40), (200, 200, 200)


def png_bytes(rgb):
    """rgb: uint8 [H, W, 3] -> the bytes of a PNG file (8-bit truecolour, no filtering)."""
    h, w, _ = rgb.shape
    raw = b''.join(b'\x00' + rgb[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', zlib.crc32(tag + data))
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) +
            chunk(b'IDAT', zlib.compress(raw, 6)) + chunk(b'IEND', b''))


def write_png(path, rgb):
    L.atomic_write(path, lambda t: open(t, 'wb').write(png_bytes(np.ascontiguousarray(rgb, np.uint8))))


def true_colour(img):
    """img: [128, 128, 14] -> uint8 [128, 128, 3] from B4, B3, B2, stretched 2-98 %."""
    rgb = np.nan_to_num(img[..., [3, 2, 1]].astype(np.float64))
    lo, hi = np.percentile(rgb, 2), np.percentile(rgb, 98)
    return (255 * np.clip((rgb - lo) / max(hi - lo, 1e-9), 0, 1)).astype(np.uint8)


def overlay(rgb, mask, colour=(255, 40, 40)):
    """Landslide pixels painted over a dimmed image. mask: [128, 128] in {0, 1}"""
    out = (rgb * 0.6).astype(np.uint8)
    out[mask == 1] = colour
    return out


def band_plot(stats, src, tgt):
    """Per-band mean ± std of source (blue) and target (orange) as boxes with a black mean line,
    in units of the source's std, clipped to ±4: left without, right with separated
    normalization. -> uint8 [H, W, 3]"""
    ms, ss = np.array(stats[src]['mean']), np.array(stats[src]['std'])
    mt, st = np.array(stats[tgt]['mean']), np.array(stats[tgt]['std'])
    panels = [((ms - ms) / ss, ss / ss, (mt - ms) / ss, st / ss),          # source statistics for both
              (np.zeros(14), np.ones(14), np.zeros(14), np.ones(14))]       # each its own
    H, lim, bw = 240, 4.0, 6
    y = lambda v: int(round(H / 2 - np.clip(v, -lim, lim) / lim * (H / 2 - 4)))
    tiles = []
    for m0, s0, m1, s1 in panels:
        img = np.full((H, 14 * 3 * bw + bw, 3), 255, np.uint8)
        for v in (-2, -1, 1, 2):
            img[y(v), :] = GREY
        img[y(0), :] = (120, 120, 120)
        for b in range(14):
            for k, (m, s, col) in enumerate(((m0, s0, BLUE), (m1, s1, ORANGE))):
                x0 = bw + b * 3 * bw + k * bw                  # a box from mean - std to mean + std
                lo, hi = sorted((y(m[b] - s[b]), y(m[b] + s[b])))
                img[lo:hi + 1, x0:x0 + bw - 1] = col
                img[y(m[b]), x0:x0 + bw - 1] = (0, 0, 0)       # the mean
        tiles.append(img)
    gap = np.full((H, 12, 3), 255, np.uint8)
    return np.concatenate([tiles[0], gap, tiles[1]], 1)


def write_report(out, data, target, rounds, n_looks=4):
    """Write <out>/report.md and its pictures from the files of a run folder."""
    metrics = json.load(open(os.path.join(out, 'metrics.json')))
    stats = json.load(open(os.path.join(out, 'stats.json')))
    split = L.SPLITS[target]
    write_png(os.path.join(out, 'bands.png'), np.kron(band_plot(stats, 'train', target), np.ones((1, 2, 1), np.uint8)))
    ids, ipaths, mpaths = L.list_split(data, target)
    looks = []
    for k in np.linspace(0, len(ids) - 1, min(n_looks, len(ids))).astype(int):
        n, rgb = ids[k], true_colour(L.read_image(ipaths[k]))
        row = [rgb] + ([overlay(rgb, L.read_mask(mpaths[k]), (40, 220, 40))] if mpaths else [])
        row += [overlay(rgb, L.read_mask(os.path.join(out, f'round{r}', 'masks', L.mask_name(ipaths[k]))))
                for r in range(rounds + 1)]
        sep = np.full((128, 4, 3), 255, np.uint8)
        strip = np.concatenate(sum(([t, sep] for t in row), [])[:-1], 1)
        write_png(os.path.join(out, f'quicklook_{n}.png'), np.kron(strip, np.ones((2, 2, 1), np.uint8)))
        looks.append(n)
    pct = lambda v: '–' if v is None else f'{100 * v:.2f}'
    names = list(metrics['rounds'][0]['models'])
    lines = [f'# Run report: {os.path.basename(os.path.abspath(out))}', '',
             f'Data `{data}`, target `{split}`. Target labels, where present, are used only for this report.', '',
             '## Per round', '',
             '| round | ' + ' | '.join(f'{n} held-out F1' for n in names) +
             ' | ensemble held-out P / R / F1 / IoU | target P / R / F1 / IoU |',
             '|---' * (len(names) + 3) + '|']
    for e in metrics['rounds']:
        h, t = e['holdout'], e['target']
        four = lambda s: '–' if s is None else ' / '.join(pct(s[k]) for k in ('precision', 'recall', 'f1', 'iou'))
        lines.append(f"| {e['round']} | " + ' | '.join(pct(e['models'][n]['holdout_f1']) for n in names) +
                     f' | {four(h)} | {four(t)} |')
    lines += ['', '## Pseudo-labels', '', '| round | landslide % | ignored % | changed since previous round % |',
              '|---|---|---|---|']
    lines += [f"| {e['round']} | {pct(e['pseudo']['positive'])} | {pct(e['pseudo']['ignored'])} | "
              f"{pct(e['pseudo']['changed'])} |" for e in metrics['rounds']]
    if 'of_landslide' in metrics['rounds'][0]['pseudo']:
        lines += ['', 'Against the target labels (reported, never used): what the pseudo-labels made of the true '
                  'landslide pixels, and the share of true background labelled landslide.', '',
                  '| round | landslide % | ignored % | background % | background labelled landslide % |',
                  '|---|---|---|---|---|']
        lines += [f"| {e['round']} | " + ' | '.join(pct(e['pseudo']['of_landslide'][k]) for k in
                                                    ('landslide', 'ignored', 'background')) +
                  f" | {pct(e['pseudo']['background_as_landslide'])} |" for e in metrics['rounds']]
    lines += ['', '## Band statistics (Figure 2 of the paper)', '', '![band statistics](bands.png)', '',
              'Per band (B1…B12, slope, DEM, left to right), a box from mean − std to mean + std with a black '
              f'line at the mean, source blue and target orange ({split}), in units of the source std, clipped '
              'at ±4; grey lines at ±1 and ±2. Left: both normalized '
              'with source statistics. Right: separated normalization, each domain with its own.', '',
              '## Quicklooks', '',
              'Each strip: true colour (B4, B3, B2)' + (', ground truth (green)' if mpaths else '') +
              ', then the prediction of every round (red), round 0 first.', '']
    lines += [f'**patch {n}**\n\n![patch {n}](quicklook_{n}.png)\n' for n in looks]
    L.atomic_write(os.path.join(out, 'report.md'), lambda t: open(t, 'w').write('\n'.join(lines) + '\n'))


if __name__ == '__main__':
    run = sys.argv[1]
    cfg, m = json.load(open(os.path.join(run, 'config.json'))), json.load(open(os.path.join(run, 'metrics.json')))
    write_report(run, cfg['data'], cfg['target'], len(m['rounds']) - 1)
    print(f"wrote {os.path.join(run, 'report.md')}")
