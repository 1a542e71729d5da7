"""Apply a trained run: the ensemble of one round predicts new Landslide4Sense patches, or maps
whole scenes tile by tile ("large-scale ... disaster monitoring", paper §1).

New data is its own domain: its per-band statistics are computed from it and used to normalize
it (separated normalization, paper §2.1), so raw Sentinel-2 values, reflectance and the
competition's mean-divided values all work.

    python predict.py --s2 PRODUCT.zip --dem dem.tif --out OUT   # the shipped model, no training
    python predict.py --run runs/demo --data DIR --split test --out OUT        # patches
    python predict.py --run runs/demo --scene a.tif b.h5 c.npy --out OUT       # whole scenes
    python predict.py --run RUN --s2 S2B_MSIL2A_...zip --dem dem.tif --out OUT  # Sentinel-2
    python predict.py --run RUN --s2 ... --dem dem.tif --out OUT --adapt     # refined to it first
    torchrun --nproc_per_node 4 predict.py --run RUN --scene ... --out OUT     # a share each

Scenes are mapped tile by tile (mapping/tiles.py); a Sentinel-2 product and a DEM are stacked
into one first (mapping/sentinel2.py). Each mapped scene also gets its landslides as polygons,
and with --truth its metrics against a true mask (mapping/polygons.py). With --adapt the run is
first refined with the imagery being mapped as its target domain (paper §2.3; mapping/adapt.py).
"""
import argparse
import fcntl
import json
import os
import re
import sys
import time

import torch

import landslide as L
import refine
import rundir
from mapping import adapt, aoi, change, dem, polygons, provenance, scene as S, sentinel2, tiles

# the model this repository ships (mapping/pack.py made it; its MODEL_CARD.md says how)
SHIPPED = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'pretrained',
                       'landslides-synthetic')
DEFAULTS = dict(overlap=L.SIZE // 4, nodata=None, device='auto', log_every=5.0, cloud_buffer=0,
                cloud_fringe=1,
                adapt_rounds=3, adapt_tiles=1000)


# ----------------------------------------------------------------------------- the trained run

def load_run(run, rnd, dev):
    """Round `rnd`'s ensemble (default: the last finished round) of a run folder.
    -> (models, settings namespace with scale and batch_size, round)"""
    cpath = os.path.join(run, 'config.json')
    if not os.path.isfile(cpath):
        raise L.DataError(f'{run}: not a run folder (no config.json)')
    cfg = json.load(open(cpath))
    names = [m for m in cfg['models'].split(',') if m]
    listed = read_json(run, 'metrics.json').get('rounds', [])      # a packed run: no masks
    done = sorted({int(f[5:]) for f in os.listdir(run) if re.fullmatch(r'round\d+', f) and
                   os.path.isdir(os.path.join(run, f, 'masks'))} | {e['round'] for e in listed})
    if rnd is None:
        if not done:
            raise L.DataError(f'{run}: no finished round (a round is finished when '
                              'round<k>/masks exists or metrics.json lists it)')
        rnd = done[-1]
    elif rnd not in done:
        raise L.DataError(f"{run}: round {rnd} is not finished (finished: "
                          f"{', '.join(map(str, done)) or 'none'})")
    models = []
    for name in names:
        path = os.path.join(run, f'round{rnd}', f'{name}.pt')
        if not os.path.isfile(path):
            raise L.DataError(f'{path}: checkpoint missing')
        try:
            models.append(rundir.load_model(path, dev)[0])
        except Exception as e:
            raise L.DataError(f'{path}: not a readable checkpoint, truncated or corrupt? '
                              f'({e.__class__.__name__})')
    c = argparse.Namespace(scale=cfg['scale'], batch_size=cfg['batch_size'], models=names,
                           adabn=cfg.get('adabn', False))
    return models, c, rnd


# ----------------------------------------------------------------------------- patches

def predict_patches(models, c, data, split, out, dev, adapted=None):
    """A Landslide4Sense split, normalized with its own statistics: masks, submission, metrics
    (with what summary.json records of an adaptation, adapted)."""
    ids, ip, mp = L.check_split(data, split)
    print(f'separated normalization: {L.SPLITS[split]} is its own domain; band statistics of '
          f'its {len(ip)} patches...')
    stats = L.band_stats(ip)
    X, seen = L.load_images(ip, stats, with_seen=True)
    if c.adabn:                                             # and so are its BatchNorm statistics
        models = refine.adapt_bn(models, [X if seen.all() else (X, seen)], c, dev)
    prob = refine.predict(models, X, c, dev)
    masks = (prob >= 0.5).to(torch.uint8)
    os.makedirs(out, exist_ok=True)
    L.write_masks(os.path.join(out, 'masks'), [L.mask_name(p) for p in ip], masks.numpy())
    L.write_zip(os.path.join(out, 'submission.zip'), os.path.join(out, 'masks'))
    metrics = {'split': L.SPLITS[split], 'patches': len(ip), 'nonfinite': stats['nonfinite'],
               'scores': L.scores(*L.confusion(masks, L.load_masks(mp))) if mp else None,
               'adapt': adapted}
    L.write_json(os.path.join(out, 'metrics.json'), metrics)
    if metrics['scores']:
        print('precision {precision:.4f}  recall {recall:.4f}  F1 {f1:.4f}  '
              'IoU {iou:.4f}'.format(**metrics['scores']))
    print(f"{len(ip)} masks in {os.path.join(out, 'masks')}; {os.path.join(out, 'submission.zip')}")


# ----------------------------------------------------------------------------- scenes

def map_scenes(models, c, jobs, out, args, dev, rnd, opts=None):
    """Every scene of this process's share (all of them without torchrun), a Sentinel-2 product
    stacked first (into <out>/<name>.tif, reused when there), skipping those that a killed run
    already finished; summary.json gets a line per scene, metrics.json one per scene with a
    true mask. jobs: [(name, Scene or product path, true mask path or None, before-date product
    or None)]; opts: --adapt's settings (adapt_options), or None."""
    rank, world = int(os.environ.get('RANK', 0)), int(os.environ.get('WORLD_SIZE', 1))
    os.makedirs(out, exist_ok=True)
    L.sweep(out)

    def log(line):
        print(line if world == 1 else f'[{rank}] {line}', flush=True)
    for name, src, truth, before in jobs[rank::world]:
        if name in read_json(out, 'summary.json'):
            log(f'{name}: finished earlier, skipped')
            continue
        sc = src if isinstance(src, S.Scene) else \
            sentinel2.stacked(src, args.dem, out, name, log, args.cloud_buffer,
                              fringe=args.cloud_fringe, detect=args.detect_clouds,
                              corrections=args.corrections, area=args.area)
        ens, adapted = (models, c), None
        made_of = provenance.record(dict(provenance=dict(kind='scene', id=sc.name, path=sc.path))
                                    if isinstance(src, S.Scene) else sentinel2.open_product(src),
                                    args.dem, args.run, rnd, args.area)
        sc.provenance = provenance.tags(made_of)
        if opts:                                    # the scene's own tiles as the target
            target = adapt.scene_target(args.run, sc.path, os.path.join(out, f'{name}_target'),
                                        truth, opts['tiles'], args.corrections)
            arm = os.path.join(out, f"{name}_{'control' if opts['control'] else 'adapted'}")
            a_models, a_c, adapted = adapted_run(args.run, rnd, target, 'test', arm, opts, dev,
                                                 log)
            ens = (a_models, a_c)
        info = map_one(ens, sc, truth, before, out, args, dev, log)
        info.update(run=os.path.abspath(args.run), round=rnd, overlap=args.overlap,
                    scale=c.scale, models=c.models, nodata=args.nodata, threshold=0.5,
                    adapt=adapted, **made_of)
        info['input']['not_analysed_share'] = round(1 - info['analysed_share'], 4)
        if not isinstance(src, S.Scene):
            info['product'] = os.path.abspath(src)
        add_to(out, 'summary.json', name, info)
        km2 = ''
        if info['landslide_m2'] is not None:
            km2 = f" ({info['landslide_m2'] / 1e6:.3f} km²)"
        log(f"{name}: {info['landslide_pixels']} landslide pixels{km2}, {info['seconds']:.1f} s; "
            f"{', '.join(info['outputs'])}")
        sc.close()


def map_one(ens, sc, truth, before, out, args, dev, log):
    """One scene mapped by the ensemble ens (models, settings): with a before-date, that date
    first onto the scene's grid, then the two compared; then the polygons and, with a true
    mask, the metrics (metrics.json). -> what summary.json records of it"""
    models, c = ens
    pair = map_before(models, c, before, sc, out, args, dev, log) if before else None
    info = tiles.map_scene(models, c, sc, out, args.overlap, args.nodata, dev, log,
                           args.log_every)
    rgb = info.pop('quicklook_rgb')
    if pair:
        info['change'] = change.compare(sc, pair[0], out, rgb, args.change_rule, log)
        info['before'] = pair[1]
        pair[0].close()
    traced, metrics = polygons.trace_scene(sc, out, args.min_area, truth, log, bool(pair))
    if metrics:
        add_to(out, 'metrics.json', sc.name, metrics)
    return info | traced


def adapted_run(run, rnd, target_root, split, folder, opts, dev, log=print):
    """The run refined with target_root's split as its target domain (mapping/adapt.py) into
    folder, then loaded. -> (models, settings, what summary.json records of the adaptation)"""
    t0 = time.time()
    info = adapt.adapt(run, rnd, target_root, split, folder, opts, dev.type, log)
    models, c, _ = load_run(folder, None, dev)
    return models, c, info | {'seconds': round(time.time() - t0, 1)}


def map_before(models, c, product, after, out, args, dev, log):
    """The before-date stacked onto the after-date's grid and mapped as a domain of its own.
    -> (its Scene, what summary.json records of it)"""
    name = sentinel2.open_product(product)['name']
    grid = dict(crs=after.crs, transform=after.transform, width=after.W, height=after.H)
    bsc = sentinel2.stacked(product, args.dem, out, name, log, args.cloud_buffer, grid,
                            args.cloud_fringe, args.detect_clouds, args.corrections, args.area)
    info = tiles.map_scene(models, c, bsc, out, args.overlap, args.nodata, dev, log,
                           args.log_every)
    info.pop('quicklook_rgb')
    return bsc, info | {'product': os.path.abspath(product)}


def read_json(out, name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else {}


def add_to(out, name, key, info):
    """out/name (summary.json, metrics.json) maps scene name -> its line; processes of one
    torchrun take turns (a lock)."""
    with open(os.path.join(out, '.summary.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        L.write_json(os.path.join(out, name), read_json(out, name) | {key: info})


def check_map_out(out, run, inputs):
    """--out may be any writable folder that is not the run folder (nor inside it), not an
    input, and not inside a .SAFE product or a Landslide4Sense root: only what could overwrite
    or pollute an input is refused."""
    real = os.path.realpath(out)

    def inside(p):
        rp = os.path.realpath(p)
        return real == rp or os.path.commonpath([real, rp]) == rp and os.path.isdir(rp)
    if inside(run):
        raise L.DataError(f'{out}: --out must not be inside --run ({run} is never written to)')
    for p in inputs:
        if inside(p):
            raise L.DataError(f'{out}: --out must not be an input or inside one ({p})')
    d = real
    while d != os.path.dirname(d):
        if d.lower().endswith('.safe') or any(os.path.isdir(os.path.join(d, s))
                                              for s in ('TrainData', 'ValidData', 'TestData')):
            raise L.DataError(f'{out}: --out must not be inside a Sentinel-2 product or a '
                              f'Landslide4Sense root ({d})')
        d = os.path.dirname(d)
    L.check_out_folder(out)


def scene_jobs(args):
    """Open every --scene and find every --s2 product's bands before any work, so that a bad
    input stops the run at once. -> [(name, Scene or product path, true mask or None, the
    before-date product or None)]"""
    if args.before and (args.scene or len(args.s2 or []) != 1):
        raise L.DataError(f'{args.before}: --before compares two products: give one --s2 (the '
                          f'after-date) and no --scene')
    args.area = aoi.of_args(args)
    if args.area and (args.scene or not args.s2):
        raise L.DataError(f"{args.area['name']}: --aoi and --bbox cut --s2 products as they are "
                          f'stacked; a --scene is mapped whole')
    jobs = [(sc.name, sc) for sc in (S.Scene(p, args.corrections) for p in args.scene or [])]
    for p in args.s2 or []:
        if args.dem is None:
            raise L.DataError(f'{p}: --s2 needs --dem (a DEM raster covering the product)')
        pr = sentinel2.open_product(p)
        if args.area:                             # off the product: refused before any work
            aoi.window(args.area, sentinel2.product_grid(pr), os.path.basename(p.rstrip('/')))
        jobs.append((pr['name'], p))
    if args.s2:
        dem.check_dem(args.dem)
    if args.before:
        check_pair(args.s2[0], args.before)
    names = [n for n, _ in jobs]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise L.DataError(f'{dup}: two scenes of this name; their outputs would collide')
    truths = args.truth or []
    if truths and len(truths) != len(jobs):
        raise L.DataError(f'--truth names {len(truths)} masks for {len(jobs)} scenes (one each, '
                          f'in the order of --scene, then --s2)')
    for t in truths:
        if not os.path.isfile(t):
            raise L.DataError(f'{t}: true mask not found')
        L.rasterio_for(t)                         # the object counts trace shapes with rasterio
    return [(n, src, truths[i] if truths else None, args.before)
            for i, (n, src) in enumerate(jobs)]


def check_pair(after, before):
    """A before-date fit to compare with an after-date: sensed earlier and overlapping it.
    -> the after product's sentinel2.open_product dict"""
    from rasterio.warp import transform_bounds
    pa, pb = sentinel2.open_product(after), sentinel2.open_product(before)
    ta, tb = sensing(pa), sensing(pb)
    if ta and tb and tb >= ta:
        raise L.DataError(f'{before}: sensed {tb[:8]}, not before the after-date {after} '
                          f'({ta[:8]}): give the earlier product as --before')
    rio = L.rasterio_for(after)
    with sentinel2.open_band(rio, pa, 'B02') as a, sentinel2.open_band(rio, pb, 'B02') as b:
        if not sentinel2.overlaps(transform_bounds(b.crs, a.crs, *b.bounds), a.bounds):
            raise L.DataError(f'{before}: the before-date does not overlap the after-date '
                              f'({os.path.basename(after.rstrip("/"))})')
    return pa


def sensing(pr):
    """A product's sensing start as 'YYYYMMDDhhmmss': its metadata's, else its name's, or None."""
    t = pr['sensed'] or ''.join(re.findall(r'_(\d{8}T\d{6})_', pr['name'] + '_')[:1])
    return re.sub(r'\D', '', t)[:14] or None


# ----------------------------------------------------------------------------- command line

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--run', default=SHIPPED, help='a run folder written by refine.py [default: '
                    'the model this repository ships, trained on synthetic data alone: '
                    f'{os.path.relpath(SHIPPED)} (its MODEL_CARD.md)]')
    ap.add_argument('--round', type=int, help="which round's ensemble [default: the last finished]")
    ap.add_argument('--data', help='a Landslide4Sense root: predict the patches of --split')
    ap.add_argument('--split', choices=list(L.SPLITS), default='test', help='[default: test]')
    ap.add_argument('--scene', nargs='+', help='whole scenes: .tif/.tiff, .h5 (dataset img), .npy')
    ap.add_argument('--s2', nargs='+', help='Sentinel-2 scenes, L1C or L2A: .SAFE folders or '
                    '.zip, STAC items (.json), folders of band GeoTIFFs (Earth Engine downloads)')
    ap.add_argument('--dem', help='with --s2: a DEM raster in any CRS (GLO-30, SRTM, ...)')
    aoi.add_flags(ap)
    ap.add_argument('--before', help='with one --s2 (the after-date): a product of the same '
                    'ground sensed before the event; the map then says which landslides are new')
    ap.add_argument('--change-rule', default='pixels',
                    choices=['pixels', 'objects', 'pixels+ndvi', 'objects+ndvi'],
                    help='with --before: how a landslide is dated (mapping/change.py) '
                    '[default: pixels]')
    ap.add_argument('--truth', nargs='+',
                    help="true masks on the scenes' grids, one per scene: metrics.json")
    ap.add_argument('--min-area', type=float, default=0.0,
                    help='polygons smaller than this many m² are dropped [default: 0]')
    ap.add_argument('--out', required=True, help='output folder (not the run folder nor an input)')
    ap.add_argument('--overlap', type=int, default=DEFAULTS['overlap'],
                    help=f"pixels shared by neighbouring windows [default: {DEFAULTS['overlap']}]")
    ap.add_argument('--nodata', type=float, help='input value meaning no data (besides NaN and '
                    "all-zero pixels; default: the GeoTIFF's own, if any)")
    ap.add_argument('--cloud-buffer', type=int, default=DEFAULTS['cloud_buffer'],
                    help='with --s2: 10 m pixels around clouds, cirrus and cloud shadows also '
                    f"left unanalysed [default: {DEFAULTS['cloud_buffer']}]")
    ap.add_argument('--cloud-fringe', type=int, default=DEFAULTS['cloud_fringe'],
                    help="with --s2: cells of the product's mask around its clouds in which "
                    "Fmask's spectral tests mark cloud (mapping/fringes.py; 0: the mask as it "
                    f"is) [default: {DEFAULTS['cloud_fringe']}]")
    ap.add_argument('--detect-clouds', action='store_true', help='with --s2: a product without '
                    "any cloud mask gets its clouds from Fmask's spectral tests over the whole "
                    'scene (mapping/fringes.py) [default: mapped as ground, with a warning]')
    ap.add_argument('--corrections', nargs='*', choices=S.CORRECTIONS, default=list(S.CORRECT),
                    help="what a Level-1C stack is read with: edges, B1 beside the cloud mask "
                    'from B2 (mapping/edges.py); cirrus, its thin cirrus taken out with B10 '
                    '(mapping/cirrus.py); the flag alone: neither, the reflectance as the '
                    f"product holds it [default: {' '.join(S.CORRECT)}]")
    ap.add_argument('--adapt', action='store_true', help='first refine the run with the imagery '
                    'being mapped as its target domain (mapping/adapt.py), then map with that')
    ap.add_argument('--adapt-rounds', type=int, default=DEFAULTS['adapt_rounds'],
                    help=f"refinement rounds of --adapt [default: {DEFAULTS['adapt_rounds']}]")
    ap.add_argument('--adapt-tiles', type=int, default=DEFAULTS['adapt_tiles'],
                    help="at most this many of a scene's 128 x 128 tiles as --adapt's target "
                    f"[default: {DEFAULTS['adapt_tiles']}]")
    ap.add_argument('--adapt-steps', type=int,
                    help="training steps per network and round [default: the run's own]")
    ap.add_argument('--control', action='store_true', help="with --adapt: the same training on "
                    'source labels only, no pseudo-label (for benchmarks)')
    ap.add_argument('--source', help="with --adapt: the run's labelled source (a Landslide4Sense "
                    'root) when it is no longer where the run recorded it')
    ap.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto')
    ap.add_argument('--log-every', type=float, default=DEFAULTS['log_every'],
                    help='seconds between progress lines')
    return ap.parse_args(argv)


def check_args(args):
    """Refuse nonsensical flags with one line. -> the inputs (folders and files)"""
    scenes = args.scene is not None or args.s2 is not None
    if (args.data is None) == (not scenes):
        raise L.DataError('give either --data (patches) or --scene / --s2 (whole scenes)')
    if not 0 <= args.cloud_buffer <= 60:
        raise L.DataError(f'--cloud-buffer must be 0 to 60 pixels, got {args.cloud_buffer}')
    if not 0 <= args.cloud_fringe <= 5:
        raise L.DataError(f'--cloud-fringe must be 0 to 5 cells, got {args.cloud_fringe}')
    if not 0 <= args.overlap < L.SIZE or args.overlap % 2:
        raise L.DataError(f'--overlap must be an even number in [0, {L.SIZE}), got {args.overlap}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise L.DataError('--device cuda but no CUDA device is available')
    if args.data is not None and (args.aoi or args.bbox):
        raise L.DataError('--aoi and --bbox go with --s2 (whole products), not --data')
    if args.data is not None and not os.path.isdir(args.data):
        raise L.DataError(f'{args.data}: --data folder not found')
    if not args.adapt and (args.control or args.source or args.adapt_steps or (
            args.adapt_rounds, args.adapt_tiles) != (DEFAULTS['adapt_rounds'],
                                                     DEFAULTS['adapt_tiles'])):
        raise L.DataError('--adapt-rounds, --adapt-tiles, --adapt-steps, --control and --source '
                          'go with --adapt')
    if args.adapt and (args.adapt_rounds < 1 or args.adapt_tiles < 1 or
                       (args.adapt_steps or 1) < 1):
        raise L.DataError('--adapt-rounds, --adapt-tiles and --adapt-steps must be positive')
    if args.adapt and args.data and args.split == 'train':
        raise L.DataError('--adapt --split train: the run trained on a TrainData; adapt to a '
                          'valid or test split')
    if args.adapt and int(os.environ.get('WORLD_SIZE', 1)) > 1:
        raise L.DataError('--adapt runs in one process (torchrun shares scenes among processes)')
    return [p for p in [args.data, args.dem, args.before, args.aoi, *(args.scene or []),
                        *(args.s2 or []), *(args.truth or [])] if p]


def adapt_options(args):
    """--adapt's settings, the run's source found (or known to be written again). -> dict"""
    return dict(rounds=args.adapt_rounds, tiles=args.adapt_tiles, steps=args.adapt_steps,
                control=args.control, source=adapt.source(args.run, args.source))


def main(argv=None):
    args = parse_args(argv)
    try:
        inputs = check_args(args)
        if args.data:
            L.check_out_folder(args.out, [('--run', args.run), ('--data', args.data)])
        else:
            check_map_out(args.out, args.run, inputs)
        local = int(os.environ.get('LOCAL_RANK', 0))
        cuda = args.device == 'cuda' or (args.device == 'auto' and torch.cuda.is_available())
        dev = torch.device(f'cuda:{local % torch.cuda.device_count()}' if cuda else 'cpu')
        jobs = [] if args.data else scene_jobs(args)    # a bad scene stops us before any work
        models, c, rnd = load_run(args.run, args.round, dev)
        opts = adapt_options(args) if args.adapt else None     # the source, found before work
        print(f'round {rnd} of {args.run}: {", ".join(c.models)}, scale {c.scale}, on {dev}')
        if args.data:
            if int(os.environ.get('RANK', 0)) == 0:
                adapted = None
                if opts:
                    arm = 'control' if opts['control'] else 'adapted'
                    models, c, adapted = adapted_run(args.run, rnd, args.data, args.split,
                                                     os.path.join(args.out, arm), opts, dev)
                predict_patches(models, c, args.data, args.split, args.out, dev, adapted)
        else:
            print('separated normalization: each scene is its own domain (its own band '
                  'statistics, no-data left out)')
            map_scenes(models, c, jobs, args.out, args, dev, rnd, opts)
    except L.DataError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
