"""Synthetic Landslide4Sense data with a domain shift, written by code anyone can read and rerun,
from the synthetic landscape (landscape.py: terrain, cover, landslide scars, look-alikes, each
band at its native resolution, resampled to 10 m as the released patches were). The target
domain differs by sensor gain/offset, drier cover, higher terrain, tinted soil, older scars and
haze (docs/method.md: the synthetic data). Whole scenes, and Sentinel-2 products as ESA lays
them out (synthetic_s2.py), with clouds if asked:

    python synthetic.py synth data/ --train 400 --valid 60 --test 120 --shift 1.0
    python synthetic.py synth-scene scenes/ --size 2048 --shift 1.0 --seed 0
    python synthetic.py synth-product products/ --level L2A --size 768 [--zip] [--clouds 0.3]
    python synthetic.py synth-event event/ --level L2A [--clouds 0.2] [--before-tile]
"""
import argparse
import os
import sys

import h5py
import numpy as np

import landslide as L
import scene as S
from landscape import domain, synth_patch

def split_patches(split, count, shift=1.0, seed=0, kind='all', cover=False):
    """The patches synth writes for one split, in order (the source, 'train', has shift 0):
    yields synth_patch's outputs. Reading them again this way gives their cover maps."""
    rng = np.random.default_rng([seed, list(L.SPLITS).index(split)])
    dom = domain(0.0 if split == 'train' else shift, seed, kind)
    for _ in range(count):
        yield synth_patch(rng, dom, cover=cover)


def synth(out, train=400, valid=60, test=120, shift=1.0, seed=0, target_masks=True, kind='all'):
    """Write a dataset in the Landslide4Sense layout. The source (TrainData) has shift 0;
    ValidData and TestData share one target domain of the given shift. Deterministic in seed."""
    for split, count in (('train', train), ('valid', valid), ('test', test)):
        if count == 0:
            continue
        sdir = os.path.join(out, L.SPLITS[split])
        os.makedirs(os.path.join(sdir, 'img'), exist_ok=True)
        keep_mask = split == 'train' or target_masks
        if keep_mask:
            os.makedirs(os.path.join(sdir, 'mask'), exist_ok=True)
        for i, (img, mask) in enumerate(split_patches(split, count, shift, seed, kind), 1):
            with h5py.File(os.path.join(sdir, 'img', f'image_{i}.h5'), 'w') as f:
                f.create_dataset('img', data=img)
            if keep_mask:
                with h5py.File(os.path.join(sdir, 'mask', f'mask_{i}.h5'), 'w') as f:
                    f.create_dataset('mask', data=mask)


def synth_scene(out, size=1024, shift=1.0, seed=0):
    """One coherent size x size scene of the given target shift (shift 0 = the source domain),
    with its true mask, written by scene.write_scene. -> paths written"""
    img, mask = synth_patch(np.random.default_rng([seed, 3]), domain(shift, seed), size)
    return S.write_scene(out, img, mask)



def parse_args(argv):
    ap = argparse.ArgumentParser(description='Landslide4Sense data tools')
    sub = ap.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('synth', help='write a synthetic dataset in the Landslide4Sense layout')
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
    s = sub.add_parser('synth-product', help='a synthetic Sentinel-2 product, a DEM, the truth')
    s.add_argument('out', help='folder for the .SAFE (or .zip), dem.tif, truth.tif, scene.h5')
    s.add_argument('--size', type=int, default=768, help='10 m pixels per side (a multiple of 6)')
    s.add_argument('--level', choices=['L2A', 'L1C'], default='L2A')
    s.add_argument('--baseline', default='04.00', help='processing baseline: 04.00 on has offsets')
    s.add_argument('--zip', action='store_true', help='the product as a .zip')
    s.add_argument('--shift', type=float, default=1.0)
    s.add_argument('--seed', type=int, default=0)
    s.add_argument('--clouds', type=float, default=0.0,
                   help='share of the scene under cumulus (with their shadows and thin cirrus)')
    s = sub.add_parser('synth-event', help='a before and an after product of one tile, a DEM and '
                       'the truth of new and earlier landslides')
    s.add_argument('out', help='folder for after/, before/, dem.tif, truth.tif, truth_new.tif')
    s.add_argument('--size', type=int, default=768, help='10 m pixels per side (a multiple of 6)')
    s.add_argument('--level', choices=['L2A', 'L1C'], default='L2A')
    s.add_argument('--clouds', type=float, default=0.0, help='share under cumulus, each date')
    s.add_argument('--before-tile', action='store_true',
                   help='the before-date on a neighbouring tile in the next UTM zone')
    s.add_argument('--seed', type=int, default=0)
    s = sub.add_parser('synth-scene',
                       help='one coherent synthetic scene (HDF5; GeoTIFF with rasterio)')
    s.add_argument('out', help='folder for scene.h5 (img, mask), scene.tif and scene_mask.tif')
    s.add_argument('--size', type=int, default=1024)
    s.add_argument('--shift', type=float, default=1.0)
    s.add_argument('--seed', type=int, default=0)
    return ap.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    if a.cmd == 'synth-product':
        if a.size < L.SIZE or a.size % 6:
            sys.exit(f'error: --size must be a multiple of 6 and at least {L.SIZE}')
        if not 0 <= a.clouds < 1:
            sys.exit('error: --clouds must be in [0, 1)')
        import synthetic_s2
        paths = synthetic_s2.synth_product(a.out, a.size, a.shift, a.seed, a.level, a.baseline,
                                           a.zip, clouds=a.clouds)
        print('wrote ' + ', '.join(paths.values()))
        return
    if a.cmd == 'synth-event':
        if a.size < L.SIZE or a.size % 6 or not 0 <= a.clouds < 1:
            sys.exit(f'error: --size must be a multiple of 6 and at least {L.SIZE}, '
                     '--clouds in [0, 1)')
        import synthetic_event
        paths = synthetic_event.synth_event(a.out, a.size, a.seed, a.level, a.clouds,
                                            a.before_tile)
        print('wrote ' + ', '.join(paths.values()))
        return
    if a.cmd == 'synth-scene':
        if a.size < L.SIZE:
            sys.exit(f'error: --size must be at least {L.SIZE}')
        print('wrote ' + ', '.join(synth_scene(a.out, a.size, a.shift, a.seed)))
        return
    if min(a.train, a.valid, a.test) < 0 or a.train == 0:
        sys.exit('error: --train must be positive and --valid/--test non-negative')
    synth(a.out, a.train, a.valid, a.test, a.shift, a.seed, not a.no_target_masks, a.shift_kind)
    print(f'wrote {a.train}/{a.valid}/{a.test} patches to {a.out} (shift {a.shift}, seed {a.seed})')


if __name__ == '__main__':
    main()
