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


def png_bytes(rgb):
    """rgb: uint8 [H, W, 3] -> the bytes of a PNG file (8-bit truecolour, no filtering)."""
    h, w, _ = rgb.shape
    raw = b''.join(b'\x00' + rgb[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', zlib.crc32(tag + data))
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) +
            chunk(b'IDAT', zlib.compress(raw, 6)) + chunk(b'IEND', b''))


def write_png(path, rgb):
    data = png_bytes(np.ascontiguousarray(rgb, np.uint8))
    L.atomic_write(path, lambda t: open(t, 'wb').write(data))


def write_text(path, text):
    L.atomic_write(path, lambda t: open(t, 'w').write(text))


def true_colour(rgb, valid=None):
    """rgb: [H, W, 3] B4, B3, B2 -> uint8 [H, W, 3], stretched 2-98 % over the valid pixels
    (all by default); invalid pixels black."""
    rgb = np.nan_to_num(np.asarray(rgb, np.float64))
    valid = np.ones(rgb.shape[:2], bool) if valid is None else valid
    lo, hi = 0.0, 1.0
    if valid.any():
        lo, hi = np.percentile(rgb[valid], 2), np.percentile(rgb[valid], 98)
    out = (255 * np.clip((rgb - lo) / max(hi - lo, 1e-9), 0, 1)).astype(np.uint8)
    out[~valid] = 0
    return out


def overlay(rgb, mask, colour=(255, 40, 40)):
    """Landslide pixels painted over a dimmed image. mask: [128, 128] in {0, 1}"""
    out = (rgb * 0.6).astype(np.uint8)
    out[mask == 1] = colour
    return out


BAND_NAMES = ['B1', 'B2', 'B3', 'B4', 'B5', 'B6', 'B7', 'B8', 'B9', 'B10', 'B11', 'B12',
              'slope', 'DEM']
HEX = {'blue': '#3c6ec8', 'orange': '#f08c28', 'grey': '#c8c8c8', 'green': '#3a9a3a'}


def svg(width, height, body):
    """An SVG document (text in a sans-serif font) around the given elements."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="sans-serif" font-size="11">\n'
            f'<rect width="100%" height="100%" fill="white"/>\n' + '\n'.join(body) + '\n</svg>\n')


def panel(x0, y0, w, h, ylo, yhi, yticks, ylabel, title, xticks):
    """Axes of one chart. -> (elements, y(value) -> pixel); xticks: [(pixel x, label)]"""
    def y(v):
        return y0 + h - (min(max(v, ylo), yhi) - ylo) / (yhi - ylo) * h
    el = [f'<text x="{x0 + w / 2}" y="{y0 - 8}" text-anchor="middle" font-weight="bold">'
          f'{title}</text>',
          f'<text transform="translate({x0 - 38},{y0 + h / 2}) rotate(-90)" text-anchor="middle">'
          f'{ylabel}</text>']
    for t in yticks:
        el.append(f'<line x1="{x0}" x2="{x0 + w}" y1="{y(t):.1f}" y2="{y(t):.1f}" '
                  f'stroke="{HEX["grey"]}" stroke-width="0.6"/>')
        el.append(f'<text x="{x0 - 4}" y="{y(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    for px, label in xticks:
        el.append(f'<text x="{px:.1f}" y="{y0 + h + 14}" text-anchor="middle">{label}</text>')
    el.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="black" '
              f'stroke-width="0.8"/>')
    return el, y


def legend(x, y, items):
    """items: [(colour, label, dashed)] one under another."""
    el = []
    for i, (col, label, dash) in enumerate(items):
        yy = y + 14 * i
        dashes = ' stroke-dasharray="4,3"' if dash else ''
        el.append(f'<line x1="{x}" x2="{x + 18}" y1="{yy}" y2="{yy}" stroke="{col}" '
                  f'stroke-width="2.5"{dashes}/>')
        el.append(f'<text x="{x + 24}" y="{yy + 4}">{label}</text>')
    return el


def band_svg(stats, src, tgt):
    """Figure 2 of the paper: per band, mean ± std of source and target as boxes with the mean
    marked, in units of the source's std (clipped to ±4); left with the source statistics for
    both domains, right with separated normalization. -> SVG text"""
    ms, ss = np.array(stats[src]['mean']), np.array(stats[src]['std'])
    mt, st = np.array(stats[tgt]['mean']), np.array(stats[tgt]['std'])
    panels = [('both normalized with source statistics', (ms - ms) / ss, ss / ss, (mt - ms) / ss,
               st / ss),
              ('separated normalization', np.zeros(14), np.ones(14), np.zeros(14), np.ones(14))]
    body, w, h = [], 420, 200
    for p, (title, m0, s0, m1, s1) in enumerate(panels):
        x0 = 60 + p * (w + 70)
        step = w / 14
        el, y = panel(x0, 30, w, h, -4, 4, [-4, -2, 0, 2, 4], 'mean ± std (source std units)',
                      title, [(x0 + step * (b + 0.5), n) for b, n in enumerate(BAND_NAMES)])
        body += el
        for b in range(14):
            for k, (m, s, col) in enumerate(((m0, s0, HEX['blue']), (m1, s1, HEX['orange']))):
                bx = x0 + step * b + 4 + k * (step - 8) / 2
                top, bot = y(m[b] + s[b]), y(m[b] - s[b])
                body.append(f'<rect x="{bx:.1f}" y="{top:.1f}" width="{(step - 8) / 2:.1f}" '
                            f'height="{max(bot - top, 1):.1f}" fill="{col}"/>')
                body.append(f'<line x1="{bx:.1f}" x2="{bx + (step - 8) / 2:.1f}" '
                            f'y1="{y(m[b]):.1f}" y2="{y(m[b]):.1f}" stroke="black" '
                            f'stroke-width="1.5"/>')
    body += legend(60, 262, [(HEX['blue'], f'source ({L.SPLITS[src]})', False),
                             (HEX['orange'], f'target ({L.SPLITS[tgt]})', False)])
    return svg(60 + 2 * w + 80, 300, body)


def rounds_svg(metrics, src_share):
    """Per round: held-out and target F1 (left), and the pseudo-labels' landslide share against
    the source labels' share (right). -> SVG text"""
    rs = metrics['rounds']
    n, w, h = len(rs), 300, 180

    def xs(x0):
        return [x0 + w * (i + 0.5) / n for i in range(n)]
    series_f1 = [('held-out F1 (source)', HEX['blue'],
                  [e['holdout'] and e['holdout']['f1'] for e in rs]),
                 ('target F1 (labels used only here)', HEX['orange'],
                  [e['target'] and e['target']['f1'] for e in rs])]
    share = [e['pseudo']['positive'] for e in rs]
    top = max(share + [src_share]) * 100 * 1.25 or 1
    series_share = [('pseudo-labelled landslide', HEX['green'], share),
                    ('source labels', 'black', [src_share] * n)]
    body = []
    for p, (title, ylabel, hi, series) in enumerate([
            ('F1 per round', 'F1 %', 100, series_f1),
            ('pseudo-labels', 'landslide share of pixels %', top, series_share)]):
        x0 = 60 + p * (w + 90)
        ticks = [0, 25, 50, 75, 100] if hi == 100 else [round(hi * k / 4, 2) for k in range(5)]
        el, y = panel(x0, 30, w, h, 0, hi, ticks, ylabel, title,
                      [(x, str(e['round'])) for x, e in zip(xs(x0), rs)])
        body += el + [f'<text x="{x0 + w / 2}" y="{30 + h + 30}" text-anchor="middle">round</text>']
        for label, col, vals in series:
            pts = [(x, y(100 * v)) for x, v in zip(xs(x0), vals) if v is not None]
            dash = label == 'source labels'
            if len(pts) > 1:
                dashes = ' stroke-dasharray="4,3"' if dash else ''
                points = ' '.join(f'{a:.1f},{b:.1f}' for a, b in pts)
                body.append(f'<polyline fill="none" stroke="{col}" stroke-width="2"{dashes} '
                            f'points="{points}"/>')
            body += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{col}"/>'
                     for a, b in pts if not dash]
        body += legend(x0, 30 + h + 48, [(col, label, label == 'source labels')
                                         for label, col, vals in series
                                         if any(v is not None for v in vals)])
    return svg(60 + 2 * w + 100, 300, body)


def pct(v):
    return '–' if v is None else f'{100 * v:.2f}'


def four(s):
    """Precision / recall / F1 / IoU of a scores dict, or a dash."""
    if s is None:
        return '–'
    return ' / '.join(pct(s[k]) for k in ('precision', 'recall', 'f1', 'iou'))


def write_report(out, data, target, rounds, n_looks=4):
    """Write <out>/report.md and its pictures from the files of a run folder."""
    metrics = json.load(open(os.path.join(out, 'metrics.json')))
    stats = json.load(open(os.path.join(out, 'stats.json')))
    write_text(os.path.join(out, 'bands.svg'), band_svg(stats, 'train', target))
    src_share = metrics.get('source_share', 0.0)
    write_text(os.path.join(out, 'rounds.svg'), rounds_svg(metrics, src_share))
    looks, with_truth = write_quicklooks(out, data, target, rounds, n_looks)
    lines = round_lines(metrics, data, L.SPLITS[target], out)
    lines += pseudo_lines(metrics) + control_lines(out, metrics)
    lines += ['', '## Band statistics (Figure 2 of the paper)', '', '![band statistics](bands.svg)',
              '', 'Per band, a box from mean − std to mean + std with a black line at the mean, '
              'in units of the source std, clipped at ±4. Left: both domains normalized with '
              'source statistics. Right: separated normalization, each domain with its own.', '',
              '## Quicklooks', '',
              'Each strip: true colour (B4, B3, B2)'
              + (', ground truth (green)' if with_truth else '')
              + ', then the prediction of every round (red), round 0 first.', '']
    lines += [f'**patch {n}**\n\n![patch {n}](quicklook_{n}.png)\n' for n in looks]
    write_text(os.path.join(out, 'report.md'), '\n'.join(lines) + '\n')


def write_quicklooks(out, data, target, rounds, n_looks):
    """Strips of a few target patches: true colour, truth if any, each round's prediction.
    -> (patch numbers, whether the truth is shown)"""
    ids, ipaths, mpaths = L.list_split(data, target)
    looks = []
    for k in np.linspace(0, len(ids) - 1, min(n_looks, len(ids))).astype(int):
        n, rgb = ids[k], true_colour(L.read_image(ipaths[k])[..., [3, 2, 1]])
        row = [rgb] + ([overlay(rgb, L.read_mask(mpaths[k]), (40, 220, 40))] if mpaths else [])
        name = L.mask_name(ipaths[k])
        row += [overlay(rgb, L.read_mask(os.path.join(out, f'round{r}', 'masks', name)))
                for r in range(rounds + 1)]
        sep = np.full((128, 4, 3), 255, np.uint8)
        strip = np.concatenate(sum(([t, sep] for t in row), [])[:-1], 1)
        write_png(os.path.join(out, f'quicklook_{n}.png'),
                  np.kron(strip, np.ones((2, 2, 1), np.uint8)))
        looks.append(n)
    return looks, bool(mpaths)


def round_lines(metrics, data, split, out):
    """The report's title and per-round table."""
    names = list(metrics['rounds'][0]['models'])
    lines = [f'# Run report: {os.path.basename(os.path.abspath(out))}', '',
             f'Data `{data}`, target `{split}`. Target labels, where present, are used only for '
             f'this report.', '',
             '## Per round', '', '![F1 and pseudo-labels per round](rounds.svg)', '',
             '| round | ' + ' | '.join(f'{n} held-out F1' for n in names) +
             ' | ensemble held-out P / R / F1 / IoU | target P / R / F1 / IoU |',
             '|---' * (len(names) + 3) + '|']
    for e in metrics['rounds']:
        nets = ' | '.join(pct(e['models'][n]['holdout_f1']) for n in names)
        lines.append(f"| {e['round']} | {nets} | {four(e['holdout'])} | {four(e['target'])} |")
    return lines


def control_lines(out, metrics):
    """With target labels, and for a run that is not itself the control: the control beside it
    (the same training without pseudo-labels, sharing this run's round 0), its figures when it
    has run as <out>-control, else how to run it."""
    cfg = os.path.join(out, 'config.json')
    if not metrics['rounds'][0].get('target') or \
            (os.path.exists(cfg) and json.load(open(cfg)).get('control')):
        return []
    run = os.path.basename(os.path.abspath(out))
    ctl = run + '-control'                          # a folder beside this run's
    lines = ['', '## Against the control', '',
             "The refinement's gain counts only above the same training on source labels alone "
             '(`--control`): on our generator the default led it where round 0 left room, on most '
             'seeds by under 3 points; on an independent one it was level (docs/evidence.md).', '']
    path = os.path.join(os.path.dirname(os.path.abspath(out)), ctl, 'metrics.json')
    if os.path.exists(path):
        theirs = {e['round']: e['target']['f1'] for e in json.load(open(path))['rounds']}
        lines += [f'| round | this run, target F1 | {ctl}, target F1 |', '|---|---|---|']
        lines += [f"| {e['round']} | {pct(e['target']['f1'])} | {pct(theirs.get(e['round']))} |"
                  for e in metrics['rounds']]
        return lines
    return lines + [f'Run it beside this one, from the folder that holds `{run}` (it shares round '
                    '0):', '', '```bash', f'mkdir -p {ctl}/round0 && cp {run}/round0/*.pt '
                    f'{ctl}/round0/', f'python refine.py ... --control --out {ctl}   # its flags, '
                    'and --control', '```']


def pseudo_lines(metrics):
    """The pseudo-labels' label-free signs per round and, with target labels, how right."""
    lines = ['', '## Pseudo-labels, and whether refinement is working (no labels needed)', '',
             '| round | landslide % | ÷ source share | ignored % | changed since previous round '
             '% | networks agree on landslide pixels % |', '|---|---|---|---|---|---|']
    for e in metrics['rounds']:
        s = e['pseudo']
        lines.append(f"| {e['round']} | {pct(s['positive'])} | {s.get('vs_source', 0):.2f} | "
                     f"{pct(s['ignored'])} | {pct(s['changed'])} | {pct(s.get('agreement'))} |")
    lines += ['', "A landslide share far below the source labels' (÷ source share under 0.5) that "
              'keeps falling, with agreement falling too, is the sign of erosion '
              '(docs/evidence.md).']
    if 'of_landslide' in metrics['rounds'][0]['pseudo']:
        lines += ['', 'Against the target labels (reported, never used): what the pseudo-labels '
                  'made of the true landslide pixels, and the share of true background labelled '
                  'landslide.', '',
                  '| round | landslide % | ignored % | background % | background labelled '
                  'landslide % |', '|---|---|---|---|---|']
        for e in metrics['rounds']:
            of = e['pseudo']['of_landslide']
            cells = ' | '.join(pct(of[k]) for k in ('landslide', 'ignored', 'background'))
            lines.append(f"| {e['round']} | {cells} | "
                         f"{pct(e['pseudo']['background_as_landslide'])} |")
    return lines


if __name__ == '__main__':
    run = sys.argv[1]
    cfg = json.load(open(os.path.join(run, 'config.json')))
    m = json.load(open(os.path.join(run, 'metrics.json')))
    write_report(run, cfg.get('target_data') or cfg['data'], cfg['target'], len(m['rounds']) - 1)
    print(f"wrote {os.path.join(run, 'report.md')}")
