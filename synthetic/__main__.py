"""The synthetic world's command line: Landslide4Sense patches with a domain shift, whole
scenes, Sentinel-2 products as ESA lays them out (with clouds if asked) and before/after events,
all drawn from the synthetic landscape (landscape.py: terrain, cover, landslide scars,
look-alikes, each band at its native resolution, resampled to 10 m as the released patches
were). The target domain differs by sensor gain/offset, drier cover, higher terrain, tinted
soil, older scars and haze (docs/method.md: the synthetic data).

    python -m synthetic patches data/ --train 400 --valid 60 --test 120 --shift 1.0
    python -m synthetic scene scenes/ --size 2048 --shift 1.0 --seed 0
    python -m synthetic product products/ --level L2A --size 768 [--zip] [--clouds 0.3]
    python -m synthetic event event/ --level L2A [--clouds 0.2] [--before-tile]
    python -m synthetic items products/S2B_MSIL2A_....SAFE items/   # STAC items, an EE folder
"""
import argparse
import os
import sys

import landslide as L
from synthetic import event, items, landscape, product


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('patches', help='write a synthetic dataset in the Landslide4Sense layout')
    s.add_argument('out')
    s.add_argument('--train', type=int, default=400)
    s.add_argument('--valid', type=int, default=60)
    s.add_argument('--test', type=int, default=120)
    s.add_argument('--shift', type=float, default=1.0, help='strength of the target-domain shift')
    s.add_argument('--seed', type=int, default=0)
    s.add_argument('--no-target-masks', action='store_true', help='drop ValidData/TestData masks')
    s.add_argument('--shift-kind', choices=['all', 'sensor', 'scars'], default='all',
                   help="sensor: the target differs only by sensor gain/offset and haze; "
                        "scars: only by older, partly revegetated landslides")
    s.add_argument('--world', choices=list(landscape.WORLDS), default=landscape.WORLD,
                   help=f'which synthetic world (docs/realism.md) [default: {landscape.WORLD}]')
    s = sub.add_parser('product', help='a synthetic Sentinel-2 product, a DEM, the truth')
    s.add_argument('out', help='folder for the .SAFE (or .zip), dem.tif, truth.tif, scene.h5')
    s.add_argument('--size', type=int, default=768, help='10 m pixels per side (a multiple of 6)')
    s.add_argument('--level', choices=['L2A', 'L1C'], default='L2A')
    s.add_argument('--baseline', default='04.00', help='processing baseline: 04.00 on has offsets')
    s.add_argument('--zip', action='store_true', help='the product as a .zip')
    s.add_argument('--shift', type=float, default=1.0)
    s.add_argument('--seed', type=int, default=0)
    s.add_argument('--clouds', type=float, default=0.0,
                   help='share of the scene under cumulus (with their shadows and thin cirrus)')
    s.add_argument('--shift-kind', choices=['product', 'all'], default='product',
                   help="product: a product's few-percent sensor gains; all: the patch "
                   "benchmarks' strong shift (gains, drier cover, higher terrain, older scars)")
    s = sub.add_parser('event', help='a before and an after product of one tile, a DEM and '
                       'the truth of new and earlier landslides')
    s.add_argument('out', help='folder for after/, before/, dem.tif, truth.tif, truth_new.tif')
    s.add_argument('--size', type=int, default=768, help='10 m pixels per side (a multiple of 6)')
    s.add_argument('--level', choices=['L2A', 'L1C'], default='L2A')
    s.add_argument('--clouds', type=float, default=0.0, help='share under cumulus, each date')
    s.add_argument('--before-tile', action='store_true',
                   help='the before-date on a neighbouring tile in the next UTM zone')
    s.add_argument('--seed', type=int, default=0)
    s = sub.add_parser('items', help="a product written again as the three catalogues' STAC "
                       'items (local COGs) and as an Earth Engine download folder')
    s.add_argument('product', help='a .SAFE folder written by `product`')
    s.add_argument('out', help='folder for pc.json, earthsearch.json, cdse.json, cogs/, ee/')
    s.add_argument('--lost-offset', action='store_true', help="Earth Search's COGs without "
                   'the +1000 offset their item still declares (earth-search #66, #71)')
    s = sub.add_parser('scene',
                       help='one coherent synthetic scene (HDF5; GeoTIFF with rasterio)')
    s.add_argument('out', help='folder for scene.h5 (img, mask), scene.tif and scene_mask.tif')
    s.add_argument('--size', type=int, default=1024)
    s.add_argument('--shift', type=float, default=1.0)
    s.add_argument('--seed', type=int, default=0)
    return ap.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    if a.cmd == 'product':
        if a.size < L.SIZE or a.size % 6:
            sys.exit(f'error: --size must be a multiple of 6 and at least {L.SIZE}')
        if not 0 <= a.clouds < 1:
            sys.exit('error: --clouds must be in [0, 1)')
        paths = product.synth_product(a.out, a.size, a.shift, a.seed, a.level, a.baseline,
                                      a.zip, clouds=a.clouds, kind=a.shift_kind)
        print('wrote ' + ', '.join(paths.values()))
        return
    if a.cmd == 'event':
        if a.size < L.SIZE or a.size % 6 or not 0 <= a.clouds < 1:
            sys.exit(f'error: --size must be a multiple of 6 and at least {L.SIZE}, '
                     '--clouds in [0, 1)')
        paths = event.synth_event(a.out, a.size, a.seed, a.level, a.clouds,
                                  a.before_tile)
        print('wrote ' + ', '.join(paths.values()))
        return
    if a.cmd == 'items':
        if not os.path.isdir(os.path.join(a.product, 'GRANULE')):
            sys.exit(f'error: {a.product}: not a .SAFE folder written by `python -m synthetic '
                     f'product`')
        paths = items.write_items(a.product, a.out, a.lost_offset)
        paths['ee'] = items.write_ee_folder(a.product, f'{a.out}/ee')
        print('wrote ' + ', '.join(paths.values()))
        return
    if a.cmd == 'scene':
        if a.size < L.SIZE:
            sys.exit(f'error: --size must be at least {L.SIZE}')
        print('wrote ' + ', '.join(product.synth_scene(a.out, a.size, a.shift, a.seed)))
        return
    if min(a.train, a.valid, a.test) < 0 or a.train == 0:
        sys.exit('error: --train must be positive and --valid/--test non-negative')
    landscape.synth(a.out, a.train, a.valid, a.test, a.shift, a.seed, not a.no_target_masks,
                    a.shift_kind, a.world)
    print(f'wrote {a.train}/{a.valid}/{a.test} patches to {a.out} (world {a.world}, shift '
          f'{a.shift}, seed {a.seed})')


if __name__ == '__main__':
    main()
