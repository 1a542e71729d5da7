"""The mapping application's tools on their own (predict.py does all of it in one command):

    python -m mapping stack PRODUCT.SAFE --dem DEM.tif --out scene.tif    # product + DEM -> scene
    python -m mapping patches scene.tif --out mine [--truth inventory.tif] [--split train]
    python -m mapping mosaic mine/TestData RUN/round3/masks --out map.tif  # patches -> the map
    python -m mapping pack RUN OUT [--round K] [--steps N]   # a run as a model to ship
"""
import argparse
import os
import sys

import landslide as L
from mapping import aoi, clouds, pack, patches, sentinel2


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('stack', help='a Sentinel-2 product (.SAFE, .zip, a STAC item, a folder of '
                       'band GeoTIFFs) and a DEM -> a scene')
    s.add_argument('product')
    s.add_argument('--dem', required=True, help='a DEM raster in any CRS (GLO-30, SRTM, ...)')
    s.add_argument('--out', required=True, help='the scene to write (.tif)')
    aoi.add_flags(s)
    s.add_argument('--cloud-buffer', type=int, default=0,
                   help='10 m pixels around clouds, cirrus and shadows also left unanalysed')
    s.add_argument('--cloud-fringe', type=int, default=1, help="cells of the product's mask "
                   "around its clouds in which Fmask's spectral tests mark cloud (0: none)")
    s.add_argument('--detect-clouds', action='store_true', help='a product without any cloud '
                   "mask: its clouds from Fmask's spectral tests over the whole scene")
    p = sub.add_parser('patches', help='a scene -> 128 x 128 patches in the Landslide4Sense '
                       'layout, with an index of their windows')
    p.add_argument('scene', help='a scene: .tif (a stack, its cloud mask beside it), .h5, .npy')
    p.add_argument('--out', required=True, help='a Landslide4Sense root; <Split>/ is written')
    p.add_argument('--split', choices=list(L.SPLITS), default='test', help='[default: test]')
    p.add_argument('--truth', help="a true mask on the scene's grid: mask_N.h5 beside each patch")
    p.add_argument('--min-analysed', type=float, default=0.5,
                   help="a window's least share of analysed pixels [default: 0.5]")
    p.add_argument('--max-patches', type=int, help='at most this many windows, drawn at random')
    p.add_argument('--seed', type=int, default=0)
    m = sub.add_parser('mosaic', help="patch masks put back on the scene's grid")
    m.add_argument('split', help='a split written by `patches` (holds index.json)')
    m.add_argument('masks', help='a folder of mask_N.h5 for its patches (a round\'s masks/)')
    m.add_argument('--out', required=True, help='the raster to write (.tif, or .npy)')
    k = sub.add_parser('pack', help="a run's round as a model to ship: float16 networks, their "
                       'settings and statistics, no data (mapping/pack.py)')
    k.add_argument('run', help='a run folder written by refine.py')
    k.add_argument('out', help='the folder to write (must not exist)')
    k.add_argument('--round', type=int, help='[default: the last finished]')
    k.add_argument('--steps', type=int, help="steps per network and round an adaptation of the "
                   "packed model trains [default: the run's own]")
    return ap.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    try:
        if a.cmd == 'stack':
            return stack(a)
        if a.cmd == 'pack':
            print(f'packed round {a.round if a.round is not None else "(last)"} of {a.run} '
                  f'into {pack.pack(a.run, a.out, a.round, a.steps)}')
            return 0
        if a.cmd == 'patches':
            if not 0 < a.min_analysed <= 1 or (a.max_patches is not None and a.max_patches < 1):
                raise L.DataError('--min-analysed must be in (0, 1], --max-patches positive')
            L.check_out_folder(a.out)
            idx = patches.cut(a.scene, a.out, a.split, a.truth, a.min_analysed, a.max_patches,
                              a.seed)
            print(f"wrote {len(idx['windows'])} patches to "
                  f"{os.path.join(a.out, L.SPLITS[a.split])} (index.json maps each to its window)")
            return 0
        if not a.out.lower().endswith(('.tif', '.tiff', '.npy')):
            raise L.DataError(f'{a.out}: the mosaic is written as .tif or .npy')
        L.check_out_folder(os.path.dirname(os.path.abspath(a.out)),
                           [('the split', a.split), ('the masks', a.masks)])
        n = patches.mosaic(a.split, a.masks, a.out)
        print(f'wrote {a.out}: {n} pixels from the patches, 255 elsewhere')
        return 0
    except L.DataError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2


def stack(a):
    """`stack`: a product and a DEM stacked into a scene, alone."""
    if not a.out.lower().endswith(('.tif', '.tiff')):
        raise L.DataError(f'{a.out}: the stack is written as GeoTIFF: name it .tif')
    check_stack_out(a.out, [a.product, a.dem])
    if not 0 <= a.cloud_buffer <= 60:
        raise L.DataError(f'--cloud-buffer must be 0 to 60 pixels, got {a.cloud_buffer}')
    if not 0 <= a.cloud_fringe <= 5:
        raise L.DataError(f'--cloud-fringe must be 0 to 5 cells, got {a.cloud_fringe}')
    info = sentinel2.stack(a.product, a.dem, a.out, buffer=a.cloud_buffer, fringe=a.cloud_fringe,
                           detect=a.detect_clouds, area=aoi.of_args(a))
    mask = f", {info['not_analysed']} not analysed ({clouds.sidecar(a.out)})" \
        if info['mask'] else ''
    print(f"wrote {info['path']}: {info['level']}, {info['size'][0]} x {info['size'][1]}, "
          f"{info['nodata']} no-data pixels{mask}")
    return 0


def check_stack_out(out, inputs):
    """The stack must not overwrite an input nor land inside a .SAFE product."""
    real = os.path.realpath(out)
    for p in inputs:
        rp = os.path.realpath(p)
        if real == rp or (os.path.isdir(rp) and os.path.commonpath([real, rp]) == rp):
            raise L.DataError(f'{out}: would write over or into the input {p}')
    parent = os.path.dirname(real)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise L.DataError(f'{out}: cannot write here ({parent} is not a writable folder)')


if __name__ == '__main__':
    sys.exit(main())
