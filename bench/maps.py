"""Benchmarks of mapped Sentinel-2 products (docs/mapping.md holds the figures):

    python -m bench.maps products [--run runs/demo]   # --s2 L1C / L2A against the scene stacked
    python -m bench.maps clouds [--run runs/demo]     # cloudy products: clouds called landslide,
                                                      # clear land lost, F1 on the clear land
    python -m bench.maps events [--run runs/demo]     # before/after: F1 of the new landslides
    python -m bench.maps adapt [--run runs/demo]      # --adapt and its control, two shifts

Each maps synthetic products (synthetic/product.py) with predict.py against their truth; a product
is written once into --out and reused, as are the maps, so an interrupted run resumes.
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np

import landslide as L
import predict
from mapping import change, scene as S, sentinel2
from synthetic import event, product

COVERS = (0.1, 0.3, 0.6)
CIRRUS = ['edges', 'cirrus']                       # L1C read with its thin cirrus taken out
OTHER_CORRECTIONS = (('edges', 'cirrus'), ('cirrus',), ())   # besides scene.CORRECT
COMMANDS = ('products', 'clouds', 'events')


def products(run, out, seeds, size):
    """F1 against the truth of synthetic scenes mapped three ways: pre-stacked (the scene as the
    generator wrote it), through --s2 from its L1C and L2A products (DN rounding, bands at 20
    and 60 m resampled, the DEM through 30 m in EPSG:4326, slope by Horn's method), and
    pre-stacked with B10 filled as L2A fills it (the networks trained with B10)."""
    lines = ['| seed | pre-stacked | --s2 L1C | --s2 L2A | pre-stacked, B10 filled |',
             '|---|---|---|---|---|']
    for seed in range(seeds):
        f1 = {}
        for level in ('L1C', 'L2A'):
            p = product_once(os.path.join(out, f'seed{seed}-{level}'), size, seed, level)
            name = sentinel2.open_product(p['product'])['name']
            f1[level] = map_f1(run, ['--s2', p['product'], '--dem', p['dem']], p['truth'],
                               os.path.join(out, f'maps-{seed}-{level}'), name)
        scene = os.path.join(out, f'seed{seed}-L1C', 'scene.tif')
        f1['pre'] = map_f1(run, ['--scene', scene], p['truth'],
                           os.path.join(out, f'maps-{seed}-pre'), 'scene')
        filled = os.path.join(out, f'seed{seed}-b10', 'scene.tif')
        if not os.path.exists(filled):
            fill_b10(scene, filled)
        f1['b10'] = map_f1(run, ['--scene', filled], p['truth'],
                           os.path.join(out, f'maps-{seed}-b10'), 'scene')
        lines.append(f"| {seed} | {f1['pre']:.2f} | {f1['L1C']:.2f} | {f1['L2A']:.2f} | "
                     f"{f1['b10']:.2f} |")
        print(lines[-1], flush=True)
    table = '\n'.join(lines) + f'\n\nrun {run}; {size} x {size} scenes at shift 1.0.\n'
    print('\n' + table)
    L.atomic_write(os.path.join(out, 'products.md'), lambda t: open(t, 'w').write(table))


def map_f1(run, inputs, truth, out, name):
    """Map with predict.py against a true mask. -> pixel F1 %"""
    if not os.path.exists(os.path.join(out, 'metrics.json')):
        argv = ['--run', run, *inputs, '--truth', truth, '--out', out, '--device', 'cpu']
        assert predict.main(argv) == 0, argv
    return 100 * json.load(open(os.path.join(out, 'metrics.json')))[name]['pixels']['f1']


def fill_b10(src, dst):
    """A copy of a 14-band GeoTIFF with B10 one constant where the pixel has data."""
    import rasterio
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with rasterio.open(src) as f:
        x, prof = f.read(), f.profile
    x[9] = np.where(np.isfinite(x[9]), sentinel2.B10_FILL, x[9])
    with rasterio.open(dst, 'w', **prof) as f:
        f.write(x)


def product_once(d, size, seed, level, clouds=0.0, kind='product'):
    """A synthetic product (shift 1.0 of the domain kind) in folder d, unless one is there
    (written aside and renamed). -> dict(product, dem, truth, sky_truth, scene)"""
    if not os.path.isdir(d):
        product.synth_product(d + '.part', size, 1.0, seed, level, clouds=clouds, kind=kind)
        os.replace(d + '.part', d)
    p = {k: os.path.join(d, f'{k}.tif') for k in ('dem', 'truth', 'sky_truth')}
    p['scene'] = os.path.join(d, 'scene.tif')
    p['product'] = next(os.path.join(d, f) for f in os.listdir(d) if f.endswith('.SAFE'))
    return p


def mapped(run, p, out, buffer=0, stacked_in=None, fringe=1, detect=False, corrections=None):
    """The landslide map of product p (predict.py --s2, --cloud-buffer buffer, --cloud-fringe
    fringe; with detect, a copy of p without its masks mapped with --detect-clouds; read with
    --corrections, when given), made once into out; with stacked_in (a folder where p was
    mapped), its stack mapped with the cloud mask left out. -> uint8 [H, W]"""
    name = sentinel2.open_product(p['product'])['name']
    if stacked_in:
        os.makedirs(out, exist_ok=True)
        stack = os.path.join(out, f'{name}.tif')
        if not os.path.exists(stack):
            os.link(os.path.join(stacked_in, f'{name}.tif'), stack)   # the same stack, no mask
        args = ['--scene', stack]
    elif detect:
        bare = os.path.join(out + '-product', os.path.basename(p['product']))
        if not os.path.exists(bare):
            shutil.copytree(p['product'], bare, ignore=lambda d, names: [
                n for n in names if 'MSK_' in n or '_SCL_' in n])
        args = ['--s2', bare, '--dem', p['dem'], '--detect-clouds']
    else:
        args = ['--s2', p['product'], '--dem', p['dem'], '--cloud-buffer', str(buffer),
                '--cloud-fringe', str(fringe)]
    args += [] if corrections is None else ['--corrections', *corrections]
    if not os.path.exists(os.path.join(out, 'summary.json')):
        assert predict.main(['--run', run, *args, '--out', out, '--device', 'cpu']) == 0, args
    return S.read_output(os.path.join(out, f'{name}_landslide.tif'), 'landslide')


def cloud_scores(mask, clean, truth, sky):
    """What clouds did to a map. mask, clean: the maps of the cloudy product and of the same
    product without clouds, uint8 [H, W]; truth: landslide bool [H, W]; sky: sky.TRUTH indices.
    -> dict of percentages: landslide called on cloud / cirrus / shadow / any of them (true
    landslide pixels left out), clear land not analysed, F1 on the clear land analysed for
    both maps, and the cloudy map's F1 as a share of the clean one's"""
    data = (mask != 255) & (clean != 255)
    out = {}
    for k, kind in enumerate(('cloud', 'cirrus', 'shadow', 'sky'), 1):
        on = (sky == k if kind != 'sky' else sky > 0) & data & ~truth
        out[f'on_{kind}'] = 100 * float((mask[on] == 1).mean()) if on.any() else float('nan')
    clear = (sky == 0) & data
    out['clear_lost'] = 100 * float((mask[clear] == 254).mean())
    seen = clear & (mask < 254)
    f1 = [100 * L.scores(*L.confusion(m[seen] == 1, truth[seen]))['f1'] for m in (mask, clean)]
    out['f1_cloudy'], out['f1_clean'] = f1
    out['f1_ratio'] = f1[0] / f1[1] if f1[1] > 0 else float('nan')
    return out


def free_scores(clean, truth):
    """The cloud-free product's own F1 over its pixels with data, in cloud_scores' keys (the
    rest NaN). clean: uint8 [H, W] map; truth: landslide bool [H, W]. -> dict"""
    data = clean != 255
    f1 = 100 * L.scores(*L.confusion(clean[data] == 1, truth[data]))['f1']
    return dict.fromkeys(('on_cloud', 'on_cirrus', 'on_shadow', 'on_sky', 'clear_lost',
                          'f1_cloudy', 'f1_ratio'), float('nan')) | {'f1_clean': f1}


def clouds(run, out, seeds=3, size=768, covers=COVERS, buffers=(0,), levels=('L2A', 'L1C'),
           fringes=(1,)):
    """Cloudy synthetic products at each cover, level and seed, mapped with their cloud masks
    (each --cloud-buffer and --cloud-fringe given) and, at cover 0.3, with the masks left out
    and with the masks taken away and --detect-clouds (also on the cloud-free product, cover 0);
    against the same product without clouds; and each cloud-free product's own F1 (a remedy
    must not cost it). Level-1C also read with each other set of predict.py --corrections (B1
    as the product holds it beside clouds; its thin cirrus taken out, against the cloud-free
    map made so too). Prints and writes the table of means over seeds."""
    rows = {}
    for level in levels:
        for seed in range(seeds):
            base = os.path.join(out, f'{level}-seed{seed}')
            p0 = product_once(base + '-clear', size, seed, level)
            clean = mapped(run, p0, base + '-clear-map')
            rows.setdefault((level, 0.0, 'cloud-free product'), []).append(
                free_scores(clean, S.read_output(p0['truth'], 'mask') == 1))
            if level == 'L1C':
                cleared = mapped(run, p0, base + '-clear-map-cirrus', corrections=CIRRUS)
                rows.setdefault((level, 0.0, 'cloud-free product, cirrus corrected'),
                                []).append(free_scores(cleared, S.read_output(p0['truth'],
                                                                              'mask') == 1))
            m = mapped(run, p0, base + '-clear-detect', detect=True)   # what the tests take
            s = cloud_scores(m, clean, S.read_output(p0['truth'], 'mask') == 1, np.zeros_like(m))
            rows.setdefault((level, 0.0, 'no masks, --detect-clouds'), []).append(s)
            for cover in covers:
                p = product_once(f'{base}-cover{cover}', size, seed, level, cover)
                truth = S.read_output(p['truth'], 'mask') == 1
                sky = S.read_output(p['sky_truth'], 'mask')
                arms = [(f'buffer {b}, fringe {f}', f'b{b}-f{f}', dict(buffer=b, fringe=f))
                        for b in buffers for f in fringes]
                first = f'{base}-cover{cover}-{arms[0][1]}'
                if level == 'L1C':
                    arms += [(f"--corrections {' '.join(k) or '(none)'}",
                              'corr-' + ('-'.join(k) or 'none'), dict(corrections=list(k)))
                             for k in OTHER_CORRECTIONS]
                if cover == 0.3:
                    arms.append(('masks left out', 'nomask', dict(stacked_in=first)))
                    arms.append(('no masks, --detect-clouds', 'detect', dict(detect=True)))
                for arm, slug, kw in arms:
                    m = mapped(run, p, f'{base}-cover{cover}-{slug}', **kw)
                    cir = 'cirrus' in kw.get('corrections', S.CORRECT)
                    s = cloud_scores(m, cleared if cir else clean, truth, sky)
                    rows.setdefault((level, cover, arm), []).append(s)
                    print(level, seed, cover, arm, {k: round(v, 2) for k, v in s.items()},
                          flush=True)
    table = cloud_table(rows) + f'\nrun {run}; {size} x {size} products at shift 1.0, ' \
        f'{seeds} seeds.\n'
    print('\n' + table)
    L.write_json(os.path.join(out, 'clouds.json'), {' / '.join(map(str, k)): v
                                                    for k, v in rows.items()})
    L.atomic_write(os.path.join(out, 'clouds.md'), lambda t: open(t, 'w').write(table))


def cloud_table(rows):
    """Markdown: per level, cover and arm the means over seeds of cloud_scores."""
    keys = ['on_cloud', 'on_cirrus', 'on_shadow', 'on_sky', 'clear_lost', 'f1_cloudy',
            'f1_clean', 'f1_ratio']
    lines = ['| level | cover | arm | landslide on cloud % | on cirrus % | on shadow % | on any '
             '% | clear land lost % | F1 clear, cloudy | F1 clear, no clouds | ratio |',
             '|---' * 11 + '|']
    for (level, cover, arm), v in rows.items():
        m = [np.nanmean([s[k] for s in v]) if any(s[k] == s[k] for s in v) else None
             for k in keys]
        lines.append(f'| {level} | {cover} | {arm} | ' + ' | '.join(
            '–' if x is None else f'{x:.3f}' if k == 'f1_ratio' else f'{x:.2f}'
            for k, x in zip(keys, m)) + ' |')
    return '\n'.join(lines) + '\n'


# ----------------------------------------------------------------------------- events
def events(run, out, seeds=3, size=768, level='L2A', clouds=0.0):
    """Synthetic events (synthetic/event.py) mapped with predict.py --before once, then dated by
    every change rule from the same two maps; against the single-date map of the after-date and
    rdNDVI at its best threshold on the truth (an upper bound for that baseline). Prints and
    writes the table of means over seeds: F1 of the new landslides, and the share of earlier
    scars and of cleared ground called new."""
    rows = {}
    for seed in range(seeds):
        d = os.path.join(out, f'{level}-clouds{clouds}-seed{seed}')
        if not os.path.isdir(d):
            event.synth_event(d + '.part', size, seed, level, clouds)
            os.replace(d + '.part', d)
        prods = {k: next(os.path.join(d, k, f) for f in os.listdir(os.path.join(d, k))
                         if f.endswith('.SAFE')) for k in ('after', 'before')}
        maps = os.path.join(d, 'maps')
        if not os.path.exists(os.path.join(maps, 'summary.json')):
            assert predict.main(['--run', run, '--s2', prods['after'], '--before',
                                 prods['before'], '--dem', os.path.join(d, 'dem.tif'),
                                 '--out', maps, '--device', 'cpu']) == 0
        info = next(iter(json.load(open(os.path.join(maps, 'summary.json'))).values()))
        sc = {k: S.Scene(info['scene'] if k == 'after' else info['before']['scene'])
              for k in ('after', 'before')}
        truth = S.read_output(os.path.join(d, 'truth.tif'), 'mask')
        after_map = S.read_output(os.path.join(maps, f"{sc['after'].name}_landslide.tif"),
                                  'landslide')
        single = np.where((after_map >= 1) & (after_map <= 3), 1, after_map).astype(np.uint8)
        before_map = S.read_output(os.path.join(maps, f"{sc['before'].name}_landslide.tif"),
                                   'landslide')
        arms = {'single date (the after-date)': single}
        for rule in change.RULES:
            arms[rule] = change.classify(single, before_map, sc['after'], sc['before'], rule)[0]
        seen = (single < 254) & (before_map < 254)
        arms['rdNDVI, best threshold on the truth'] = rdndvi_best(sc['after'], sc['before'],
                                                                  truth, seen, single)
        for arm, m in arms.items():
            rows.setdefault(arm, []).append(event_scores(m, truth, seen))
            print(seed, arm, {k: round(v, 2) for k, v in rows[arm][-1].items()}, flush=True)
    table = event_table(rows) + f'\nrun {run}; {size} x {size} {level} events at shift 1.0, ' \
        f'clouds {clouds}, {seeds} seeds.\n'
    print('\n' + table)
    L.write_json(os.path.join(out, f'events-{level}-clouds{clouds}.json'), rows)
    L.atomic_write(os.path.join(out, f'events-{level}-clouds{clouds}.md'),
                   lambda t: open(t, 'w').write(table))


def event_scores(m, truth, seen):
    """m: a map's classes (1 new), truth: event.TRUTH indices, seen: bool, the pixels
    both dates analysed (where a map can date a landslide). -> percentages over them: F1 of the
    new landslides, earlier scars and cleared ground called new."""
    f1 = 100 * L.scores(*L.confusion(m[seen] == 1, truth[seen] == 1))['f1']
    called = {k: 100 * float((m[seen & (truth == v)] == 1).mean()) for k, v in
              (('earlier_called_new', 2), ('cleared_called_new', 3))}
    return dict(f1_new=f1, **called)


def rdndvi_best(after, before, truth, seen, single):
    """rdNDVI = (NDVI_after - NDVI_before) / sqrt(NDVI_after + NDVI_before) x 100 (HazMapper),
    new where it falls below -t, t chosen on the truth for the best F1: an upper bound for the
    baseline. -> classes uint8 [H, W] (1 new, 254 where a date saw nothing)"""
    na, nb = change.ndvi(after.rows(0, after.H)), change.ndvi(before.rows(0, before.H))
    with np.errstate(invalid='ignore'):
        rd = (na - nb) / np.sqrt(na + nb) * 100
    ok = seen & np.isfinite(rd)
    best, out = -1.0, None
    for t in np.arange(0, 101, 2.5):
        m = np.where(ok, rd < -t, 254).astype(np.uint8)
        f1 = L.scores(*L.confusion(m[ok] == 1, truth[ok] == 1))['f1']
        if f1 > best:
            best, out = f1, m
    return out


def event_table(rows):
    """Markdown: per arm the means over seeds of event_scores."""
    lines = ['| map | F1 of new landslides % | earlier scars called new % | cleared ground '
             'called new % |', '|---|---|---|---|']
    for arm, v in rows.items():
        m = [np.mean([s[k] for s in v]) for k in ('f1_new', 'earlier_called_new',
                                                  'cleared_called_new')]
        lines.append(f'| {arm} | ' + ' | '.join(f'{x:.1f}' for x in m) + ' |')
    return '\n'.join(lines) + '\n'


# ----------------------------------------------------------------------------- adapting
SHIFTS = {'product': 'product', 'strong': 'all'}      # name: synthetic domain kind, shift 1.0
# the H200's training images/s per network at 512² and its mapping patches/s (docs/speed.md)
H200 = dict(unet=153.4, resunet=121.9, attunet=132.5, predict=141.0, tile_map_s=119.0)


def adapt_bench(run, out, seeds=3, size=768, rounds=3):
    """Synthetic L2A products at two shifts — the product generator's own (a few percent of
    sensor gain) and a strong one (the patch benchmarks' shift 1.0) — mapped plainly (the run
    with AdaBN), with --adapt and with its control (the same training on source labels only),
    every round of each mapped. Prints and writes the table: F1 against the truth, the
    label-free signs, the seconds of each adaptation; then the paper-sized projection."""
    rows = []
    for shift, kind in SHIFTS.items():
        for seed in range(seeds):
            d = os.path.join(out, f'{shift}-seed{seed}')
            p = product_once(os.path.join(d, 'product'), size, seed, 'L2A', kind=kind)
            name = sentinel2.open_product(p['product'])['name']
            s2 = ['--s2', p['product'], '--dem', p['dem']]
            row = dict(shift=shift, seed=seed,
                       plain=map_f1(run, s2, p['truth'], os.path.join(d, 'plain'), name))
            for arm in ('adapt', 'control'):
                maps = os.path.join(d, arm)
                flags = ['--adapt', '--adapt-rounds', str(rounds)] + \
                    (['--control'] if arm == 'control' else [])
                last = map_f1(run, s2 + flags, p['truth'], maps, name)
                info = json.load(open(os.path.join(maps, 'summary.json')))[name]['adapt']
                stack = ['--scene', os.path.join(maps, f'{name}.tif')]
                row[arm] = [map_f1(info['run'], stack + ['--round', str(r)], p['truth'],
                                   os.path.join(maps, f'round{r}'), name)
                            for r in range(1, rounds)] + [last]
                row[f'{arm}_signs'], row[f'{arm}_s'] = info['signs'], info['seconds']
            rows.append(row)
            print(adapt_line(row), flush=True)
    table = adapt_table(rows, rounds) + projection(rounds) + \
        f'\nrun {run}; {size} x {size} L2A products; {os.cpu_count()} CPU cores.\n'
    print('\n' + table)
    L.write_json(os.path.join(out, 'adapt.json'), rows)
    L.atomic_write(os.path.join(out, 'adapt.md'), lambda t: open(t, 'w').write(table))


def adapt_line(r):
    """One product's row: F1 plain, each round adapted, each round of the control; the adapted
    run's label-free signs at its last round; seconds of adaptation."""
    s = r['adapt_signs'][-1]
    signs = ' / '.join(f'{100 * v:.2f}' for v in (s['pseudo_positive'], s['changed'],
                                                  s['agreement']))
    return (f"| {r['shift']} | {r['seed']} | {r['plain']:.1f} | "
            + ' → '.join(f'{v:.1f}' for v in r['adapt']) + ' | '
            + ' → '.join(f'{v:.1f}' for v in r['control'])
            + f" | {signs} | {r['adapt_s']:.0f} / {r['control_s']:.0f} |")


def adapt_table(rows, rounds):
    """Markdown: every product's line, then the means per shift."""
    lines = [f'| shift | seed | plain | --adapt, rounds 1 → {rounds} | control, rounds 1 → '
             f'{rounds} | pseudo+ / changed / agree % (last round) | seconds, adapt / control |',
             '|---' * 7 + '|'] + [adapt_line(r) for r in rows]
    for shift in SHIFTS:
        mine = [r for r in rows if r['shift'] == shift]
        if not mine:
            continue
        mean = {k: np.mean([r[k] for r in mine], 0) for k in ('plain', 'adapt', 'control')}
        ahead = sum(r['adapt'][-1] > r['control'][-1] for r in mine)
        lines.append(f"| **{shift}, mean** | {len(mine)} seeds | {mean['plain']:.1f} | "
                     + ' → '.join(f'{v:.1f}' for v in mean['adapt']) + ' | '
                     + ' → '.join(f'{v:.1f}' for v in mean['control'])
                     + f' | --adapt above the control on {ahead} of {len(mine)} | |')
    return '\n'.join(lines) + '\n'


def projection(rounds, tiles=1000, train=3419, steps=300):
    """The paper's networks adapting to a full tile on one H200, from its measured rates: the
    run's own length (20 epochs over source and target tiles) and --adapt-steps 300."""
    own = 20 * -(-(train + tiles) // 16)                      # refine.train_one's count
    out = []
    for label, n in ((f'its own length ({own} steps)', own), (f'--adapt-steps {steps}', steps)):
        train_s = sum(n * 16 / H200[m] for m in ('unet', 'resunet', 'attunet'))
        looks = (rounds + 1) * 2 * 3 * tiles / H200['predict']   # AdaBN + predicting, per round
        minutes = (rounds * train_s + looks + H200['tile_map_s']) / 60
        out.append(f'{label}: {minutes:.0f} min')
    return ('\nProjected for the paper\'s networks (width 64, scale 4) adapting to a full tile '
            f'({tiles} tiles, {rounds} rounds) and mapping it on one H200, from its measured '
            'rates (not measured): ' + '; '.join(out) + '.\n')


# ----------------------------------------------------------------------------- command line
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    pr = sub.add_parser('products', help='F1 of products mapped via --s2 vs pre-stacked, B10')
    pr.add_argument('--run', default='runs/demo', help='a trained run [default: runs/demo]')
    pr.add_argument('--seeds', type=int, default=3)
    pr.add_argument('--size', type=int, default=768)
    pr.add_argument('--out', default='runs/bench-products')
    cl = sub.add_parser('clouds', help='cloudy products: clouds called landslide, clear land lost')
    cl.add_argument('--run', default='runs/demo', help='a trained run [default: runs/demo]')
    cl.add_argument('--seeds', type=int, default=3)
    cl.add_argument('--size', type=int, default=768)
    cl.add_argument('--covers', type=float, nargs='+', default=list(COVERS))
    cl.add_argument('--buffers', type=int, nargs='+', default=[0],
                    help='--cloud-buffer values to compare [default: 0]')
    cl.add_argument('--fringes', type=int, nargs='+', default=[1],
                    help='--cloud-fringe values to compare [default: 1]')
    cl.add_argument('--levels', nargs='+', choices=['L2A', 'L1C'], default=['L2A', 'L1C'])
    cl.add_argument('--out', default='runs/bench-clouds')
    ev = sub.add_parser('events', help='before/after pairs: F1 of the new landslides per rule')
    ev.add_argument('--run', default='runs/demo', help='a trained run [default: runs/demo]')
    ev.add_argument('--seeds', type=int, default=3)
    ev.add_argument('--size', type=int, default=768)
    ev.add_argument('--level', choices=['L2A', 'L1C'], default='L2A')
    ev.add_argument('--clouds', type=float, default=0.0)
    ev.add_argument('--out', default='runs/bench-events')
    ad = sub.add_parser('adapt', help='--adapt and its control against the plain map, two shifts')
    ad.add_argument('--run', default='runs/demo', help='a trained run [default: runs/demo]')
    ad.add_argument('--seeds', type=int, default=3)
    ad.add_argument('--size', type=int, default=768)
    ad.add_argument('--rounds', type=int, default=3, help='adaptation rounds, each one mapped')
    ad.add_argument('--out', default='runs/bench-adapt')
    args = ap.parse_args(argv)
    if args.cmd == 'products':
        products(args.run, args.out, args.seeds, args.size)
    elif args.cmd == 'adapt':
        adapt_bench(args.run, args.out, args.seeds, args.size, args.rounds)
    elif args.cmd == 'events':
        events(args.run, args.out, args.seeds, args.size, args.level, args.clouds)
    else:
        clouds(args.run, args.out, args.seeds, args.size, args.covers, args.buffers, args.levels,
               args.fringes)
    return 0


if __name__ == '__main__':
    sys.exit(main())
