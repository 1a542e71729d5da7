"""The mapping application's tools on their own (predict.py does all of it in one command):

    python -m mapping stack PRODUCT.SAFE --dem DEM.tif --out scene.tif    # product + DEM -> scene
"""
import argparse
import os
import sys

import landslide as L
from mapping import clouds, sentinel2


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('stack', help='a Sentinel-2 product (.SAFE or .zip) and a DEM -> a scene')
    s.add_argument('product')
    s.add_argument('--dem', required=True, help='a DEM raster in any CRS (GLO-30, SRTM, ...)')
    s.add_argument('--out', required=True, help='the scene to write (.tif)')
    s.add_argument('--cloud-buffer', type=int, default=0,
                   help='10 m pixels around clouds, cirrus and shadows also left unanalysed')
    a = ap.parse_args(argv)
    try:
        if not a.out.lower().endswith(('.tif', '.tiff')):
            raise L.DataError(f'{a.out}: the stack is written as GeoTIFF: name it .tif')
        check_stack_out(a.out, [a.product, a.dem])
        if not 0 <= a.cloud_buffer <= 60:
            raise L.DataError(f'--cloud-buffer must be 0 to 60 pixels, got {a.cloud_buffer}')
        info = sentinel2.stack(a.product, a.dem, a.out, buffer=a.cloud_buffer)
    except L.DataError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
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
